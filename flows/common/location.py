"""A shared location read from Telegram's messages: the first fix of a live share and its
edits, for every bot that follows one (a patient's home rule, a brigade's field team)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.types import Message

from presentation.i18n import text
from services.location_fixes import INDEFINITE_LIVE_PERIOD, Fix, validate_fix

_LONGEST_LIVE = timedelta(days=366)


def fix_from_raw(message: dict[str, Any], *, edited: bool) -> Fix | None:
    """The fix a message (as the Bot API's JSON) carries, or None when it carries none
    this bot should believe: no location, not in a private chat with its sender,
    forwarded from someone else, or fields that are not what Telegram sends."""
    location, user, chat = message.get("location"), message.get("from"), message.get("chat")
    if not (isinstance(location, dict) and isinstance(user, dict) and isinstance(chat, dict)):
        return None
    if chat.get("type") != "private" or user.get("id") != chat.get("id"):
        return None
    if "forward_origin" in message:
        return None
    try:
        sent = int(message["date"])
        at = int(message.get("edit_date") or sent) if edited else sent
        accuracy = location.get("horizontal_accuracy")
        period = int(location.get("live_period") or 0)
        fix = Fix(
            tg_user_id=int(user["id"]),
            message_id=int(message["message_id"]),
            at=datetime.fromtimestamp(at, UTC),
            latitude=float(location["latitude"]),
            longitude=float(location["longitude"]),
            accuracy=None if accuracy is None else float(accuracy),
            live_until=(
                datetime.fromtimestamp(sent, UTC)
                + (
                    _LONGEST_LIVE
                    if period >= INDEFINITE_LIVE_PERIOD
                    else timedelta(seconds=period)
                )
                if period > 0
                else None
            ),
            stopped=edited and period <= 0,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
    return fix


def fix_from(message: Message, *, edited: bool) -> Fix | None:
    """The same for an aiogram Message (the first message of a live share)."""
    return fix_from_raw(
        message.model_dump(by_alias=True, exclude_none=True, mode="json"), edited=edited
    )


async def live_share_start(
    message: Message, lang: str, one_off: str
) -> tuple[Fix, datetime] | None:
    """The first fix of a live share and when the share ends; None once the sender is
    told ``one_off`` (a location sent once, which nobody follows) or that the place is
    not one a phone could report (``validate_fix``)."""
    fix = fix_from(message, edited=False)
    if fix is None or fix.live_until is None:
        await message.answer(one_off)
        return None
    if not validate_fix(fix):
        await message.answer(text(lang, "errors.location.range"))
        return None
    return fix, fix.live_until
