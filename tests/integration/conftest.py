"""Fixtures the integration tests share."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from citybots.settings import load_settings
from citybots.wiring import Services, build_services
from services.db import create_pool
from tests.conftest import AUDIT_CHAIN_KEY, _with_database, drop_database, new_database


@pytest.fixture
async def empty_db(server_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database with nothing in it (no migration applied), dropped
    after the test."""
    name = f"citybots_empty_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_with_database(server_urls[0], "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_database(server_urls[0], name))
    yield conn
    await conn.close()
    await drop_database(admin, name)
    await admin.close()


@pytest.fixture(scope="module")
async def pool_of_their_own(server_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a database of the module's own. The session's platform (started by the
    e2e tests) sends from the shared database's outbox and runs its background jobs there;
    a module that checks what happens to a message still waiting there uses this, so that
    no other sender or job touches it first."""
    async with new_database(server_urls[0], "citybots_own") as url:
        pool = await create_pool(url, size=3, audit_key=AUDIT_CHAIN_KEY.encode())
        try:
            yield pool
        finally:
            await pool.close()


@pytest.fixture(scope="module")
def services_of_their_own(pool_of_their_own: asyncpg.Pool, redis: Redis) -> Services:
    """The services on the module's own database (see ``pool_of_their_own``)."""
    return build_services(pool_of_their_own, redis, load_settings(_env_file=None))
