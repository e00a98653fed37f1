"""`citybots db restore FILE`: a backup (citybots/backup.py) goes into an empty database
(or, told to, replaces what one holds) in one transaction, then the migrations this code
has and the backup lacks are applied."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from citybots.pg_tools import (
    MB,
    BackupError,
    Target,
    Tools,
    connect_to,
    find_tools,
    pg_restore_output,
    quote_ident,
    schema_version,
    start_client,
    table_of_contents,
    target,
    ticking,
)
from citybots.progress import ProgressLine
from services.migrations import MigrationError, check_history, migrate


@dataclass(frozen=True)
class ArchiveInfo:
    created: str
    server_version: str
    schemas: list[str]  # schemas the archive creates besides public
    entries: list[str]  # the table of contents to restore
    migrations: dict[int, dict[str, Any]]

    @property
    def schema(self) -> str | None:
        return self.migrations[max(self.migrations)]["name"] if self.migrations else None


@dataclass(frozen=True)
class Contents:
    """What a database holds in the schemas a restore writes to."""

    tables: list[str]
    with_rows: list[str]
    other_objects: int
    schema: str | None

    @property
    def empty(self) -> bool:
        return not self.tables and not self.other_objects

    def describe(self) -> str:
        parts = []
        if self.tables:
            listed = ", ".join(self.with_rows[:6])
            more = f" and {len(self.with_rows) - 6} more" if len(self.with_rows) > 6 else ""
            rows = (
                f", {len(self.with_rows)} of them with rows ({listed}{more})"
                if self.with_rows
                else ", all of them empty"
            )
            parts.append(f"{len(self.tables)} tables{rows}")
        if self.other_objects:
            parts.append(f"{self.other_objects} other objects (functions, types, views)")
        if self.schema:
            parts.append(f"migrations up to {self.schema}")
        return "; ".join(parts)


@dataclass(frozen=True)
class RestoreReport:
    archive: ArchiveInfo
    replaced: Contents | None
    applied: list[str]
    seconds: float


async def _archive_migrations(tools: Tools, archive: Path) -> dict[int, dict[str, Any]]:
    """The archive's schema_migrations rows, read from its data without restoring it."""
    out = await pg_restore_output(
        tools,
        archive,
        "--data-only",
        "--table=schema_migrations",
        "--file=-",
        failure=": cannot read its schema_migrations",
    )
    lines = iter(out.splitlines())
    for line in lines:
        header = re.match(r"COPY \S*schema_migrations \((.+)\) FROM stdin;$", line)
        if header:
            columns = [c.strip() for c in header[1].split(",")]
            break
    else:
        raise BackupError(
            f"{archive} is a PostgreSQL archive, but not of a citybots database"
            " (it has no schema_migrations table)"
        )
    history: dict[int, dict[str, Any]] = {}
    for line in lines:
        if line == "\\.":
            break
        row = dict(zip(columns, line.split("\t"), strict=True))
        history[int(row["version"])] = {
            "name": row["name"],
            "checksum": row["checksum"],
            "applied_at": datetime.fromisoformat(row["applied_at"]),
        }
    return history


async def read_archive(tools: Tools, archive: Path) -> ArchiveInfo:
    """What a backup holds: when and from which server it was made, its schemas, its
    table of contents and its migrations."""
    listing = await table_of_contents(tools, archive)

    def header(name: str) -> str:
        for line in listing:
            if line.startswith(f";     {name}") or line.startswith(f"; {name}"):
                return line.split(name, 1)[1].lstrip(": ").strip()
        return "?"

    entries = [line for line in listing if line.strip() and not line.startswith(";")]
    schemas = [m[1] for e in entries if (m := re.match(r"\d+; \d+ \d+ SCHEMA - (\S+) ", e))]
    return ArchiveInfo(
        created=header("Archive created at"),
        server_version=header("Dumped from database version"),
        schemas=[s for s in schemas if s != "public"],
        # A comment on an extension may only be set by the extension's owner, who on a
        # managed server is not the one restoring; the comment is the extension's own.
        entries=[e for e in entries if " COMMENT - EXTENSION " not in e],
        migrations=await _archive_migrations(tools, archive),
    )


_CONTENTS = """
SELECT c.relname, c.relkind::text AS relkind, n.nspname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

_OTHER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e'))
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY($1::text[]) AND t.typtype IN ('d', 'e', 'r', 'm')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                          AND d.objid = t.oid AND d.deptype = 'e'))
"""


async def contents(conn: asyncpg.Connection, schemas: list[str]) -> Contents:
    """The tables (and which of them hold rows) and other objects in ``schemas``."""
    relations = await conn.fetch(_CONTENTS, schemas)
    tables, with_rows, others = [], [], 0
    for rel in relations:
        if rel["relkind"] not in ("r", "p"):
            others += 1
            continue
        name = (
            rel["relname"] if rel["nspname"] == "public" else f"{rel['nspname']}.{rel['relname']}"
        )
        tables.append(name)
        quoted = f"{quote_ident(rel['nspname'])}.{quote_ident(rel['relname'])}"
        try:
            if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {quoted})"):  # noqa: S608
                with_rows.append(name)
        except asyncpg.PostgresError:
            with_rows.append(name)  # unreadable by this user: count it as holding rows
    others += int(await conn.fetchval(_OTHER_OBJECTS, schemas))
    schema = await schema_version(conn) if "public" in schemas else None
    return Contents(tables, with_rows, others, schema)


async def _other_sessions(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    return count


def _read_position(pid: int, archive: Path) -> int | None:
    """How far a process has read ``archive`` (Linux: /proc/PID/fdinfo), or None."""
    real = os.path.realpath(archive)
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == real:
                    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                    match = re.search(r"^pos:\s+(\d+)", info, re.MULTILINE)
                    return int(match[1]) if match else None
    except OSError:
        return None
    return None


def _archive_file(path: Path) -> Path:
    path = path.absolute()
    if not path.is_file():
        raise BackupError(f"no such file: {path}")
    return path


async def restore(
    url: str, path: Path, *, force: bool = False, audit_key: bytes | None = None
) -> RestoreReport:
    """Restore the backup at ``path`` into the database at ``url`` in one transaction; a
    database that is not empty is refused unless ``force`` (then its contents are replaced
    in the same transaction). Then the migrations the backup lacks are applied (with
    ``audit_key``, so that one chaining the audit log can)."""
    began = time.perf_counter()
    path = await asyncio.to_thread(_archive_file, path)
    where = target(url)
    conn = await connect_to(url, where)
    try:
        version = conn.get_server_version()
        tools = await asyncio.to_thread(find_tools, version.major)
        archive = await read_archive(tools, path)
        try:
            check_history(archive.migrations)
        except MigrationError as error:
            raise BackupError(f"{path.name} cannot be restored by this version: {error}") from None
        others = await _other_sessions(conn)
        if others:
            connections = "1 other connection is" if others == 1 else f"{others} others are"
            raise BackupError(
                f"{connections} open to the {where.label}: stop `citybots run` (every "
                "worker) and anything else using it, then restore"
            )
        found = await contents(conn, ["public", *archive.schemas])
        if not found.empty and not force:
            raise BackupError(
                f"the {where.label} is not empty: {found.describe()}.\n"
                "Restoring replaces everything in it. To do so, run again with --force "
                "(back it up first: citybots db backup FILE)"
            )
    finally:
        await conn.close()
    drop = ["public", *archive.schemas] if not found.empty else []
    await _restore(tools, where, path, archive, drop=drop, server_major=version.major)
    conn = await connect_to(url, where, audit_key=audit_key)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    return RestoreReport(
        archive=archive,
        replaced=None if found.empty else found,
        applied=applied,
        seconds=time.perf_counter() - began,
    )


async def _restore(
    tools: Tools,
    where: Target,
    archive_path: Path,
    archive: ArchiveInfo,
    *,
    drop: list[str],
    server_major: int,
) -> None:
    """pg_restore writes the archive as SQL; psql runs it in one transaction that this
    process opens and commits only when pg_restore has finished without error. (pg_restore
    can write to a database itself, but always sends SET transaction_timeout, which
    servers before PostgreSQL 17 refuse, ending a single-transaction restore there.)"""
    with tempfile.TemporaryDirectory(prefix="citybots-restore-") as folder:
        listing = Path(folder) / "toc.list"
        listing.write_text("\n".join(archive.entries) + "\n")
        restoring = await start_client(
            tools,
            "pg_restore",
            "--verbose",
            "--no-owner",
            "--no-privileges",
            f"--use-list={listing}",
            "--file=-",
            str(archive_path),
            stdout=subprocess.PIPE,
        )
        loading = await start_client(
            tools,
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={where.url}",
            stdin=subprocess.PIPE,
            env=where.env(f"citybots-restore-{os.getpid()}"),
        )
        producer, consumer = restoring.process, loading.process
        # Notices off first: the drops' "drop cascades to ..." lists are not news.
        preamble = "SET client_min_messages = warning;\nBEGIN;\n" + "".join(
            f"DROP SCHEMA IF EXISTS {quote_ident(s)} CASCADE;\n" for s in drop
        )
        if "public" in drop:
            preamble += "CREATE SCHEMA public;\n"
        size = max(os.stat(archive_path).st_size, 1)
        entries = max(len(archive.entries), 1)
        state = {"entries": 0, "position": 0}

        def fraction() -> float:
            if state["position"]:
                return min(state["position"] / size, 1.0)
            return min(state["entries"] / entries, 1.0)

        progress = ProgressLine(f"restoring {archive_path.name}", fraction, unit="MB")

        def on_line(line: str) -> None:
            if line.startswith(("pg_restore: creating ", "pg_restore: processing ")):
                state["entries"] += 1
                progress(int(fraction() * size) // MB)

        async def tick() -> None:
            position = await asyncio.to_thread(_read_position, producer.pid, archive_path)
            if position is not None:
                state["position"] = max(state["position"], position)
            progress(int(fraction() * size) // MB)

        async def pump() -> bool:
            """Copy the SQL into psql, then COMMIT; False (and no COMMIT sent) when
            pg_restore failed or psql stopped at an error."""
            assert producer.stdout is not None
            assert consumer.stdin is not None
            source, sink = producer.stdout, consumer.stdin
            try:
                sink.write(preamble.encode())
                for _ in range(64):  # the script's opening SET commands
                    line = await source.readline()
                    if server_major < 17 and line.strip() == b"SET transaction_timeout = 0;":
                        continue
                    sink.write(line)
                    if not line or line.startswith(b"SET row_security"):
                        break
                while chunk := await source.read(1 << 16):
                    sink.write(chunk)
                    await sink.drain()
                if await producer.wait() != 0:
                    return False
                sink.write(b"COMMIT;\n")
                await sink.drain()
                sink.close()
                return True
            except (BrokenPipeError, ConnectionResetError):
                return False

        reading = asyncio.gather(restoring.read(on_line), loading.read())
        try:
            complete = await ticking(pump(), tick)
            if not complete:
                # psql must not run the rest: killed, its open transaction rolls back.
                loading.stop()
                restoring.stop()
            await reading
            produced, loaded = await producer.wait(), await consumer.wait()
        finally:
            loading.stop()
            restoring.stop()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
        if complete and produced == 0 and loaded == 0:
            state["position"] = size
            progress(size // MB, final=True)
            return
        problems = restoring.errors if produced != 0 and restoring.errors else loading.errors
        raise BackupError(
            "the restore failed and nothing was changed:\n  "
            + "\n  ".join(problems or restoring.errors or ["(no message)"])
        )
