"""What the benchmarks share: servers for a run, and percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiohttp import web

from bots.sandbox import Sandbox
from bots.sandbox.server import SandboxBot
from citybots.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from citybots.settings import BOT_NAMES
from services.db import connect
from services.migrations import migrate


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process started (directly or not) by ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@dataclass
class CpuMeter:
    """CPU seconds used by the bench's own process, the platform worker(s) and the
    embedded PostgreSQL (every backend) and Redis, between ``start`` and ``stop``; less
    sensitive than wall time to others' load on a shared machine."""

    workers: list[int]
    before: dict[str, float] | None = None
    used: dict[str, float] | None = None

    def _sample(self) -> dict[str, float]:
        times = os.times()
        return {
            "bench (sandbox and users)": times.user + times.system,
            "platform worker": sum(cpu_seconds(p) for p in self.workers)
            + sum(cpu_seconds(c) for w in self.workers for c in descendants(w)),
            **{
                name: sum(cpu_seconds(p) for p in (pid, *descendants(pid)))
                for name, pid in SERVER_PIDS.items()
            },
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> None:
        assert self.before is not None
        after = self._sample()
        self.used = {k: after[k] - self.before[k] for k in after}

    def report(self, per: int, unit: str) -> str:
        assert self.used is not None
        parts = [f"{k} {v * 1000 / per:.2f}" for k, v in self.used.items()]
        total = sum(self.used.values()) * 1000 / per
        return f"CPU ms per {unit}: " + ", ".join(parts) + f"; total {total:.2f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


BENCH_AUDIT_KEY = b"bench audit chain key"
"""The audit chain's key for every pool, migration and platform a bench starts: the insert
trigger refuses a row from a session with no key or another one."""

SERVER_PIDS: dict[str, int] = {}
"""The embedded PostgreSQL's postmaster and Redis, when the bench started them (pg_ctl
detaches the postmaster, so it is no child of the bench)."""


def server_pids(pg: EmbeddedPostgres | None, rd: EmbeddedRedis | None) -> dict[str, int]:
    pids = {}
    if pg is not None:
        with contextlib.suppress(OSError, ValueError):
            pids["PostgreSQL"] = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    if rd is not None and rd.process is not None:
        pids["Redis"] = rd.process.pid
    return pids


@asynccontextmanager
async def servers(*, full_page_writes: bool = False) -> AsyncIterator[tuple[str, str]]:
    """DATABASE_URL / REDIS_URL when set (a fresh database ``citybots_bench`` is made on
    that server), otherwise embedded servers (fsync off) in a temporary folder;
    ``full_page_writes`` turns that back on in the embedded one (its superuser does), as on
    a production server, for a bench that reads the WAL."""
    pg_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="citybots-bench-") as tmp:
        pg = rd = None
        if not pg_url:
            pg = EmbeddedPostgres(Path(tmp) / "pg", fast=True, for_tests=True)
            pg_url = await asyncio.to_thread(pg.start)
            if full_page_writes:
                superuser = await asyncpg.connect(pg.superuser_url)
                await superuser.execute("ALTER SYSTEM SET full_page_writes = on")
                await superuser.execute("SELECT pg_reload_conf()")
                await superuser.close()
        if not redis_url:
            rd = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            redis_url = await asyncio.to_thread(rd.start)
        admin = await asyncpg.connect(pg_url)
        await admin.execute("DROP DATABASE IF EXISTS citybots_bench WITH (FORCE)")
        await admin.execute("CREATE DATABASE citybots_bench")
        await admin.close()
        url = urlunsplit(urlsplit(pg_url)._replace(path="/citybots_bench"))
        conn = await connect(url, audit_key=BENCH_AUDIT_KEY)
        await migrate(conn)
        await conn.close()
        SERVER_PIDS.clear()
        SERVER_PIDS.update(server_pids(pg, rd))
        try:
            yield url, redis_url
        finally:
            if rd is not None:
                rd.stop()
            if pg is not None:
                pg.stop()


@dataclass
class SandboxSide:
    """Telegram's stand-in, served from the benchmark's own process."""

    sandbox: Sandbox
    api_base: str
    bots: dict[str, SandboxBot]


@asynccontextmanager
async def sandbox_server() -> AsyncIterator[SandboxSide]:
    sandbox = Sandbox()
    app = web.Application()
    sandbox.setup(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bots = {name: sandbox.register_bot(name) for name in BOT_NAMES}
    try:
        yield SandboxSide(sandbox, f"http://127.0.0.1:{port}/sandbox", bots)
    finally:
        await runner.cleanup()


@dataclass
class PlatformProcess:
    """`citybots run` in a process of its own, so that it and the sandbox use both cores
    as Telegram and the bots would."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"citybots run stopped; see {self.log_path}")

    async def until_answering(self, side: SandboxSide, bot: str = "citizen") -> None:
        """Wait until the bot answers a probe user's /help (the platform is up)."""
        probe = side.sandbox.create_user(language_code="en")
        for _ in range(600):
            since = await side.sandbox.user_sends(side.bots[bot], probe, "/help")
            try:
                await asyncio.wait_for(
                    side.sandbox.wait_for_replies(side.bots[bot], probe, since), 0.5
                )
                return
            except TimeoutError:
                self.check_alive()


def worker_settings(workers: int) -> dict[str, str]:
    """The platform's settings for a benchmark: a pool for a crowd, and above one worker,
    webhook mode (the workers share the port)."""
    settings = {"DB_POOL_SIZE": "40"}
    if workers > 1:
        settings.update(
            {
                "WORKERS": str(workers),
                "WEBHOOK_BASE_URL": "http://127.0.0.1:{port}",
                "WEBHOOK_SECRET": "bench-webhook-secret-0123",
            }
        )
    return settings


@asynccontextmanager
async def platform_process(
    side: SandboxSide,
    database_url: str,
    redis_url: str,
    *,
    log_name: str,
    settings: dict[str, str] | None = None,
) -> AsyncIterator[PlatformProcess]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "AUDIT_CHAIN_KEY": BENCH_AUDIT_KEY.decode(),
            "TELEGRAM_API_BASE": side.api_base,
            "ADMIN_PORT": str(port),
            **{f"{name.upper()}_BOT_TOKEN": bot.token for name, bot in side.bots.items()},
            **(settings or {}),
        }
    )
    env = {k: v.replace("{port}", str(port)) for k, v in env.items()}
    log_path = Path(tempfile.gettempdir()) / f"citybots-bench-{log_name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
            [sys.executable, "-m", "citybots.cli", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield PlatformProcess(process, port, log_path)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
