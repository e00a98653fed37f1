"""Two processes' status caches stay true: a write in one is seen at once by the other."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from citybots.settings import load_settings
from citybots.wiring import Services, build_services
from services.localcache import InvalidationListener
from services.status import Colour
from tests.factories import add_pcr, make_iin


@pytest.fixture
async def two_workers(
    pool: asyncpg.Pool, redis_url: str
) -> AsyncIterator[tuple[Services, Services]]:
    workers, listeners, clients = [], [], []
    for _ in range(2):
        client = Redis.from_url(redis_url)
        services = build_services(pool, client, load_settings(_env_file=None))
        listener = InvalidationListener(client, [services.statuses.local])
        await listener.start()
        workers.append(services)
        listeners.append(listener)
        clients.append(client)
    yield workers[0], workers[1]
    for listener in listeners:
        await listener.stop()
    for client in clients:
        await client.aclose()


async def test_a_record_written_by_one_worker_changes_the_other_workers_answer(
    two_workers: tuple[Services, Services],
) -> None:
    writer, reader = two_workers
    iin = make_iin()
    assert (await reader.statuses.status(iin)).colour is Colour.BLUE
    assert reader.statuses.local.get(iin) is not None  # now answered from memory
    await add_pcr(writer, iin, "positive")
    for _ in range(50):
        if reader.statuses.local.get(iin) is None:
            break
        await asyncio.sleep(0.01)
    assert (await reader.statuses.status(iin)).colour is Colour.RED


async def test_without_the_listener_the_local_cache_is_not_used(services: Services) -> None:
    iin = make_iin()
    await services.statuses.status(iin)
    assert services.statuses.local.get(iin) is None
