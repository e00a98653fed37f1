"""Fixed-window rate limits in Redis (counters that may be lost without harm)."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis


async def count_event(redis: Redis, key: str, *, window: timedelta) -> int:
    """Count one event under ``key``; how many fell in the current window, this one too."""
    name = f"rate:{key}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(name, 0, ex=int(window.total_seconds()), nx=True)  # opens the window
        pipe.incr(name)
        _, count = await pipe.execute()
    return int(count)


async def allow(redis: Redis, key: str, *, limit: int, window: timedelta) -> bool:
    """Count one event under ``key``; False once ``limit`` events fell in the window."""
    return await count_event(redis, key, window=window) <= limit
