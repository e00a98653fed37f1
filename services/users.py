"""People's language choice: kept in PostgreSQL, cached in Redis (which may be lost)."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

_CACHE_TTL = 24 * 3600
_NONE = "-"


class LanguagePreferences:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis

    @staticmethod
    def _key(tg_user_id: int) -> str:
        return f"lang:{tg_user_id}"

    async def get(self, tg_user_id: int) -> str | None:
        """The language the person chose with /language, or None if they never did."""
        cached = await self.redis.get(self._key(tg_user_id))
        if cached is not None:
            value = cached.decode() if isinstance(cached, bytes) else str(cached)
            return None if value == _NONE else value
        chosen = await self.pool.fetchval(
            "SELECT language FROM tg_users WHERE tg_user_id = $1", tg_user_id
        )
        await self.redis.set(self._key(tg_user_id), chosen or _NONE, ex=_CACHE_TTL)
        return str(chosen) if chosen else None

    async def set(self, tg_user_id: int, language: str) -> None:
        """Store the choice. The cache entry is dropped first: if Redis is down the
        choice is not stored at all, and a stale cached language never outlives it."""
        await self.redis.delete(self._key(tg_user_id))
        await self.pool.execute(
            """
            INSERT INTO tg_users (tg_user_id, language) VALUES ($1, $2)
            ON CONFLICT (tg_user_id) DO UPDATE SET language = EXCLUDED.language, updated_at = now()
            """,
            tg_user_id,
            language,
        )
        await self.redis.set(self._key(tg_user_id), language, ex=_CACHE_TTL)
