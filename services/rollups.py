"""Hourly and daily roll-ups of the raw event tables: what the situation centre reads.

Triggers (migration 0017) append the UTC hour of every inserted event to
``rollup_dirty`` in the event's own transaction. :meth:`Rollups.refresh` (a job every
minute, and ``citybots rollups refresh``) deletes the marks it finds, recomputes those
hours from the raw rows and then the city days they fall in, all in one transaction: a
mark is only ever removed by a run that could see its event, and a run that fails
leaves every mark in place. Counts outlive the raw rows, so retention may delete old
visits without emptying the charts.

Hours are UTC hours; days are the city's days, summed from the hours (exact for a
time zone a whole number of hours from UTC, such as Almaty's).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from services.db import Connection
from services.feeds.specs import FEEDS

log = logging.getLogger(__name__)

_LOCK = 0x726F6C6C  # one refresh at a time, whichever worker or command runs it


@dataclass(frozen=True)
class Source:
    """Where a metric's events live: the table, the event's time, what to break the
    count down by, which rows count and how (SQL fragments, constants of this module)."""

    table: str
    time: str
    key: str = "''"
    where: str = "true"
    count: str = "count(*)"
    marks_where: str | None = None  # a cheaper filter for finding hours to rebuild


METRICS: dict[str, Source] = {
    "checkins": Source(
        "visits", "checked_in_at", "CASE WHEN admitted THEN 'admitted' ELSE 'refused' END"
    ),
    # Results that count: a superseded or withdrawn one is not a test or a case.
    "pcr_tests": Source(
        "pcr_results",
        "result_at",
        "laboratory",
        where="superseded_at IS NULL AND withdrawn_at IS NULL",
        marks_where="true",
    ),
    "new_cases": Source(
        "pcr_results p",
        "p.result_at",
        where=(
            "p.result = 'positive' AND p.superseded_at IS NULL AND p.withdrawn_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM pcr_results q"
            " WHERE q.iin = p.iin AND q.result = 'positive' AND q.result_at < p.result_at"
            " AND q.superseded_at IS NULL AND q.withdrawn_at IS NULL"
            " AND q.result_at >= p.result_at - interval '90 days')"
        ),
        count="count(DISTINCT p.iin)",
        marks_where="p.result = 'positive'",
    ),
    "contacts": Source("registered_contacts", "registered_at"),
    "quarantine_opened": Source("quarantine_cases", "created_at", "district"),
    "quarantine_closed": Source(
        "quarantine_cases", "closed_at", "district", where="closed_at IS NOT NULL"
    ),
    "violations": Source(
        "quarantine_episodes",
        "opened_at",
        "kind",
        where="close_kind IS DISTINCT FROM 'superseded'",  # replaced: one violation, not two
    ),
    "calls_topic": Source("hotline_calls", "at", "topic"),
    "calls_district": Source("hotline_calls", "at", "district"),
    "calls_outcome": Source("hotline_calls", "at", "outcome"),
    "passings": Source("passings", "at", "direction"),
}
# The feeds' figures (services/feeds), each broken down by the feed's first name (a
# district, a transport mode, a hospital ...); the feeds' import marks the hours.
METRICS.update(
    {
        spec.metric(figure.name): Source(
            "feed_records",
            "at",
            "keys[1]",
            where=f"feed = '{spec.name}'",
            count=f"round(sum((figures->>'{figure.name}')::numeric))::bigint",
        )
        for spec in FEEDS.values()
        for figure in spec.figures
    }
    | {
        name: Source("feed_records", "at", key, where=f"feed = '{spec.name}'")
        for spec in FEEDS.values()
        for name, key in spec.counted
    }
)

HOUR = timedelta(hours=1)
_RUN_GAP = timedelta(hours=24)  # marked hours further apart are recomputed separately


@dataclass(frozen=True)
class RefreshReport:
    hours: int
    days: int
    rebuilt: bool
    seconds: float


@dataclass(frozen=True)
class DailySeries:
    """One metric's daily counts broken down by key, over consecutive days."""

    days: list[date]
    by_key: dict[str, list[int]]

    def total(self) -> list[int]:
        return [sum(values) for values in zip(*self.by_key.values(), strict=True)] or [0] * len(
            self.days
        )


def _runs(hours: list[datetime]) -> Iterable[list[datetime]]:
    """Sorted hours cut where they are far apart, so each range query stays narrow."""
    run: list[datetime] = []
    for hour in sorted(hours):
        if run and hour - run[-1] > _RUN_GAP:
            yield run
            run = []
        run.append(hour)
    if run:
        yield run


class Rollups:
    def __init__(
        self, pool: asyncpg.Pool, timezone: str, *, retention: dict[str, timedelta] | None = None
    ) -> None:
        """``retention``: how long the raw rows of a metric are kept (visits, passings):
        a rebuild leaves alone the hours retention may already have emptied in part."""
        self.pool = pool
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.retention = retention or {}

    async def refresh(self, *, rebuild: bool = False) -> RefreshReport | None:
        """Roll up what changed since the last run; None when another run holds the lock.
        With ``rebuild`` (or on the first run, or after the city's time zone changed)
        every hour that still has raw rows is recomputed, and every day."""
        started = time.perf_counter()
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return None
            try:
                async with conn.transaction():
                    report = await self._refresh(conn, rebuild=rebuild)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        report = RefreshReport(
            report.hours, report.days, report.rebuilt, time.perf_counter() - started
        )
        if report.hours or report.rebuilt:
            log.info(
                "roll-ups: %d hours, %d days recomputed%s in %.2f s",
                report.hours,
                report.days,
                " (rebuilt)" if report.rebuilt else "",
                report.seconds,
            )
        return report

    async def _refresh(self, conn: Connection, *, rebuild: bool) -> RefreshReport:
        state = await conn.fetchval("SELECT timezone FROM rollup_state")
        if state is None or rebuild:
            for metric, source in METRICS.items():
                kept = self.retention.get(metric)
                # the hours that still have raw rows, and those rolled up before whose rows
                # are gone since (the demo removed): recomputed, they drop to what is left
                await conn.execute(
                    "INSERT INTO rollup_dirty (metric, hour)"  # noqa: S608 - constants
                    f" SELECT DISTINCT $1, date_trunc('hour', {source.time}, 'UTC')"
                    f" FROM {source.table} WHERE {source.marks_where or source.where}"
                    f" AND {source.time} >= $2"
                    " UNION SELECT metric, hour FROM rollup_hourly"
                    " WHERE metric = $1 AND hour >= $2",
                    metric,
                    datetime.min.replace(tzinfo=UTC)
                    if kept is None
                    else (datetime.now(UTC) - kept + HOUR).replace(minute=0, second=0),
                )
        marks = await conn.fetch(
            "WITH taken AS (DELETE FROM rollup_dirty RETURNING metric, hour, iin)"
            " SELECT DISTINCT metric, hour FROM taken"
            " UNION SELECT 'new_cases', date_trunc('hour', p.result_at, 'UTC')"
            " FROM pcr_results p WHERE p.result = 'positive'"
            " AND p.iin IN (SELECT iin FROM taken WHERE iin IS NOT NULL)"
        )
        hours_by_metric: dict[str, set[datetime]] = defaultdict(set)
        for mark in marks:
            if mark["metric"] in METRICS:
                hours_by_metric[mark["metric"]].add(mark["hour"])
        days_by_metric: dict[str, list[date]] = {}
        for metric, hours in hours_by_metric.items():
            for run in _runs(list(hours)):
                await self._recompute_hours(conn, metric, run)
            days_by_metric[metric] = await conn.fetchval(
                "SELECT array_agg(DISTINCT day ORDER BY day) FROM"
                " (SELECT (h AT TIME ZONE $2)::date AS day FROM unnest($1::timestamptz[]) h) d",
                list(hours),
                self.timezone,
            )
        retimed = state is not None and state != self.timezone
        if retimed or rebuild:
            await conn.execute("DELETE FROM rollup_daily")
            await conn.execute(
                "INSERT INTO rollup_daily (metric, day, key, value)"
                " SELECT metric, (hour AT TIME ZONE $1)::date, key, sum(value)"
                " FROM rollup_hourly GROUP BY 1, 2, 3",
                self.timezone,
            )
            days = await conn.fetchval("SELECT count(DISTINCT day) FROM rollup_daily")
        else:
            for metric, metric_days in days_by_metric.items():
                await self._recompute_days(conn, metric, metric_days)
            days = sum(len(d) for d in days_by_metric.values())
        await conn.execute(
            "INSERT INTO rollup_state (timezone, refreshed_at) VALUES ($1, now())"
            " ON CONFLICT (only_row) DO UPDATE SET timezone = $1, refreshed_at = now()",
            self.timezone,
        )
        return RefreshReport(
            sum(len(h) for h in hours_by_metric.values()),
            days,
            state is None or rebuild or retimed,
            0.0,
        )

    async def _recompute_hours(self, conn: Connection, metric: str, hours: list[datetime]) -> None:
        source = METRICS[metric]
        rows = await conn.fetch(
            f"SELECT date_trunc('hour', {source.time}, 'UTC') AS hour,"  # noqa: S608 - constants
            f" {source.key} AS key, {source.count} AS value"
            f" FROM {source.table}"
            f" WHERE {source.time} >= $1 AND {source.time} < $2"
            f" AND date_trunc('hour', {source.time}, 'UTC') = ANY($3::timestamptz[])"
            f" AND {source.where} GROUP BY 1, 2",
            hours[0],
            hours[-1] + HOUR,
            hours,
        )
        await conn.execute(
            "DELETE FROM rollup_hourly WHERE metric = $1 AND hour = ANY($2::timestamptz[])",
            metric,
            hours,
        )
        await conn.execute(
            "INSERT INTO rollup_hourly (metric, hour, key, value)"
            " SELECT $1, * FROM unnest($2::timestamptz[], $3::text[], $4::bigint[])",
            metric,
            [r["hour"] for r in rows],
            [r["key"] or "" for r in rows],
            [r["value"] for r in rows],
        )

    async def _recompute_days(self, conn: Connection, metric: str, days: list[date]) -> None:
        first = self._start_of(days[0]) - timedelta(days=1)
        last = self._start_of(days[-1]) + timedelta(days=2)
        await conn.execute(
            "DELETE FROM rollup_daily WHERE metric = $1 AND day = ANY($2::date[])", metric, days
        )
        await conn.execute(
            "INSERT INTO rollup_daily (metric, day, key, value)"
            " SELECT metric, (hour AT TIME ZONE $3)::date, key, sum(value) FROM rollup_hourly"
            " WHERE metric = $1 AND hour >= $4 AND hour < $5"
            " AND (hour AT TIME ZONE $3)::date = ANY($2::date[]) GROUP BY 1, 2, 3",
            metric,
            days,
            self.timezone,
            first,
            last,
        )

    def _start_of(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)

    # Reading -------------------------------------------------------------------------

    async def refreshed_at(self) -> datetime | None:
        value: datetime | None = await self.pool.fetchval("SELECT refreshed_at FROM rollup_state")
        return value

    async def daily(self, metrics: list[str], first: date, last: date) -> dict[str, DailySeries]:
        """Daily counts from ``first`` to ``last`` (city days, both included)."""
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        index = {day: i for i, day in enumerate(days)}
        series = {m: DailySeries(days, {}) for m in metrics}
        rows = await self.pool.fetch(
            "SELECT metric, day, key, value FROM rollup_daily"
            " WHERE metric = ANY($1::text[]) AND day BETWEEN $2 AND $3",
            metrics,
            first,
            last,
        )
        for row in rows:
            values = series[row["metric"]].by_key.setdefault(row["key"], [0] * len(days))
            values[index[row["day"]]] = row["value"]
        return series

    async def hourly(
        self, metric: str, since: datetime, until: datetime
    ) -> tuple[list[datetime], dict[str, list[int]]]:
        """Hourly counts of one metric by key, for the whole hours from ``since``."""
        first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        hours: list[datetime] = []
        at = first
        while at < until:
            hours.append(at)
            at += HOUR
        index = {hour: i for i, hour in enumerate(hours)}
        by_key: dict[str, list[int]] = {}
        rows = await self.pool.fetch(
            "SELECT hour, key, value FROM rollup_hourly"
            " WHERE metric = $1 AND hour >= $2 AND hour < $3",
            metric,
            first,
            until,
        )
        for row in rows:
            position = index.get(row["hour"])
            if position is not None:
                by_key.setdefault(row["key"], [0] * len(hours))[position] = row["value"]
        return hours, by_key

    async def total_before(self, metric: str, day: date) -> int:
        """Everything counted before ``day``: the start of a running total."""
        value = await self.pool.fetchval(
            "SELECT coalesce(sum(value), 0) FROM rollup_daily WHERE metric = $1 AND day < $2",
            metric,
            day,
        )
        return int(value)

    async def per_day(self, metric: str) -> list[tuple[date, int]]:
        """Every day's total of one metric, in order (the series a model is fitted to)."""
        rows = await self.pool.fetch(
            "SELECT day, sum(value) AS value FROM rollup_daily WHERE metric = $1"
            " GROUP BY day ORDER BY day",
            metric,
        )
        return [(row["day"], int(row["value"])) for row in rows]

    async def totals_between(
        self, metrics: list[str], start: datetime, end: datetime
    ) -> dict[str, int]:
        """Each metric's count over the whole hours from ``start`` up to ``end``."""
        rows = await self.pool.fetch(
            "SELECT metric, sum(value) AS value FROM rollup_hourly"
            " WHERE metric = ANY($1::text[]) AND hour >= $2 AND hour < $3 GROUP BY metric",
            metrics,
            start,
            end,
        )
        found = {r["metric"]: int(r["value"]) for r in rows}
        return {m: found.get(m, 0) for m in metrics}
