"""Look-ups of other people: a quota per actor, and one warning at 80% of it."""

from __future__ import annotations

import logging
import secrets

import asyncpg
import pytest
from redis.asyncio import Redis

from services.quotas import LookupQuotas


async def test_the_quota_warns_once_at_80_percent_and_then_refuses(
    pool: asyncpg.Pool, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    quotas = LookupQuotas(pool, redis, per_hour=5)
    actor = f"staff:{secrets.randbelow(10**9)}"
    with caplog.at_level(logging.WARNING, logger="services.quotas"):
        answers = [await quotas.allow("staff-lookup", actor) for _ in range(7)]
    assert answers == [True] * 5 + [False] * 2
    warnings = await pool.fetch(
        "SELECT subject, details FROM audit_log WHERE actor = $1 AND action = 'quota.warning'",
        actor,
    )
    assert len(warnings) == 1
    assert warnings[0]["subject"] == "staff-lookup"
    assert warnings[0]["details"] == {"used": 4, "limit": 5}
    assert [r.getMessage() for r in caplog.records] == [
        f"staff-lookup: {actor} has used 4 of 5 look-ups this hour"
    ]
    other = f"officer:{secrets.randbelow(10**9)}"
    assert await quotas.allow("permit-check", other)  # each actor and kind has its own
