"""Steps the flows' handlers share: what is known of the sender, the message a pressed
button is under, the next question asked, a typed value read or the rule it broke told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyMarkupUnion

from presentation.i18n import text
from presentation.keys import input_error
from services.validation import InvalidInput, parse_bin

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


async def ask(
    message: Message,
    state: FSMContext,
    next_state: State,
    lang: str,
    key: str,
    reply_markup: ReplyMarkupUnion | None = None,
    /,
    **params: object,
) -> None:
    """The form moves to ``next_state`` and the person is asked its question: the text
    ``key`` in their language, with ``params`` filled (and ``reply_markup``, the keyboard
    to answer by)."""
    await state.set_state(next_state)
    await message.answer(text(lang, key, **params), reply_markup=reply_markup)


async def parsed_text(
    message: Message,
    lang: str,
    parse: Callable[[str], T],
    reply_markup: InlineKeyboardMarkup | None = None,
) -> T | None:
    """What ``parse`` makes of the text typed (an IIN, a BIN...), or None once the person
    is told, in their language, which rule it broke (with ``reply_markup`` to skip)."""
    try:
        return parse(message.text or "")
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code), reply_markup=reply_markup)
        return None


async def took_bin(message: Message, state: FSMContext, lang: str) -> bool:
    """An organisation's BIN typed and kept in the form (as ``bin``); False once the person
    is told which rule it broke."""
    bin_ = await parsed_text(message, lang, parse_bin)
    if bin_ is not None:
        await state.update_data(bin=bin_.value)
    return bin_ is not None
