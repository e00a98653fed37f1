"""Importing a year of hourly mobile-operator aggregates for every sector (issue 22 §2),
through the feeds' import (the registers' machinery): a CSV file read twice (the check
for per-subscriber rows, then the import), validated, stored in chunks, the roll-up
hours marked; then the roll-up run that follows.

    .venv/bin/python bench/feeds.py [--sectors 300] [--operators 1] [--days 365]

Uses DATABASE_URL when set (a fresh database `citybots_bench`), otherwise an embedded
PostgreSQL (fsync off) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import BENCH_AUDIT_KEY, CpuMeter, servers  # bench/ is the script's folder

from services.db import create_pool
from services.feeds.store import FeedImporter
from services.registry import CsvSource
from services.rollups import Rollups


def write_file(path: Path, sectors: int, operators: int, days: int) -> int:
    rng = random.Random(5)
    first = date.today() - timedelta(days=days)
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("day,hour,sector,operator,away\n")
        for d in range(days):
            day = (first + timedelta(days=d)).isoformat()
            for hour in range(24):
                for s in range(sectors):
                    for o in range(operators):
                        out.write(f"{day},{hour},Sector {s},Operator {o},{rng.randrange(400)}\n")
                        rows += 1
    return rows


async def main(args: argparse.Namespace) -> None:
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="citybots-feeds-bench-") as tmp:
        path = Path(tmp) / "operators.csv"
        rows = await asyncio.to_thread(write_file, path, args.sectors, args.operators, args.days)
        size = path.stat().st_size
        print(
            f"file: {rows:,} rows ({args.days} days x 24 hours x {args.sectors} sectors x "
            f"{args.operators} operators), {size / 1024**2:.0f} MB",
            flush=True,
        )
        async with servers() as (pg_url, _):
            pool = await create_pool(pg_url, size=4, audit_key=BENCH_AUDIT_KEY)
            importer = FeedImporter(pool, timezone="Asia/Almaty")
            rollups = Rollups(pool, "Asia/Almaty")
            await rollups.refresh()
            meter = CpuMeter([])
            meter.start()
            started = time.perf_counter()
            report = await importer.import_rows("operators", CsvSource(path), source="bench")
            seconds = time.perf_counter() - started
            meter.stop()
            print(
                f"import: {report.accepted:,} rows stored, {report.rejected_total} rejected, "
                f"in {seconds:.1f} s: {rows / seconds:,.0f} rows/s "
                f"({meter.report(max(rows // 1000, 1), '1,000 rows')})",
                flush=True,
            )
            started = time.perf_counter()
            again = await importer.import_rows("operators", CsvSource(path), source="bench")
            print(
                f"the same file again: {again.duplicates:,} duplicates, nothing stored, in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            started = time.perf_counter()
            refreshed = await rollups.refresh()
            assert refreshed is not None
            print(
                f"roll-up run after it: {refreshed.hours:,} hours, {refreshed.days:,} days in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sectors", type=int, default=300)
    parser.add_argument("--operators", type=int, default=1)
    parser.add_argument("--days", type=int, default=365)
    asyncio.run(main(parser.parse_args()))
