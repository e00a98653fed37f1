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
    return removed
