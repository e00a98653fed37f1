"""The conversations' state in Redis, as aiogram keeps it."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage

from services.coalesce import Coalescer


class CoalescingRedisStorage(RedisStorage):
    """aiogram's Redis storage, except that the state reads of one moment share one MGET:
    aiogram's FSM middleware reads the state for every update, and at a busy city's
    doors hundreds of updates arrive at once. Writes are aiogram's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._states = Coalescer(self._get_states)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self._states(self.key_builder.build(key, "state"))

    async def _get_states(self, keys: list[str]) -> list[str | None]:
        values = await self.redis.mget(keys)
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
