"""Fixtures the integration tests share."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import _with_database


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
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()
