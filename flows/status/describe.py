"""A status in words and as a card."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import BufferedInputFile, Message, ReplyKeyboardMarkup

from flows.formatting import local_time
from flows.i18n import text
from flows.rendering import status_card
from services.citizens import mask_iin
from services.status import Colour, Status


def reason_text(lang: str, status: Status) -> str:
    return text(lang, f"status.reason.{status.reason}", laboratory=status.laboratory or "—")


def _until(status: Status) -> str | None:
    if status.until is None:
        return None
    return "status.valid_until" if status.colour is Colour.GREEN else "status.isolation_until"


async def send_status(
    message: Message,
    status: Status,
    iin: str,
    *,
    lang: str,
    city_tz: ZoneInfo,
    menu: ReplyKeyboardMarkup,
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
    lines = [text(lang, f"colour.{colour}"), reason_text(lang, status)]
    if status.until is not None and until_key is not None:
        lines.append(text(lang, until_key, time=local_time(status.until, city_tz)))
    lines.append(text(lang, f"status.next.{colour}"))
    await message.answer_photo(
        BufferedInputFile(card, filename="status.png"),
        caption="\n\n".join(lines),
        reply_markup=menu,
    )
