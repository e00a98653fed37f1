"""A stadium gate through the citizen bot's Mini App: 10,000 people scan the stadium's
entry code within two minutes, each opening the Mini App (a POST with initData signed as
Telegram signs it) and seeing the pass when the POST is answered. No bot message is sent,
so the gate is bounded by the web app, not by the Bot API's 30 messages a second.

Prints the achieved rate, time to the pass (p50/p99), CPU per check-in (the platform
worker, PostgreSQL, Redis, and the bench's own simulated phones), the machine's cores,
the visits stored and the messages the citizen bot sent meanwhile (0 expected).

    .venv/bin/python bench/miniapp_gate.py [--people 10000] [--seconds 120]

Uses DATABASE_URL / REDIS_URL when set, otherwise embedded servers in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from aiohttp import ClientSession, TCPConnector
from ashyq import load_citizens_and_venues  # bench/ is the script's folder
from common import CpuMeter, cpu_seconds, percentile, platform_process, sandbox_server, servers

from bots.sandbox.webapp import sign_init_data
from citybots.logs import setup_logging
from services.db import create_pool


async def run(people: int, seconds: float, connections: int) -> None:
    async with servers() as (database_url, redis_url), sandbox_server() as side:
        pool = await create_pool(database_url, size=4)
        sandbox, citizen = side.sandbox, side.bots["citizen"]
        users = [sandbox.create_user(language_code="en") for _ in range(people)]
        print(f"loading 100,000 citizens and 10,000 venues ({people:,} on the bench)...")
        await load_citizens_and_venues(pool, [u.id for u in users])
        stadium = await pool.fetchrow(
            "SELECT c.token, v.id FROM venue_codes c JOIN entrances e ON e.id = c.entrance_id "
            "JOIN venues v ON v.id = e.venue_id WHERE c.direction = 'entry' "
            "ORDER BY v.id LIMIT 1"
        )
        await pool.execute("UPDATE venues SET name = 'Central Stadium' WHERE id = $1", stadium[1])
        settings = {"DB_POOL_SIZE": "20", "CITIZEN_STATUS_NOTICES": "false"}
        async with (
            platform_process(
                side, database_url, redis_url, log_name="miniapp-gate", settings=settings
            ) as platform,
            ClientSession(connector=TCPConnector(limit=connections)) as http,
        ):
            base = f"http://127.0.0.1:{platform.port}"
            for _ in range(1200):  # until the web app and the bots are up
                platform.check_alive()
                try:
                    async with http.get(f"{base}/healthz") as health:
                        if health.status == 200:
                            break
                except OSError:
                    pass
                await asyncio.sleep(0.5)
            # let the start's catch-up jobs (the loaded results' statuses) finish first:
            # they are no part of the gate, and would be counted in its CPU and latency
            for _ in range(150):
                used = cpu_seconds(platform.process.pid)
                await asyncio.sleep(2)
                if cpu_seconds(platform.process.pid) - used < 0.1:
                    break
            sent_before = sum(len(c.messages) for c in sandbox.chats.values())
            # each phone signs its opening as Telegram would, before the gate opens
            openings = [
                sign_init_data(citizen.token, u.public(), start_param=stadium[0]) for u in users
            ]
            times: list[float] = []
            failed: dict[int, int] = {}
            meter = CpuMeter([platform.process.pid])
            meter.start()
            began = time.perf_counter()

            async def person(index: int) -> None:
                await asyncio.sleep(index * seconds / people - (time.perf_counter() - began))
                sent = time.perf_counter()
                async with http.post(
                    f"{base}/miniapp/api/open", json={"init_data": openings[index]}
                ) as response:
                    answer = await response.json()
                if response.status != 200 or answer.get("screen") not in ("pass", "refused"):
                    failed[response.status] = failed.get(response.status, 0) + 1
                    return
                times.append(time.perf_counter() - sent)

            print(f"{people:,} people through the gate within {seconds:.0f} s...", flush=True)
            await asyncio.gather(*(person(i) for i in range(people)))
            elapsed = time.perf_counter() - began
            meter.stop()
            stored = await pool.fetchval(
                "SELECT count(*) FROM visits WHERE venue_id = $1", stadium[1]
            )
            sent = sum(len(c.messages) for c in sandbox.chats.values()) - sent_before
        await pool.close()
    print(f"cores: {os.cpu_count()}; one platform worker; load average {os.getloadavg()}")
    print(
        f"passes shown: {len(times):,} of {people:,} in {elapsed:.1f} s "
        f"({len(times) / elapsed:,.0f} check-ins/s achieved, {people / seconds:,.0f}/s offered); "
        f"failed: {failed or 0}; visits stored: {stored:,}; bot messages sent: {sent}"
    )
    if times:
        print(
            f"time to the pass (POST answered): p50 {percentile(times, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(times, 0.99) * 1000:.1f} ms, longest {max(times) * 1000:.1f} ms"
        )
    print(meter.report(people, "check-in"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--connections", type=int, default=200, help="phones' connections")
    arguments = parser.parse_args()
    setup_logging("WARNING")
    asyncio.run(run(arguments.people, arguments.seconds, arguments.connections))


if __name__ == "__main__":
    main()
