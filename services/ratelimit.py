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


async def window_of(redis: Redis, key: str, *, window: timedelta) -> tuple[int, timedelta]:
    """How many events fell under ``key`` in its current window, and how long that window
    still runs (nothing counted: 0 and no time left). Counts nothing."""
    name = f"rate:{key}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(name)
        pipe.pttl(name)
        count, left_ms = await pipe.execute()
    if count is None or left_ms == -2:
        return 0, timedelta(0)
    # A counter without an expiry cannot come from count_event; count it a full window.
    left = window if left_ms < 0 else timedelta(milliseconds=left_ms)
    return int(count), left
