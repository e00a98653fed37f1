"""What the benchmarks share: servers for a run, and percentiles."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from citybots.embedded import EmbeddedPostgres, EmbeddedRedis
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
