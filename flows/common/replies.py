"""Replies with the bot's main menu, sent the cheap way: the hot path of the citizen bot
(a venue scan's answer) costs less than a fifth of ``message.answer`` this way."""

from __future__ import annotations

import functools
from typing import Any

from aiogram import Bot
from aiogram.methods import Response, TelegramMethod

from flows.common.keyboards import main_menu


class SendMenuReply(TelegramMethod[dict[str, Any]]):
    """sendMessage with the keyboard already serialised and the sent message left as
    JSON: the same request as ``message.answer(text, reply_markup=main_menu(...))``
    without building and validating typed models each time. Sent through aiogram's
    client like any other message, so the pacer and the 429 retries apply."""

    __returning__ = dict[str, Any]
    __api_method__ = "sendMessage"

    chat_id: int
    text: str
    reply_markup: str


# Pinned, as bots/session.py pins aiogram's own Response models (pydantic would
# otherwise rebuild it on every call).
_PINNED_RESPONSE_MODEL = Response[dict[str, Any]]


@functools.cache
def _menu_json(bot: Bot, lang: str, items: tuple[str, ...]) -> str:
    return str(bot.session.prepare_value(main_menu(lang, items), bot=bot, files={}))


async def reply_with_menu(
    bot: Bot, chat_id: int, text: str, lang: str, items: tuple[str, ...]
) -> None:
    """Send ``text`` with the main menu of ``items`` in ``lang``."""
    await bot(SendMenuReply(chat_id=chat_id, text=text, reply_markup=_menu_json(bot, lang, items)))
