"""Systems that call the platform's APIs with a key of their own (laboratories, dispatch
systems): each is a row with a name and the key's hash, never the key itself.

The table names are the code's own constants, never input.
"""

from __future__ import annotations

import hashlib
import secrets

import asyncpg


def key_hash(key: str) -> str:
    """The stored form of an API key (keys are 256-bit random: a plain hash is enough)."""
    return hashlib.sha256(key.encode()).hexdigest()


async def add_key_holder(
    pool: asyncpg.Pool,
    table: str,
    prefix: str,
    name: str,
    *,
    noun: str,
    error: type[Exception],
) -> str:
    """Register the ``noun`` ``name`` in ``table``; returns its API key (the only time it
    is seen). ``error`` for a name that is empty, too long or taken."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise error(f"a {noun}'s name is 1 to 200 characters")
    key = prefix + secrets.token_urlsafe(32)
    try:
        await pool.execute(
            f"INSERT INTO {table} (name, key_hash) VALUES ($1, $2)",  # noqa: S608 - own names
            name,
            key_hash(key),
        )
    except asyncpg.UniqueViolationError:
        raise error(f"a {noun} named {name!r} exists already") from None
    return key


async def key_holder(pool: asyncpg.Pool, table: str, key: str) -> asyncpg.Record | None:
    """The id and name of the holder of ``key`` in ``table``, unless it was revoked (keys
    are 256-bit random, so a hash look-up is safe against guessing)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT id, name FROM {table} WHERE key_hash = $1 AND revoked_at IS NULL",  # noqa: S608 - own names
        key_hash(key),
    )
    return row
