"""The shared pacer in Redis: two workers share one bot's schedule, a chat gets a short
burst then one a second, bulk notices wait behind replies, and an outage of Redis keeps
the schedule in memory."""

import asyncio
import logging
import secrets

import pytest
from redis.asyncio import Redis

from citybots.embedded import free_port
from services.pacing import Limits, Pacer, Priority


def _pacers(redis: Redis, count: int) -> list[Pacer]:
    prefix = f"pace-test-{secrets.token_hex(4)}"
    return [Pacer(redis, prefix=prefix) for _ in range(count)]


async def test_two_workers_share_one_bots_schedule(redis: Redis) -> None:
    first, second = _pacers(redis, 2)
    bot = 1
    waits = await asyncio.gather(
        *((first if i % 2 else second).turn(bot, 1000 + i) for i in range(50))
    )
    # 50 sends at 25 a second: the last waits for 49 slots of 40 ms whichever worker
    # took it (had each worker kept its own schedule, none would wait over 1 s).
    assert max(waits) >= 49 * 0.04 - 0.05


async def test_one_chat_gets_a_burst_of_four_then_one_a_second(redis: Redis) -> None:
    (pacer,) = _pacers(redis, 1)
    waits = [await pacer.turn(2, 42) for _ in range(6)]
    assert waits[4] >= 0.8  # a second after the burst...
    assert waits[5] >= 0.8  # ...and another
    assert max(waits[:4]) < waits[4]  # while the burst did not wait for the chat


async def test_a_group_gets_one_message_every_few_seconds(redis: Redis) -> None:
    pacer = Pacer(redis, Limits(group_interval=0.5), prefix=f"pace-test-{secrets.token_hex(4)}")
    waits = [await pacer.turn(3, -100_123) for _ in range(3)]
    assert waits[1] >= 0.4
    assert waits[2] >= 0.4
    assert waits[0] < waits[1]


async def test_bulk_notices_wait_while_replies_fill_the_queue(redis: Redis) -> None:
    (pacer,) = _pacers(redis, 1)
    bot = 4
    done: list[str] = []

    async def send(kind: str, chat: int, priority: Priority) -> None:
        await pacer.turn(bot, chat, priority)
        done.append(kind)

    replies = [asyncio.create_task(send("reply", 2000 + i, Priority.REPLY)) for i in range(40)]
    await asyncio.sleep(0)  # the replies have asked first
    await asyncio.sleep(0.05)
    notice = asyncio.create_task(send("notice", 5000, Priority.BULK))
    await asyncio.gather(*replies, notice)
    # The notice took a slot only once the queue of replies was under half a second.
    assert done.index("notice") >= 40 - int(0.5 * 25) - 2


async def test_without_redis_the_schedule_is_kept_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    pacer = Pacer(nowhere)
    with caplog.at_level(logging.WARNING):
        waits = [await pacer.turn(5, 7) for _ in range(5)]
    assert waits[4] >= 0.8
    assert "send pacing kept in this process" in caplog.text
    assert await pacer.backlog(5) >= 0
    await nowhere.aclose()
