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
from typing import Any

import asyncpg
from aiogram import Bot

from flows.common.location import fix_from_raw
from services.db import is_unavailable
from services.location_fixes import Fix
from services.metrics import Metrics
from services.quarantine import IngestReport, QuarantineService

log = logging.getLogger(__name__)

MAX_BATCH = 2_000
RETRY_FOR = 60.0
"""How long a batch someone waits for (a webhook) is retried while storage is down."""
HOLD_AT_MOST = 500_000
"""Fixes held while storage is down with nobody waiting (long polling): beyond this,
the oldest are dropped with a log line, so that an outage cannot exhaust memory."""


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
        self._pending: list[tuple[Fix, asyncio.Future[IngestReport] | None]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.totals = IngestReport()

    async def submit(self, fix: Fix) -> IngestReport:
        """Add a fix and wait until its batch is stored (webhooks answer after that)."""
        future: asyncio.Future[IngestReport] = asyncio.get_running_loop().create_future()
        self._add(fix, future)
        return await future

    def push(self, fix: Fix) -> None:
        """Add a fix without waiting (long polling: nobody waits for an answer)."""
        self._add(fix, None)

    def _shed(self) -> None:
        excess = len(self._pending) - HOLD_AT_MOST
        if excess > 0:
            log.error("live locations: storage down too long, %d oldest fixes dropped", excess)
            for _, future in self._pending[:excess]:
                if future is not None and not future.done():
                    future.set_exception(RuntimeError("dropped while storage was down"))
            del self._pending[:excess]

    def _add(self, fix: Fix, future: asyncio.Future[IngestReport] | None) -> None:
        self._pending.append((fix, future))
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="live-ingest")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for _, future in self._pending:
            if future is not None and not future.done():
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

    async def _store(self, batch: list[tuple[Fix, asyncio.Future[IngestReport] | None]]) -> None:
        fixes = [fix for fix, _ in batch]
        waited_for = any(future is not None for _, future in batch)
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.5
        while True:
            try:
                report = await self.service.ingest(fixes)
                break
            except Exception as error:
                if _retryable(error) and (not waited_for or time.monotonic() < deadline):
                    self._shed()
                    log.warning(
                        "live locations: %d fixes wait to be stored (%s)",
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
                    if future is not None and not future.done():
                        future.set_exception(error)
                return
        self.totals.add(report)
        if self.metrics is not None:
            self.metrics.live_fixes.labels("stored").inc(report.stored)
            for outcome in ("sampled", "duplicate", "invalid", "stranger", "stale", "implausible"):
                count = getattr(report, outcome)
                if count:
                    self.metrics.live_fixes.labels(outcome).inc(count)
            for kind in report.opened:
                self.metrics.quarantine_alerts.labels(kind).inc()
        for _, future in batch:
            if future is not None and not future.done():
                future.set_result(report)


def _retryable(error: BaseException) -> bool:
    """Storage down, or a transaction that lost a race (a deadlock with a doctor's press,
    a serialisation failure): the same batch will go through when tried again."""
    return is_unavailable(error) or isinstance(
        error, asyncpg.DeadlockDetectedError | asyncpg.SerializationError
    )


class LiveFastPath:
    """What the quarantine bot's dispatcher calls on raw updates before aiogram parses
    them: live-location moves, by the thousand, with no answer to send."""

    def __init__(self, ingest: LiveIngest) -> None:
        self.ingest = ingest

    def takes(self, raw: dict[str, Any]) -> bool:
        edited = raw.get("edited_message")
        return isinstance(edited, dict) and "location" in edited

    def _fix(self, raw: dict[str, Any]) -> Fix | None:
        fix = fix_from_raw(raw["edited_message"], edited=True)
        if fix is None:
            log.info("update %s: a location edit this bot does not believe", raw.get("update_id"))
        return fix

    def push(self, bot: Bot, raw: dict[str, Any]) -> None:
        fix = self._fix(raw)
        if fix is not None:
            self.ingest.push(fix)

    async def handle(self, bot: Bot, raw: dict[str, Any]) -> Any:
        fix = self._fix(raw)
        return None if fix is None else await self.ingest.submit(fix)

    async def close(self) -> None:
        """Nothing of its own: the platform closes the ingest it shares."""
