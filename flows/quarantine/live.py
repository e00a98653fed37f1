"""Live-location fixes: read from Telegram's messages, batched into the quarantine service.

A patient's phone sends a fix every few seconds to a minute while live location is on;
a city's worth of patients sends thousands a second. They are the one kind of update
that needs no answer, so the quarantine bot takes them on a short path: the dispatcher
hands every ``edited_message`` with a location straight to :class:`LiveIngest`, which
stores a whole batch in one transaction, evaluates it in one numpy pass and answers
each update when its batch is committed. Duplicate deliveries add nothing (a fix is
keyed by its message and time), so these updates skip the per-update ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.types import Message, Update

from services.db import is_unavailable
from services.metrics import Metrics
from services.quarantine import INDEFINITE_LIVE_PERIOD, Fix, IngestReport, QuarantineService

log = logging.getLogger(__name__)

_LONGEST_LIVE = timedelta(days=366)
MAX_BATCH = 2_000
RETRY_FOR = 60.0


def fix_from(message: Message, *, edited: bool) -> Fix | None:
    """The fix a message carries, or None when it carries none this bot should believe:
    no location, not in a private chat with its sender, or forwarded from someone else."""
    location = message.location
    user = message.from_user
    if location is None or user is None or message.chat.type != "private":
        return None
    if user.id != message.chat.id or message.forward_origin is not None:
        return None
    at = message.date
    if edited and message.edit_date:  # aiogram leaves edit_date as Unix seconds
        edit = message.edit_date
        at = edit if isinstance(edit, datetime) else datetime.fromtimestamp(edit, UTC)
    live_until = None
    if location.live_period:
        period = (
            _LONGEST_LIVE
            if location.live_period >= INDEFINITE_LIVE_PERIOD
            else timedelta(seconds=location.live_period)
        )
        live_until = message.date + min(period, _LONGEST_LIVE)
    return Fix(
        tg_user_id=user.id,
        message_id=message.message_id,
        at=at,
        latitude=location.latitude,
        longitude=location.longitude,
        accuracy=location.horizontal_accuracy,
        live_until=live_until,
        stopped=edited and not location.live_period,
    )


class LiveIngest:
    """Collects fixes from concurrent updates and stores them a batch at a time.

    Each caller waits for its batch. While one batch is in PostgreSQL the next one
    fills up, so batches grow with the load and the cost per fix falls. When the
    database is unreachable a batch is retried for up to a minute before its callers
    hear the error (a webhook then answers 5xx and Telegram delivers again).
    """

    def __init__(self, service: QuarantineService, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self._pending: list[tuple[Fix, asyncio.Future[IngestReport]]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.totals = IngestReport()

    async def submit(self, fix: Fix) -> IngestReport:
        future: asyncio.Future[IngestReport] = asyncio.get_running_loop().create_future()
        self._pending.append((fix, future))
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="live-ingest")
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for _, future in self._pending:
            if not future.done():
                future.cancel()
        self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # let the rest of this poll's updates join the batch
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._store(batch)

    async def _store(self, batch: list[tuple[Fix, asyncio.Future[IngestReport]]]) -> None:
        fixes = [fix for fix, _ in batch]
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.5
        while True:
            try:
                report = await self.service.ingest(fixes)
                break
            except Exception as error:
                if is_unavailable(error) and time.monotonic() < deadline:
                    log.warning(
                        "live locations: %d fixes wait, storage unavailable (%s)",
                        len(fixes),
                        type(error).__name__,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                log.error(
                    "live locations: %d fixes not stored: %s", len(fixes), type(error).__name__
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
        self.totals.add(report)
        if self.metrics is not None:
            self.metrics.live_fixes.labels("stored").inc(report.stored)
            for outcome in ("duplicate", "invalid", "stranger", "stale", "implausible"):
                count = getattr(report, outcome)
                if count:
                    self.metrics.live_fixes.labels(outcome).inc(count)
            for kind in report.opened:
                self.metrics.quarantine_alerts.labels(kind).inc()
        for _, future in batch:
            if not future.done():
                future.set_result(report)


class LiveFastPath:
    """What the quarantine bot's dispatcher calls before aiogram's routing."""

    def __init__(self, ingest: LiveIngest) -> None:
        self.ingest = ingest

    def takes(self, update: Update) -> bool:
        edited = update.edited_message
        return edited is not None and edited.location is not None

    async def handle(self, update: Update) -> Any:
        assert update.edited_message is not None
        fix = fix_from(update.edited_message, edited=True)
        if fix is None:
            log.info("update %d: a location edit that is not the sender's own", update.update_id)
            return None
        return await self.ingest.submit(fix)
