"""Quotas on looking up other people: a staff member checking a visitor in (or out) by
IIN, an officer checking someone's permit. Each actor has so many look-ups an hour, and
each venue so many by all its staff together in a day; when 80% of a quota is used, a
warning goes to the log and to the audit log, once per window, so an administrator sees
a colleague's (or a stolen account's) unusual run of look-ups before it is cut off."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from services.audit import record
from services.ratelimit import count_event

log = logging.getLogger(__name__)

WARN_SHARE = 0.8
WINDOW = timedelta(hours=1)
VENUE_WINDOW = timedelta(days=1)


def _warn_at(limit: int) -> int:
    return max(1, math.ceil(limit * WARN_SHARE))


class LookupQuotas:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        *,
        per_hour: int,
        per_venue_day: int | None = None,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.per_hour = per_hour
        self.per_venue_day = per_venue_day

    @property
    def warn_at(self) -> int:
        return _warn_at(self.per_hour)

    async def allow(self, kind: str, actor: str) -> bool:
        """Count one look-up of ``kind`` by ``actor``; False once the quota is used up."""
        return await self._allow(kind, actor, self.per_hour, WINDOW, "this hour")

    async def allow_venue(self, venue_id: int) -> bool:
        """Count one staff look-up by IIN at the venue, whoever made it; False once the
        venue's daily quota is used up (always True without one)."""
        if self.per_venue_day is None:
            return True
        return await self._allow(
            "staff-lookup", f"venue:{venue_id}", self.per_venue_day, VENUE_WINDOW, "today"
        )

    async def _allow(
        self, kind: str, actor: str, limit: int, window: timedelta, period: str
    ) -> bool:
        used = await count_event(self.redis, f"{kind}:{actor}", window=window)
        if used == _warn_at(limit):
            log.warning("%s: %s has used %d of %d look-ups %s", kind, actor, used, limit, period)
            await record(
                self.pool,
                actor=actor,
                action="quota.warning",
                subject=kind,
                details={"used": used, "limit": limit},
            )
        return used <= limit
