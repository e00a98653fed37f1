"""What a handler looks up about the person who wrote."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram.types import Message

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
