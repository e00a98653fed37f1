"""A worker for the job-lock test: every whole second it tries to run the test job under
the scheduler's lock; the job records its tick in PostgreSQL, slowly, in a transaction."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from services.scheduler import run_exclusively


async def main(database_url: str, redis_url: str, table: str, seconds: int) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    redis = Redis.from_url(redis_url)
    end = time.time() + seconds
    while time.time() < end:
        tick = int(time.time()) + 1
        await asyncio.sleep(tick - time.time())

        async def job(tick: int = tick) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"INSERT INTO {table} (tick, pid) VALUES ($1, $2)",  # noqa: S608 - test table
                    tick,
                    os.getpid(),
                )
                print(f"running {tick}", flush=True)
                await asyncio.sleep(0.4)  # a job that takes a while: killed here, it never commits

        await run_exclusively(redis, f"{table}-job", job, hold=timedelta(seconds=0.9))
    await redis.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
