"""Permit figures: checks by IIN and by plate at the service layer, 1,000,000 permits.

    .venv/bin/python bench/permits.py [--permits 1000000] [--checks 5000]

Uses DATABASE_URL when set (a fresh database `citybots_bench`), otherwise an embedded
PostgreSQL (fsync off) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from common import BENCH_AUDIT_KEY, percentile, servers  # bench/ is the script's folder
from redis.asyncio import Redis

from services.db import create_pool
from services.permits import PermitService
from services.status import StatusService
from services.validation import with_check_digit

LETTERS = "ABCEHKMOPTXY"


def iin_for(n: int) -> str:
    while True:
        iin = with_check_digit(
            f"{60 + n % 40:02d}{1 + n % 12:02d}{1 + n % 28:02d}3{n % 10000:04d}"
        )
        if iin is not None:
            return iin
        n += 7919


async def load(pool: asyncpg.Pool, permits: int) -> tuple[list[str], list[str]]:
    rng = random.Random(2)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        bins = [
            bin_
            for i in range(10_000)
            if (bin_ := with_check_digit(f"2004400{i:04d}")) is not None
        ]
        await conn.copy_records_to_table(
            "organisations",
            records=[(b, f"Org {b}", "10.71", "+77015550101", True) for b in bins],
            columns=["bin", "name", "activity_code", "head_phone", "allowed"],
        )
        iins: list[str] = []
        plates: list[str] = []
        records = []
        for i in range(permits):
            iin = iin_for(i * 13 + 1)
            letters = "".join(rng.choices(LETTERS, k=3))
            plate = f"{rng.randint(100, 999)}{letters}{rng.randint(1, 20):02d}"
            if i % 2 == 0:
                iins.append(iin)
            else:
                plates.append(plate)
            start = now - timedelta(days=rng.randint(0, 60))
            records.append(
                (
                    "city" if i % 3 else "roadblock",
                    bins[i % len(bins)],
                    iin if i % 2 == 0 else None,
                    plate if i % 2 else None,
                    "work",
                    start,
                    start + timedelta(days=rng.randint(1, 90)),
                    rng.choice(["approved"] * 8 + ["revoked", "pending"]),
                )
            )
        await conn.copy_records_to_table(
            "permits",
            records=records,
            columns=[
                "register",
                "bin",
                "iin",
                "plate",
                "purpose",
                "valid_from",
                "valid_until",
                "state",
            ],
        )
        await conn.execute("ANALYZE")
    return iins, plates


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--permits", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=5_000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    os.environ.pop("REDIS_URL", None)
    async with servers() as (database_url, redis_url):
        pool = await create_pool(database_url, size=4, audit_key=BENCH_AUDIT_KEY)
        started = time.perf_counter()
        iins, plates = await load(pool, args.permits)
        print(f"{args.permits:,} permits loaded in {time.perf_counter() - started:.0f} s")
        redis = Redis.from_url(redis_url)
        service = PermitService(pool, StatusService(pool, redis))
        rng = random.Random(3)
        now = datetime.now(UTC)
        for label, values, check in (
            ("by IIN (the holder's status looked up, never seen before)", iins, service.check_iin),
            ("by plate, as registered", plates, service.check_plate),
            (
                "by plate, typed loosely (Cyrillic, O for 0, one-digit region)",
                [p.replace("A", "А").replace("0", "O", 1) for p in plates],
                service.check_plate,
            ),
        ):
            times: list[float] = []
            for _ in range(args.checks):
                value = rng.choice(values)
                began = time.perf_counter()
                await check(value, at=now, actor="bench")
                times.append((time.perf_counter() - began) * 1000)
            print(
                f"permit check {label}: median {statistics.median(times):.2f} ms, "
                f"p99 {percentile(times, 0.99):.2f} ms over {args.checks:,} checks "
                "(each audited)"
            )
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
