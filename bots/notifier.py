"""Sends the outbox: each bot's messages in their turn in the shared pacer (Telegram's
rates across every worker: services/pacing.py), doctors' and agents' alerts before bulk
notices, retrying later on 429 and outages, giving up on blocked chats.

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
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from flows.notices import BROADCAST_KINDS, URGENT_KINDS, UnknownNotice, render_notice
from presentation.i18n import pick_language
from services.db import is_unavailable, recover
from services.news import NEWS_KINDS, NewsService
from services.outbox import Outbox, OutboxMessage
from services.pacing import ALERT_MAX_BACKLOG, Pacer, Priority, sending_as
from services.users import LanguagePreferences

log = logging.getLogger(__name__)

CLAIM_BATCH = 25
MAX_ATTEMPTS = 12
MARK_RETRY_INTERVAL = 0.5


@dataclass(eq=False)
class Notifier:
    outbox: Outbox
    bots: dict[str, Bot]
    languages: LanguagePreferences
    _: KW_ONLY
    default_language: str
    tz: ZoneInfo
    pacer: Pacer
    paid_broadcast: bool = False
    idle: float = 0.3
    news: NewsService | None = None

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
        """Send a batch of due messages for one bot: each chat's in order, the chats side
        by side, each message when the pacer gives it a turn. Nothing is claimed while
        the bot's queue of replies is longer than an alert would wait."""
        bot = self.bots[bot_name]
        if await self.pacer.backlog(bot.id) > ALERT_MAX_BACKLOG:
            return 0
        batch = await self.outbox.claim(bot_name, CLAIM_BATCH)
        by_chat: dict[int, list[OutboxMessage]] = {}
        for message in batch:
            by_chat.setdefault(message.chat_id, []).append(message)
        sent = await asyncio.gather(
            *(self._send_chat(bot_name, chat) for chat in by_chat.values())
        )
        return sum(sent)

    async def _send_chat(self, bot_name: str, messages: list[OutboxMessage]) -> int:
        return sum([await self._send(bot_name, message) for message in messages])

    async def _send(self, bot_name: str, message: OutboxMessage) -> int:
        bot = self.bots[bot_name]
        priority = Priority.ALERT if message.kind in URGENT_KINDS else Priority.BULK
        paid = self.paid_broadcast and message.kind in BROADCAST_KINDS
        # Everything that may wait on Redis or PostgreSQL comes before the turn: a send
        # made long after its turn would crowd the sends of the turns after it.
        choice = await self.languages.get(message.chat_id)
        lang = pick_language(choice.chosen, choice.telegram, default=self.default_language)
        try:
            params = await self._params(message)
            notice = render_notice(message.kind, params, lang, self.tz)
        except (UnknownNotice, KeyError, ValueError) as error:
            await self.outbox.failed(message.id, f"cannot render: {type(error).__name__}")
            return 0
        try:
            # Waiting for the turn ends well before the claim lapses; the message goes
            # back to the queue rather than out twice.
            async with asyncio.timeout(self.outbox.lease.total_seconds() / 2):
                await self.pacer.turn(bot.id, message.chat_id, priority, paid=paid)
        except TimeoutError:
            await self.outbox.retry_later(message.id, timedelta(seconds=1), "waited for a turn")
            return 0
        try:
            with sending_as(priority, paced=True):
                await bot.send_message(
                    message.chat_id,
                    notice.text,
                    reply_markup=notice.keyboard,
                    allow_paid_broadcast=True if paid else None,
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
        await self._mark_sent(message.id)
        return 1

    async def _params(self, message: OutboxMessage) -> dict[str, Any]:
        """A news message carries only its item's id: the texts are read here (once per
        item, services/news.py), not copied into a million outbox rows."""
        if message.kind not in NEWS_KINDS:
            return message.params
        if self.news is None:
            raise UnknownNotice(message.kind)
        item = await self.news.for_sending(int(message.params["news"]))
        return {**message.params, "texts": item.texts, "district": item.district}

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
