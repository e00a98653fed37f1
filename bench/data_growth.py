"""Data growth at Almaty's 2020 scale: rows, bytes and WAL per day, and the retention job.

    .venv/bin/python bench/data_growth.py [--hours 1] [--modes 0,5] [--patients 12000]
        [--citizens 2000000] [--checkins-per-day 500000] [--week-days 7]

A private embedded PostgreSQL and Redis (DATABASE_URL / REDIS_URL are ignored: the bench
turns full_page_writes back on, as on a production server, so that the WAL it reads is
the WAL a city would write). For each mode (``QUARANTINE_FIX_SAMPLE_MINUTES``; 0 stores
every fix, as before sampling) a fresh database gets 2 million citizens, 10,000 venues and
12,000 patients at home, then a stretch of ``--hours`` simulated hours: each patient's
phone sends a fix every ~30 s through the real ingest (``QuarantineService.ingest``; 1% of
the patients walk out for 20 minutes, 2% have vague fixes), and check-ins arrive at
500,000 a day (each one an INSERT at the door and an UPDATE at the exit, as the check-in
path does; the notices they cause are not simulated). The stretch is stamped 30 days
back so that the retention job then removes all of it and its time is measured. Figures
per day are the stretch's scaled up (a day here is uniform; a real day has peaks but the
same total).

Then a simulated week (``--week-days``; 0 skips it) on another fresh database of the same
city: day by day, the fix rows the ingest keeps at the default sampling (every patient's
one fix per 5 minutes at home, written in bulk: the ingest itself is measured above) and
500,000 check-ins (in 5-minute slices, each an INSERT at the door and an UPDATE at the
exit, through the open_stays triggers as the check-in path). It prints each day's rows,
bytes and WAL per table, and the week's average projected to 14 and 28 days (a day's
partition goes whole: fixes are kept 15 days, visits 29). The week is stamped to end 29
days ago, so the retention job then drops all of it; its time is printed, and the time
deleting the same visits row by row took before partitioning (rolled back).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from common import servers  # bench/ is the script's folder
from quarantine import ALMATY_CENTRE, load_cases
from redis.asyncio import Redis

from citybots.logs import setup_logging
from services.db import create_pool
from services.location_fixes import Fix
from services.quarantine import IngestReport, QuarantineService
from services.retention import Retention, purge

TABLES = ("location_fixes", "visits", "open_stays", "quarantine_cases")
WEEK_TABLES = ("location_fixes", "visits", "open_stays")
KEPT_DAYS = {"location_fixes": 15, "visits": 29}  # a day goes whole
VENUES = 10_000
FIX_EVERY_S = 30
WORKERS = 4  # concurrent ingest batches, as several bot workers would run them
BATCH = 500


@asynccontextmanager
async def scratch() -> AsyncIterator[tuple[str, str]]:
    """Private embedded servers with full_page_writes on (the embedded test cluster turns
    it off, which would hide most of the WAL)."""
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    async with servers(full_page_writes=True) as urls:
        yield urls


async def sizes(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """Rows and bytes (table, indexes, TOAST; every partition) of each table."""
    result = {}
    for table in TABLES:
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - constants
        size = await conn.fetchval(
            "SELECT pg_total_relation_size($1::regclass) + coalesce((SELECT "
            "sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = $1::regclass), 0)",
            table,
        )
        result[table] = (rows, int(size))
    return result


async def load_city(conn: asyncpg.Connection, citizens: int) -> None:
    started = time.perf_counter()
    await conn.execute(
        "INSERT INTO citizens (tg_user_id, iin, phone) "
        "SELECT 5000000000 + g, '9' || lpad(g::text, 11, '0'), "
        "'+7701' || lpad((g % 10000000)::text, 7, '0') FROM generate_series(1, $1) g",
        citizens,
    )
    await conn.execute(
        "INSERT INTO venues (bin, name) SELECT '971240001315', 'Venue ' || g "
        "FROM generate_series(1, $1) g",
        VENUES,
    )
    await conn.execute("VACUUM ANALYZE")
    print(
        f"  {citizens:,} citizens and {VENUES:,} venues loaded in "
        f"{time.perf_counter() - started:.0f} s"
    )


@dataclass
class Patient:
    tg: int
    lat: float
    lon: float
    walks_at: float | None  # seconds into the stretch
    vague: bool


def patients_of(count: int) -> list[Patient]:
    """The same homes load_cases gives (its seed), with who walks and who is vague."""
    rng = random.Random(3)
    lat0, lon0 = ALMATY_CENTRE
    homes = [(lat0 + rng.uniform(-0.1, 0.1), lon0 + rng.uniform(-0.1, 0.1)) for _ in range(count)]
    pick = random.Random(11)
    return [
        Patient(
            7_000_000_000 + i,
            lat,
            lon,
            pick.uniform(0, 1800) if i % 100 == 0 else None,
            i % 50 == 1,
        )
        for i, (lat, lon) in enumerate(homes)
    ]


def fixes_of(p: Patient, start: datetime, seconds: int, rng: random.Random) -> list[Fix]:
    out = []
    t = rng.uniform(0, FIX_EVERY_S)
    until = start + timedelta(days=1)
    while t < seconds:
        north = rng.uniform(-8, 8)
        accuracy = rng.uniform(120, 300) if p.vague and rng.random() < 0.5 else rng.uniform(5, 30)
        if p.walks_at is not None and p.walks_at <= t < p.walks_at + 1200:
            north = 60 + (t - p.walks_at) * 0.5
            accuracy = 8.0
        out.append(
            Fix(
                p.tg,
                1,
                (start + timedelta(seconds=int(t))),
                p.lat + north / 111_132.0,
                p.lon + rng.uniform(-8, 8) / 81_000.0,
                accuracy,
                until,
            )
        )
        t += FIX_EVERY_S + rng.uniform(-5, 5)
    return out


async def ingest_stretch(
    service: QuarantineService, people: list[Patient], start: datetime, seconds: int
) -> IngestReport:
    """Every patient's fixes through the real ingest, in time order per patient, the
    patients split among WORKERS concurrent streams of batches."""
    rng = random.Random(7)
    total = IngestReport()

    async def stream(group: list[Patient]) -> None:
        fixes = [f for p in group for f in fixes_of(p, start, seconds, rng)]
        fixes.sort(key=lambda f: f.at)
        for i in range(0, len(fixes), BATCH):
            total.add(await service.ingest(fixes[i : i + BATCH]))

    await asyncio.gather(*(stream(people[w::WORKERS]) for w in range(WORKERS)))
    return total


async def check_ins(conn: asyncpg.Connection, start: datetime, seconds: int, per_day: int) -> int:
    """Check-ins spread over the stretch in 5-minute slices: each slice's visitors come in
    (INSERT) and the previous slice's leave (UPDATE), as the scans do."""
    slice_s = 300
    first_venue = await conn.fetchval("SELECT min(id) FROM venues")
    citizens = await conn.fetchval("SELECT count(*) FROM citizens")
    made = 0
    for offset in range(0, seconds, slice_s):
        at = start + timedelta(seconds=offset)
        per_slice = round(per_day * min(slice_s, seconds - offset) / 86_400)
        await conn.execute(
            "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at) "
            "SELECT $1 + (g * 7919) % $2, '9' || lpad((1 + (g % $3))::text, 11, '0'), 'qr', "
            "'green', true, $4::timestamptz + make_interval(secs => (g % 300)::int) "
            "FROM generate_series($5::bigint, $5::bigint + $6 - 1) g",
            first_venue,
            VENUES,
            citizens,
            at,
            made,
            per_slice,
        )
        await conn.execute(
            "UPDATE visits SET checked_out_at = $1, checkout_kind = 'scan' "
            "WHERE checked_out_at IS NULL AND checked_in_at < $2",
            at + timedelta(seconds=slice_s),
            at,
        )
        made += per_slice
    await conn.execute(
        "UPDATE visits SET checked_out_at = $1, checkout_kind = 'scan' "
        "WHERE checked_out_at IS NULL",
        start + timedelta(seconds=seconds + slice_s),
    )
    return made


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024:
            return f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"


def print_projection(table: str, rows: float, size: float) -> None:
    """A table's rows and bytes per day, and what is kept at 14 and 28 days."""
    kept = KEPT_DAYS[table]
    projection = ", ".join(
        f"{d} days {rows * min(d, kept) / 1e6:,.1f} M rows {human(size * min(d, kept))}"
        for d in (14, 28)
    )
    print(f"    {table:15} {rows:>12,.0f} rows/day {human(size):>11}/day; {projection}")


async def timed_retention(
    conn: asyncpg.Connection, pool: asyncpg.Pool, by_rows: str
) -> tuple[float, float, dict[str, int]]:
    """Seconds ``by_rows`` (a DELETE, as retention ran before partitioning) takes, rolled
    back; then seconds the retention job takes, and what it removed."""
    rollback = conn.transaction()
    await rollback.start()
    started = time.perf_counter()
    await conn.execute(by_rows)
    deleting = time.perf_counter() - started
    await rollback.rollback()
    started = time.perf_counter()
    removed = await purge(pool, Retention())
    return deleting, time.perf_counter() - started, removed


async def run_mode(args: argparse.Namespace, sample_minutes: int) -> None:
    print(
        f"\nQUARANTINE_FIX_SAMPLE_MINUTES={sample_minutes}"
        f"{' (every fix stored, as before sampling)' if sample_minutes == 0 else ''}"
    )
    seconds = int(args.hours * 3600)
    scale = 86_400 / seconds
    async with scratch() as (database_url, redis_url):
        pool = await create_pool(database_url, size=WORKERS + 2)
        redis = Redis.from_url(redis_url)
        conn = await asyncpg.connect(database_url)
        try:
            await load_city(conn, args.citizens)
            start = (datetime.now(UTC) - timedelta(days=30)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            await load_cases(pool, args.patients, seen_at=start)
            # Each patient is already sharing (a live message running, a fix just stored):
            # the stretch is a slice of a steady day, not everyone's first minutes.
            await conn.execute(
                "UPDATE quarantine_cases SET live_message_id = 1, live_until = $1, "
                "last_kept_fix_at = $2",
                start + timedelta(days=1),
                start,
            )
            people = patients_of(args.patients)
            await conn.execute(
                "SELECT location_fixes_add_days($1, $2)",
                start.date(),
                (start + timedelta(seconds=seconds)).date(),
            )
            await conn.execute("VACUUM ANALYZE")
            await conn.execute("CHECKPOINT")
            before = await sizes(conn)
            lsn0 = await conn.fetchval("SELECT pg_current_wal_lsn()")
            service = QuarantineService(
                pool, redis, sample_every=timedelta(minutes=sample_minutes)
            )
            started = time.perf_counter()
            ingest = await ingest_stretch(service, people, start, seconds)
            elapsed = time.perf_counter() - started
            lsn1 = await conn.fetchval("SELECT pg_current_wal_lsn()")
            visits = await check_ins(conn, start, seconds, args.checkins_per_day)
            lsn2 = await conn.fetchval("SELECT pg_current_wal_lsn()")
            wal_fixes = float(await conn.fetchval("SELECT $1::pg_lsn - $2::pg_lsn", lsn1, lsn0))
            wal_visits = float(await conn.fetchval("SELECT $1::pg_lsn - $2::pg_lsn", lsn2, lsn1))
            after = await sizes(conn)
            taken = ingest.stored
            print(
                f"  {args.hours:g} h simulated in {elapsed:.0f} s: {taken:,} fixes taken in "
                f"({taken / elapsed:,.0f}/s), {ingest.stored - ingest.sampled:,} stored as "
                f"rows, {ingest.sampled:,} only moved the last-seen state; "
                f"{len(ingest.opened)} alerts opened; {visits:,} check-ins"
            )
            print(f"  per day (the stretch x {scale:g}), and kept at 14 and 28 days:")
            for table in ("location_fixes", "visits"):
                rows = (after[table][0] - before[table][0]) * scale
                size = (after[table][1] - before[table][1]) * scale
                print_projection(table, rows, size)
            grew = after["quarantine_cases"][1] - before["quarantine_cases"][1]
            print(
                f"    quarantine_cases: a row per case updated in place; grew {human(grew)} in "
                f"the stretch (old versions, reused after vacuum: not scaled)"
            )
            for what, wal in (("live-location ingest", wal_fixes), ("check-ins", wal_visits)):
                print(
                    f"    WAL of the {what}: {human(wal * scale)}/day "
                    f"(14 days {human(wal * scale * 14)})"
                )
            by_rows, took, removed = await timed_retention(
                conn,
                pool,
                "DELETE FROM location_fixes WHERE fixed_at < now() - interval '14 days'",
            )
            print(
                f"  retention job (the stretch now 30 days old): {took:.2f} s; removed "
                f"{removed['location_fixes']:,} fixes ({removed['location_fix_days']} day "
                f"partitions dropped), {removed['visits']:,} visits; deleting the same fixes "
                f"row by row, as before partitioning, took {by_rows:.2f} s (rolled back)"
            )
        finally:
            await conn.close()
            await pool.close()
            await redis.aclose()


async def run_week(args: argparse.Namespace) -> None:
    days = args.week_days
    print(
        f"\nA simulated week: {days} days of fixes kept at QUARANTINE_FIX_SAMPLE_MINUTES=5 "
        f"and {args.checkins_per_day:,} check-ins a day"
    )
    async with scratch() as (database_url, _):
        pool = await create_pool(database_url, size=2)
        conn = await asyncpg.connect(database_url)
        try:
            await load_city(conn, args.citizens)
            first = (datetime.now(UTC) - timedelta(days=29 + days)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            await load_cases(pool, args.patients, seen_at=first)
            last_day = (first + timedelta(days=days - 1)).date()
            await conn.execute("SELECT location_fixes_add_days($1, $2)", first.date(), last_day)
            await conn.execute(
                "SELECT day_partitions_add('visits', 'checked_in_at', $1, $2)",
                first.date(),
                last_day,
            )
            await conn.execute("VACUUM ANALYZE")
            await conn.execute("CHECKPOINT")
            totals = {t: [0.0, 0.0] for t in WEEK_TABLES}
            wal_total = 0.0
            print(
                f"  {'day':>4} {'load s':>7} "
                + " ".join(f"{t:>26}" for t in WEEK_TABLES)
                + "        WAL"
            )
            for day in range(days):
                start = first + timedelta(days=day)
                before = await sizes(conn)
                lsn0 = await conn.fetchval("SELECT pg_current_wal_lsn()")
                started = time.perf_counter()
                await conn.execute(
                    "INSERT INTO location_fixes (case_id, message_id, fixed_at, latitude, "
                    "longitude, accuracy, verdict, distance_m) "
                    "SELECT c.id, 1, $1::timestamptz"
                    " + make_interval(secs => g * 300 + c.id % 300),"
                    " c.home_lat, c.home_lon, 12, 'home', 4 "
                    "FROM quarantine_cases c, generate_series(0, 287) g",
                    start,
                )
                await check_ins(conn, start, 86_400, args.checkins_per_day)
                took = time.perf_counter() - started
                lsn1 = await conn.fetchval("SELECT pg_current_wal_lsn()")
                wal = float(await conn.fetchval("SELECT $1::pg_lsn - $2::pg_lsn", lsn1, lsn0))
                after = await sizes(conn)
                cells = []
                for table in WEEK_TABLES:
                    rows = after[table][0] - before[table][0]
                    size = after[table][1] - before[table][1]
                    totals[table][0] += rows
                    totals[table][1] += size
                    cells.append(f"{rows:>12,} rows {human(size):>9}")
                wal_total += wal
                print(f"  {day + 1:>4} {took:>7.0f} " + " ".join(cells) + f" {human(wal):>10}")
            print("  per day (the week's average), and kept at 14 and 28 days:")
            for table in ("location_fixes", "visits"):
                rows, size = (v / days for v in totals[table])
                print_projection(table, rows, size)
            print(
                f"    open_stays: a row per person inside, deleted at the exit; "
                f"{human((await sizes(conn))['open_stays'][1])} after the week "
                f"(dead rows, reused after vacuum)"
            )
            print(
                f"    WAL of the fix rows and check-ins: {human(wal_total / days)}/day "
                f"(14 days {human(wal_total / days * 14)}, 28 days {human(wal_total / days * 28)})"
            )
            await conn.execute("VACUUM ANALYZE visits")
            by_rows, took, removed = await timed_retention(
                conn,
                pool,
                "DELETE FROM visits WHERE checked_in_at < now() - interval '28 days' "
                "AND checked_out_at IS NOT NULL",
            )
            print(
                f"  retention job (the week now 29 to {29 + days} days old): {took:.2f} s; "
                f"dropped {removed['location_fix_days']} days of fixes "
                f"({removed['location_fixes']:,} rows) and {removed['visit_days']} days of "
                f"visits ({removed['visits']:,} rows); deleting the same visits row by row, "
                f"as before partitioning, took {by_rows:.2f} s (rolled back)"
            )
        finally:
            await conn.close()
            await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--modes", default="0,5")
    parser.add_argument("--patients", type=int, default=12_000)
    parser.add_argument("--citizens", type=int, default=2_000_000)
    parser.add_argument("--checkins-per-day", type=int, default=500_000)
    parser.add_argument("--week-days", type=int, default=7)
    args = parser.parse_args()
    setup_logging("WARNING")
    print(
        f"cores: {os.cpu_count()}; {args.patients:,} patients (a fix every ~{FIX_EVERY_S} s), "
        f"{args.citizens:,} citizens, {args.checkins_per_day:,} check-ins a day; "
        f"{args.hours:g} simulated hours per mode, scaled to a day"
    )
    for mode in (int(m) for m in args.modes.split(",") if m):
        await run_mode(args, mode)
    if args.week_days > 0:
        await run_week(args)


if __name__ == "__main__":
    asyncio.run(main())
