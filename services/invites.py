"""One-use invites by which an admin lets a person take a staff role in a bot (doctor,
officer, brigade member): a random token with a prefix that names the kind, stored with
what joining grants; each works once, until it expires.

The table names are the code's own constants, never input.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta

import asyncpg

from services.db import Connection


async def create_invite(
    conn: Connection, table: str, prefix: str, ttl: timedelta, grants: Mapping[str, object]
) -> str:
    """Store a new invite in ``table`` with the columns ``grants``, valid for ``ttl``;
    returns its token."""
    token = prefix + secrets.token_urlsafe(16)
    columns = ", ".join(grants)
    values = ", ".join(f"${i}" for i in range(2, len(grants) + 2))
    expires = f"now() + ${len(grants) + 2}::interval"
    sql = f"INSERT INTO {table} (token, {columns}, expires_at) VALUES ($1, {values}, {expires})"  # noqa: S608 - the code's own names
    await conn.execute(sql, token, *grants.values(), ttl)
    return token


async def use_invite(
    conn: Connection,
    table: str,
    token: str,
    tg_user_id: int,
    returning: str,
    *,
    also: str = "",
    args: tuple[object, ...] = (),
) -> asyncpg.Record | None:
    """Use the invite ``token`` of ``table`` for ``tg_user_id`` if nobody used it and it
    has not expired (and the condition ``also`` holds, over ``args`` from $3); its
    ``returning`` columns, or None."""
    condition = f" AND {also}" if also else ""
    sql = (
        f"UPDATE {table} SET used_by = $2, used_at = now() WHERE token = $1"  # noqa: S608 - the code's own names
        f" AND used_by IS NULL AND expires_at > now(){condition} RETURNING {returning}"
    )
    row: asyncpg.Record | None = await conn.fetchrow(sql, token, tg_user_id, *args)
    return row
