"""Scheduled jobs: plain async functions, each tick run by exactly one worker.

A job takes a Redis lock named after it for the tick; a worker that finds the lock
taken skips the tick. The lock expires by itself if its holder dies.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from redis.asyncio import Redis

from services.db import is_unavailable

log = logging.getLogger(__name__)


async def run_exclusively(
    redis: Redis, name: str, job: Callable[[], Awaitable[object]], *, hold: timedelta
) -> bool:
    """Run ``job`` if no other worker holds its lock; True when it ran here."""
    lock = redis.lock(f"job:{name}", timeout=hold.total_seconds(), blocking=False)
    try:
        if not await lock.acquire():
            return False
    except Exception as error:
        if is_unavailable(error):
            log.warning("job %s skipped: Redis unavailable", name)
            return False
        raise
    try:
        await job()
    except Exception as error:
        if not is_unavailable(error):
            raise
        log.warning("job %s failed: %s unavailable", name, type(error).__name__)
    return True
