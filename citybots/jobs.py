"""The platform's scheduled jobs, each a Redis-locked tick so that exactly one worker runs
it (services/scheduler.py), and the scheduler that runs them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis

from citybots.settings import Settings
from citybots.wiring import Services
from services.audit import head as audit_head
from services.metrics import Metrics
from services.miniapp import OpeningLedger
from services.private_files import remove_older_than
from services.retention import Retention, purge
from services.scheduler import run_exclusively
from services.updates import UpdateLedger

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 10  # seconds: a silent case is alerted at most this long after 15 minutes


async def watch_quarantine_again(services: Services) -> None:
    """Rebuild the Redis index of watched cases when Redis has lost it."""
    watched = await services.quarantine.ensure_index()
    if watched:
        log.info("quarantine: watching %d cases again (Redis had lost the index)", watched)


@dataclass
class Jobs:
    settings: Settings
    services: Services
    pool: asyncpg.Pool
    redis: Redis
    metrics: Metrics
    _audit_head_logged: int = -1

    def scheduler(self) -> AsyncIOScheduler:
        """A scheduler with every job added (not started). A job added with ``locked`` runs
        on one worker at a time: under the Redis lock named after it, held at most ``hold``
        (services/scheduler.py); the others take their locks themselves."""
        scheduler = AsyncIOScheduler()
        every = partial(scheduler.add_job, trigger="interval")
        services = self.services

        def locked(
            job_id: str, work: Callable[[], Awaitable[object]], hold: timedelta, **when: Any
        ) -> None:
            every(partial(run_exclusively, self.redis, job_id, work, hold=hold), id=job_id, **when)

        every(self.purge_ledger, hours=1, id="purge-ledger")
        locked("auto-checkout", services.visits.auto_checkout, timedelta(seconds=50), minutes=1)
        every(self.retention, hours=1, id="retention")
        first = datetime.now(UTC)  # the roll-ups run once at start, then every minute
        refresh = services.rollups.refresh
        locked("rollups", refresh, timedelta(seconds=55), minutes=1, next_run_time=first)
        every(self.log_audit_head, minutes=1, id="audit-head")
        locked("lookup-watch", services.staff_lookups.flag_unusual, timedelta(minutes=50), hours=1)
        locked("exposure-catch-up", self.exposure_catch_up, timedelta(seconds=25), seconds=30)
        locked("status-catch-up", self.status_catch_up, timedelta(seconds=4), seconds=5)
        if self.settings.citizen_status_notices:
            notices = services.status_notices.tell_due
            locked("status-notices", notices, timedelta(seconds=1.5), seconds=2)
        sweep_hold = timedelta(seconds=SWEEP_INTERVAL - 1)
        locked("quarantine-sweep", self.quarantine_sweep, sweep_hold, seconds=SWEEP_INTERVAL)
        locked("quarantine-escalate", self.quarantine_escalate, timedelta(seconds=25), seconds=30)
        locked("quarantine-close", self.quarantine_close, timedelta(minutes=9), minutes=10)
        locked("ambulance", self.ambulance, timedelta(minutes=5), seconds=30)
        locked("brigade-retention", self.brigade_retention, timedelta(minutes=50), hours=1)
        if self.settings.metrics_enabled:
            scheduler.add_listener(
                self._count_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
            )
        return scheduler

    def _count_run(self, event: JobExecutionEvent) -> None:
        outcome = {EVENT_JOB_EXECUTED: "ok", EVENT_JOB_ERROR: "error"}.get(event.code, "missed")
        self.metrics.job_runs.labels(event.job_id, outcome).inc()

    async def retention(self) -> None:
        pool = self.pool
        settings = self.settings
        policy = Retention(
            visits=timedelta(days=settings.visit_retention_days),
            passings=timedelta(days=settings.visit_retention_days),
            location_fixes=timedelta(days=settings.quarantine_fix_retention_days),
            hotline=timedelta(days=settings.hotline_retention_days),
            reports=timedelta(days=settings.report_retention_days),
        )

        # Outside the lock: each host has its own DATA_DIR, and removing files is idempotent.
        reports = await asyncio.to_thread(remove_older_than, settings.reports_dir, policy.reports)
        if reports:
            log.info("retention: removed %d rejected-row reports", reports)

        async def job() -> None:
            removed = await purge(pool, policy)
            log.info("retention: removed %s", removed)

        await run_exclusively(self.redis, "retention", job, hold=timedelta(minutes=50))

    async def log_audit_head(self) -> None:
        """Rows are chained as they are written (migration 0032); the head, when it moved,
        goes to the log so a copy lives outside the database (`audit verify --head`)."""
        seq, digest = await audit_head(self.pool)
        if seq != self._audit_head_logged:
            self._audit_head_logged = seq
            log.info("audit chain: head #%d %s", seq, digest[:16])

    async def exposure_catch_up(self) -> None:
        found = await self.services.exposure.catch_up()
        if found:
            log.warning("exposure: %d notices from results whose search was missed", found)

    async def status_catch_up(self) -> None:
        made_stale = await self.services.statuses.catch_up()
        if made_stale:
            log.warning("status: %d cached statuses made stale late", made_stale)

    async def quarantine_sweep(self) -> None:
        await watch_quarantine_again(self.services)
        report = await self.services.quarantine.sweep(datetime.now(UTC))
        if report.opened:
            log.info("quarantine sweep: %d alerts", report.opened)
            self.metrics.quarantine_alerts.labels("silence").inc(report.opened)

    async def quarantine_escalate(self) -> None:
        await self.services.quarantine.escalate(datetime.now(UTC))

    async def quarantine_close(self) -> None:
        today = datetime.now(ZoneInfo(self.settings.city_timezone)).date()
        closed = await self.services.quarantine.close_finished(today)
        if closed:
            log.info("quarantine: %d cases closed at the end of isolation", closed)

    async def ambulance(self) -> None:
        """Clusters of calls stored since the last run (an import clusters its own calls
        at once; this catches a CSV from the Health registry page and a failed run), and
        calls past AMBULANCE_RETENTION_DAYS."""
        ambulance = self.services.ambulance
        await ambulance.update_clusters()
        removed = await ambulance.purge(timedelta(days=self.settings.ambulance_retention_days))
        if removed:
            log.info("retention: removed %d ambulance calls", removed)

    async def brigade_retention(self) -> None:
        """Brigades' tracks and photos past BRIGADE_TRACK_RETENTION_DAYS."""
        kept = timedelta(days=self.settings.brigade_track_retention_days)
        removed = await self.services.brigades.purge(kept)
        if removed:
            log.info("retention: removed %d brigade fixes and photos", removed)

    async def purge_ledger(self) -> None:
        ledger = UpdateLedger(self.pool)
        await run_exclusively(self.redis, "purge-ledger", ledger.purge, hold=timedelta(minutes=50))
        # an opening is refused once older than the setting; kept a day longer than that
        kept = timedelta(seconds=self.settings.miniapp_init_data_max_age_seconds, days=1)
        await run_exclusively(
            self.redis,
            "purge-miniapp-openings",
            partial(OpeningLedger(self.pool).purge, kept),
            hold=timedelta(minutes=50),
        )
