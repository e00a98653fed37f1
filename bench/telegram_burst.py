"""A crowd at the doors under Telegram's real limits: 3,000 people scan venue codes within
10 s, the sandbox refusing a bot's 31st message in a second (and a chat's beyond its
burst) as Telegram does. Prints who was told and when, check-ins stored, and the 429s
the platform met (it should meet none: every send waits its turn in the shared pacer).

    .venv/bin/python bench/telegram_burst.py [--people 3000] [--seconds 10] [--workers 1]

Uses DATABASE_URL / REDIS_URL when set, otherwise embedded servers in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

from ashyq import entry_tokens, load_citizens_and_venues  # bench/ is the script's folder
from common import (  # bench/ is the script's folder
    BENCH_AUDIT_KEY,
    percentile,
    platform_process,
    sandbox_server,
    servers,
    worker_settings,
)

from citybots.logs import setup_logging
from services.db import create_pool


async def run(people: int, seconds: float, workers: int, patience: float) -> None:
    async with servers() as (database_url, redis_url), sandbox_server() as side:
        pool = await create_pool(database_url, size=10, audit_key=BENCH_AUDIT_KEY)
        sandbox, citizen = side.sandbox, side.bots["citizen"]
        users = [sandbox.create_user(language_code="en") for _ in range(people)]
        await load_citizens_and_venues(pool, [u.id for u in users])
        tokens = await entry_tokens(pool)
        settings = worker_settings(workers)
        async with platform_process(
            side, database_url, redis_url, log_name="burst", settings=settings
        ) as platform:
            await platform.until_answering(side)
            await asyncio.sleep(1.5)  # the probe's chat burst and the bot's second settle
            refused_before = sandbox.limits.refused_total
            by_limit_before = dict(sandbox.limits.refused_by_limit)
            told_after: list[float] = []
            began = time.perf_counter()

            async def person(index: int) -> None:
                await asyncio.sleep(index * seconds / people)
                user = users[index]
                sent = time.perf_counter()
                since = await sandbox.user_sends(citizen, user, f"/start {random.choice(tokens)}")
                try:
                    await asyncio.wait_for(
                        sandbox.wait_for_replies(citizen, user, since), patience
                    )
                except TimeoutError:
                    return
                told_after.append(time.perf_counter() - sent)

            print(f"{people:,} people scanning within {seconds:.0f} s...", flush=True)
            await asyncio.gather(*(person(i) for i in range(people)))
            elapsed = time.perf_counter() - began
            stored = await pool.fetchval("SELECT count(*) FROM visits WHERE via = 'qr'")
            refused = sandbox.limits.refused_total - refused_before
            by_limit = {
                limit: count - by_limit_before.get(limit, 0)
                for limit, count in sandbox.limits.refused_by_limit.items()
            }
        await pool.close()
    print(f"cores: {os.cpu_count()}; platform workers: {workers}")
    print(
        f"people told: {len(told_after):,} of {people:,} "
        f"({sum(t <= 10 for t in told_after):,} within 10 s, "
        f"{sum(t <= 60 for t in told_after):,} within 60 s, "
        f"{sum(t <= 180 for t in told_after):,} within 3 minutes); "
        f"check-ins stored: {stored:,}; run {elapsed:.0f} s"
    )
    if told_after:
        print(
            f"time to be told: median {percentile(told_after, 0.5):.1f} s, "
            f"p99 {percentile(told_after, 0.99):.1f} s, longest {max(told_after):.1f} s"
        )
    print(f"429s Telegram's limits gave the platform: {refused} {by_limit or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--patience", type=float, default=600.0, help="longest wait for a reply")
    arguments = parser.parse_args()
    setup_logging("WARNING")
    asyncio.run(run(arguments.people, arguments.seconds, arguments.workers, arguments.patience))


if __name__ == "__main__":
    main()
