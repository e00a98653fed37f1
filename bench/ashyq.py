"""Ashyq figures: PCR import rows/s, warm status look-ups/s, exposure search time with
10 million visits, and check-ins/s through the whole path.

    .venv/bin/python bench/ashyq.py [import] [status] [exposure] [checkins]
        [--visits 10000000] [--checkins 20000] [--concurrency 300]

Uses DATABASE_URL / REDIS_URL when set (a fresh database `citybots_bench` is made on
that server), otherwise embedded servers (fsync off) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from common import (  # bench/ is the script's folder
    BENCH_AUDIT_KEY,
    CpuMeter,
    SandboxSide,
    percentile,
    platform_process,
    sandbox_server,
    servers,
    worker_settings,
)
from redis.asyncio import Redis

from citybots.logs import setup_logging
from citybots.settings import load_settings
from citybots.wiring import Services, build_services
from services.db import create_pool
from services.localcache import InvalidationListener
from services.registry_rows import CsvSource
from services.rollups import Rollups
from services.validation import _check_digit

CITIZENS = 100_000
VENUES = 10_000


def iins(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    result: list[str] = []
    seen: set[str] = set()
    while len(result) < count:
        body = f"{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        body += f"{rng.choice('34')}{rng.randint(0, 9999):04d}"
        digit = _check_digit(body)
        if digit is None or body in seen:
            continue
        seen.add(body)
        result.append(body + str(digit))
    return result


async def bench_import(
    services: Services, tmp: Path, rows: int = 500_000, linked: int = 100_000
) -> None:
    """A laboratory's file of ``rows`` results for ``rows / 2`` people, ``linked`` of whom
    have linked their IIN in the bot (every write marks them to be told), then the same
    file again, then a file of corrections (another outcome, a later result time)."""
    people = iins(rows // 2, seed=7)
    now = datetime.now(UTC).replace(microsecond=0)
    await services.importer.pool.executemany(
        "INSERT INTO citizens (tg_user_id, iin, phone) VALUES ($1, $2, $3)",
        [(10**9 + i, iin, f"+7700{i:07d}") for i, iin in enumerate(people[:linked])],
    )

    def sample(i: int) -> tuple[str, datetime, datetime, str, str]:
        sampled = now - timedelta(minutes=600 + i % 5000)
        verdict = "positive" if i % 97 == 0 else "negative"
        return (
            people[i % len(people)],
            sampled,
            sampled + timedelta(hours=5),
            verdict,
            f"Lab {i % 7}",
        )

    path = tmp / "pcr.csv"
    with path.open("w") as out:
        out.write("iin,sampled_at,result_at,result,laboratory\n")
        for i in range(rows):
            iin, sampled, result, verdict, lab = sample(i)
            out.write(f"{iin},{sampled.isoformat()},{result.isoformat()},{verdict},{lab}\n")
    services.importer.on_positives = None  # the import alone; exposure has its own figure
    meter = CpuMeter(workers=[])
    meter.start()
    report = await services.importer.import_rows("pcr", CsvSource(path).rows())
    meter.stop()
    again = await services.importer.import_rows("pcr", CsvSource(path).rows())
    print(
        f"PCR import: {report.rows:,} rows in {report.seconds:.2f} s = "
        f"{report.rows / report.seconds:,.0f} rows/s (added {report.accepted:,}; "
        f"{linked:,} of the {len(people):,} people linked in the bot); "
        f"re-import of the same file {again.rows / again.seconds:,.0f} rows/s, "
        f"added {again.accepted}"
    )
    print(f"PCR import, {meter.report(report.rows // 1000, '1,000 rows')}")
    if not hasattr(report, "corrected"):
        return
    corrections = tmp / "corrections.csv"
    count = rows // 100
    with corrections.open("w") as out:
        out.write("iin,sampled_at,result_at,result,laboratory\n")
        for i in range(0, rows, rows // count):
            iin, sampled, result, verdict, lab = sample(i)
            flipped = "negative" if verdict == "positive" else "positive"
            later = result + timedelta(hours=1)
            out.write(f"{iin},{sampled.isoformat()},{later.isoformat()},{flipped},{lab}\n")
    fixed = await services.importer.import_rows("pcr", CsvSource(corrections).rows())
    print(
        f"PCR corrections: {fixed.rows:,} rows in {fixed.seconds:.2f} s = "
        f"{fixed.rows / fixed.seconds:,.0f} rows/s (corrected {fixed.corrected:,}, each "
        f"superseding a stored result)"
    )


async def bench_status(services: Services, lookups: int = 200_000) -> None:
    """Warm look-ups as a running worker makes them: Redis cache plus the in-process
    cache its invalidation listener keeps true; also with Redis alone for comparison."""
    people = iins(1_000, seed=11)
    for iin in people:  # warm the Redis cache
        await services.statuses.status(iin)
    await _time_status(services, people, lookups, "Redis cache only (no listener)")
    listener = InvalidationListener(services.statuses.redis, [services.statuses.local])
    await listener.start()
    try:
        for iin in people:
            await services.statuses.status(iin)
        await _time_status(services, people, lookups, "in-process cache + Redis, as a worker")
    finally:
        await listener.stop()


async def _time_status(services: Services, people: list[str], lookups: int, label: str) -> None:
    per_worker = lookups // 64

    async def worker(offset: int) -> None:
        for i in range(per_worker):
            await services.statuses.status(people[(offset + i) % len(people)])

    started = time.perf_counter()
    await asyncio.gather(*(worker(w * 17) for w in range(64)))
    elapsed = time.perf_counter() - started
    lookups = per_worker * 64
    print(
        f"status look-ups, warm, {label}: {lookups:,} in {elapsed:.2f} s = "
        f"{lookups / elapsed:,.0f}/s (64 concurrent callers, one process)"
    )


async def load_visits(database_url: str, visits: int) -> None:
    """Venues, then visits generated inside PostgreSQL (no round trips), then ANALYZE;
    on a connection of its own, without the pool's command timeout."""
    conn = await asyncpg.connect(database_url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM visits")
        if have >= visits:
            return
        await conn.execute(
            f"""
            INSERT INTO venues (bin, name, category)
            SELECT '971240001315', 'Bench venue ' || g, 'other' FROM generate_series(1, {VENUES}) g
            """  # noqa: S608 - constants
        )
        people = iins(CITIZENS, seed=3)
        await conn.execute("CREATE TEMP TABLE people (n int, iin text)")
        await conn.copy_records_to_table("people", records=list(enumerate(people)))
        await conn.execute(
            "INSERT INTO citizens (tg_user_id, iin, phone) "
            "SELECT 6000000000 + n, iin, '+7701' || lpad(n::text, 7, '0') FROM people "
            "ON CONFLICT DO NOTHING"
        )
        started = time.perf_counter()
        await conn.execute(
            f"""
            INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at,
                                checked_out_at, checkout_kind)
            SELECT v.first + (g % {VENUES}), p.iin, 'qr', 'green', true, t.at,
                   t.at + make_interval(mins => (20 + (g * 7) % 160)::int), 'scan'
              FROM generate_series(1::bigint, {visits}) g
              JOIN people p ON p.n = ((g * 7919) % {CITIZENS})::int
              CROSS JOIN (SELECT min(id) AS first FROM venues) v
              CROSS JOIN LATERAL (
                  SELECT now() - make_interval(secs => (g * 104729) % 1209600) AS at) t
            """  # noqa: S608 - constants
        )
        await conn.execute("ANALYZE visits")
        print(f"loaded {visits:,} visits in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def bench_exposure(
    services: Services, pool: asyncpg.Pool, database_url: str, visits: int
) -> None:
    await load_visits(database_url, visits)
    candidates = await pool.fetch(
        "SELECT iin FROM visits WHERE checked_in_at > now() - interval '10 days' "
        "GROUP BY iin LIMIT 30"
    )
    searches = []
    for row in candidates:  # the read-only search alone, for comparison
        started = time.perf_counter()
        await pool.fetchval(
            """
            SELECT count(*) FROM visits mine
              JOIN visits other ON other.venue_id = mine.venue_id AND other.stay && mine.stay
                               AND other.admitted AND other.iin <> mine.iin
             WHERE mine.iin = $1 AND mine.admitted
               AND mine.checked_in_at >= now() - interval '15 days'
            """,
            row["iin"],
        )
        searches.append((time.perf_counter() - started) * 1000)
    print(
        f"exposure search alone (read-only, same cases): median "
        f"{statistics.median(searches):.1f} ms, p95 {percentile(searches, 0.95):.1f} ms"
    )
    timings, found = [], []
    for row in candidates:
        result_id = await pool.fetchval(
            "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory) "
            "VALUES ($1, now() - interval '1 day', now(), 'positive', 'Bench') RETURNING id",
            row["iin"],
        )
        started = time.perf_counter()
        found.append(await services.exposure.on_positive_results([result_id]))
        timings.append((time.perf_counter() - started) * 1000)
    stays = await pool.fetchval(
        "SELECT count(*)::float / count(DISTINCT iin) FROM visits "
        "WHERE checked_in_at > now() - interval '14 days'"
    )
    print(
        f"exposure search, {visits:,} visits stored ({stays:.0f} stays per person in 14 days):"
        f" median {statistics.median(timings):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms,"
        f" max {max(timings):.1f} ms over {len(timings)} new positive cases "
        f"(median {statistics.median(found):.0f} exposed visits each, notices recorded "
        f"and queued in the same time)"
    )


async def bench_checkins(
    side: SandboxSide,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    total: int,
    concurrency: int,
    with_exits: bool,
    workers: int,
    profile: str | None = None,
    history: int = 0,
) -> None:
    """The whole path: a user's scan enters the sandbox (Telegram's stand-in, ``side``),
    the platform (a separate `citybots run` process, so the two use both cores as Telegram
    and the bots would) long-polls it, checks in in PostgreSQL, and the reply is visible."""
    sandbox, bots = side.sandbox, side.bots
    users = [sandbox.create_user(language_code="en") for _ in range(concurrency * 4)]

    await load_citizens_and_venues(pool, [u.id for u in users], history=history)
    tokens = await entry_tokens(pool)
    exits = {
        r["venue"]: r["token"]
        for r in await pool.fetch(
            "SELECT e.venue_id AS venue, c.token FROM venue_codes c JOIN entrances e "
            "ON e.id = c.entrance_id WHERE c.direction = 'exit'"
        )
    }
    entry_venue = {
        r["token"]: r["venue"]
        for r in await pool.fetch(
            "SELECT c.token, e.venue_id AS venue FROM venue_codes c JOIN entrances e "
            "ON e.id = c.entrance_id WHERE c.direction = 'entry'"
        )
    }

    settings = worker_settings(workers)
    citizen = bots["citizen"]
    async with platform_process(
        side, database_url, redis_url, log_name="ashyq", settings=settings
    ) as platform:
        await platform.until_answering(side)
        latencies: list[float] = []
        done = 0
        queue = list(range(total))

        async def visitor(user_index: int) -> None:
            nonlocal done
            user = users[user_index]
            token = ""
            while queue:
                queue.pop()
                token = random.choice([t for t in random.sample(tokens, 2) if t != token])
                sent = time.perf_counter()
                since = await sandbox.user_sends(citizen, user, f"/start {token}")
                replies = await sandbox.wait_for_replies(citizen, user, since)
                latencies.append((time.perf_counter() - sent) * 1000)
                assert replies[-1]["text"].startswith(("✅", "You were checked out")), replies
                done += 1
                if with_exits:
                    since = await sandbox.user_sends(
                        citizen, user, f"/start {exits[entry_venue[token]]}"
                    )
                    await sandbox.wait_for_replies(citizen, user, since)

        meter = CpuMeter([platform.process.pid])
        spy = None
        if profile:  # py-spy (from PyPI) samples the platform process during the timing
            spy = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(platform.process.pid),
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--output",
                    profile,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1)
        load_before = os.getloadavg()[0]
        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(visitor(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        meter.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
        stored = await pool.fetchval("SELECT count(*) FROM visits WHERE via = 'qr'")
        scans = done * (2 if with_exits else 1)
        kind = (
            "entry and exit scans" if with_exits else "entry scans; the next entry closes a stay"
        )
        print(
            f"check-ins through the whole path ({kind}): {done:,} check-ins in "
            f"{elapsed:.1f} s = {done / elapsed:,.0f} check-ins/s, "
            f"{scans / elapsed:,.0f} scans/s; reply latency median "
            f"{statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms;"
            f" {concurrency} visitors at once; {stored:,} visits stored"
        )
        print(
            f"  {meter.report(done, 'check-in')}; nproc {os.cpu_count()}, load average "
            f"{load_before:.2f} before and {os.getloadavg()[0]:.2f} after the run"
        )


async def entry_tokens(pool: asyncpg.Pool) -> list[str]:
    """The venues' entry codes in force, as visitors scan them."""
    rows = await pool.fetch(
        "SELECT token FROM venue_codes WHERE direction = 'entry' AND revoked_at IS NULL"
    )
    return [r["token"] for r in rows]


async def load_citizens_and_venues(
    pool: asyncpg.Pool,
    active_users: list[int],
    *,
    citizens: int = CITIZENS,
    venues: int = VENUES,
    history: int = 0,
) -> None:
    """100,000 linked citizens (the first ones on the sandbox users the bench drives),
    10,000 venues with an entrance and entry/exit codes, statuses for most people, and
    ``history`` past visits of those people at those venues over the last 14 days (a
    city that has been checking people in, with its statistics gathered, rather than an
    empty table whose query plans assume it is empty)."""
    people = iins(citizens, seed=5)
    async with pool.acquire() as conn:
        base_id = 5_000_000_000
        accounts = [
            active_users[i] if i < len(active_users) else base_id + i for i in range(citizens)
        ]
        await conn.copy_records_to_table(
            "citizens",
            records=[(accounts[i], people[i], f"+7701{i:07d}") for i in range(citizens)],
            columns=["tg_user_id", "iin", "phone"],
        )
        now = datetime.now(UTC)
        await conn.copy_records_to_table(
            "pcr_results",
            records=[
                (
                    people[i],
                    now - timedelta(hours=30),
                    now - timedelta(hours=20),
                    "negative",
                    "Bench lab",
                )
                for i in range(0, citizens, 2)
            ],
            columns=["iin", "sampled_at", "result_at", "result", "laboratory"],
        )
        first = await conn.fetchval(
            f"""
            INSERT INTO venues (bin, name, category)
            SELECT '971240001315', 'Checkin venue ' || g, 'food'
              FROM generate_series(1, {venues}) g RETURNING id
            """  # noqa: S608
        )
        del first
        await conn.execute(
            "INSERT INTO entrances (venue_id, name) SELECT id, 'Main' FROM venues "
            "WHERE name LIKE 'Checkin venue %'"
        )
        entrances = await conn.fetch(
            "SELECT e.id FROM entrances e JOIN venues v ON v.id = e.venue_id "
            "WHERE v.name LIKE 'Checkin venue %'"
        )
        await conn.copy_records_to_table(
            "venue_codes",
            records=[
                (f"{prefix}{secrets.token_urlsafe(16)}", e["id"], direction)
                for e in entrances
                for prefix, direction in (("in_", "entry"), ("out_", "exit"))
            ],
            columns=["token", "entrance_id", "direction"],
        )
    if history:
        started = time.perf_counter()
        await pool.execute(
            """
            INSERT INTO visits (venue_id, entrance_id, iin, via, status, admitted,
                                checked_in_at, checked_out_at, checkout_kind)
            SELECT e.venue[1 + g % cardinality(e.venue)], e.id[1 + g % cardinality(e.id)],
                   c.iin[1 + (g * 7919) % cardinality(c.iin)], 'qr', 'green', true, t.at,
                   t.at + make_interval(mins => (20 + (g * 7) % 160)::int), 'scan'
              FROM generate_series(1::bigint, $1::bigint) g
             CROSS JOIN (SELECT array_agg(n.venue_id ORDER BY n.id) AS venue,
                                array_agg(n.id ORDER BY n.id) AS id
                           FROM entrances n JOIN venues v ON v.id = n.venue_id
                          WHERE v.name LIKE 'Checkin venue %') e
             CROSS JOIN (SELECT array_agg(iin ORDER BY iin) AS iin FROM citizens) c
             CROSS JOIN LATERAL (
                 SELECT now() - interval '1 day'
                        - make_interval(secs => (g * 104729) % 1123200) AS at) t
            """,
            history,
            timeout=3600,
        )
        print(f"loaded {history:,} past visits in {time.perf_counter() - started:.0f} s")
    # Settle the load before the timing: the platform's first roll-up of the loaded
    # results, autovacuum and the checkpoint after it would otherwise land in the
    # measured window and in PostgreSQL's CPU.
    await Rollups(pool, load_settings(_env_file=None).city_timezone).refresh()
    async with pool.acquire() as conn:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["import", "status", "exposure", "checkins"])
    parser.add_argument("--visits", type=int, default=10_000_000)
    parser.add_argument("--checkins", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=300)
    parser.add_argument("--with-exits", action="store_true", help="scan out after each entry")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (above 1: webhook mode, sharing the port)",
    )
    parser.add_argument("--profile", help="py-spy's raw stacks of the platform to this file")
    parser.add_argument(
        "--history",
        type=int,
        default=300_000,
        help="past visits stored before the check-ins are timed (default 300,000)",
    )
    args = parser.parse_args()
    setup_logging("WARNING")
    print(f"cores: {os.cpu_count()}")
    async with servers() as (database_url, redis_url):
        pool = await create_pool(database_url, size=20, audit_key=BENCH_AUDIT_KEY)
        redis = Redis.from_url(redis_url)
        services = build_services(pool, redis, load_settings(_env_file=None))
        with tempfile.TemporaryDirectory() as tmp:
            if "import" in args.parts:
                await bench_import(services, Path(tmp))
            if "status" in args.parts:
                await bench_status(services)
            if "checkins" in args.parts:
                async with sandbox_server() as side:
                    await bench_checkins(
                        side,
                        database_url,
                        redis_url,
                        pool,
                        args.checkins,
                        args.concurrency,
                        args.with_exits,
                        args.workers,
                        args.profile,
                        args.history,
                    )
            if "exposure" in args.parts:
                await bench_exposure(services, pool, database_url, args.visits)
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
