"""The audit log is append-only and hash-chained: the application cannot change or remove
a row, and a row changed behind its back (triggers disabled) is found by verify."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.audit import chain, record, verify
from services.db import create_pool
from tests.conftest import new_database

KEY = b"test chain key"


@pytest.fixture
async def own_database(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A database of this test's own: tampering must not break the session's chain."""
    async with new_database(server_urls[0], "citybots_audit") as url:
        yield url


async def test_verify_finds_an_edited_and_a_removed_row(own_database: str) -> None:
    pool = await create_pool(own_database, size=2)
    try:
        await _tamper_and_verify(pool, own_database)
    finally:
        await pool.close()


async def _tamper_and_verify(pool: asyncpg.Pool, database_url: str) -> None:
    actor = "chain-test"
    for n in range(5):
        await record(pool, actor=actor, action="test.write", subject=str(n), details={"n": n})
    await chain(pool, KEY)
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
    pool = await create_pool(own_database, size=2)
    try:
        for n in range(5):
            await record(pool, actor="chain-end", action="test.write", subject=str(n))
        await chain(pool, KEY)
        logged = await pool.fetchrow("SELECT chain_seq, hash FROM audit_chain_head")
        head = (logged["chain_seq"], bytes(logged["hash"]).hex()[:16])
        # A row may not come pre-chained: the insert trigger clears the chain columns.
        await pool.execute(
            "INSERT INTO audit_log (actor, action, chain_seq, hash) VALUES ('x', 'y', 99, 'ab')"
        )
        assert await pool.fetchval("SELECT chain_seq FROM audit_log WHERE actor = 'x'") is None
        await chain(pool, KEY)
        assert (await verify(pool, KEY, head=head)).intact

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
        report = await verify(pool, KEY, head=head)
        assert not report.intact
        assert "is not in the chain as it was" in report.broken[-1]
        # Nor can the rows be re-hashed without the key.
        assert not (await verify(pool, b"another key")).intact
    finally:
        await pool.close()


async def test_rows_cannot_be_changed_or_removed(own_database: str) -> None:
    pool = await create_pool(own_database, size=2)
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
    await chain(pool, KEY)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # a chained row stays as chained
        await pool.execute("UPDATE audit_log SET hash = NULL WHERE actor = $1", actor)
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE actor = $1", actor) == 1
