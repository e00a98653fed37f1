"""Retention: personal data is kept only as long as it serves its purpose, by jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg


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
            "DELETE FROM visits WHERE checked_in_at < now() - $1::interval "
            "AND (checked_out_at IS NOT NULL)",
            retention.visits,
        )
        removed["visits"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) "
            "AND created_at < now() - $1::interval",
            retention.outbox,
        )
        removed["outbox"] = int(result.split()[-1])
        result = await conn.execute(
            "DELETE FROM location_fixes WHERE received_at < now() - $1::interval",
            retention.location_fixes,
        )
        removed["location_fixes"] = int(result.split()[-1])
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
        result = await conn.execute("DELETE FROM panel_sessions WHERE expires_at <= now()")
        removed["panel_sessions"] = int(result.split()[-1])
    return removed
