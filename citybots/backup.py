"""`citybots db backup FILE` and `citybots db restore FILE`.

A backup is one ``pg_dump`` custom-format archive: every table as of one moment (pg_dump
reads the whole database in one snapshot while the platform keeps running), written to a
temporary file next to FILE, readable by its owner only (it holds the city's health data),
checked, then renamed into place, so FILE is either the previous backup or a complete new
one. A restore goes into an empty database (or, told to, replaces what one holds) in one
transaction, then applies the migrations this code has and the backup lacks.

The client programs are found and run by citybots/pg_tools.py; a restore is in
citybots/restore.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from citybots.pg_tools import (
    MB,
    BackupError,
    Target,
    Tools,
    connect_to,
    find_tools,
    fsync,
    schema_version,
    start_client,
    table_of_contents,
    target,
    ticking,
)
from citybots.progress import ProgressLine

_TABLES = """
SELECT n.nspname || '.' || c.relname AS name, c.oid, pg_table_size(c.oid) AS size
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
"""

_COPY_PROGRESS = """
SELECT p.relid, p.bytes_processed FROM pg_stat_progress_copy p
JOIN pg_stat_activity a ON a.pid = p.pid WHERE a.application_name = $1
"""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    bytes: int
    tables: int
    schema: str | None
    server_version: str
    seconds: float


class _DumpProgress:
    """How much of the tables' data pg_dump has written: the tables it finished, by size,
    and the bytes of the one it copies now (from pg_stat_progress_copy)."""

    def __init__(self, tables: Mapping[str, tuple[int, int]], label: str) -> None:
        self.tables = tables  # "schema.table" -> (oid, size in bytes)
        self.sizes = {oid: size for oid, size in tables.values()}
        self.total = max(sum(self.sizes.values()), 1)
        self.finished = 0
        self.current: int | None = None
        self.current_bytes = 0
        self.started = 0
        self.line = ProgressLine(label, self.fraction, unit="MB")

    def done_bytes(self) -> int:
        current = 0
        if self.current is not None:
            current = min(self.current_bytes, self.sizes.get(self.current, 0))
        return self.finished + current

    def fraction(self) -> float:
        return min(self.done_bytes() / self.total, 1.0)

    def table_started(self, name: str) -> None:
        if self.current is not None:
            self.finished += self.sizes.get(self.current, 0)
        oid, _ = self.tables.get(name, (None, 0))
        self.current, self.current_bytes = oid, 0
        self.started += 1
        self.show()

    def copying(self, oid: int, processed: int) -> None:
        if oid == self.current:
            self.current_bytes = max(self.current_bytes, processed)

    def show(self, *, final: bool = False) -> None:
        if final:
            self.finished, self.current = self.total, None
        self.line(self.done_bytes() // MB, final=final)


def _destination(path: Path) -> Path:
    path = path.absolute()
    if path.is_dir():
        raise BackupError(f"{path} is a folder: give the backup file's name")
    if not path.parent.is_dir():
        raise BackupError(f"no such folder: {path.parent}")
    return path


async def backup(url: str, path: Path) -> BackupReport:
    """Write a pg_dump custom archive of the database at ``url`` to ``path``: through a
    temporary file (mode 0600) in the same folder, checked with pg_restore, then renamed."""
    began = time.perf_counter()
    path = await asyncio.to_thread(_destination, path)
    where = target(url)
    conn = await connect_to(url, where)
    try:
        version = conn.get_server_version()
        server_version = str(await conn.fetchval("SHOW server_version")).split()[0]
        schema = await schema_version(conn)
        rows = await conn.fetch(_TABLES)
        tables = {r["name"]: (r["oid"], r["size"]) for r in rows}
        tools = await asyncio.to_thread(find_tools, version.major)
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".partial", dir=path.parent
        )
        os.close(fd)
        temp = Path(temp_name)
        try:
            progress = _DumpProgress(tables, f"backing up the {where.label}")
            await _dump(tools, where, temp, conn, progress)
            progress.show(final=True)
            await table_of_contents(tools, temp)
            await asyncio.to_thread(fsync, temp)
            os.replace(temp, path)
            await asyncio.to_thread(fsync, path.parent, directory=True)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    finally:
        await conn.close()
    return BackupReport(
        path=path,
        bytes=os.stat(path).st_size,
        tables=len(tables),
        schema=schema,
        server_version=server_version,
        seconds=time.perf_counter() - began,
    )


async def _dump(
    tools: Tools, where: Target, temp: Path, conn: asyncpg.Connection, progress: _DumpProgress
) -> None:
    application = f"citybots-backup-{os.getpid()}"
    child = await start_client(
        tools,
        "pg_dump",
        "--format=custom",
        f"--file={temp}",
        "--verbose",
        "--no-password",
        # Fail rather than queue behind a long exclusive lock (and have the platform's
        # queries queue behind pg_dump's request meanwhile).
        "--lock-wait-timeout=2min",
        f"--dbname={where.url}",
        env=where.env(application),
    )
    copying = re.compile(r'pg_dump: dumping contents of table "(.+)"$')

    def on_line(line: str) -> None:
        match = copying.match(line)
        if match:
            progress.table_started(match[1])

    watch_copy = True

    async def tick() -> None:
        nonlocal watch_copy
        if watch_copy:
            try:
                for row in await conn.fetch(_COPY_PROGRESS, application):
                    progress.copying(row["relid"], row["bytes_processed"])
            except asyncpg.PostgresError:
                watch_copy = False  # a server before PostgreSQL 14: whole tables only
        progress.show()

    try:
        await ticking(child.read(on_line), tick)
        code = await child.process.wait()
    finally:
        child.stop()
    if code != 0:
        raise BackupError("pg_dump failed:\n  " + "\n  ".join(child.errors or ["(no message)"]))
