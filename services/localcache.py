"""An in-process cache in front of Redis, kept honest by Redis pub/sub.

Writers publish the keys they changed; every process's listener drops them from its
local cache. Each key also has a local generation, bumped by every invalidation, so a
value read from the database before a write and stored after its invalidation arrived
is refused. If the listener loses its connection (messages may have been missed), the
whole local cache is dropped. Entries also expire by themselves, which bounds what a
lost message could cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis

log = logging.getLogger(__name__)

V = TypeVar("V")
CHANNEL = "citybots:invalidate"


class LocalCache(Generic[V]):
    def __init__(self, namespace: str, *, ttl: float = 60.0, max_entries: int = 200_000) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self.max_entries = max_entries
        self._values: dict[str, tuple[float, int, V]] = {}
        self._generations: dict[str, int] = {}
        self.listening = False

    def generation(self, key: str) -> int:
        return self._generations.get(key, 0)

    def get(self, key: str, now: float | None = None) -> V | None:
        if not self.listening:
            return None
        entry = self._values.get(key)
        if entry is None:
            return None
        expires, generation, value = entry
        if (now or time.monotonic()) >= expires or generation != self.generation(key):
            self._values.pop(key, None)
            return None
        return value

    def put(self, key: str, value: V, generation: int, ttl: float | None = None) -> None:
        """Store ``value`` read while the key's generation was ``generation``."""
        if not self.listening or generation != self.generation(key):
            return
        if len(self._values) >= self.max_entries:
            self._values.clear()
        self._values[key] = (time.monotonic() + min(ttl or self.ttl, self.ttl), generation, value)

    def invalidate_local(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._generations[key] = self._generations.get(key, 0) + 1
            self._values.pop(key, None)
        if len(self._generations) > 4 * self.max_entries:
            self._generations.clear()
            self._values.clear()

    def clear(self) -> None:
        self._values.clear()


async def publish(redis: Redis, namespace: str, keys: list[str]) -> None:
    if keys:
        await redis.publish(CHANNEL, json.dumps({"ns": namespace, "keys": keys}))


class InvalidationListener:
    """Feeds invalidations from Redis pub/sub into the local caches of this process."""

    def __init__(self, redis: Redis, caches: Iterable[LocalCache[Any]]) -> None:
        self.redis = redis
        self.caches = {cache.namespace: cache for cache in caches}
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cache-invalidations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._set_listening(False)

    def _set_listening(self, listening: bool) -> None:
        for cache in self.caches.values():
            cache.clear()
            cache.listening = listening

    async def _run(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self._set_listening(True)
                self.ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = json.loads(message["data"])
                    cache = self.caches.get(data.get("ns"))
                    if cache is not None:
                        cache.invalidate_local(data.get("keys", []))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the connection dropped: messages may be lost
                self._set_listening(False)
                log.warning(
                    "cache invalidations interrupted (%s); local caches off", type(error).__name__
                )
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
