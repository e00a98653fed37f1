"""Retention: personal data is kept only as long as it serves its purpose, by jobs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from services.db import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long things are kept. Visits serve exposure search (14 days back), so four
    weeks covers late results; sent notices and processed updates are bookkeeping."""

    visits: timedelta = timedelta(days=28)
    outbox: timedelta = timedelta(days=30)
    location_fixes: timedelta = timedelta(days=14)
    passings: timedelta = timedelta(days=28)  # checkpoint logs: who passed, or a phone
    # Hand-off tickets (the citizen's question; the relayed messages live in the outbox)
    # once closed, or left open that long, and the questions the FAQ could not answer.
    hotline: timedelta = timedelta(days=90)
    # IINs registry writes queued for the status-notice job, which takes them within
    # seconds; left behind only while that job is off (CITIZEN_STATUS_NOTICES=false).
    status_notice_queue: timedelta = timedelta(days=1)
    # Files under DATA_DIR/reports (rejected rows of registry imports: raw IINs and
    # phones), removed by the same job through services.private_files.
    reports: timedelta = timedelta(days=7)


async def purge(pool: asyncpg.Pool, retention: Retention) -> dict[str, int]:
    """Delete what outlived its retention period; returns how many rows of each kind."""
    removed: dict[str, int] = {}
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute(
            "DELETE FROM outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) "
            "AND created_at < now() - $1::interval",
            retention.outbox,
        )
        removed["outbox"] = int(result.split()[-1])
        # A closed case keeps its code and episodes (the record of care), not its places.
        result = await conn.execute(
            "UPDATE quarantine_cases SET home_lat = NULL, home_lon = NULL, last_lat = NULL, "
            "last_lon = NULL WHERE closed_at < now() - $1::interval AND home_lat IS NOT NULL",
            retention.location_fixes,
        )
        removed["case_places"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM passings WHERE at < now() - $1::interval", retention.passings
        )
        removed["passings"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM hotline_tickets"
            " WHERE (state = 'closed' AND closed_at < now() - $1::interval)"
            " OR (state <> 'closed' AND created_at < now() - $1::interval)",
            retention.hotline,
        )
        removed["hotline_tickets"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM hotline_unanswered WHERE asked_at < now() - $1::interval",
            retention.hotline,
        )
        removed["hotline_unanswered"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM status_notice_queue WHERE created_at < now() - $1::interval",
            retention.status_notice_queue,
        )
        removed["status_notice_queue"] = int(result.split()[-1])
        # A subscriber who blocked the bot (Telegram refused a news item: 403) gets no more
        # news and is no longer kept; the outbox row that said so goes the next time.
        result = await conn.execute(
            "DELETE FROM news_subscribers s USING outbox o WHERE o.chat_id = s.chat_id"
            " AND o.news_id IS NOT NULL AND o.failed_at IS NOT NULL"
            " AND o.last_error LIKE 'Forbidden%' AND o.failed_at > s.subscribed_at"
        )
        removed["news_subscribers"] = int(result.split()[-1])
        result = await conn.execute("DELETE FROM panel_sessions WHERE expires_at <= now()")
        removed["panel_sessions"] = int(result.split()[-1])
    removed.update(await purge_location_fixes(pool, retention.location_fixes))
    removed.update(await purge_visits(pool, retention.visits))
    return removed


# Location fixes (migration 0045) and visits (0048) are partitioned by day: each run makes
# the next days' partitions, drops whole days past the retention period, and deletes rows
# only from the DEFAULT partition (rows at times no day's partition covered).
DAYS_AHEAD = 3
_DAY_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = $1::regclass
"""


@dataclass(frozen=True)
class _ByDay:
    """A table partitioned by day: how its days are made (SQL taking the first and last
    day), which rows of its DEFAULT partition go (SQL taking the cutoff), and which days
    must wait although past the cutoff (SQL taking the day's bounds; None: none wait)."""

    parent: str
    make_days: str
    default_purge: str
    day_held: str | None = None


_FIXES = _ByDay(
    "location_fixes",
    "SELECT location_fixes_add_days($1, $2)",
    "DELETE FROM location_fixes_default WHERE fixed_at < $1",
)
# A stay still open holds its day (it would lose its open_stays row's visit); the
# auto-checkout closes every stay within a day, so only a stopped job leaves one.
_VISITS = _ByDay(
    "visits",
    "SELECT day_partitions_add('visits', 'checked_in_at', $1, $2)",
    "DELETE FROM visits_default WHERE checked_in_at < $1 AND checked_out_at IS NOT NULL",
    "SELECT EXISTS (SELECT 1 FROM open_stays WHERE checked_in_at >= $1 AND checked_in_at < $2)",
)


async def _purge_days(conn: Connection, table: _ByDay, keep: timedelta) -> tuple[int, int, int]:
    """Make the coming days' partitions of ``table``, drop (detach, then DROP TABLE) each
    day's partition that ended more than ``keep`` ago, and delete older rows from the
    DEFAULT partition; returns the rows removed, the days dropped and the days made. A day
    goes whole, so a row is kept up to a day beyond ``keep``. Each step is its own short
    transaction: detaching locks the table against the writes, so it waits at most a few
    seconds and else waits for the next run."""
    made = rows_removed = days_dropped = 0
    today: date = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            made = await conn.fetchval(table.make_days, today, today + timedelta(days=DAYS_AHEAD))
    except asyncpg.LockNotAvailableError:
        log.warning("retention: %s busy, the coming days made on a later run", table.parent)
    cutoff: datetime = await conn.fetchval("SELECT now() - $1::interval", keep)
    day_name = re.compile(re.escape(table.parent) + r"_([0-9]{8})")
    for name in sorted(r["relname"] for r in await conn.fetch(_DAY_PARTITIONS, table.parent)):
        day = day_name.fullmatch(name)
        if day is None:
            continue  # the DEFAULT partition
        starts = datetime.strptime(day[1], "%Y%m%d").replace(tzinfo=UTC)
        ends = starts + timedelta(days=1)
        if ends > cutoff:
            continue
        if table.day_held is not None and await conn.fetchval(table.day_held, starts, ends):
            log.warning("retention: %s still has open rows, dropped on a later run", name)
            continue
        # The name is a catalog name that matched <parent>_[0-9]{8} above.
        count = f'SELECT count(*) FROM "{name}"'  # noqa: S608
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '5s'")
                rows = await conn.fetchval(count)
                await conn.execute(f'ALTER TABLE "{table.parent}" DETACH PARTITION "{name}"')
                await conn.execute(f'DROP TABLE "{name}"')
        except asyncpg.LockNotAvailableError:
            log.warning("retention: %s busy, dropped on a later run", name)
            continue
        rows_removed += rows
        days_dropped += 1
    result = await conn.execute(table.default_purge, cutoff)
    return rows_removed + int(result.split()[-1]), days_dropped, made


async def purge_location_fixes(pool: asyncpg.Pool, keep: timedelta) -> dict[str, int]:
    """Location fixes past ``keep``, by whole days (see :func:`_purge_days`)."""
    async with pool.acquire() as conn:
        rows, days, made = await _purge_days(conn, _FIXES, keep)
    return {"location_fixes": rows, "location_fix_days": days, "location_fix_days_made": made}


async def purge_visits(pool: asyncpg.Pool, keep: timedelta) -> dict[str, int]:
    """Visits past ``keep``, by whole days (see :func:`_purge_days`), and the exposure
    notices of stays begun before then (their visits are gone, or go with their day)."""
    async with pool.acquire() as conn:
        rows, days, made = await _purge_days(conn, _VISITS, keep)
        result = await conn.execute(
            "DELETE FROM exposure_notices WHERE window_start < now() - $1::interval", keep
        )
    return {
        "visits": rows,
        "visit_days": days,
        "visit_days_made": made,
        "exposure_notices": int(result.split()[-1]),
    }
