"""Pictures people look at: the status card and the venue QR posters (Pillow, qrcode).

Fonts come from the font-roboto wheel, which covers Cyrillic and Kazakh letters."""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import font_roboto
import qrcode
import qrcode.image.svg
from PIL import Image, ImageColor, ImageDraw, ImageFont

from flows.scales import nice_scale, tick_label
from presentation.i18n import LANGUAGES, text
from presentation.keys import COLOUR_NAMES, DIRECTION_NAMES, POSTER_TITLES

COLOURS = {
    "red": ("#C62828", "#FFFFFF"),
    "yellow": ("#F9A825", "#000000"),
    "green": ("#2E7D32", "#FFFFFF"),
    "blue": ("#1565C0", "#FFFFFF"),
}


@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "RobotoBold" if bold else "Roboto"
    return ImageFont.truetype(font_roboto.font_files[name], size)


def fitted(line: str, width: int, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The largest font up to ``size`` in which ``line`` fits ``width`` pixels."""
    while size > 12 and font(size, bold).getlength(line) > width:
        size -= 2
    return font(size, bold)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# The card's fixed layout: where each line goes and its font size.
_CARD_SIZE = (900, 560)
_TITLE_AT, _TITLE_SIZE = (50, 40), 40
_LINE_WIDTH = 800
_WORD_AT, _WORD_SIZE = (50, 110), 150
_CHECKED_AT, _UNTIL_AT, _LINE_SIZE = (50, 330), (50, 395), 44
_IIN_AT, _IIN_SIZE = (50, 480), 34


@lru_cache(maxsize=32)
def _palette(colour: str) -> tuple[int, ...]:
    """256 shades from the colour's background (0) to its ink (255): the card is drawn as
    one 8-bit coverage mask, so anti-aliased text keeps its edges in a palette PNG."""
    background, ink = (ImageColor.getrgb(c) for c in COLOURS[colour])
    return tuple(
        round(b + (i - b) * level / 255)
        for level in range(256)
        for b, i in zip(background, ink, strict=True)
    )


# The rows above the first per-person line: drawn, filtered and compressed once per
# language and colour.
_FIXED_ROWS = _CHECKED_AT[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _mask(height: int) -> Image.Image:
    """A coverage mask one column wider than the card: column 0 stays 0, so its bytes are
    PNG scanlines ready to compress (each row starts with filter type 0, "none")."""
    return Image.new("L", (_CARD_SIZE[0] + 1, height), 0)


def _at(point: tuple[int, int], top: int = 0) -> tuple[int, int]:
    return point[0] + 1, point[1] - top


@dataclass(frozen=True)
class _CardHead:
    """A card's PNG up to the fixed rows' compressed data, and the running checksums."""

    start: bytes  # signature, IHDR, PLTE
    deflated: bytes  # the zlib header and the fixed rows, flushed to a byte boundary
    adler: int  # Adler-32 of the fixed rows' scanlines
    idat_crc: int  # CRC-32 of b"IDAT" + deflated


@lru_cache(maxsize=64)
def _card_head(lang: str, colour: str) -> _CardHead:
    """What never changes for a language and colour: the title and the huge colour word."""
    mask = _mask(_FIXED_ROWS)
    draw = ImageDraw.Draw(mask)
    title = text(lang, "status.card_title").upper()
    draw.text(_at(_TITLE_AT), title, font=font(_TITLE_SIZE), fill=255)
    word = text(lang, COLOUR_NAMES[colour])
    draw.text(_at(_WORD_AT), word, font=fitted(word, _LINE_WIDTH, _WORD_SIZE, True), fill=255)
    rows = mask.tobytes()
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
    deflated = _ZLIB_HEADER + compressor.compress(rows) + compressor.flush(zlib.Z_SYNC_FLUSH)
    width, height = _CARD_SIZE
    start = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
        + _chunk(b"PLTE", bytes(_palette(colour)))
    )
    return _CardHead(start, deflated, zlib.adler32(rows), zlib.crc32(b"IDAT" + deflated))


_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, fastest level
_IEND = _chunk(b"IEND", b"")


@lru_cache(maxsize=256)
def _line(line: str, size: int) -> Image.Image:
    """One line of text as a coverage mask, shrunk to fit the card. The times are the
    same for everyone checked in the same minute, so most lines come from this cache."""
    face = fitted(line, _LINE_WIDTH, size)
    _, _, right, bottom = face.getbbox(line)
    strip = Image.new("L", (max(1, math.ceil(right)), max(1, math.ceil(bottom))), 0)
    ImageDraw.Draw(strip).text((0, 0), line, font=face, fill=255)
    return strip


def status_card(
    lang: str,
    colour: str,
    checked_at: datetime,
    until: datetime | None,
    until_key: str | None,
    masked_iin: str,
) -> bytes:
    """A card a doorman reads at a glance: the colour fills it, the word is huge.

    It is sent on every "My status", so it is cheap (Pillow's ``optimize=True`` cost 30 ms
    of CPU a card): an 8-bit palette PNG whose fixed upper part (title and colour word) is
    compressed once per language and colour; a card compresses only its lower rows (the
    times and the masked IIN), continues the stream's checksums, and joins the two."""
    head = _card_head(lang, colour)
    mask = _mask(_CARD_SIZE[1] - _FIXED_ROWS)
    lines = [(text(lang, "status.checked", time=f"{checked_at:%d.%m.%Y %H:%M}"), _CHECKED_AT)]
    if until is not None and until_key is not None:
        lines.append((text(lang, until_key, time=f"{until:%d.%m.%Y %H:%M}"), _UNTIL_AT))
    for line, at in lines:
        mask.paste(_line(line, _LINE_SIZE), _at(at, _FIXED_ROWS))
    iin_line = _line(text(lang, "status.iin", iin=masked_iin), _IIN_SIZE)
    mask.paste(iin_line, _at(_IIN_AT, _FIXED_ROWS))
    rows = mask.tobytes()
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
    tail = compressor.compress(rows) + compressor.flush()
    tail += struct.pack(">I", zlib.adler32(rows, head.adler))
    idat_length = struct.pack(">I", len(head.deflated) + len(tail))
    idat_crc = struct.pack(">I", zlib.crc32(tail, head.idat_crc))
    return head.start + idat_length + b"IDAT" + head.deflated + tail + idat_crc + _IEND


def qr_png(link: str, box_size: int = 12) -> bytes:
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=4
    )
    qr.add_data(link)
    qr.make(fit=True)
    return _png(qr.make_image(fill_color="black", back_color="white").get_image())


def qr_svg(link: str) -> bytes:
    image = qrcode.make(
        link,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def poster_pdf(link: str, venue: str, entrance: str, direction: str) -> bytes:
    """A printable A4 poster (150 dpi): the code, the venue, instructions in ru, kk, en."""
    width, height = 1240, 1754
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    accent = "#2E7D32" if direction == "entry" else "#1565C0"
    draw.rectangle((0, 0, width, 170), fill=accent)
    title = " / ".join(text(lang, POSTER_TITLES[direction]) for lang in ("kk", "ru"))
    draw.text((60, 45), title, font=fitted(title, width - 120, 60, True), fill="white")
    draw.text((60, 200), text("en", POSTER_TITLES[direction]), font=font(48), fill=accent)
    code = Image.open(io.BytesIO(qr_png(link, box_size=20))).convert("RGB")
    side = 820
    code = code.resize((side, side), Image.Resampling.NEAREST)
    page.paste(code, ((width - side) // 2, 290))
    draw.text((60, 1140), venue, font=fitted(venue, width - 120, 64, True), fill="black")
    where = f"{entrance} — " + " / ".join(
        text(lang, DIRECTION_NAMES[direction]) for lang in LANGUAGES
    )
    draw.text((60, 1230), where, font=fitted(where, width - 120, 40), fill="black")
    y = 1330
    for lang in ("kk", "ru", "en"):
        draw.text((60, y), text(lang, "venue.poster_howto"), font=font(36), fill="#333333")
        y += 70
    draw.text((60, height - 90), link, font=font(26), fill="#666666")
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=150)
    return out.getvalue()


def hourly_chart(title: str, bars: list[tuple[str, int]]) -> bytes:
    """Check-ins per hour as a bar chart: counts only, never names."""
    width, height, left, bottom, top = 1000, 520, 70, 460, 90
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 25), title, font=fitted(title, width - left - 30, 30, True), fill="black")
    peak = max((count for _, count in bars), default=0) or 1
    slot = (width - left - 30) / 24
    for hour in range(24):
        x = left + hour * slot
        if hour % 3 == 0:
            draw.text((x, bottom + 12), f"{hour:02d}", font=font(20), fill="#555555")
    by_hour = dict(bars)
    for hour in range(24):
        count = by_hour.get(f"{hour:02d}", 0)
        if not count:
            continue
        x = left + hour * slot
        bar_top = bottom - (bottom - top) * count / peak
        draw.rectangle((x + 3, bar_top, x + slot - 3, bottom), fill="#2E7D32")
        draw.text((x + 3, bar_top - 26), str(count), font=font(20), fill="black")
    draw.line((left, bottom, width - 30, bottom), fill="#999999", width=2)
    return _png(image)


_PALETTE = ("#C62828", "#EF6C00", "#F9A825", "#2E7D32", "#1565C0", "#6A1B9A", "#455A64")


def curves_chart(
    title: str,
    start: date,
    panels: list[tuple[str, str]],
    scenarios: list[tuple[str, dict[str, Sequence[Sequence[float]]]]],
) -> bytes:
    """Stacked panels of daily curves, one colour per scenario: the median as a line and
    the 5th-95th percentile band shaded. ``panels`` are (series name, panel title);
    each scenario is (label, series name -> (low, median, high) rows)."""
    width, panel_height, top, left, right = 1400, 330, 150, 110, 40
    height = top + panel_height * len(panels) + 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 20), title, font=fitted(title, width - left - right, 32, True), fill="black")
    x = left
    y = 75
    for n, (label, _) in enumerate(scenarios):
        colour = _PALETTE[n % len(_PALETTE)]
        label_font = font(20)
        span = int(draw.textlength(label, font=label_font)) + 60
        if x + span > width - right:
            x, y = left, y + 30
        draw.rectangle((x, y + 6, x + 28, y + 14), fill=colour)
        draw.text((x + 36, y), label, font=label_font, fill="#222222")
        x += span
    days = max(len(series[panels[0][0]][1]) for _, series in scenarios) if scenarios else 1
    plot_width = width - left - right
    for p, (name, panel_title) in enumerate(panels):
        y0 = top + p * panel_height + 40
        y1 = y0 + panel_height - 90
        peak = max((max(series[name][2]) for _, series in scenarios), default=1.0)
        ceiling, step = nice_scale(float(peak))
        draw.text((left, y0 - 36), panel_title, font=font(24, True), fill="black")
        tick = 0.0
        while tick <= ceiling + 1e-9:
            ty = y1 - (y1 - y0) * tick / ceiling
            draw.line((left, ty, width - right, ty), fill="#E0E0E0", width=1)
            draw.text((10, ty - 11), tick_label(tick), font=font(18), fill="#555555")
            tick += step
        for day in range(days):
            when = start + timedelta(days=day)
            if when.day == 1:
                tx = left + plot_width * day / max(days - 1, 1)
                draw.line((tx, y1, tx, y1 + 6), fill="#999999", width=1)
                draw.text((tx - 14, y1 + 10), when.strftime("%b"), font=font(16), fill="#555555")
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        shade = ImageDraw.Draw(overlay)

        def point(
            day: int, value: float, y0: float = y0, y1: float = y1, ceiling: float = ceiling
        ) -> tuple[float, float]:
            return left + plot_width * day / max(days - 1, 1), y1 - (y1 - y0) * value / ceiling

        for n, (_, series) in enumerate(scenarios):
            low, _, high = series[name]
            colour = _PALETTE[n % len(_PALETTE)]
            outline = [point(d, high[d]) for d in range(len(high))]
            outline += [point(d, low[d]) for d in reversed(range(len(low)))]
            rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
            shade.polygon(outline, fill=(*rgb, 60))
        image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))
        draw = ImageDraw.Draw(image)
        for n, (_, series) in enumerate(scenarios):
            median = series[name][1]
            colour = _PALETTE[n % len(_PALETTE)]
            draw.line([point(d, median[d]) for d in range(len(median))], fill=colour, width=3)
        draw.line((left, y1, width - right, y1), fill="#999999", width=2)
    return _png(image)
