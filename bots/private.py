"""Every bot works in private chats only.

Added to a group, a bot would answer there (the FAQ, the fallback, the hotline relay) and
so tell strangers what was meant for one person. One outer middleware, which every bot's
dispatcher gets (bots/registry.py), keeps them out: in a group or supergroup the bot says
once that it works in private chats and leaves; added to a channel it leaves; channel
posts, updates from chats it has left, and messages with no sender (allowed by the Bot
API) are dropped before any flow sees them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, TelegramObject, Update

from bots.middlewares import HandlerData, NextHandler
from presentation.i18n import text

log = logging.getLogger(__name__)

GROUPS = frozenset({"group", "supergroup"})
# The bot is told of its own membership changes even where no flow asks for them, so it
# leaves a group the moment it is added rather than at the first message there.
ALWAYS_RECEIVED = ("my_chat_member",)
_SAID_FOR = 3600  # seconds: one notice per group however many messages arrive meanwhile
_GONE = frozenset({"left", "kicked"})


def chat_of(update: Update) -> Chat | None:
    """The chat an update happened in, where it has one."""
    event = update.event
    if update.callback_query is not None:
        message = update.callback_query.message
        return message.chat if message is not None else None
    chat = getattr(event, "chat", None)
    return chat if isinstance(chat, Chat) else None


class PrivateChatsOnly(BaseMiddleware):
    """Outer middleware on ``dispatcher.update``: only updates from private chats, with a
    sender, reach the flows. ``stay_in``: channels the bot posts to and stays in (the
    city's news channel for the citizen bot); their updates are dropped all the same."""

    def __init__(self, stay_in: frozenset[int] = frozenset()) -> None:
        self.stay_in = stay_in

    async def __call__(
        self, handler: NextHandler, event: TelegramObject, data: HandlerData
    ) -> Any:
        assert isinstance(event, Update)
        if event.channel_post is not None or event.edited_channel_post is not None:
            return UNHANDLED
        chat = chat_of(event)
        if chat is not None and chat.id in self.stay_in:
            return UNHANDLED
        if chat is not None and chat.type != "private":
            bot: Bot = data["bot"]
            member = event.my_chat_member
            if member is not None and member.new_chat_member.status not in _GONE:
                await self._leave(bot, chat, data, always=True)  # just added: leave now
            elif member is None:
                await self._leave(bot, chat, data, always=False)
            return UNHANDLED
        for message in (event.message, event.edited_message):
            if message is not None and message.from_user is None:
                return UNHANDLED
        return await handler(event, data)

    async def _leave(self, bot: Bot, chat: Chat, data: dict[str, Any], *, always: bool) -> None:
        """Say once (per group and hour) that the bot works in private chats, and leave.
        On being added it always leaves; on a message in a group only the update that
        says so leaves, so that the notice goes out before the bot is gone. Telegram's
        errors (already gone, no right to write) change nothing."""
        first = await self._first_notice(bot, chat, data)
        if first and chat.type in GROUPS:
            me = await bot.me()
            notice = text(data.get("lang", "en"), "private_only", bot=me.username or "")
            with contextlib.suppress(TelegramAPIError):
                await bot.send_message(chat.id, notice)
        if first or always:
            with contextlib.suppress(TelegramAPIError):
                await bot.leave_chat(chat.id)
            name = data["profile"].name
            log.info("%s bot left a %s: private chats only", name, chat.type)

    @staticmethod
    async def _first_notice(bot: Bot, chat: Chat, data: dict[str, Any]) -> bool:
        try:
            first = await data["redis"].set(
                f"private-only:{bot.id}:{chat.id}", 1, nx=True, ex=_SAID_FOR
            )
        except Exception:  # Redis down: say it, maybe twice, rather than stay silently
            return True
        return bool(first)
