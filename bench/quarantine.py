"""Home-quarantine figures: the distance rule against geopy, the silence sweep at 100,000
cases, and live-location fixes ingested end to end with 50,000 active cases.

    .venv/bin/python bench/quarantine.py [distance] [silence] [ingest]
        [--pairs 1000000] [--cases 100000] [--active 50000] [--fixes 300000]

Uses DATABASE_URL / REDIS_URL when set (a fresh database `citybots_bench`), otherwise
embedded servers (fsync off) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta

import asyncpg
import numpy as np
from common import (  # bench/ is the script's folder
    BENCH_AUDIT_KEY,
    SandboxSide,
    platform_process,
    sandbox_server,
    servers,
)
from geopy.distance import geodesic
from redis.asyncio import Redis

from citybots.jobs import SWEEP_INTERVAL
from citybots.logs import setup_logging
from geofence.distance import distance_m, distances_m
from services.db import create_pool
from services.quarantine import SEEN, SILENCE, QuarantineService
from services.scheduler import run_exclusively

ALMATY_CENTRE = (43.2389, 76.8897)


def random_pairs(count: int, seed: int = 11) -> np.ndarray:
    """Points spread over Almaty (±15 km), each with a partner within 200 m of it."""
    rng = np.random.default_rng(seed)
    lat0, lon0 = ALMATY_CENTRE
    lat = lat0 + rng.uniform(-15_000, 15_000, count) / 111_132.0
    lon = lon0 + rng.uniform(-15_000, 15_000, count) / (111_320.0 * math.cos(math.radians(lat0)))
    bearing = rng.uniform(0, 2 * math.pi, count)
    length = rng.uniform(0, 200, count)
    lat2 = lat + length * np.cos(bearing) / 111_132.0
    lon2 = lon + length * np.sin(bearing) / (111_320.0 * np.cos(np.radians(lat)))
    return np.stack([lat, lon, lat2, lon2], axis=1)


def bench_distance(pairs: int) -> None:
    points = random_pairs(pairs)
    started = time.perf_counter()
    reference = np.array([geodesic((a, b), (c, d)).meters for a, b, c, d in points.tolist()])
    geopy_seconds = time.perf_counter() - started
    rows = points.tolist()
    started = time.perf_counter()
    scalar = np.array([distance_m(a, b, c, d) for a, b, c, d in rows])
    scalar_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vector = distances_m(points[:, 0], points[:, 1], points[:, 2], points[:, 3])
    vector_seconds = time.perf_counter() - started
    worst = float(np.max(np.abs(scalar - reference)))
    worst_vector = float(np.max(np.abs(vector - reference)))
    per = 1e6 / pairs
    print(
        f"distance rule, {pairs:,} random pairs within 200 m over Almaty: largest "
        f"disagreement with geopy's geodesic {worst * 1e6:.2f} µm (numpy path "
        f"{worst_vector * 1e6:.2f} µm); goal under 0.1 m"
    )
    print(
        f"  geopy per fix {geopy_seconds * per:.2f} µs; "
        f"ours per fix {scalar_seconds * per:.3f} µs "
        f"({geopy_seconds / scalar_seconds:.0f}x faster); ours in numpy batches "
        f"{vector_seconds * per * 1000:.1f} ns per fix ({geopy_seconds / vector_seconds:,.0f}x)"
    )


async def load_cases(
    pool: asyncpg.Pool,
    count: int,
    *,
    patients: list[int] | None = None,
    seen_at: datetime,
    doctor_tg_user_id: int = 900000001,
) -> None:
    """``count`` consented cases with homes around Almaty, their last fix at ``seen_at``,
    under one doctor (``doctor_tg_user_id``: the doctor's Telegram account)."""
    rng = random.Random(3)
    async with pool.acquire() as conn:
        doctor = await conn.fetchval(
            "INSERT INTO doctors (full_name, district, tg_user_id, joined_at) "
            "VALUES ('Bench doctor', 'Almaly', $1, now()) RETURNING id",
            doctor_tg_user_id,
        )
        lat0, lon0 = ALMATY_CENTRE
        records = []
        for i in range(count):
            lat = lat0 + rng.uniform(-0.1, 0.1)
            lon = lon0 + rng.uniform(-0.1, 0.1)
            records.append(
                (
                    f"B-{i:06d}",
                    doctor,
                    "Almaly",
                    date.today() + timedelta(days=14),
                    f"bench_{i}",
                    lat,
                    lon,
                    "doctor",
                    seen_at,
                    patients[i] if patients else 7_000_000_000 + i,
                    "+77010000000",
                    seen_at,
                    seen_at,
                    seen_at,
                    lat,
                    lon,
                    10.0,
                    "home",
                )
            )
        await conn.copy_records_to_table(
            "quarantine_cases",
            records=records,
            columns=[
                "code",
                "doctor_id",
                "district",
                "isolation_end",
                "invite_token",
                "home_lat",
                "home_lon",
                "home_source",
                "home_confirmed_at",
                "patient_tg_user_id",
                "phone",
                "consented_at",
                "last_fix_at",
                "last_judged_at",
                "last_lat",
                "last_lon",
                "last_accuracy",
                "zone_state",
            ],
        )
        await conn.execute("ANALYZE quarantine_cases")


async def bench_silence(pool: asyncpg.Pool, redis: Redis, cases: int) -> None:
    """100,000 cases watched; 2,000 of them fall silent, their 15-minute marks spread
    over the next 60 s; the sweep runs as the platform runs it (every SWEEP_INTERVAL s,
    under its Redis lock) and each alert's delay past its mark is recorded."""
    quarantine = QuarantineService(pool, redis)
    now = datetime.now(UTC)
    await load_cases(pool, cases, seen_at=now)
    started = time.perf_counter()
    watched = await quarantine.rebuild_index()
    print(
        f"silence: {watched:,} cases watched (index rebuilt from PostgreSQL in "
        f"{time.perf_counter() - started:.2f} s)"
    )
    idle: list[float] = []
    for _ in range(50):
        began = time.perf_counter()
        await quarantine.sweep(datetime.now(UTC))
        idle.append((time.perf_counter() - began) * 1000)
    few: list[float] = []
    async with pool.acquire() as conn:
        for _ in range(20):  # a usual tick: a handful of cases have just fallen silent
            last = datetime.now(UTC) - SILENCE - timedelta(seconds=5)
            silenced = await conn.fetch(
                "UPDATE quarantine_cases SET last_fix_at = $1 WHERE id IN (SELECT id FROM "
                "quarantine_cases WHERE signal_episode_id IS NULL ORDER BY random() LIMIT 10) "
                "RETURNING id",
                last,
            )
            await redis.zadd(SEEN, {str(r["id"]): last.timestamp() for r in silenced})
            began = time.perf_counter()
            await quarantine.sweep(datetime.now(UTC))
            few.append((time.perf_counter() - began) * 1000)
    silent = 2_000
    rng = random.Random(9)
    marks: dict[int, datetime] = {}
    now = datetime.now(UTC)
    free = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM quarantine_cases WHERE signal_episode_id IS NULL"
        )
    ]
    async with pool.acquire() as conn:
        for case_id in rng.sample(free, silent):
            last = now - SILENCE + timedelta(seconds=rng.uniform(5, 65))
            marks[case_id] = last + SILENCE
            await conn.execute(
                "UPDATE quarantine_cases SET last_fix_at = $2, last_judged_at = $2 WHERE id = $1",
                case_id,
                last,
            )
    await redis.zadd(SEEN, {str(c): (m - SILENCE).timestamp() for c, m in marks.items()})
    print(f"  {silent:,} cases fall silent, their 15-minute marks within the next 60 s")
    sweeps: list[tuple[float, int]] = []

    async def tick() -> None:
        began = time.perf_counter()
        report = await quarantine.sweep(datetime.now(UTC))
        sweeps.append(((time.perf_counter() - began) * 1000, report.opened))

    deadline = time.monotonic() + 80
    while time.monotonic() < deadline:
        await run_exclusively(redis, "quarantine-sweep", tick, hold=timedelta(seconds=9))
        await asyncio.sleep(SWEEP_INTERVAL)
    rows = await pool.fetch(
        "SELECT case_id, opened_at, (SELECT min(created_at) FROM outbox o "
        "WHERE o.dedupe_key = 'qalert:' || e.id) AS queued FROM quarantine_episodes e"
    )
    delays = [
        (r["queued"] - marks[r["case_id"]]).total_seconds() for r in rows if r["case_id"] in marks
    ]
    busy = [ms for ms, opened in sweeps if opened]
    print(
        f"  alerts: {len(delays):,} of {silent:,}; delay from the 15-minute mark to the alert "
        f"queued: median {statistics.median(delays):.1f} s, max {max(delays):.1f} s "
        f"(sweep every {SWEEP_INTERVAL} s)"
    )
    print(
        f"  one sweep at {cases:,} cases: nothing due median {statistics.median(idle):.2f} ms "
        f"(max {max(idle):.2f}); 10 due median {statistics.median(few):.1f} ms (max "
        f"{max(few):.1f}); in the run above median {statistics.median(busy):.1f} ms, "
        f"max {max(busy):.1f} ms ({statistics.mean(o for _, o in sweeps if o):.0f} alerts "
        "per sweep)"
    )
    burst = 5_000
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM quarantine_episodes")
        await conn.execute("DELETE FROM outbox")
        await conn.execute(
            "UPDATE quarantine_cases SET signal_episode_id = NULL, zone_episode_id = NULL, "
            "last_fix_at = now(), last_judged_at = now()"
        )
        await conn.execute(
            "UPDATE quarantine_cases SET last_fix_at = now() - interval '20 minutes' "
            "WHERE id IN (SELECT id FROM quarantine_cases ORDER BY random() LIMIT $1)",
            burst,
        )
    await quarantine.rebuild_index()
    began = time.perf_counter()
    report = await quarantine.sweep(datetime.now(UTC))
    print(
        f"  a burst of {report.opened:,} cases due at once (e.g. after a mobile network "
        f"outage): {(time.perf_counter() - began) * 1000:.0f} ms for that sweep"
    )


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def bench_ingest(
    database_url: str, redis_url: str, pool: asyncpg.Pool, active: int, total: int
) -> None:
    """The whole path: each patient's phone moves its live location in the sandbox
    (Telegram's stand-in), the platform (a separate `citybots run` process) long-polls
    the edits, stores and judges them in PostgreSQL, and alerts land in the outbox."""
    async with sandbox_server() as side:
        await _ingest(side, database_url, redis_url, pool, active, total)


async def _ingest(
    side: SandboxSide,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    active: int,
    total: int,
) -> None:
    sandbox = side.sandbox
    quarantine_bot = side.bots["quarantine"]
    users = [sandbox.create_user(language_code="ru") for _ in range(active)]
    await pool.execute("TRUNCATE quarantine_cases, doctors CASCADE")
    now = datetime.now(UTC)
    await load_cases(pool, active, patients=[u.id for u in users], seen_at=now)
    homes = {
        r["patient_tg_user_id"]: (r["home_lat"], r["home_lon"])
        for r in await pool.fetch(
            "SELECT patient_tg_user_id, home_lat, home_lon FROM quarantine_cases"
        )
    }
    live_ids = {}
    for user in users:
        lat, lon = homes[user.id]
        live_ids[user.id] = await sandbox.user_shares_live(
            quarantine_bot,
            user,
            {"latitude": lat, "longitude": lon, "live_period": 28800, "horizontal_accuracy": 10},
            deliver=False,
        )
    rounds = max(1, total // active)
    walkers = set(random.Random(4).sample([u.id for u in users], active // 100))
    rng = random.Random(8)
    t0 = int(now.timestamp())
    bursts = []
    for r in range(rounds):
        moves = []
        for user in users:
            lat, lon = homes[user.id]
            north = 70.0 * min(r, 3) / 3 if user.id in walkers else rng.uniform(-15, 15)
            east = rng.uniform(-10, 10)
            moves.append(
                (
                    user,
                    live_ids[user.id],
                    {
                        "latitude": lat + north / 111_132.0,
                        "longitude": lon + east / 81_000.0,
                        "horizontal_accuracy": 8.0 if user.id in walkers else rng.uniform(5, 30),
                    },
                    t0 + 10 * (r + 1),
                )
            )
        bursts.append(moves)

    async with platform_process(
        side, database_url, redis_url, log_name="quarantine", settings={"DB_POOL_SIZE": "20"}
    ) as platform:
        for _ in range(600):
            try:
                await asyncio.to_thread(metric, platform.port, "citybots_live_fixes_total")
                break
            except OSError:
                platform.check_alive()
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # every bot polling
        sent = 0
        stored_name = 'citybots_live_fixes_total{outcome="stored"}'
        started = time.perf_counter()
        for moves in bursts:
            # Keep about one round in flight, as phones do: each sends every few seconds.
            while sent - await asyncio.to_thread(metric, platform.port, stored_name) > active:  # noqa: ASYNC110 - polls another process
                await asyncio.sleep(0.05)
            await sandbox.users_move(quarantine_bot, moves)
            sent += len(moves)
        while await asyncio.to_thread(metric, platform.port, stored_name) < sent:
            platform.check_alive()
            if time.perf_counter() - started > 600:
                raise SystemExit(f"fixes stopped arriving; see {platform.log_path}")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        stored = await pool.fetchval("SELECT count(*) FROM location_fixes")
        sampled = await asyncio.to_thread(
            metric, platform.port, 'citybots_live_fixes_total{outcome="sampled"}'
        )
        alerts = await pool.fetchval(
            "SELECT count(*) FROM quarantine_episodes WHERE kind = 'left_home'"
        )
        print(
            f"ingest end to end, {active:,} active cases: {sent:,} live-location edits in "
            f"{elapsed:.1f} s = {sent / elapsed:,.0f} fixes/s ingested and evaluated; "
            f"all taken in (the case's state moved), {stored:,} stored as rows and "
            f"{sampled:,.0f} at home not (QUARANTINE_FIX_SAMPLE_MINUTES); {alerts} left-home "
            f"alerts for {len(walkers)} walkers"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["distance", "silence", "ingest"])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=50_000)
    parser.add_argument("--fixes", type=int, default=300_000)
    args = parser.parse_args()
    setup_logging("WARNING")
    print(f"cores: {os.cpu_count()}")
    if "distance" in args.parts:
        bench_distance(args.pairs)
    if not {"silence", "ingest"} & set(args.parts):
        return
    async with servers() as (database_url, redis_url):
        pool = await create_pool(database_url, size=10, audit_key=BENCH_AUDIT_KEY)
        redis = Redis.from_url(redis_url)
        await redis.flushdb()
        if "silence" in args.parts:
            await bench_silence(pool, redis, args.cases)
            await pool.execute("TRUNCATE quarantine_cases, doctors, outbox CASCADE")
            await redis.flushdb()
        if "ingest" in args.parts:
            await bench_ingest(database_url, redis_url, pool, args.active, args.fixes)
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
