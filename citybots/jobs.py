"""The platform's scheduled jobs, each a Redis-locked tick so that exactly one worker runs
it (services/scheduler.py), and the scheduler that runs them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
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
NEWS_QUEUE_INTERVAL = 5  # seconds: a published item's first subscribers are queued by then


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
        """A scheduler with every job added (not started)."""
        scheduler = AsyncIOScheduler()
        every = partial(scheduler.add_job, trigger="interval")
        every(self.purge_ledger, hours=1, id="purge-ledger")
        every(self.auto_checkout, minutes=1, id="auto-checkout")
        every(self.retention, hours=1, id="retention")
        every(self.rollups, minutes=1, id="rollups", next_run_time=datetime.now(UTC))
        every(self.log_audit_head, minutes=1, id="audit-head")
        every(self.lookup_watch, hours=1, id="lookup-watch")
        every(self.exposure_catch_up, seconds=30, id="exposure-catch-up")
        every(self.status_catch_up, seconds=5, id="status-catch-up")
        if self.settings.citizen_status_notices:
            every(self.status_notices, seconds=2, id="status-notices")
        every(self.quarantine_sweep, seconds=SWEEP_INTERVAL, id="quarantine-sweep")
        every(self.quarantine_escalate, seconds=30, id="quarantine-escalate")
        every(self.quarantine_close, minutes=10, id="quarantine-close")
        every(self.ambulance, seconds=30, id="ambulance")
        every(self.brigade_retention, hours=1, id="brigade-retention")
        every(self.news_queue, seconds=NEWS_QUEUE_INTERVAL, id="news-queue")
        if self.settings.metrics_enabled:
            scheduler.add_listener(
                self._count_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
            )
        return scheduler

    def _count_run(self, event: JobExecutionEvent) -> None:
        outcome = {EVENT_JOB_EXECUTED: "ok", EVENT_JOB_ERROR: "error"}.get(event.code, "missed")
        self.metrics.job_runs.labels(event.job_id, outcome).inc()

    async def auto_checkout(self) -> None:
        await run_exclusively(
            self.redis,
            "auto-checkout",
            self.services.visits.auto_checkout,
            hold=timedelta(seconds=50),
        )

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

    async def lookup_watch(self) -> None:
        await run_exclusively(
            self.redis,
            "lookup-watch",
            self.services.staff_lookups.flag_unusual,
            hold=timedelta(minutes=50),
        )

    async def exposure_catch_up(self) -> None:
        exposure = self.services.exposure

        async def job() -> None:
            found = await exposure.catch_up()
            if found:
                log.warning("exposure: %d notices from results whose search was missed", found)

        await run_exclusively(self.redis, "exposure-catch-up", job, hold=timedelta(seconds=25))

    async def status_catch_up(self) -> None:
        statuses = self.services.statuses

        async def job() -> None:
            made_stale = await statuses.catch_up()
            if made_stale:
                log.warning("status: %d cached statuses made stale late", made_stale)

        await run_exclusively(self.redis, "status-catch-up", job, hold=timedelta(seconds=4))

    async def status_notices(self) -> None:
        await run_exclusively(
            self.redis,
            "status-notices",
            self.services.status_notices.tell_due,
            hold=timedelta(seconds=1.5),
        )

    async def rollups(self) -> None:
        await run_exclusively(
            self.redis, "rollups", self.services.rollups.refresh, hold=timedelta(seconds=55)
        )

    async def quarantine_sweep(self) -> None:
        services = self.services
        metrics = self.metrics

        async def job() -> None:
            await watch_quarantine_again(services)
            report = await services.quarantine.sweep(datetime.now(UTC))
            if report.opened:
                log.info("quarantine sweep: %d alerts", report.opened)
                metrics.quarantine_alerts.labels("silence").inc(report.opened)

        await run_exclusively(
            self.redis, "quarantine-sweep", job, hold=timedelta(seconds=SWEEP_INTERVAL - 1)
        )

    async def quarantine_escalate(self) -> None:
        quarantine = self.services.quarantine

        async def job() -> None:
            await quarantine.escalate(datetime.now(UTC))

        await run_exclusively(self.redis, "quarantine-escalate", job, hold=timedelta(seconds=25))

    async def quarantine_close(self) -> None:
        quarantine = self.services.quarantine
        tz = ZoneInfo(self.settings.city_timezone)

        async def job() -> None:
            closed = await quarantine.close_finished(datetime.now(tz).date())
            if closed:
                log.info("quarantine: %d cases closed at the end of isolation", closed)

        await run_exclusively(self.redis, "quarantine-close", job, hold=timedelta(minutes=9))

    async def ambulance(self) -> None:
        """Clusters of calls stored since the last run (an import clusters its own calls
        at once; this catches a CSV from the Health registry page and a failed run), and
        calls past AMBULANCE_RETENTION_DAYS."""
        ambulance = self.services.ambulance
        kept = timedelta(days=self.settings.ambulance_retention_days)

        async def job() -> None:
            await ambulance.update_clusters()
            removed = await ambulance.purge(kept)
            if removed:
                log.info("retention: removed %d ambulance calls", removed)

        await run_exclusively(self.redis, "ambulance", job, hold=timedelta(minutes=5))

    async def brigade_retention(self) -> None:
        """Brigades' tracks and photos past BRIGADE_TRACK_RETENTION_DAYS."""
        brigades = self.services.brigades
        kept = timedelta(days=self.settings.brigade_track_retention_days)

        async def job() -> None:
            removed = await brigades.purge(kept)
            if removed:
                log.info("retention: removed %d brigade fixes and photos", removed)

        await run_exclusively(self.redis, "brigade-retention", job, hold=timedelta(minutes=50))

    async def news_queue(self) -> None:
        """Published news queued for its subscribers in batches (services/news.py), each
        tick ending before the next one starts."""
        news = self.services.news

        async def job() -> None:
            await news.queue_pending(seconds=NEWS_QUEUE_INTERVAL * 0.8, ahead=news.ahead)

        await run_exclusively(
            self.redis, "news-queue", job, hold=timedelta(seconds=NEWS_QUEUE_INTERVAL - 0.5)
        )

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
