"""Sends the outbox: each bot's messages at Telegram's rates (about 30 a second per bot,
one a second per chat), retrying later on 429 and outages, giving up on blocked chats.

A message is marked sent right after Telegram accepted it; while PostgreSQL is briefly
unreachable then, the mark is retried for as long as the claim holds the message (a
message never marked is sent again when its claim lapses). Only a worker that dies
between the two, or an outage longer than the claim, sends it twice: at least once, and
in practice once; there is no way to make a Bot API send idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from flows.i18n import pick_language
from flows.notices import UnknownNotice, render_notice
from services.db import is_unavailable, recover
from services.outbox import Outbox, OutboxMessage
from services.users import LanguagePreferences

log = logging.getLogger(__name__)

PER_BOT_PER_SECOND = 25
PER_CHAT_INTERVAL = 1.0
MAX_ATTEMPTS = 12
MARK_RETRY_INTERVAL = 0.5


class Notifier:
    def __init__(
        self,
        outbox: Outbox,
        bots: dict[str, Bot],
        languages: LanguagePreferences,
        *,
        default_language: str,
        tz: ZoneInfo,
        idle: float = 0.3,
    ) -> None:
        self.outbox = outbox
        self.bots = bots
        self.languages = languages
        self.default_language = default_language
        self.tz = tz
        self.idle = idle
        self._last_to_chat: dict[tuple[str, int], float] = {}

    async def run(self) -> None:
        """Drain every bot's queue until cancelled."""
        while True:
            try:
                sent = sum(await asyncio.gather(*(self.drain_once(name) for name in self.bots)))
            except Exception as error:
                # Whatever went wrong, the notifier must keep running: notices that were
                # claimed come back when their lease lapses.
                await recover(self.outbox.pool, error)
                if is_unavailable(error):
                    log.warning("outbox paused: %s", type(error).__name__)
                else:
                    log.exception("outbox sending failed; going on")
                sent = 0
                await asyncio.sleep(1)
            if not sent:
                await asyncio.sleep(self.idle)

    async def drain_once(self, bot_name: str) -> int:
        """Send up to one second's worth of due messages for one bot."""
        batch = await self.outbox.claim(bot_name, PER_BOT_PER_SECOND)
        started = time.monotonic()
        sent = 0
        for index, message in enumerate(batch):
            pace = started + index / PER_BOT_PER_SECOND - time.monotonic()
            if pace > 0:
                await asyncio.sleep(pace)
            sent += await self._send(bot_name, message)
        return sent

    async def _send(self, bot_name: str, message: OutboxMessage) -> int:
        key = (bot_name, message.chat_id)
        wait = self._last_to_chat.get(key, 0.0) + PER_CHAT_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        choice = await self.languages.get(message.chat_id)
        lang = pick_language(choice.chosen, choice.telegram, default=self.default_language)
        try:
            notice = render_notice(message.kind, message.params, lang, self.tz)
        except (UnknownNotice, KeyError, ValueError) as error:
            await self.outbox.failed(message.id, f"cannot render: {type(error).__name__}")
            return 0
        try:
            await self.bots[bot_name].send_message(
                message.chat_id, notice.text, reply_markup=notice.keyboard
            )
        except TelegramRetryAfter as error:
            await self.outbox.retry_later(
                message.id, timedelta(seconds=error.retry_after), "429 Too Many Requests"
            )
            return 0
        except (TelegramForbiddenError, TelegramBadRequest) as error:
            await self.outbox.failed(message.id, error.message[:200])
            return 0
        except (TelegramNetworkError, TelegramServerError) as error:
            if message.attempts >= MAX_ATTEMPTS:
                await self.outbox.failed(message.id, type(error).__name__)
            else:
                delay = timedelta(seconds=min(2**message.attempts, 600))
                await self.outbox.retry_later(message.id, delay, type(error).__name__)
            return 0
        self._last_to_chat[key] = time.monotonic()
        await self._mark_sent(message.id)
        return 1

    async def _mark_sent(self, message_id: int) -> None:
        """Telegram took the message: mark it sent, waiting out an outage of PostgreSQL for
        up to most of the claim's lease (meanwhile nobody else takes the message)."""
        patience = time.monotonic() + self.outbox.lease.total_seconds() * 0.8
        while True:
            try:
                await self.outbox.sent(message_id)
                return
            except Exception as error:
                if not is_unavailable(error) or time.monotonic() >= patience:
                    raise
                await recover(self.outbox.pool, error)
                log.warning("outbox: marking a sent message waits for the database")
                await asyncio.sleep(MARK_RETRY_INTERVAL)
