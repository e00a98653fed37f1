"""Quotas on looking up other people: a staff member checking a visitor in by IIN, an
officer checking someone's permit. Each actor has so many look-ups an hour; when 80% of
the quota is used, a warning goes to the log and to the audit log, once per window, so
an administrator sees a colleague's (or a stolen account's) unusual run of look-ups
before it is cut off."""

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


class LookupQuotas:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, *, per_hour: int) -> None:
        self.pool = pool
        self.redis = redis
        self.per_hour = per_hour

    @property
    def warn_at(self) -> int:
        return max(1, math.ceil(self.per_hour * WARN_SHARE))

    async def allow(self, kind: str, actor: str) -> bool:
        """Count one look-up of ``kind`` by ``actor``; False once the quota is used up."""
        used = await count_event(self.redis, f"{kind}:{actor}", window=WINDOW)
        if used == self.warn_at:
            log.warning(
                "%s: %s has used %d of %d look-ups this hour", kind, actor, used, self.per_hour
            )
            await record(
                self.pool,
                actor=actor,
                action="quota.warning",
                subject=kind,
                details={"used": used, "limit": self.per_hour},
            )
        return used <= self.per_hour
