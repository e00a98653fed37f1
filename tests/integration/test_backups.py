"""`citybots db backup` and `citybots db restore`: a real process, real PostgreSQL, real
pg_dump; a city's data goes out to a file and comes back whole."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from citybots.backup import backup
from citybots.pg_tools import BackupError
from citybots.restore import restore
from citybots.settings import load_settings
from citybots.wiring import build_services
from services.audit import record, verify
from services.db import create_pool
from services.demo import load_demo_data
from services.migrations import MIGRATIONS_DIR, REWRITTEN, load_migrations, migrate, status
from tests.commands import run_citybots
from tests.conftest import AUDIT_CHAIN_KEY, Servers, _with_database
from tests.factories import add_pcr, add_stay, make_citizen, make_venue

KEY = AUDIT_CHAIN_KEY.encode()


def _citybots(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_citybots(*args, env={**os.environ, **env}, cwd=cwd, timeout=280)


@contextlib.asynccontextmanager
async def _database(server: str, *, migrated: bool = False) -> AsyncIterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = f"citybots_backup_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_with_database(server, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server, name)
        if migrated:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _snapshot(url: str) -> dict[str, Any]:
    """Every table's row count and a digest of its rows, and every sequence's position."""
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        snapshot: dict[str, Any] = {}
        for table in tables:
            digest = "md5(string_agg(t::text, '|' ORDER BY t::text))"
            row = await conn.fetchrow(f'SELECT count(*) AS n, {digest} AS d FROM "{table}" t')  # noqa: S608
            snapshot[table] = (row["n"], row["d"])
        for seq in await conn.fetch(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
        ):
            snapshot[f"sequence {seq['sequencename']}"] = seq["last_value"]
        return snapshot
    finally:
        await conn.close()


@dataclass(frozen=True)
class BackedUp:
    source: str
    file: Path
    result: subprocess.CompletedProcess[str]
    snapshot: dict[str, Any]
    chained: int


@pytest.fixture(scope="module")
async def backed_up(
    server_urls: tuple[str, str], redis: Redis, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BackedUp]:
    """A city with citizens, PCR results, visits and a chained audit log, backed up once
    by `citybots db backup`."""
    async with _database(server_urls[0], migrated=True) as source:
        pool = await create_pool(source, size=3, audit_key=KEY)
        try:
            services = build_services(pool, redis, load_settings(_env_file=None))
            async with pool.acquire() as conn:
                await load_demo_data(conn)
            venue = await make_venue(services)
            for n in range(3):
                iin = await make_citizen(services, 7_000_000 + secrets.randbelow(10**6) * 10 + n)
                await add_pcr(services, iin, "negative" if n else "positive")
                await add_stay(services, iin, venue, datetime(2026, 5, 1, 9, tzinfo=UTC), None)
            for n in range(5):
                await record(pool, actor="backup-test", action="test.write", details={"n": n})
            chained = await pool.fetchval("SELECT count(chain_seq) FROM audit_log")
        finally:
            await pool.close()
        folder = tmp_path_factory.mktemp("backups")
        file = folder / "city.dump"
        env = {"DATABASE_URL": source, "REDIS_URL": server_urls[1]}
        result = _citybots("db", "backup", str(file), env=env, cwd=folder)
        yield BackedUp(source, file, result, await _snapshot(source), chained)


def test_a_backup_is_written_whole_and_readable_by_its_owner_only(backed_up: BackedUp) -> None:
    result = backed_up.result
    assert result.returncode == 0, result.stderr
    assert f"backup written: {backed_up.file}" in result.stdout
    assert "readable by its owner only" in result.stdout
    assert "backing up the database" in result.stderr  # progress, on standard error
    assert "100.0%" in result.stderr
    assert stat.S_IMODE(backed_up.file.stat().st_mode) == 0o600
    assert [p.name for p in backed_up.file.parent.iterdir()] == ["city.dump"]  # no temp file
    assert backed_up.file.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format


async def test_a_restore_into_an_empty_database_brings_back_every_row_and_the_audit_chain(
    backed_up: BackedUp, server_urls: tuple[str, str], redis: Redis, tmp_path: Path
) -> None:
    assert backed_up.result.returncode == 0, backed_up.result.stderr
    assert backed_up.chained >= 5
    # A Redis database of its own: the restore empties it (stale colours must go).
    redis_url = server_urls[1].rsplit("/", 1)[0] + "/7"
    stale = Redis.from_url(redis_url)
    async with _database(server_urls[0]) as target:
        try:
            await stale.set("status:stale", "green from before the restore")
            env = {"DATABASE_URL": target, "REDIS_URL": redis_url}
            result = _citybots("db", "restore", str(backed_up.file), env=env, cwd=tmp_path)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "restoring city.dump" in result.stderr  # progress
            assert "no migration to apply" in result.stdout
            assert "Redis emptied" in result.stdout
            assert await stale.get("status:stale") is None
        finally:
            await stale.aclose()

        restored = await _snapshot(target)
        assert restored == backed_up.snapshot
        counts = {t: v[0] for t, v in restored.items() if not t.startswith("sequence ")}
        for table in ("citizens", "pcr_results", "visits", "audit_log", "venues"):
            assert counts[table] > 0, table

        pool = await create_pool(target, size=2, audit_key=KEY)
        try:
            report = await verify(pool, KEY)
            assert report.intact, report.broken
            assert report.checked == counts["audit_log"]
            assert not (await verify(pool, b"another deployment's key")).intact
        finally:
            await pool.close()


async def test_a_database_that_is_not_empty_is_refused_unless_forced(
    backed_up: BackedUp, server_urls: tuple[str, str], tmp_path: Path
) -> None:
    assert backed_up.result.returncode == 0, backed_up.result.stderr
    redis_url = server_urls[1].rsplit("/", 1)[0] + "/7"
    async with _database(server_urls[0], migrated=True) as target:
        conn = await asyncpg.connect(target)
        try:
            await conn.execute(
                "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory)"
                " VALUES ('900101300000', now(), now(), 'negative', 'kept lab')"
            )
        finally:
            await conn.close()
        before = await _snapshot(target)
        env = {"DATABASE_URL": target, "REDIS_URL": redis_url}
        refused = _citybots("db", "restore", str(backed_up.file), env=env, cwd=tmp_path)
        assert refused.returncode == 1
        assert "is not empty" in refused.stderr
        assert "with rows (" in refused.stderr
        assert "pcr_results" in refused.stderr
        assert f"migrations up to {load_migrations()[-1].name}" in refused.stderr
        assert "--force" in refused.stderr
        assert await _snapshot(target) == before  # nothing touched

        forced = _citybots("db", "restore", "--force", str(backed_up.file), env=env, cwd=tmp_path)
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert "replaced what the database held" in forced.stdout
        assert await _snapshot(target) == backed_up.snapshot


async def test_a_backup_made_by_an_older_version_is_restored_and_migrated(
    server_urls: tuple[str, str], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    old_code = tmp_path_factory.mktemp("old-migrations")
    migrations = sorted(MIGRATIONS_DIR.glob("*.sql"))
    for path in migrations[:20]:
        (old_code / path.name).write_text(path.read_text())
    async with _database(server_urls[0]) as source, _database(server_urls[0]) as target:
        conn = await asyncpg.connect(source)
        try:
            await migrate(conn, old_code)
            await conn.execute(
                "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory)"
                " VALUES ('900101300000', now(), now(), 'positive', 'old lab')"
            )
        finally:
            await conn.close()
        written = await backup(source, tmp_path / "old.dump")
        assert written.schema == migrations[19].name

        report = await restore(target, tmp_path / "old.dump")
        assert report.archive.schema == migrations[19].name
        functions = sorted(MIGRATIONS_DIR.glob("functions/*.sql"))
        assert report.applied == [p.name for p in migrations[20:]] + [
            f"functions/{p.name}" for p in functions
        ]
        conn = await asyncpg.connect(target)
        try:
            assert (
                await conn.fetchval(
                    "SELECT laboratory FROM pcr_results WHERE iin = '900101300000'"
                )
                == "old lab"
            )
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(migrations)
        finally:
            await conn.close()


async def test_a_backup_whose_history_has_the_former_texts_of_rewritten_migrations_restores(
    server_urls: tuple[str, str], tmp_path: Path
) -> None:
    """A backup of a database that applied the rewritten migrations (REWRITTEN) before
    their rewrite restores as it is; one whose history has any other checksum for them
    is refused before anything is touched."""
    async with (
        _database(server_urls[0], migrated=True) as source,
        _database(server_urls[0]) as target,
    ):
        conn = await asyncpg.connect(source)
        try:
            for name, former in REWRITTEN.items():
                await conn.execute(
                    "UPDATE schema_migrations SET checksum = $2 WHERE name = $1", name, min(former)
                )
            await backup(source, tmp_path / "former.dump")
            edited = sorted(REWRITTEN)[0]
            await conn.execute(
                "UPDATE schema_migrations SET checksum = 'not a former text' WHERE name = $1",
                edited,
            )
            await backup(source, tmp_path / "edited.dump")
        finally:
            await conn.close()

        with pytest.raises(BackupError, match=f"cannot be restored.*{edited} was edited"):
            await restore(target, tmp_path / "edited.dump")
        report = await restore(target, tmp_path / "former.dump")
        assert report.applied == []
        conn = await asyncpg.connect(target)
        try:
            assert not any(s.edited for s in await status(conn))
            recorded = dict(await conn.fetch("SELECT name, checksum FROM schema_migrations"))
            assert {name: recorded[name] for name in REWRITTEN} == {
                name: min(former) for name, former in REWRITTEN.items()
            }
        finally:
            await conn.close()


async def test_a_failed_backup_leaves_no_file_and_keeps_the_previous_one(
    server_urls: tuple[str, str], servers: Servers, tmp_path: Path
) -> None:
    role = f"backup_reader_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(servers.superuser_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'not on any command line'")
    try:
        async with _database(server_urls[0], migrated=True) as source:
            # A user who may connect but not read the tables: pg_dump fails part-way.
            host = source.split("@", 1)[1]
            url = f"postgresql://{role}:not%20on%20any%20command%20line@{host}"
            previous = tmp_path / "city.dump"
            previous.write_bytes(b"yesterday's backup")
            with pytest.raises(BackupError, match="pg_dump failed") as failure:
                await backup(url, previous)
            assert "permission denied" in str(failure.value)
            assert "not on any command line" not in str(failure.value)
            assert previous.read_bytes() == b"yesterday's backup"
            assert os.listdir(tmp_path) == ["city.dump"]
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
