"""A status in words and as a card."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    WebAppInfo,
)

from flows.formatting import local_time
from flows.rendering import status_card
from presentation.i18n import text
from presentation.keys import COLOUR_NAMES, COLOUR_NEXT, STATUS_REASONS
from presentation.rules import green_validity
from services.citizens import mask_iin
from services.status import Colour, Status


def reason_text(lang: str, status: Status) -> str:
    return text(lang, STATUS_REASONS[status.reason], laboratory=status.laboratory or "—")


def _until(status: Status) -> str | None:
    if status.until is None:
        return None
    return "status.valid_until" if status.colour is Colour.GREEN else "status.isolation_until"


def status_lines(lang: str, status: Status, city_tz: ZoneInfo) -> list[str]:
    """Why the colour, until when, and what to do next (the card's caption, the pass's
    words)."""
    lines = [reason_text(lang, status)]
    until_key = _until(status)
    if status.until is not None and until_key is not None:
        lines.append(text(lang, until_key, time=local_time(status.until, city_tz)))
    lines.append(text(lang, COLOUR_NEXT[status.colour], hours=green_validity(lang)))
    return lines


def pass_button(lang: str, pass_url: str | None) -> InlineKeyboardMarkup | None:
    """The button under "My status" that opens the live pass (the Mini App), where the
    Mini App has an address."""
    if not pass_url:
        return None
    button = InlineKeyboardButton(
        text=text(lang, "miniapp.open_pass"), web_app=WebAppInfo(url=pass_url)
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def send_status(
    message: Message,
    status: Status,
    iin: str,
    *,
    lang: str,
    city_tz: ZoneInfo,
    menu: ReplyKeyboardMarkup | InlineKeyboardMarkup,
) -> None:
    """The colour card (a PNG a doorman reads at a glance) with why and what to do next."""
    colour = status.colour.value
    until_key = _until(status)
    card = status_card(
        lang,
        colour,
        status.checked_at.astimezone(city_tz),
        status.until.astimezone(city_tz) if status.until else None,
        until_key,
        mask_iin(iin),
    )
    lines = [text(lang, COLOUR_NAMES[colour]), *status_lines(lang, status, city_tz)]
    await message.answer_photo(
        BufferedInputFile(card, filename="status.png"),
        caption="\n\n".join(lines),
        reply_markup=menu,
    )
