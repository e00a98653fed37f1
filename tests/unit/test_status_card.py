"""The status card is assembled from a cached upper part and per-person rows: it must still
be a valid PNG that any decoder reads, with the colour and the person's own lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image, ImageChops

from flows.rendering import COLOURS, status_card
from presentation.i18n import LANGUAGES

CHECKED = datetime(2026, 12, 6, 14, 55, tzinfo=UTC)


def _decoded(png: bytes) -> Image.Image:
    Image.open(io.BytesIO(png)).verify()  # chunk CRCs and structure
    image = Image.open(io.BytesIO(png))
    image.load()  # the zlib stream and its Adler-32
    return image.convert("RGB")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("colour", list(COLOURS))
def test_every_card_is_a_valid_png_filled_with_its_colour(lang: str, colour: str) -> None:
    card = _decoded(
        status_card(lang, colour, CHECKED, CHECKED, "status.valid_until", "9001****1234")
    )
    assert card.size == (900, 560)
    background, ink = COLOURS[colour]
    assert card.getpixel((5, 5)) == Image.new("RGB", (1, 1), background).getpixel((0, 0))
    assert card.getpixel((895, 555)) == card.getpixel((5, 5))
    colours = {rgb for _, rgb in card.getcolors(maxcolors=1 << 16) or []}
    assert Image.new("RGB", (1, 1), ink).getpixel((0, 0)) in colours


def test_two_people_differ_only_in_their_own_lines() -> None:
    first = _decoded(status_card("en", "green", CHECKED, None, None, "9001****1111"))
    second = _decoded(status_card("en", "green", CHECKED, None, None, "9001****2222"))
    changed = ImageChops.difference(first, second).getbbox()
    assert changed is not None
    assert changed[1] >= 470  # the masked IIN's line, nothing above it


def test_a_line_too_long_for_the_card_is_shrunk_to_fit() -> None:
    card = _decoded(
        status_card("kk", "red", CHECKED, CHECKED, "status.isolation_until", "9001****1234")
    )
    right_edge = card.crop((880, 330, 900, 470))
    assert right_edge.getcolors() == [(20 * 140, card.getpixel((5, 5)))]
