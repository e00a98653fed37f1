"""What a handler takes from its update: what is known of the sender, the message a
pressed button is under."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram.types import CallbackQuery, Message

T = TypeVar("T")


async def sender_lookup(
    message: Message, look_up: Callable[[int], Awaitable[T | None]], refusal: str
) -> T | None:
    """What ``look_up`` finds for the sender's Telegram id (their brigade, their case,
    their linked IIN...); when it finds nothing, the sender is told ``refusal`` (a flow
    that is not theirs) and None is returned."""
    assert message.from_user is not None  # a message in a private chat has a sender
    found = await look_up(message.from_user.id)
    if found is None:
        await message.answer(refusal)
    return found


async def pressed(query: CallbackQuery) -> Message:
    """Acknowledge a button press (the person's app stops waiting) and give the message
    the button is under, which the answer goes below."""
    await query.answer()
    assert isinstance(query.message, Message)  # a bot's own recent message, in a private chat
    return query.message
