"""Situation-centre figures: page render time with 10 million visits, 1 million hotline
calls and 100,000 quarantine cases stored, and what the roll-up job costs.

    .venv/bin/python bench/situation.py [--visits 10000000] [--calls 1000000]
        [--cases 100000] [--requests 300]

Uses DATABASE_URL / REDIS_URL when set (a fresh database `citybots_bench`), otherwise
embedded servers (fsync off) in a temporary folder. With `--keep DATABASE` the data is
loaded into that database on the DATABASE_URL server and kept, so a second run measures
again without loading (loading 10 million visits takes a quarter of an hour on 2 cores).
The page is served by the panel's own aiohttp application and fetched over loopback by a
logged-in client, so a request's time covers the panel's guard (session look-up), the
queries and the rendering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import ClientSession, web
from common import BENCH_AUDIT_KEY, percentile, servers  # bench/ is the script's folder
from redis.asyncio import Redis

from admin.hotline_pages import setup_hotline_pages
from admin.panel import SESSION_COOKIE, setup_panel
from admin.public import TRUSTED_PROXIES
from admin.situation_pages import setup_situation_pages
from citybots.embedded import free_port
from services.db import create_pool
from services.hotline import HotlineService, Tickets
from services.indicators import IndicatorService
from services.migrations import migrate
from services.panel import PanelError, PanelService
from services.rollups import Rollups
from services.situation import SituationCentre

TIMEZONE = "Asia/Almaty"
DAYS = 60
DISTRICTS = ["Alatau", "Almaly", "Auezov", "Bostandyk", "Zhetysu", "Medeu", "Nauryzbay", "Turksib"]
TOPICS = [
    "faq_symptoms",
    "faq_pcr_testing",
    "faq_status_colors",
    "faq_permit_howto",
    "faq_quarantine_rules",
    "faq_vaccine",
    "faq_checkin_howto",
    "faq_hotline_numbers",
    "faq_what_if_symptoms",
    "faq_no_smartphone",
]


async def load(database_url: str, visits: int, calls: int, cases: int) -> None:
    """Everything generated inside PostgreSQL, in time order as it would arrive."""
    conn = await asyncpg.connect(database_url)
    window = DAYS * 86400
    if await conn.fetchval("SELECT count(*) FROM hotline_calls") >= calls:
        print("data already loaded (--keep)", flush=True)
        await conn.close()
        return
    try:
        steps = [
            (
                f"{visits:,} visits (10,000 venues, last 28 days)",
                f"""
                INSERT INTO venues (bin, name, category)
                SELECT '971240001315', 'Bench venue ' || g, 'other'
                  FROM generate_series(1, 10000) g;
                INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at,
                                    checked_out_at, checkout_kind)
                SELECT v.first + (g % 10000), lpad((g % 100000)::text, 12, '8'), 'qr',
                       CASE WHEN g % 50 = 0 THEN 'red' ELSE 'green' END, g % 50 <> 0, t.at,
                       t.at + make_interval(mins => CASE WHEN g % 50 = 0 THEN 0 ELSE 40 END),
                       CASE WHEN g % 50 = 0 THEN 'refused' ELSE 'scan' END
                  FROM generate_series(1::bigint, {visits}) g
                 CROSS JOIN (SELECT min(id) AS first FROM venues) v
                 CROSS JOIN LATERAL (SELECT now() - interval '28 days'
                                     + make_interval(secs => g * 2419200.0 / {visits}) AS at) t
                """,  # noqa: S608 - numbers
            ),
            (
                f"{calls:,} hotline calls (last {DAYS} days)",
                f"""
                INSERT INTO hotline_calls (agent, topic, outcome, district, at)
                SELECT g % 27, (ARRAY{TOPICS!r})[1 + (g * 7) % {len(TOPICS)}],
                       (ARRAY['answered', 'callback', 'referred', 'ambulance'])[1 + g % 4],
                       (ARRAY{DISTRICTS!r})[1 + (g * 3) % {len(DISTRICTS)}],
                       now() - make_interval(secs => {window} - g * {window}.0 / {calls})
                  FROM generate_series(1, {calls}) g
                """,  # noqa: S608 - numbers and constants
            ),
            (
                f"{cases:,} quarantine cases, 20,000 violations",
                f"""
                INSERT INTO doctors (full_name, district, invite_code)
                SELECT 'Doctor ' || d, d, 'bench-' || d FROM unnest(ARRAY{DISTRICTS!r}) d;
                INSERT INTO quarantine_cases (code, doctor_id, district, isolation_end,
                                              invite_token, created_at, closed_at)
                SELECT 'Q-' || g, d.id, d.district, (t.at + interval '14 days')::date,
                       'bench-token-' || g, t.at,
                       CASE WHEN t.at < now() - interval '14 days' THEN t.at + interval '14 days'
                       END
                  FROM generate_series(1, {cases}) g
                  JOIN LATERAL (SELECT id, district FROM doctors
                                 ORDER BY id OFFSET g % {len(DISTRICTS)} LIMIT 1) d ON true
                 CROSS JOIN LATERAL (SELECT now() - make_interval(
                                     secs => {window} - g * {window}.0 / {cases}) AS at) t;
                INSERT INTO quarantine_episodes (case_id, family, kind, opened_at, closed_at,
                                                 close_kind)
                SELECT c.id, CASE WHEN g % 3 = 0 THEN 'zone' ELSE 'signal' END,
                       (ARRAY['left_home', 'signal_lost', 'sharing_stopped'])[1 + g % 3],
                       c.created_at + interval '2 days', c.created_at + interval '2 days 1 hour',
                       'resolved'
                  FROM generate_series(1, 20000) g
                  JOIN quarantine_cases c ON c.code = 'Q-' || (g * 5)
                """,  # noqa: S608 - numbers and constants
            ),
            (
                "300,000 PCR results (12 laboratories), 50,000 contacts, indicators",
                f"""
                INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory)
                SELECT lpad(g::text, 12, '7'), t.at - interval '6 hours', t.at,
                       CASE WHEN g % 9 = 0 THEN 'positive' ELSE 'negative' END,
                       'Laboratory ' || (1 + g % 12)
                  FROM generate_series(1, 300000) g
                 CROSS JOIN LATERAL (SELECT now() - make_interval(
                                     secs => {window} - g * {window}.0 / 300000) AS at) t;
                INSERT INTO registered_contacts (iin, registered_at, isolation_end)
                SELECT lpad(g::text, 12, '6'), t.at, t.at + interval '14 days'
                  FROM generate_series(1, 50000) g
                 CROSS JOIN LATERAL (SELECT now() - make_interval(
                                     secs => {window} - g * {window}.0 / 50000) AS at) t;
                INSERT INTO daily_indicators (day, indicator, value, entered_by)
                SELECT current_date - d, i, CASE i WHEN 'beds_total' THEN 3000
                       WHEN 'lab_capacity' THEN 6000 ELSE 1200 + d * 10 END, 'bench'
                  FROM generate_series(0, {DAYS - 1}) d,
                       unnest(ARRAY['beds_total', 'beds_occupied', 'lab_capacity']) i
                """,  # noqa: S608 - numbers
            ),
        ]
        for label, sql in steps:
            started = time.perf_counter()
            await conn.execute(sql)
            print(f"loaded {label} in {time.perf_counter() - started:.0f} s", flush=True)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


@asynccontextmanager
async def _servers(keep: str | None) -> AsyncIterator[tuple[str, str]]:
    if keep is None:
        async with servers() as urls:
            yield urls
        return
    base, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    admin = await asyncpg.connect(base)
    if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", keep):
        await admin.execute(f'CREATE DATABASE "{keep}"')
    await admin.close()
    url = urlunsplit(urlsplit(base)._replace(path="/" + keep))
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.close()
    yield url, redis_url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", metavar="DATABASE", help="load into this database and keep it")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    async with _servers(args.keep) as (database_url, redis_url):
        await load(database_url, args.visits, args.calls, args.cases)
        pool = await create_pool(database_url, size=8, audit_key=BENCH_AUDIT_KEY)
        redis = Redis.from_url(redis_url)
        rollups = Rollups(pool, TIMEZONE)
        started = time.perf_counter()
        report = await rollups.refresh()
        assert report is not None
        print(
            f"roll-up, first run over everything stored: {report.hours:,} hours,"
            f" {report.days:,} days in {time.perf_counter() - started:.1f} s"
        )
        raw = await pool.fetchval("SELECT count(*) FROM visits")
        print(f"stored: {raw:,} visits", flush=True)

        # A kept database still has the last run's visitors inside: let them out.
        await pool.execute(
            "UPDATE visits SET checked_out_at = now(), checkout_kind = 'auto'"
            " WHERE admitted AND checked_out_at IS NULL"
        )
        # The steady state: a minute of check-ins at 1,500/s, each its own statement.
        now = datetime.now(UTC)
        await pool.executemany(
            "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at)"
            " SELECT min(id), $1, 'qr', 'green', true, $2 FROM venues",
            [(f"5{n:011d}", now - timedelta(seconds=n % 60)) for n in range(90_000)],
        )
        job_times = []
        for _ in range(5):
            started = time.perf_counter()
            await rollups.refresh()
            job_times.append((time.perf_counter() - started) * 1000)
            await pool.executemany(
                "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at)"
                " SELECT min(id), $1, 'qr', 'green', true, now() FROM venues",
                [(f"3{len(job_times)}{n:010d}",) for n in range(1_000)],
            )
        print(
            "roll-up job, a minute's worth of check-ins (90,000) then 1,000 more each run:"
            f" {job_times[0]:.0f} ms, then median {statistics.median(job_times[1:]):.0f} ms"
        )

        centre = SituationCentre(rollups, IndicatorService(pool))
        load_times = []
        for _ in range(50):
            started = time.perf_counter()
            await centre.load(datetime.now(UTC))
            load_times.append((time.perf_counter() - started) * 1000)
        print(
            f"situation figures alone (queries, no HTML): median"
            f" {statistics.median(load_times):.1f} ms, p95 {percentile(load_times, 0.95):.1f} ms"
        )

        panel = PanelService(pool)
        with contextlib.suppress(PanelError):  # a kept database has the user already
            await panel.create_user(
                "bench-analyst", "analyst", "bench password 1234", actor="bench"
            )
        token, _ = await panel.log_in("bench-analyst", "bench password 1234", client="bench")
        app = web.Application()
        app[TRUSTED_PROXIES] = frozenset()
        setup_panel(app, panel, redis, timezone=TIMEZONE)
        setup_situation_pages(app, centre)
        setup_hotline_pages(app, HotlineService(pool), Tickets(pool), rollups)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with ClientSession(cookies={SESSION_COOKIE: token}) as http:
            fresh = []
            for _ in range(30):
                await rollups.refresh(rebuild=False)
                await pool.execute("UPDATE rollup_state SET refreshed_at = now()")
                started = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/situation") as answer:
                    await answer.read()
                    assert answer.status == 200
                fresh.append((time.perf_counter() - started) * 1000)
            print(
                "/situation page, first view after each roll-up run (figures and charts made"
                f" anew), 30 runs: median {statistics.median(fresh):.1f} ms,"
                f" p95 {percentile(fresh, 0.95):.1f} ms, max {max(fresh):.1f} ms"
            )
            for path in ("/situation", "/hotline"):
                times = []
                for i in range(args.requests + 10):
                    started = time.perf_counter()
                    async with http.get(f"http://127.0.0.1:{port}{path}") as answer:
                        body = await answer.text()
                        assert answer.status == 200, (answer.status, body[:200])
                    if i >= 10:  # the first few warm the caches
                        times.append((time.perf_counter() - started) * 1000)
                print(
                    f"{path} page, {args.requests} requests one after another (roll-ups"
                    " unchanged in between, as between two runs of the job):"
                    f" median {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f}"
                    f" ms, max {max(times):.1f} ms ({len(body) // 1024} KiB)"
                )
        await runner.cleanup()
        await redis.aclose()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
