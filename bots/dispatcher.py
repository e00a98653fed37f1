"""The dispatcher every bot uses: each update is handled once, a person's updates in the
order they arrived, and people hear back when the database or Redis is down instead of
meeting silence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.types import Update, User
from pydantic import ValidationError

from bots.private import ALWAYS_RECEIVED
from presentation.i18n import pick_language, text
from services.db import is_unavailable, recover
from services.metrics import Metrics
from services.updates import Claim, UpdateLedger

log = logging.getLogger(__name__)

_NOTICE_INTERVAL = 60.0
CLAIM_WAITS_FOR = 3.0
"""How long an update waits for an unreachable ledger before the person is told the
service is unavailable: a restart of PostgreSQL takes a few seconds, and the notice
goes to a chat at most once a minute, so giving up at once would leave a person's next
messages of the outage unanswered (they were acknowledged, and nothing redelivers
them). Nothing of the update has happened yet, so waiting is safe (VisitService waits
5 s for storing scans, services/visits.py)."""
RELEASE_RETRY_INTERVAL = 0.5


class InFlight:
    """Returned for an update another worker is handling now: the webhook answers 503
    so that Telegram delivers it again later, when it is either done or free."""


IN_FLIGHT = InFlight()


def _sender(update: Update) -> tuple[int | None, User | None]:
    """The chat to answer in (private chats only: never a group's) and the person who
    sent the update."""
    for event in (update.message, update.edited_message):
        if event is not None:
            return (event.chat.id if event.chat.type == "private" else None), event.from_user
    if update.callback_query is not None:
        return update.callback_query.from_user.id, update.callback_query.from_user
    return None, None


def without_nul(value: Any) -> Any:
    """An update with every NUL character replaced by U+FFFD: PostgreSQL text cannot hold
    NUL (a message of one stopped the handler that stored it), nobody types one on purpose,
    and the replacement keeps the UTF-16 offsets of the message's entities."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {key: without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def _raw_sender(raw: dict[str, Any]) -> int | None:
    """The id of the person who sent an update given as the Bot API's JSON, if any."""
    for key, event in raw.items():
        if key != "update_id" and isinstance(event, dict):
            user = event.get("from")
            if isinstance(user, dict) and isinstance(user.get("id"), int):
                return int(user["id"])
    return None


class FastPath(Protocol):
    """Updates of one kind taken raw, before aiogram parses and routes them: live-location
    moves, which arrive by the thousand, carry no answer and need no per-update context.
    ``push`` is for long polling (nobody waits), ``handle`` for webhooks."""

    def takes(self, raw: dict[str, Any]) -> bool: ...

    def push(self, bot: Bot, raw: dict[str, Any]) -> None: ...

    async def handle(self, bot: Bot, raw: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


class CityDispatcher(Dispatcher):
    """Wraps aiogram's ``feed_update``, which both polling and webhooks go through.

    The wrapping sits here rather than in an outer middleware because aiogram's own
    FSM middleware runs first and reaches Redis: only here are its failures caught.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_notice: dict[int, float] = {}
        self.fast_path: FastPath | None = None
        self._latest: dict[int, asyncio.Task[Any]] = {}  # each person's latest update
        self.claim_waits_for = CLAIM_WAITS_FOR
        self._releasing: set[asyncio.Task[None]] = set()

    def resolve_used_update_types(self, skip_events: set[str] | None = None) -> list[str]:
        """What the bot asks Telegram for: what its flows handle, and always its own
        membership changes (bots/private.py leaves groups as soon as it is added)."""
        used = set(super().resolve_used_update_types(skip_events))
        return sorted(used | set(ALWAYS_RECEIVED) - (skip_events or set()))

    async def feed_update(self, bot: Bot, update: Update, **kwargs: Any) -> Any:
        ledger: UpdateLedger = self["ledger"]
        metrics: Metrics = self["metrics"]
        bot_name: str = self["profile"].name
        started, began = time.perf_counter(), time.monotonic()
        try:
            claim = await self._claim(ledger, bot.id, update.update_id)
        except Exception as error:
            if not is_unavailable(error):
                raise
            return await self._unavailable(bot, update, error, claimed=False)
        if claim is Claim.DONE:
            metrics.updates.labels(bot_name, "duplicate").inc()
            return UNHANDLED
        if claim is Claim.IN_FLIGHT:
            metrics.updates.labels(bot_name, "in_flight").inc()
            return IN_FLIGHT
        try:
            result = await super().feed_update(bot, update, **kwargs)
        except Exception as error:
            if is_unavailable(error):
                return await self._unavailable(bot, update, error, claimed=True)
            metrics.updates.labels(bot_name, "error").inc()
            log.exception("%s bot failed on update %d", bot_name, update.update_id)
            await self._notice(bot, update, "errors.internal", error)
            await self._quietly(ledger.complete(bot.id, update.update_id))
            return UNHANDLED
        await self._quietly(ledger.complete(bot.id, update.update_id))
        if self._last_notice:
            self._served(update, began)
        outcome = "unhandled" if result is UNHANDLED else "handled"
        metrics.updates.labels(bot_name, outcome).inc()
        metrics.update_seconds.labels(bot_name).observe(time.perf_counter() - started)
        return result

    def _served(self, update: Update, began: float) -> None:
        """The person was served again: a later outage is told about again (unless the
        notice came while this update was under way)."""
        chat_id, _ = _sender(update)
        if chat_id is not None and self._last_notice.get(chat_id, began) < began:
            del self._last_notice[chat_id]

    async def _claim(self, ledger: UpdateLedger, bot_id: int, update_id: int) -> Claim:
        """The ledger's claim, tried again while PostgreSQL is unreachable for up to
        :attr:`claim_waits_for` seconds (see :data:`CLAIM_WAITS_FOR`)."""
        deadline = time.monotonic() + self.claim_waits_for
        delay = 0.2
        while True:
            try:
                return await ledger.claim(bot_id, update_id)
            except Exception as error:
                if not is_unavailable(error) or time.monotonic() + delay > deadline:
                    raise
                with contextlib.suppress(Exception):
                    await recover(ledger.pool, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _unavailable(
        self, bot: Bot, update: Update, error: BaseException, *, claimed: bool
    ) -> Any:
        """PostgreSQL or Redis is down: the person is told (at most once a minute per
        chat). An update nobody was told about now is answered IN_FLIGHT (the webhook's
        503) to be delivered again, rather than acknowledged and left unanswered; the
        claim, if taken, is given back first so that the redelivery is handled."""
        self["metrics"].updates.labels(self["profile"].name, "unavailable").inc()
        told = await self._notice(bot, update, "errors.unavailable", error)
        if claimed:
            await self._give_back(bot.id, update.update_id)
        return UNHANDLED if told else IN_FLIGHT

    async def _give_back(self, bot_id: int, update_id: int) -> None:
        """Release a claim after a failure. While PostgreSQL is unreachable the release
        is tried again in the background (for as long as the lease, which lapses by
        itself after that), so that the update's redelivery is not refused as in
        flight until the lease runs out."""
        ledger: UpdateLedger = self["ledger"]
        try:
            await ledger.release(bot_id, update_id)
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("update ledger not reachable: %s", type(error).__name__)
            task = asyncio.create_task(self._release_later(ledger, bot_id, update_id))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _release_later(self, ledger: UpdateLedger, bot_id: int, update_id: int) -> None:
        deadline = time.monotonic() + ledger.lease.total_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(RELEASE_RETRY_INTERVAL)
            try:
                await ledger.release(bot_id, update_id)
                return
            except Exception as error:
                if not is_unavailable(error):
                    log.exception("update %d: its claim could not be released", update_id)
                    return

    async def feed_raw(self, bot: Bot, raw: dict[str, Any]) -> Any:
        """An update as the Bot API's JSON (a webhook's body): the fast path's kind is
        handled as it is, anything else parsed and fed through aiogram. A malformed
        update raises pydantic's ValidationError."""
        if self.fast_path is not None and self.fast_path.takes(raw):
            try:
                return await self.fast_path.handle(bot, raw)
            except Exception as error:
                if is_unavailable(error):
                    await recover(self["ledger"].pool, error)
                    return IN_FLIGHT  # the webhook answers 503: Telegram delivers it again
                log.exception(
                    "%s bot failed on update %s", self["profile"].name, raw.get("update_id")
                )
                return UNHANDLED
        return await self.feed_parsed(bot, raw)

    async def feed_parsed(self, bot: Bot, raw: dict[str, Any]) -> Any:
        """The normal way: parse the update and feed it through aiogram."""
        update = Update.model_validate(without_nul(raw), context={"bot": bot})
        return await self.feed_update(bot, update)

    def take_raw(self, bot: Bot, raw: dict[str, Any]) -> asyncio.Task[Any] | None:
        """An update from long polling: the fast path's kind is queued at once, anything
        else handled in its own task (returned, so that the caller can keep it). A
        person's updates are handled one after another, in the order they came: two
        scans in the same second are stored and answered in that order."""
        if self.fast_path is not None and self.fast_path.takes(raw):
            self.fast_path.push(bot, raw)
            return None
        sender = _raw_sender(raw)
        if sender is None:
            return asyncio.create_task(self._answer(bot, raw))
        task = asyncio.create_task(self._answer(bot, raw, after=self._latest.get(sender)))
        self._latest[sender] = task
        task.add_done_callback(lambda done: self._forget(sender, done))
        return task

    def _forget(self, sender: int, task: asyncio.Task[Any]) -> None:
        if self._latest.get(sender) is task:
            del self._latest[sender]

    async def _answer(
        self, bot: Bot, raw: dict[str, Any], *, after: asyncio.Task[Any] | None = None
    ) -> None:
        """The polling side of :meth:`feed_raw`: nobody waits, so failures are logged."""
        if after is not None:
            await asyncio.wait([after])
        try:
            result = await self.feed_raw(bot, raw)
            if isinstance(result, TelegramMethod):
                await bot(result)
        except ValidationError as error:
            log.warning(
                "%s bot: malformed update %s (%d errors)",
                self["profile"].name,
                raw.get("update_id"),
                error.error_count(),
            )
        except Exception:
            log.exception("%s bot failed on update %s", self["profile"].name, raw.get("update_id"))

    async def _quietly(self, step: Any) -> None:
        try:
            await step
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("update ledger not reachable: %s", type(error).__name__)

    async def _notice(self, bot: Bot, update: Update, key: str, error: BaseException) -> bool:
        """Tell the person, at most once a minute per chat until they are served again
        (a live location sends a fix every 30 s and must not turn an outage into a
        stream of notices); False when nobody was told."""
        ledger: UpdateLedger = self["ledger"]
        await recover(ledger.pool, error)
        log.warning("update %d not handled: %s (%s)", update.update_id, key, type(error).__name__)
        chat_id, user = _sender(update)
        if chat_id is None:
            return False
        now = time.monotonic()
        if now - self._last_notice.get(chat_id, -_NOTICE_INTERVAL) < _NOTICE_INTERVAL:
            return False
        if len(self._last_notice) > 10_000:
            cutoff = now - _NOTICE_INTERVAL
            self._last_notice = {c: t for c, t in self._last_notice.items() if t > cutoff}
        self._last_notice[chat_id] = now
        lang = pick_language(
            user.language_code if user else None, default=self["default_language"]
        )
        try:
            await bot.send_message(chat_id, text(lang, key))
        except TelegramAPIError as send_error:
            log.warning("could not send the notice: %s", type(send_error).__name__)
        return True
