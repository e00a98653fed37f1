"""The audit log is append-only and hash-chained as each row is written: the application
cannot change or remove a row, no row is ever unchained, and a row changed behind its
back (triggers disabled by the owner or a superuser) is found by verify."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.audit import GENESIS, head, link, record, verify
from services.db import connect, create_pool
from services.migrations import MIGRATIONS_DIR, migrate
from tests.conftest import AUDIT_CHAIN_KEY, Servers, drop_database, new_database

KEY = AUDIT_CHAIN_KEY.encode()  # the key new_database migrates with


@pytest.fixture
async def own_database(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A database of this test's own: tampering must not break the session's chain."""
    async with new_database(server_urls[0], "citybots_audit") as url:
        yield url


async def test_verify_finds_an_edited_and_a_removed_row(own_database: str) -> None:
    pool = await create_pool(own_database, size=2, audit_key=KEY)
    try:
        await _tamper_and_verify(pool, own_database)
    finally:
        await pool.close()


async def _tamper_and_verify(pool: asyncpg.Pool, database_url: str) -> None:
    actor = "chain-test"
    for n in range(5):
        await record(pool, actor=actor, action="test.write", subject=str(n), details={"n": n})
    report = await verify(pool, KEY)
    assert report.intact, report.broken
    assert report.checked >= 5
    ids = [
        r["id"]
        for r in await pool.fetch("SELECT id FROM audit_log WHERE actor = $1 ORDER BY id", actor)
    ]

    # Someone with the owner's rights switches the guard off and edits, then deletes.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            await conn.execute(
                "UPDATE audit_log SET subject = 'someone else' WHERE id = $1", ids[1]
            )
            await conn.execute("DELETE FROM audit_log WHERE id = $1", ids[3])
        finally:
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    finally:
        await conn.close()
    report = await verify(pool, KEY)
    assert not report.intact
    problems = "\n".join(report.broken)
    assert f"row id {ids[1]} " in problems
    assert "changed after it was written" in problems
    assert "missing" in problems


async def test_rows_cut_off_the_end_are_found_against_a_head_logged_earlier(
    own_database: str,
) -> None:
    pool = await create_pool(own_database, size=2, audit_key=KEY)
    try:
        for n in range(5):
            await record(pool, actor="chain-end", action="test.write", subject=str(n))
        seq, digest = await head(pool)
        logged = (seq, digest[:16])
        # A row may not come pre-chained: the insert trigger sets the chain columns.
        await pool.execute(
            "INSERT INTO audit_log (actor, action, chain_seq, hash) VALUES ('x', 'y', 99, 'ab')"
        )
        assert await pool.fetchval("SELECT chain_seq FROM audit_log WHERE actor = 'x'") == seq + 1
        assert (await verify(pool, KEY, head=logged)).intact

        # The owner removes the last two rows and moves the head back to the row before:
        # consistent in itself, but the head logged earlier is gone.
        conn = await asyncpg.connect(own_database)
        try:
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            last = await conn.fetchval("SELECT max(chain_seq) FROM audit_log")
            await conn.execute("DELETE FROM audit_log WHERE chain_seq > $1", last - 2)
            await conn.execute(
                "UPDATE audit_chain_head SET chain_seq = a.chain_seq, hash = a.hash"
                " FROM audit_log a WHERE a.chain_seq = $1",
                last - 2,
            )
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        finally:
            await conn.close()
        assert (await verify(pool, KEY)).intact  # without a head kept elsewhere: unseen
        report = await verify(pool, KEY, head=logged)
        assert not report.intact
        assert "is not in the chain as it was" in report.broken[-1]
        # Nor can the rows be re-hashed without the key.
        assert not (await verify(pool, b"another key")).intact
    finally:
        await pool.close()


async def test_rows_cannot_be_changed_or_removed(own_database: str) -> None:
    pool = await create_pool(own_database, size=2, audit_key=KEY)
    try:
        await _cannot_change(pool)
    finally:
        await pool.close()


async def _cannot_change(pool: asyncpg.Pool) -> None:
    actor = f"chain-{secrets.token_hex(3)}"
    await record(pool, actor=actor, action="test.write", subject="x", details={"n": 1})
    for statement in (
        "UPDATE audit_log SET action = 'edited' WHERE actor = $1",
        "DELETE FROM audit_log WHERE actor = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement, actor)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("TRUNCATE audit_log")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # nor can its chain be undone
        await pool.execute("UPDATE audit_log SET hash = NULL WHERE actor = $1", actor)
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE actor = $1", actor) == 1


async def test_a_row_edited_right_after_it_is_written_is_found(own_database: str) -> None:
    """The attack of issue 17 §5: with the chain job, a row edited before the job came
    by was chained in its edited form. Now it is chained by its own insert."""
    pool = await create_pool(own_database, size=2, audit_key=KEY)
    conn = await asyncpg.connect(own_database)  # the owner's (here superuser's) rights
    try:
        await record(pool, actor="panel:alice", action="registry.lookup", subject="791028302728")
        row_id = await pool.fetchval("SELECT max(id) FROM audit_log")
        assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE hash IS NULL") == 0
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        await conn.execute("UPDATE audit_log SET actor = 'panel:bob' WHERE id = $1", row_id)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        report = await verify(pool, KEY)
        assert report.broken == [f"row id {row_id} (#1) was changed after it was written"]
    finally:
        await conn.close()
        await pool.close()


async def test_a_session_without_the_key_cannot_write_the_audit_log(own_database: str) -> None:
    conn = await connect(own_database)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="audit key"):
            await record(conn, actor="someone", action="test.write")
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
        # Nor does the key sit anywhere in the database for such a session to read.
        assert await conn.fetchval("SELECT current_setting('citybots.audit_key', true)") in (
            None,
            "",
        )
    finally:
        await conn.close()


async def test_a_session_with_another_key_cannot_write_the_audit_log(own_database: str) -> None:
    """A command run without the deployment's AUDIT_CHAIN_KEY (its own random key), or
    someone guessing, is refused: the chain stays verifiable with the one key."""
    right = await connect(own_database, audit_key=KEY)
    wrong = await connect(own_database, audit_key=b"a key of one's own")
    try:
        await record(right, actor="deployment", action="test.write")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not the one the chain"):
            await record(wrong, actor="forger", action="test.write")
        await wrong.execute("SET citybots.audit_key = 'deadbeef'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not the one the chain"):
            await record(wrong, actor="forger", action="test.write")
        await record(right, actor="deployment", action="test.write")
        assert await right.fetchval("SELECT count(*) FROM audit_log") == 2
    finally:
        await right.close()
        await wrong.close()


async def test_concurrent_writers_make_one_chain_without_gaps(own_database: str) -> None:
    pool = await create_pool(own_database, size=8, audit_key=KEY)
    try:

        async def writer(n: int) -> None:
            for i in range(25):
                async with pool.acquire() as conn, conn.transaction():
                    await record(conn, actor=f"w{n}", action="test.write", details={"i": i})
                    if i % 5 == 0:  # a rolled-back insert leaves no gap in the chain
                        await _write_and_roll_back(conn, f"w{n}")

        await asyncio.gather(*(writer(n) for n in range(8)))
        report = await verify(pool, KEY)
        assert report.intact, report.broken
        assert report.checked == 200
        assert await pool.fetchval("SELECT max(chain_seq) FROM audit_log") == 200
    finally:
        await pool.close()


async def _write_and_roll_back(conn: asyncpg.Connection, actor: str) -> None:
    try:
        async with conn.transaction():
            await record(conn, actor=actor, action="test.rolled.back")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass


async def _legacy_database(server: str, tmp_path: Path) -> str:
    """A database at migration 0031 whose old chain job had chained two rows out of three."""
    old_code = tmp_path / "migrations"
    old_code.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < 32:
            (old_code / path.name).write_text(path.read_text())
    url = server.rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(url)
    name = f"citybots_legacy_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database = server.rsplit("/", 1)[0] + f"/{name}"
    conn = await connect(database)
    try:
        await migrate(conn, old_code)
        ids = []
        for n in range(3):
            ids.append(
                await conn.fetchval(
                    "INSERT INTO audit_log (actor, action, subject, details)"
                    " VALUES ('old', 'test.write', $1, $2) RETURNING id",
                    str(n),
                    {"n": n, "text": 'é \n "q"'},
                )
            )
        prev = GENESIS
        for seq, row_id in enumerate(ids[:2], start=1):  # what the old job did
            row = await conn.fetchrow("SELECT * FROM audit_log WHERE id = $1", row_id)
            digest = link(KEY, prev, row, json_form=True)
            await conn.execute(
                "UPDATE audit_log SET chain_seq = $2, prev_hash = $3, hash = $4 WHERE id = $1",
                row_id,
                seq,
                prev,
                digest,
            )
            await conn.execute(
                "UPDATE audit_chain_head SET chain_seq = $1, hash = $2", seq, digest
            )
            prev = digest
    finally:
        await conn.close()
    return database


@pytest.mark.parametrize("with_key", [True, False])
async def test_rows_the_old_chain_job_left_are_chained_by_the_migration_given_the_key(
    server_urls: tuple[str, str], tmp_path: Path, with_key: bool
) -> None:
    database = await _legacy_database(server_urls[0], tmp_path)
    try:
        conn = await connect(database, audit_key=KEY if with_key else None)
        try:
            assert "0032_audit_chained_on_insert.sql" in await migrate(conn)
        finally:
            await conn.close()
        pool = await create_pool(database, size=2, audit_key=KEY)
        try:
            await record(pool, actor="new", action="test.write", details={"x": [1, 2.5]})
            report = await verify(pool, KEY)
            assert report.intact, report.broken
            if with_key:
                assert (report.checked, report.unchained) == (4, 0)
            else:  # the third old row cannot be vouched for, and verify says so
                assert (report.checked, report.unchained) == (3, 1)
        finally:
            await pool.close()
    finally:
        admin = await asyncpg.connect(server_urls[0].rsplit("/", 1)[0] + "/postgres")
        await drop_database(admin, database.rsplit("/", 1)[1])
        await admin.close()


async def test_the_migrations_run_as_a_database_owner_that_is_not_a_superuser(
    servers: Servers,
) -> None:
    base = servers.superuser_url.rsplit("/", 1)[0]
    suffix = secrets.token_hex(4)
    role, name = f"citybots_owner_{suffix}", f"citybots_owned_{suffix}"
    password = secrets.token_hex(12)
    admin = await asyncpg.connect(base + "/postgres")
    try:
        await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        scheme, rest = base.split("://", 1)
        host = rest.split("@", 1)[-1]
        owned = f"{scheme}://{role}:{password}@{host}/{name}"
        conn = await connect(owned, audit_key=KEY)
        try:
            assert not await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role
            )
            await migrate(conn)
            await record(conn, actor="owner", action="test.write")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute("DELETE FROM audit_log")
        finally:
            await conn.close()
        pool = await create_pool(owned, size=1, audit_key=KEY)
        try:
            assert (await verify(pool, KEY)).intact
        finally:
            await pool.close()
    finally:
        await drop_database(admin, name)
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
