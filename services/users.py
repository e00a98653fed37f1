"""People's languages: the one chosen with /language, and their Telegram app's, kept in
PostgreSQL and cached in Redis (which may be lost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from services.coalesce import Coalescer
from services.languages import LANGUAGES

_CACHE_TTL = 24 * 3600
_NONE = "-"


_SET_CHOSEN = """
INSERT INTO tg_users (tg_user_id, language) VALUES ($1, $2)
ON CONFLICT (tg_user_id) DO UPDATE SET language = EXCLUDED.language, updated_at = now()
RETURNING language, telegram_language
"""
_SET_TELEGRAM = """
INSERT INTO tg_users (tg_user_id, telegram_language) VALUES ($1, $2)
ON CONFLICT (tg_user_id) DO UPDATE
    SET telegram_language = EXCLUDED.telegram_language, updated_at = now()
RETURNING language, telegram_language
"""


@dataclass(frozen=True)
class LanguageChoice:
    chosen: str | None  # with /language
    telegram: str | None  # the Telegram app's, when it is one we speak


class LanguagePreferences:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis
        # every update asks (the language middleware): one MGET for those of a moment
        self._cached = Coalescer(self._cached_many)

    @staticmethod
    def cache_key(tg_user_id: int) -> str:
        """The Redis key of the person's cached choice."""
        return f"lang:{tg_user_id}"

    @staticmethod
    def from_cache(cached: bytes | str) -> LanguageChoice:
        raw = cached.decode() if isinstance(cached, bytes) else str(cached)
        chosen, _, telegram = raw.partition("|")
        return LanguageChoice(
            None if chosen == _NONE else chosen,
            None if telegram in (_NONE, "") else telegram,
        )

    async def _cache(self, tg_user_id: int, choice: LanguageChoice) -> None:
        value = f"{choice.chosen or _NONE}|{choice.telegram or _NONE}"
        await self.redis.set(self.cache_key(tg_user_id), value, ex=_CACHE_TTL)

    async def get(self, tg_user_id: int) -> LanguageChoice:
        cached = await self._cached(self.cache_key(tg_user_id))
        if cached is not None:
            return self.from_cache(cached)
        row = await self.pool.fetchrow(
            "SELECT language, telegram_language FROM tg_users WHERE tg_user_id = $1", tg_user_id
        )
        choice = (
            LanguageChoice(row["language"], row["telegram_language"])
            if row
            else (LanguageChoice(None, None))
        )
        await self._cache(tg_user_id, choice)
        return choice

    async def _cached_many(self, keys: list[str]) -> list[Any]:
        return list(await self.redis.mget(keys))

    async def set(self, tg_user_id: int, language: str) -> None:
        """Store the choice. The cache entry is dropped first: if Redis is down the
        choice is not stored at all, and a stale cached language never outlives it."""
        await self._store(tg_user_id, _SET_CHOSEN, language)

    async def note_telegram_language(self, tg_user_id: int, language: str) -> None:
        """Remember the Telegram app's language (called only when it changed)."""
        await self._store(tg_user_id, _SET_TELEGRAM, language)

    async def _store(self, tg_user_id: int, statement: str, language: str) -> None:
        # The table checks only a language code's shape (migration 0046): the list is ours.
        if language not in LANGUAGES:
            raise ValueError(f"{language!r} is not a language we speak")
        await self.redis.delete(self.cache_key(tg_user_id))
        row = await self.pool.fetchrow(statement, tg_user_id, language)
        assert row is not None
        await self._cache(tg_user_id, LanguageChoice(row["language"], row["telegram_language"]))
