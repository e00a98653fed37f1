"""Faults under load: N `citybots run` workers behind nginx, on private PostgreSQL and
Redis the harness owns, driven through the sandbox by simulated people doing a mixed
load (venue check-ins, status look-ups, FAQ questions, live-location fixes from
quarantined patients, positive PCR results that make exposure notices, patients leaving
home that make doctors' alerts), while one fault strikes:

    postgres   PostgreSQL stopped (fast) mid-load and started again
    redis      Redis stopped mid-load and started again (empty: it keeps nothing)
    worker     one worker SIGKILLed mid-load; nginx sends its traffic to the others and
               the harness, as a supervisor would, starts it again
    telegram   the sandbox answers 429 (retry_after 1) to 10% of sends and 502 to 1%
    none       no fault: the sustained figure

For each run it counts what people were told (a success reply in the chat) against what
PostgreSQL stored and what the sandbox delivered: lost (acknowledged, not stored or not
delivered) and doubled (two rows or two deliveries for one action), who got a clear
"temporarily unavailable", how long service took to come back, throughput and latency.

    .venv/bin/python bench/chaos.py [postgres redis worker telegram none ...]
        [--seconds 120] [--minutes M] [--workers 2] [--people 200] [--patients 100]

A library too: tests/e2e/test_chaos.py runs short versions of each fault through it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import ClientError, ClientSession, ClientTimeout
from ashyq import iins, load_citizens_and_venues  # bench/ is the script's folder
from common import SERVER_PIDS, CpuMeter, SandboxSide, percentile, sandbox_server, server_pids
from quarantine import load_cases

from bots.sandbox.model import SandboxBot, SandboxUser
from citybots.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from citybots.logs import setup_logging
from flows.notices import render_notice
from presentation.i18n import text
from services.labs import LabService
from services.migrations import migrate

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WEBHOOK_SECRET = "chaos-webhook-secret-0123"  # noqa: S105 - a test value
AUDIT_KEY = "chaos-audit-chain-key-0123456789abcdef"
FAULTS = ("postgres", "redis", "worker", "telegram", "none")
TZ = ZoneInfo("Asia/Almaty")
FAQ_QUESTIONS = (
    "how does the coronavirus spread",
    "what are the symptoms of covid",
    "is there a vaccine",
    "what is covid-19",
)
UNAVAILABLE = text("en", "errors.unavailable")
INTERNAL = text("en", "errors.internal")


def nginx_available() -> bool:
    return Path(NGINX).is_file() and os.access(NGINX, os.X_OK)


def nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> str:
    """A load balancer of our own: no root paths, in the foreground; a request a worker
    could not take (refused, reset, timed out) goes to the next worker, POSTs included:
    an update is claimed in PostgreSQL, so a second delivery takes effect once."""
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams
    )
    return f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream citybots {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://citybots;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries {len(upstreams)};
            proxy_connect_timeout 2s;
            proxy_read_timeout 90s;
        }}
    }}
}}
"""


def _healthy(port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - ours
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@dataclass
class Cluster:
    """PostgreSQL, Redis, the sandbox, nginx and the workers, all owned by the harness."""

    tmp: Path
    pg: EmbeddedPostgres
    rd: EmbeddedRedis
    database_url: str
    redis_url: str
    side: SandboxSide
    nginx_port: int
    ports: list[int]
    lease: int
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def _env(self, index: int) -> dict[str, str]:
        side = self.side
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "DATA_DIR": str(self.tmp / f"worker-{index}"),
            "AUDIT_CHAIN_KEY": AUDIT_KEY,
            "LOG_LEVEL": "WARNING",
            "TELEGRAM_API_BASE": side.api_base,
            "ADMIN_PORT": str(self.ports[index]),
            "WEBHOOK_BASE_URL": self.base_url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WORKERS": "1",
            "DB_POOL_SIZE": "20",
            "UPDATE_LEASE_SECONDS": str(self.lease),
            "DEFAULT_LANGUAGE": "en",
            **{f"{name.upper()}_BOT_TOKEN": bot.token for name, bot in side.bots.items()},
        }

    def log_path(self, index: int) -> Path:
        return self.tmp / f"worker-{index}.log"

    async def start_worker(self, index: int, *, within: float = 120) -> float:
        """Start worker ``index`` and wait until its /healthz is green; seconds taken."""
        started = time.monotonic()
        with self.log_path(index).open("ab") as log:
            process = subprocess.Popen(  # noqa: ASYNC220 - a process of its own, once
                [sys.executable, "-m", "citybots.cli", "run"],
                env=self._env(index),
                cwd=self.tmp,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.workers[index] = process
        while not await asyncio.to_thread(_healthy, self.ports[index]):
            if process.poll() is not None or time.monotonic() - started > within:
                raise RuntimeError(f"worker {index} did not start; see {self.log_path(index)}")
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def kill_worker(self, index: int) -> None:
        process = self.workers[index]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        self.workers[index] = None

    async def stop_worker(self, index: int) -> None:
        process = self.workers[index]
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
        self.workers[index] = None

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.pg.stop_keeping_port)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.pg.resume)

    async def stop_redis(self) -> None:
        await asyncio.to_thread(self.rd.stop_keeping_port)

    async def start_redis(self) -> None:
        await asyncio.to_thread(self.rd.resume)

    async def connect(self) -> asyncpg.Connection:
        """A connection of the harness's own (after a restart, the old ones are gone)."""
        for _ in range(100):
            try:
                return await asyncpg.connect(self.database_url)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.2)
        return await asyncpg.connect(self.database_url)


@asynccontextmanager
async def cluster(workers: int = 2, *, lease: int = 60) -> AsyncIterator[Cluster]:
    """Everything a run needs, started; stopped again on leaving."""
    if not nginx_available():
        raise RuntimeError(f"nginx is not installed ({NGINX}): apt-get install nginx-light")
    with tempfile.TemporaryDirectory(prefix="citybots-chaos-") as name:
        tmp = Path(name)
        pg = EmbeddedPostgres(tmp / "pg", fast=True, for_tests=True)
        rd = EmbeddedRedis(tmp / "redis", persist=False)
        database_url = await asyncio.to_thread(pg.start)
        try:
            redis_url = await asyncio.to_thread(rd.start)
            conn = await asyncpg.connect(database_url)
            await migrate(conn)
            await conn.close()
            async with sandbox_server() as side:
                run = Cluster(
                    tmp=tmp,
                    pg=pg,
                    rd=rd,
                    database_url=database_url,
                    redis_url=redis_url,
                    side=side,
                    nginx_port=free_port(),
                    ports=[free_port() for _ in range(workers)],
                    lease=lease,
                    workers=[None] * workers,
                )
                conf = tmp / "nginx.conf"
                conf.write_text(nginx_conf(tmp, run.nginx_port, run.ports))
                run.nginx = subprocess.Popen(  # noqa: ASYNC220 - started once
                    [NGINX, "-c", str(conf), "-p", str(tmp)],
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp / "nginx.out").open("ab"),
                )
                try:
                    await run.start_worker(0)  # the first applies any migrations alone
                    await asyncio.gather(*(run.start_worker(i) for i in range(1, workers)))
                    yield run
                finally:
                    await asyncio.gather(*(run.stop_worker(i) for i in range(workers)))
                    run.nginx.send_signal(signal.SIGQUIT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.to_thread(run.nginx.wait, 10)
                    if run.nginx.poll() is None:
                        run.nginx.kill()
        finally:
            await asyncio.to_thread(rd.stop)
            await asyncio.to_thread(pg.stop)


# ------------------------------------------------------------------ the people


@dataclass
class Action:
    kind: str  # checkin, status, faq
    user: int
    started: float
    acked_at: float | None = None
    attempts: int = 0
    venue: int | None = None


@dataclass
class Load:
    """What the simulated people did and were told."""

    actions: list[Action] = field(default_factory=list)
    told_unavailable: set[int] = field(default_factory=set)
    unavailable_messages: int = 0
    internal_messages: int = 0
    timeouts: int = 0
    fixes_sent: set[tuple[int, int, int]] = field(default_factory=set)  # user, message, at
    walkers_out: set[int] = field(default_factory=set)
    pcr_acked: int = 0
    began: datetime = field(default_factory=lambda: datetime.now(UTC))
    pcr_attempts: int = 0
    ack_times: list[float] = field(default_factory=list)


@dataclass
class World:
    """The people and places a run's load uses (made before the load starts)."""

    citizens: list[SandboxUser]
    patients: list[SandboxUser]
    doctor: SandboxUser
    live_message: dict[int, int]
    homes: dict[int, tuple[float, float]]
    entry_tokens: dict[int, str]  # venue id -> an entry code
    iin_of: dict[int, str]
    sick: list[str]
    lab_key: str
    hot_venue: int
    venues_left: dict[int, list[int]] = field(default_factory=dict)  # never a venue twice
    # Each sick person's one test: posted again in a later run, it is a duplicate.
    sampled_at: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=20))


async def make_world(run: Cluster, people: int, patients: int, venues: int) -> World:
    sandbox, bots = run.side.sandbox, run.side.bots
    citizens = [sandbox.create_user(language_code="en") for _ in range(people)]
    patient_users = [sandbox.create_user(language_code="en") for _ in range(patients)]
    doctor = sandbox.create_user(first_name="Doctor", language_code="en")
    conn = await run.connect()
    try:
        # load_citizens_and_venues takes a pool's shape: acquire() as a context.
        await load_citizens_and_venues(
            _OneConnection(conn), [u.id for u in citizens], citizens=people + 100, venues=venues
        )
        await load_cases(
            _OneConnection(conn),
            patients,
            patients=[u.id for u in patient_users],
            seen_at=datetime.now(UTC),
            doctor_tg_user_id=doctor.id,
        )
        tokens = {
            r["venue"]: r["token"]
            for r in await conn.fetch(
                "SELECT e.venue_id AS venue, c.token FROM venue_codes c "
                "JOIN entrances e ON e.id = c.entrance_id WHERE c.direction = 'entry'"
            )
        }
        people_iins = iins(people + 100, seed=5)
        iin_of = {u.id: people_iins[i] for i, u in enumerate(citizens)}
        homes = {
            r["patient_tg_user_id"]: (r["home_lat"], r["home_lon"])
            for r in await conn.fetch(
                "SELECT patient_tg_user_id, home_lat, home_lon FROM quarantine_cases"
            )
        }
        # The exposure story: a few people (not among the load's citizens) were at one
        # venue an hour ago with some of the load's citizens; their positive results
        # arrive during the load.
        hot_venue = min(tokens)
        sick = people_iins[people : people + 5]
        contacts = [iin_of[u.id] for u in citizens[: max(1, people // 10)]]
        await conn.executemany(
            "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, "
            "checked_out_at, checkout_kind) VALUES ($1, $2, 'qr', 'blue', true, "
            "now() - interval '3 hours', now() - interval '2 hours', 'scan')",
            [(hot_venue, iin) for iin in (*sick, *contacts)],
        )
        del tokens[hot_venue]
        lab_key = await LabService(_OneConnection(conn)).add("Chaos lab")
    finally:
        await conn.close()
    live_message = {}
    for user in patient_users:
        lat, lon = homes[user.id]
        live_message[user.id] = await sandbox.user_shares_live(
            bots["quarantine"],
            user,
            {"latitude": lat, "longitude": lon, "live_period": 28800, "horizontal_accuracy": 10},
            deliver=False,
        )
    since = await sandbox.user_sends(bots["doctor"], doctor, "/start")
    await _bot_messages(run, bots["doctor"], doctor, since, within=60)
    return World(
        citizens,
        patient_users,
        doctor,
        live_message,
        homes,
        tokens,
        iin_of,
        sick,
        lab_key,
        hot_venue,
    )


class _OneConnection:
    """One connection in a pool's clothes, for loaders written against a pool."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self.conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def _bot_messages(
    run: Cluster, bot: SandboxBot, user: SandboxUser, since: int, within: float
) -> list[str]:
    """The texts of bot messages in the chat after ``since``, waiting up to ``within``
    for at least one."""
    sandbox = run.side.sandbox
    chat = sandbox._user_chat(bot, user)

    def new() -> list[int]:
        return chat.bot_changed[bisect.bisect_right(chat.bot_changes, since) :]

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within), chat.changed:
            await chat.changed.wait_for(lambda: bool(new()) or sandbox.closing)
    messages = [chat.messages[m] for m in new()]
    return [m.get("text") or m.get("caption") or "" for m in messages]


def _is_notice(message: str) -> bool:
    return message.startswith("⚠️ Possible exposure")


async def _ask(
    run: Cluster,
    load: Load,
    bot: SandboxBot,
    user: SandboxUser,
    action: Action,
    message: str,
    is_ack: Callable[[str], bool],
    deadline: float,
) -> None:
    """Send until acknowledged: "try again" (or silence) makes the person send again."""
    sandbox = run.side.sandbox
    while time.monotonic() < deadline:
        action.attempts += 1
        since = await sandbox.user_sends(bot, user, message)
        seen = since
        answer_by = time.monotonic() + 15
        while time.monotonic() < answer_by:
            texts = await _bot_messages(run, bot, user, seen, within=answer_by - time.monotonic())
            seen = sandbox._user_chat(bot, user).seq
            replies = [t for t in texts if not _is_notice(t)]
            if any(is_ack(t) for t in replies):
                action.acked_at = time.monotonic()
                load.ack_times.append(action.acked_at)
                return
            if UNAVAILABLE in replies or INTERNAL in replies:
                if UNAVAILABLE in replies:
                    load.unavailable_messages += 1
                    load.told_unavailable.add(user.id)
                else:
                    load.internal_messages += 1
                await asyncio.sleep(1.0)  # "please try again"
                break
        else:
            load.timeouts += 1


async def citizen(
    run: Cluster, world: World, load: Load, user: SandboxUser, until: float, rng: random.Random
) -> None:
    bot = run.side.bots["citizen"]
    venues = world.venues_left.get(user.id)
    if venues is None:
        venues = world.venues_left[user.id] = list(world.entry_tokens)
        rng.shuffle(venues)
    status_words = tuple(text("en", f"colour.{c}") for c in ("red", "yellow", "green", "blue"))

    def checked_in(reply: str) -> bool:
        return "✅ Welcome" in reply or reply.startswith("You are already checked")

    def told_status(reply: str) -> bool:
        return any(word in reply for word in status_words)

    def answered(reply: str) -> bool:
        return reply not in (UNAVAILABLE, INTERNAL)

    while time.monotonic() < until:
        roll = rng.random()
        grace = until + 30
        is_ack: Callable[[str], bool]
        if roll < 0.55 and venues:
            venue = venues.pop()
            action = Action("checkin", user.id, time.monotonic(), venue=venue)
            message = f"/start {world.entry_tokens[venue]}"
            is_ack = checked_in
        elif roll < 0.85:
            action = Action("status", user.id, time.monotonic())
            message = text("en", "citizen_menu.status")
            is_ack = told_status
        else:
            action = Action("faq", user.id, time.monotonic())
            message = rng.choice(FAQ_QUESTIONS)
            is_ack = answered
        load.actions.append(action)
        await _ask(run, load, bot, user, action, message, is_ack, grace)
        await asyncio.sleep(rng.uniform(0.0, 0.3))


async def patient(
    run: Cluster,
    world: World,
    load: Load,
    user: SandboxUser,
    until: float,
    rng: random.Random,
    *,
    walks_out_at: float | None,
    interval: float,
) -> None:
    """A phone sharing live location: a fix every ``interval`` s; a walker goes 80 m
    from home at ``walks_out_at`` and stays out (one left-home alert)."""
    bot = run.side.bots["quarantine"]
    lat, lon = world.homes[user.id]
    last_at = 0
    await asyncio.sleep(rng.uniform(0, interval))
    while time.monotonic() < until:
        out = walks_out_at is not None and time.monotonic() >= walks_out_at
        north = 80.0 if out else rng.uniform(-8, 8)
        at = max(last_at + 1, int(time.time()))
        last_at = at
        message = world.live_message[user.id]
        await run.side.sandbox.user_moves(
            bot,
            user,
            message,
            {
                "latitude": lat + north / 111_132.0,
                "longitude": lon + rng.uniform(-8, 8) / 81_000.0,
                "horizontal_accuracy": 8.0,
            },
            at=at,
        )
        load.fixes_sent.add((user.id, message, at))
        if out:
            load.walkers_out.add(user.id)
        await asyncio.sleep(interval)


async def laboratory(
    run: Cluster, world: World, load: Load, at: list[float], until: float
) -> None:
    """Positive results for the sick people, one at each time in ``at``, through nginx
    to the lab push API, posted again until a worker answers 200."""
    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        for iin, when in zip(world.sick, at, strict=False):
            await asyncio.sleep(max(0.0, when - time.monotonic()))
            body = [
                {
                    "iin": iin,
                    "sampled_at": world.sampled_at.isoformat(),
                    "result_at": (world.sampled_at + timedelta(hours=19)).isoformat(),
                    "result": "positive",
                }
            ]
            while time.monotonic() < until + 60:
                load.pcr_attempts += 1
                try:
                    async with http.post(
                        f"{run.base_url}/api/v1/pcr-results",
                        json=body,
                        headers={"Authorization": f"Bearer {world.lab_key}"},
                    ) as response:
                        if response.status == 200:
                            report = await response.json()
                            if report["accepted"] + report["duplicates"] == 1:
                                load.pcr_acked += 1
                                break
                except (ClientError, TimeoutError):
                    pass
                await asyncio.sleep(1.0)


# ------------------------------------------------------------------ the faults


@dataclass
class FaultReport:
    name: str
    started: float | None = None
    restored: float | None = None
    detail: str = ""
    injected: dict[str, int] = field(default_factory=dict)


async def strike(run: Cluster, name: str, at: float, report: FaultReport, length: float) -> None:
    """One fault at monotonic time ``at``; ``length`` is the outage (or fault window)."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    report.started = time.monotonic()
    if name in ("postgres", "redis"):
        stop, start, detail = {
            "postgres": (run.stop_postgres, run.start_postgres, "PostgreSQL down {:.1f} s"),
            "redis": (run.stop_redis, run.start_redis, "Redis down {:.1f} s (came back empty)"),
        }[name]
        await stop()
        await asyncio.sleep(length)
        await start()
        report.restored = time.monotonic()
        report.detail = detail.format(report.restored - report.started)
    elif name == "worker":
        await run.kill_worker(0)
        report.restored = time.monotonic()  # the others carry the load from now on
        await asyncio.sleep(length)
        took = await run.start_worker(0)
        report.detail = (
            f"worker 0 SIGKILLed; started again {length:.0f} s later by the harness, "
            f"green after {took:.1f} s"
        )
    elif name == "telegram":
        sandbox = run.side.sandbox
        methods = ["sendMessage", "editMessageText", "answerCallbackQuery", "sendLocation"]
        sandbox.add_fault(status=429, retry_after=1, rate=0.10, seconds=length, methods=methods)
        sandbox.add_fault(status=502, rate=0.01, seconds=length, methods=methods)
        await asyncio.sleep(length)
        report.restored = time.monotonic()
        report.detail = f"10% 429 (retry_after 1) and 1% 502 for {length:.0f} s"
    if name == "telegram":
        report.injected = run.side.sandbox.faults_report()["injected"]


# ------------------------------------------------------------------ the count


@dataclass
class Result:
    fault: str
    seconds: float
    workers: int
    acked: Counter[str]
    attempted: Counter[str]
    latencies_ms: list[float]
    lost: dict[str, int]
    doubled: dict[str, int]
    stored_not_acked: int
    told_unavailable: int
    unavailable_messages: int
    internal_messages: int
    timeouts: int
    fixes_sent: int
    fixes_stored: int  # as rows (at home one per QUARANTINE_FIX_SAMPLE_MINUTES)
    fixes_taken: int  # stored, or reached by the case's last-seen state
    alerts: int
    notices_expected: int
    notices_delivered: int
    outbox_failed: Counter[str]
    recovery: str
    fault_detail: str
    injected: dict[str, int]
    cpu: str = ""

    @property
    def ok(self) -> bool:
        return not any(self.lost.values()) and not any(self.doubled.values())

    def summary(self) -> str:
        total = sum(self.acked.values())
        lat = self.latencies_ms or [0.0]
        lines = [
            f"fault {self.fault}: {self.fault_detail}",
            f"  load {self.seconds:.0f} s on {self.workers} workers behind nginx, "
            f"{os.cpu_count()} cores: {total:,} actions acknowledged "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(self.acked.items()))}) = "
            f"{total / self.seconds:,.1f}/s; {self.fixes_sent:,} live-location fixes = "
            f"{self.fixes_sent / self.seconds:,.1f}/s",
            f"  latency (first send to success reply, retries included): p50 "
            f"{statistics.median(lat):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms",
            f"  lost {self.lost}; doubled {self.doubled}",
            f"  stored but never acknowledged (person gave up): {self.stored_not_acked}; "
            f"fixes taken in {self.fixes_taken:,} of {self.fixes_sent:,}, stored as rows "
            f"{self.fixes_stored:,} (at "
            "home one per QUARANTINE_FIX_SAMPLE_MINUTES); left-home alerts "
            f"{self.alerts}; notices delivered {self.notices_delivered} of "
            f"{self.notices_expected} queued; given up: {dict(self.outbox_failed) or 'none'} "
            "(the sick people never opened the bot: their notices about each other find "
            "no chat, as on Telegram)",
            f"  people told 'temporarily unavailable': {self.told_unavailable} "
            f"({self.unavailable_messages} messages); 'something went wrong': "
            f"{self.internal_messages}; no answer in 15 s: {self.timeouts}",
            f"  recovery: {self.recovery}",
        ]
        if self.injected:
            lines.append(f"  faults injected by the sandbox: {self.injected}")
        if self.cpu:
            lines.append(f"  {self.cpu}")
        return "\n".join(lines)


async def _drain(run: Cluster, within: float) -> None:
    """Wait until the outbox has nothing left to send and every positive result has been
    searched for exposures (or ``within`` seconds)."""
    deadline = time.monotonic() + within
    conn = await run.connect()
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                left = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL "
                    "AND failed_at IS NULL) + (SELECT count(*) FROM pcr_results WHERE "
                    "result = 'positive' AND exposure_done_at IS NULL)"
                )
                if left == 0:
                    return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def count(
    run: Cluster, world: World, load: Load, fault: FaultReport, seconds: float
) -> Result:
    sandbox, bots = run.side.sandbox, run.side.bots
    conn = await run.connect()
    try:
        checkins = [a for a in load.actions if a.kind == "checkin"]
        rows = Counter(
            (r["iin"], r["venue_id"])
            for r in await conn.fetch(
                "SELECT iin, venue_id FROM visits WHERE venue_id <> $1", world.hot_venue
            )
        )
        lost_checkins = sum(
            1
            for a in checkins
            if a.acked_at is not None and rows[(world.iin_of[a.user], a.venue)] == 0
        )
        doubled_checkins = sum(1 for n in rows.values() if n > 1)
        stored_not_acked = sum(
            1 for a in checkins if a.acked_at is None and rows[(world.iin_of[a.user], a.venue)] > 0
        )
        cases = await conn.fetch(
            "SELECT id, patient_tg_user_id, last_fix_at FROM quarantine_cases"
        )
        case_of = {r["patient_tg_user_id"]: r["id"] for r in cases}
        last_seen = {r["id"]: int(r["last_fix_at"].timestamp()) for r in cases if r["last_fix_at"]}
        fixes = Counter(
            (r["case_id"], r["message_id"], int(r["fixed_at"].timestamp()))
            for r in await conn.fetch("SELECT case_id, message_id, fixed_at FROM location_fixes")
        )
        sent = {(case_of[u], m, at) for u, m, at in load.fixes_sent}
        # Not every fix is a row (at home one per QUARANTINE_FIX_SAMPLE_MINUTES is): a fix
        # was taken in if it is stored or the case's last-seen state reached it; the last
        # fix sent for each case must be the case's last seen (nothing lost at the end).
        taken = {key for key in sent if fixes[key] or last_seen.get(key[0], -1) >= key[2]}
        lost_fixes = len(sent) - len(taken)
        last_sent: dict[int, int] = {}
        for case_id, _, at in sent:
            last_sent[case_id] = max(at, last_sent.get(case_id, at))
        lost_fixes += sum(1 for c, at in last_sent.items() if last_seen.get(c) != at)
        doubled_fixes = sum(n - 1 for n in fixes.values() if n > 1)
        # A walker goes out once a run (and is back home at the start of the next).
        episodes = Counter(
            r["patient_tg_user_id"]
            for r in await conn.fetch(
                "SELECT c.patient_tg_user_id FROM quarantine_episodes e "
                "JOIN quarantine_cases c ON c.id = e.case_id WHERE e.kind = 'left_home' "
                "AND e.opened_at >= $1",
                load.began,
            )
        )
        lost_alerts = sum(1 for u in load.walkers_out if episodes[u] == 0)
        doubled_alerts = sum(n - 1 for n in episodes.values() if n > 1)
        pcr = await conn.fetchval(
            "SELECT count(*) FROM pcr_results WHERE iin = ANY($1::text[]) AND result = 'positive'",
            world.sick,
        )
        # Every overlap of a positive person's stay with another's must have its notice.
        exposures = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE n.id IS NULL) AS missing,
                   count(*) AS expected
              FROM pcr_results r
              JOIN visits mine ON mine.iin = r.iin AND mine.admitted
              JOIN visits other ON other.venue_id = mine.venue_id AND other.stay && mine.stay
                               AND other.admitted AND other.iin <> r.iin
              LEFT JOIN exposure_notices n ON n.positive_result_id = r.id
                                          AND n.visit_id = other.id
             WHERE r.result = 'positive'
            """
        )
        doubled_exposures = await conn.fetchval(
            "SELECT count(*) - count(DISTINCT (positive_result_id, visit_id)) "
            "FROM exposure_notices"
        )
        outbox = await conn.fetch(
            "SELECT bot, chat_id, kind, params, failed_at, last_error FROM outbox"
        )
    finally:
        await conn.close()
    expected: Counter[tuple[str, int, str]] = Counter()
    failed: Counter[str] = Counter()
    for row in outbox:
        if row["failed_at"] is not None:
            failed[row["last_error"]] += 1
            continue
        params = row["params"]
        params = json.loads(params) if isinstance(params, str) else params
        notice = render_notice(row["kind"], params, "en", TZ)
        expected[(row["bot"], row["chat_id"], notice.text)] += 1
    delivered: Counter[tuple[str, int, str]] = Counter()
    for bot_name, chat_id in {(b, c) for b, c, _ in expected}:
        bot = bots[bot_name]
        chat = sandbox.chats.get((bot.id, chat_id))
        if chat is None:
            continue
        for message_id in chat.bot_changed:
            body = chat.messages[message_id].get("text") or ""
            if (bot_name, chat_id, body) in expected:
                delivered[(bot_name, chat_id, body)] += 1
    lost_notices = sum(max(0, n - delivered[k]) for k, n in expected.items())
    doubled_notices = sum(max(0, n - expected[k]) for k, n in delivered.items())
    acked = Counter(a.kind for a in load.actions if a.acked_at is not None)
    acked["pcr"] = load.pcr_acked
    attempted = Counter(a.kind for a in load.actions)
    return Result(
        fault=fault.name,
        seconds=seconds,
        workers=len(run.workers),
        acked=acked,
        attempted=attempted,
        latencies_ms=[
            (a.acked_at - a.started) * 1000 for a in load.actions if a.acked_at is not None
        ],
        lost={
            "checkins": lost_checkins,
            "fixes": lost_fixes,
            "alerts": lost_alerts,
            "notices": lost_notices,
            "exposures": exposures["missing"],
            "pcr": max(0, load.pcr_acked - pcr),
        },
        doubled={
            "checkins": doubled_checkins,
            "fixes": doubled_fixes,
            "alerts": doubled_alerts,
            "notices": doubled_notices,
            "exposures": doubled_exposures,
            "pcr": max(0, pcr - len(world.sick)),
        },
        stored_not_acked=stored_not_acked,
        told_unavailable=len(load.told_unavailable),
        unavailable_messages=load.unavailable_messages,
        internal_messages=load.internal_messages,
        timeouts=load.timeouts,
        fixes_sent=len(load.fixes_sent),
        fixes_stored=sum(1 for key in sent if fixes[key]),
        fixes_taken=len(taken),
        alerts=sum(episodes.values()),
        notices_expected=sum(expected.values()),
        notices_delivered=sum(delivered.values()),
        outbox_failed=failed,
        recovery=_recovery(load, fault),
        fault_detail=fault.detail or "no fault",
        injected=fault.injected,
    )


def _recovery(load: Load, fault: FaultReport) -> str:
    if fault.started is None:
        return "no fault"
    acks = sorted(load.ack_times)
    restored = fault.restored if fault.restored is not None else fault.started
    sent_after = sorted(
        a.acked_at - restored
        for a in load.actions
        if a.acked_at is not None and a.started >= restored
    )
    around = [t for t in acks if t >= fault.started - 5]
    gaps = [b - a for a, b in itertools.pairwise(around)]
    back = f"{sent_after[0]:.1f} s" if sent_after else "never"
    return (
        f"first action sent after the fault's end acknowledged {back} after it; "
        f"longest pause between acknowledgements from the fault on "
        f"{max(gaps, default=0.0):.1f} s"
    )


async def run_fault(
    run: Cluster,
    world: World,
    fault: str,
    seconds: float,
    *,
    outage: float = 5.0,
    fix_interval: float = 2.0,
    seed: int = 1,
) -> Result:
    """One bounded run of the mixed load with ``fault`` striking at 30% of it."""
    rng = random.Random(seed)
    load = Load()
    started = time.monotonic()
    until = started + seconds
    report = FaultReport(fault)
    walkers = set(rng.sample([p.id for p in world.patients], max(1, len(world.patients) // 10)))
    tasks: list[Awaitable[None]] = [
        citizen(run, world, load, user, until, random.Random(rng.random()))
        for user in world.citizens
    ]
    tasks += [
        patient(
            run,
            world,
            load,
            user,
            until,
            random.Random(rng.random()),
            walks_out_at=started + seconds * rng.uniform(0.2, 0.6) if user.id in walkers else None,
            interval=fix_interval,
        )
        for user in world.patients
    ]
    times = [started + seconds * f for f in (0.25, 0.35, 0.45, 0.55, 0.65)]
    tasks.append(laboratory(run, world, load, times, until))
    if fault != "none":
        length = seconds * 0.6 if fault == "telegram" else outage
        tasks.append(strike(run, fault, started + seconds * 0.3, report, length))
    # CPU by part, where no process is replaced mid-run (a restart would reset its count).
    meter = None
    if fault in ("none", "telegram"):
        SERVER_PIDS.clear()
        SERVER_PIDS.update(server_pids(run.pg, run.rd))
        assert run.nginx is not None
        meter = CpuMeter([p.pid for p in run.workers if p is not None] + [run.nginx.pid])
        meter.start()
    await asyncio.gather(*tasks)
    if meter is not None:
        meter.stop()
    await _drain(run, within=90)
    await asyncio.sleep(2)  # the last sends land in the chats
    result = await count(run, world, load, report, seconds)
    if meter is not None:
        actions = sum(result.acked.values()) + result.fixes_sent
        result.cpu = (
            meter.report(max(1, actions), "action or fix").replace(
                "platform worker", "workers and nginx"
            )
            + f"; load average {os.getloadavg()[0]:.2f}"
        )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "faults", nargs="*", help=f"any of {', '.join(FAULTS)} (default: all but none)"
    )
    parser.add_argument("--seconds", type=float, default=120, help="load per fault")
    parser.add_argument("--minutes", type=float, help="one run of this length (no fault)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--people", type=int, default=200, help="citizens acting at once")
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--venues", type=int, default=10_000)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds a server is down")
    parser.add_argument("--lease", type=int, default=60, help="UPDATE_LEASE_SECONDS")
    args = parser.parse_args()
    if unknown := set(args.faults) - set(FAULTS):
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}; choose from {FAULTS}")
    setup_logging("WARNING")
    faults = ["none"] if args.minutes else args.faults or list(FAULTS[:-1])
    seconds = args.minutes * 60 if args.minutes else args.seconds
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    failed = False
    for fault in faults:
        async with cluster(args.workers, lease=args.lease) as run:
            world = await make_world(run, args.people, args.patients, args.venues)
            result = await run_fault(run, world, fault, seconds, outage=args.outage)
        print(result.summary(), flush=True)
        failed |= not result.ok
    print(f"load average after {os.getloadavg()[0]:.2f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
