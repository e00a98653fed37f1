"""What the benchmarks share: servers for a run, and percentiles."""

from __future__ import annotations

import asyncio
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
from services.migrations import migrate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@asynccontextmanager
async def servers() -> AsyncIterator[tuple[str, str]]:
    """DATABASE_URL / REDIS_URL when set (a fresh database ``citybots_bench`` is made on
    that server), otherwise embedded servers (fsync off) in a temporary folder."""
    pg_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="citybots-bench-") as tmp:
        pg = rd = None
        if not pg_url:
            pg = EmbeddedPostgres(Path(tmp) / "pg", fast=True)
            pg_url = await asyncio.to_thread(pg.start)
        if not redis_url:
            rd = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            redis_url = await asyncio.to_thread(rd.start)
        admin = await asyncpg.connect(pg_url)
        await admin.execute("DROP DATABASE IF EXISTS citybots_bench WITH (FORCE)")
        await admin.execute("CREATE DATABASE citybots_bench")
        await admin.close()
        url = urlunsplit(urlsplit(pg_url)._replace(path="/citybots_bench"))
        conn = await asyncpg.connect(url)
        await migrate(conn)
        await conn.close()
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
