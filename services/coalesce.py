"""Look-ups made at the same moment, answered by one round trip.

Every update asks the same few questions of PostgreSQL and Redis (is it claimed, what
state is the conversation in, which language): at a busy city's doors hundreds of
updates ask them at once. A :class:`Coalescer` gathers the calls made while the event
loop's ready tasks run and answers them with one bulk call, so each update still asks
its own question in its own code, and the round trips are shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_BULK = 1000


class Coalescer(Generic[K, V]):
    """``await coalescer(key)``: the answer for ``key`` from ``bulk``, which gets the keys
    asked for in the same turn of the event loop (at most MAX_BULK, in the order asked,
    a key asked twice given twice) and returns their answers in the same order. When
    ``bulk`` raises, every caller of that round gets the error."""

    def __init__(self, bulk: Callable[[list[K]], Awaitable[Sequence[V]]]) -> None:
        self.bulk = bulk
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._flush)
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.append((key, future))
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), MAX_BULK):
            task = asyncio.create_task(self._answer(waiting[start : start + MAX_BULK]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, items: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            answers = await self.bulk([key for key, _ in items])
        except Exception as error:
            for _, future in items:
                if not future.done():
                    future.set_exception(error)
            return
        except BaseException:
            for _, future in items:
                future.cancel()
            raise
        for (_, future), answer in zip(items, answers, strict=True):
            if not future.done():
                future.set_result(answer)
