"""Faults under load (short versions of bench/chaos.py): two `citybots run` workers behind
nginx, PostgreSQL and Redis the test owns, a mixed load of simulated people through the
sandbox; each fault in turn. Whatever strikes, nothing acknowledged is lost, nothing is
stored or delivered twice, and service comes back by itself. No timing is asserted (the
machine is shared); the figures are bench/chaos.py's.

The workers run with UPDATE_LEASE_SECONDS=10 instead of 60, so that an update whose
worker was killed mid-way is handled again within the test's time (the lease is what a
redelivery waits out)."""

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, TCPConnector

from bots.sandbox.model import _public

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chaos  # bench/ is put on the path just above

pytestmark = pytest.mark.skipif(
    not chaos.nginx_available(),
    reason="nginx is not installed (make test installs Debian's nginx-light as root)",
)

LOAD_SECONDS = 20
LEASE = 10


@pytest.fixture(scope="module")
async def run() -> AsyncIterator[chaos.Cluster]:
    async with chaos.cluster(2, lease=LEASE) as running:
        yield running


@pytest.fixture(scope="module")
async def world(run: chaos.Cluster) -> chaos.World:
    return await chaos.make_world(run, people=30, patients=10, venues=400)


async def _survives(run: chaos.Cluster, world: chaos.World, fault: str) -> chaos.Result:
    result = await chaos.run_fault(run, world, fault, LOAD_SECONDS, outage=4.0)
    print(result.summary())  # shown with -s, and on failure
    assert result.lost == dict.fromkeys(result.lost, 0), result.summary()
    assert result.doubled == dict.fromkeys(result.doubled, 0), result.summary()
    assert sum(result.acked.values()) > 0
    assert "never" not in result.recovery, result.summary()
    assert result.fixes_taken == result.fixes_sent  # stored, or reached by the case's state
    return result


@pytest.mark.timeout(600)
async def test_telegram_refusing_some_sends_loses_and_doubles_nothing(
    run: chaos.Cluster, world: chaos.World
) -> None:
    result = await _survives(run, world, "telegram")
    assert result.injected.get("429", 0) > 0


@pytest.mark.timeout(600)
async def test_a_worker_killed_mid_load_loses_and_doubles_nothing(
    run: chaos.Cluster, world: chaos.World
) -> None:
    await _survives(run, world, "worker")
    assert all(p is not None and p.poll() is None for p in run.workers)


@pytest.mark.timeout(600)
@pytest.mark.telegram_limits  # while Redis is away each worker paces its sends alone, so
# together they may cross Telegram's rate and be refused a few: those are waited out
async def test_redis_restarted_mid_load_loses_and_doubles_nothing(
    run: chaos.Cluster, world: chaos.World
) -> None:
    await _survives(run, world, "redis")


@pytest.mark.timeout(600)
async def test_postgres_restarted_mid_load_loses_and_doubles_nothing_and_people_are_told(
    run: chaos.Cluster, world: chaos.World
) -> None:
    result = await _survives(run, world, "postgres")
    assert result.told_unavailable > 0


@pytest.mark.timeout(300)
async def test_a_scan_posted_five_times_at_once_through_nginx_takes_effect_once(
    run: chaos.Cluster, world: chaos.World
) -> None:
    """Five deliveries of one update at once, spread by nginx over both workers: one
    visit, one reply; the deliveries that met the claim of another are answered 503 and
    tried again, as Telegram does."""
    bot, user = run.side.bots["citizen"], world.citizens[-2]
    venue = world.venues_left.setdefault(user.id, list(world.entry_tokens)).pop()
    chat = run.side.sandbox._user_chat(bot, user)
    since = chat.seq
    command = f"/start {world.entry_tokens[venue]}"
    message = await run.side.sandbox._user_message(
        bot,
        user,
        {"text": command, "entities": [{"type": "bot_command", "offset": 0, "length": 6}]},
    )
    update = {"update_id": bot.next_update_id, "message": _public(message)}
    bot.next_update_id += 1
    headers = {"X-Telegram-Bot-Api-Secret-Token": chaos.WEBHOOK_SECRET}

    async def deliver(http: ClientSession) -> int:
        for _ in range(100):
            async with http.post(
                f"{run.base_url}/webhook/citizen", json=update, headers=headers
            ) as response:
                if response.status == 200:
                    return 200
                assert response.status in (502, 503)
            await asyncio.sleep(0.2)
        return 503

    async with ClientSession(connector=TCPConnector(force_close=True)) as http:
        assert await asyncio.gather(*(deliver(http) for _ in range(5))) == [200] * 5
    texts = await chaos._bot_messages(run, bot, user, since, within=10)
    await asyncio.sleep(1)
    texts = await chaos._bot_messages(run, bot, user, since, within=0)
    assert [t for t in texts if not chaos._is_notice(t)] == [t for t in texts if "✅ Welcome" in t]
    assert len([t for t in texts if "✅ Welcome" in t]) == 1
    conn = await run.connect()
    try:
        visits = await conn.fetchval(
            "SELECT count(*) FROM visits WHERE iin = $1 AND venue_id = $2",
            world.iin_of[user.id],
            venue,
        )
    finally:
        await conn.close()
    assert visits == 1


@pytest.mark.timeout(300)
async def test_a_worker_killed_while_it_handles_an_update_does_not_lose_it(
    run: chaos.Cluster, world: chaos.World
) -> None:
    """Only worker 0 runs; it claims a question and blocks storing it (the test holds a
    lock on the table); it is SIGKILLed there. The sandbox delivers the update again
    (nginx now reaches worker 1 only), and once the claim's lease has lapsed it is
    handled: stored once, answered once."""
    bot, user = run.side.bots["citizen"], world.citizens[-1]
    await run.stop_worker(1)
    question = "blorp zzqx wibble frobnicate 4711"
    conn = await run.connect()
    try:
        lock = conn.transaction()
        await lock.start()
        await conn.execute("LOCK TABLE hotline_unanswered IN ACCESS EXCLUSIVE MODE")
        since = await run.side.sandbox.user_sends(bot, user, question)
        for _ in range(200):  # until worker 0 holds the claim and waits for the lock
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = 'hotline_unanswered'::regclass"
            )
            if waiting:
                break
            await asyncio.sleep(0.1)
        assert waiting
        worker = run.workers[0]
        assert worker is not None
        worker.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.wait, 10)
        run.workers[0] = None
        await lock.rollback()
        await run.start_worker(1)
        texts = await chaos._bot_messages(run, bot, user, since, within=LEASE * 6)
        assert texts, "the killed worker's update was never handled"
        await asyncio.sleep(LEASE + 2)  # a second handling would have come by now
        chat = run.side.sandbox._user_chat(bot, user)
        replies = [
            chat.messages[m]
            for m in chat.bot_changed
            if chat.messages[m]["_seq"] > since
            and not chaos._is_notice(chat.messages[m].get("text") or "")
        ]
        assert len(replies) == 1, [r.get("text") for r in replies]
        stored = await conn.fetchval(
            "SELECT count(*) FROM hotline_unanswered WHERE text = $1", question
        )
        assert stored == 1
    finally:
        await conn.close()
        await run.start_worker(0)
