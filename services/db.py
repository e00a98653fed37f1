"""The PostgreSQL pool and the errors that mean "the database is not there right now"."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection of one's own or one borrowed from the pool: both run the same statements.
Connection = asyncpg.Connection | PoolConnectionProxy

T = TypeVar("T")


class Columns(Protocol):
    """A row read by column name: an ``asyncpg.Record``, or a mapping of the same."""

    def __getitem__(self, key: str, /) -> Any: ...


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def from_row(cls: type[T], row: Columns, **given: object) -> T:
    """A ``cls`` (a dataclass) of a row whose columns bear its fields' names (other
    columns are left out); the fields in ``given`` (worked out from the row) as given."""
    names = _field_names(cast(Any, cls))
    return cls(**{name: given[name] if name in given else row[name] for name in names})


def of_row(cls: type[T]) -> Callable[[asyncpg.Record], T]:
    """What makes a ``cls`` of a row, as ``from_row`` does."""
    return functools.partial(from_row, cls)


async def fetch_one(
    conn: Connection | asyncpg.Pool, of: Callable[[asyncpg.Record], T], sql: str, *args: object
) -> T | None:
    """The first row of ``sql`` made a value by ``of``; None when there is no row."""
    row = await conn.fetchrow(sql, *args)
    return None if row is None else of(row)


async def fetch_all(
    conn: Connection | asyncpg.Pool, of: Callable[[asyncpg.Record], T], sql: str, *args: object
) -> list[T]:
    """Every row of ``sql``, each made a value by ``of``."""
    return [of(row) for row in await conn.fetch(sql, *args)]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _server_settings(audit_key: bytes | None) -> dict[str, str] | None:
    """The audit chain's key goes to each session at start-up, never into a table or a
    statement's text: the insert trigger on audit_log chains rows with it (and refuses
    a row from a session without it)."""
    return {"citybots.audit_key": audit_key.hex()} if audit_key else None


async def connect(url: str, *, audit_key: bytes | None = None) -> asyncpg.Connection:
    """One connection, set up like the pool's, for one-off commands."""
    conn = await asyncpg.connect(url, timeout=10, server_settings=_server_settings(audit_key))
    await _init_connection(conn)
    return conn


async def create_pool(url: str, *, size: int = 10, audit_key: bytes | None = None) -> asyncpg.Pool:
    """A pool whose connections decode JSON and may write the audit log (given
    ``audit_key``); commands time out rather than hang."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        command_timeout=30,
        timeout=10,
        max_inactive_connection_lifetime=300,
        server_settings=_server_settings(audit_key),
    )
    assert pool is not None
    return pool


def is_unavailable(error: BaseException) -> bool:
    """True for errors that mean PostgreSQL or Redis is down or restarting, as opposed to
    a bug or bad data: the person is told to retry, nothing is half-written."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(
        error,
        OSError
        | TimeoutError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | asyncpg.exceptions.TooManyConnectionsError
        | asyncpg.exceptions.ConnectionFailureError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.InternalClientError  # a pooled connection left broken by an outage
        | RedisConnectionError
        | RedisTimeoutError,
    )


async def recover(pool: asyncpg.Pool, error: BaseException) -> None:
    """After a connection-level fault, have the pool replace its connections: one left
    mid-operation by an outage would otherwise fail every statement given to it."""
    if isinstance(
        error, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.InternalClientError
    ):
        await pool.expire_connections()
