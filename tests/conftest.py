"""Real PostgreSQL and Redis for every test: DATABASE_URL / REDIS_URL when set,
otherwise private embedded servers started for the session (never a skip)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from bots.sandbox import Sandbox
from bots.sandbox.client import SandboxClient
from citybots.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from citybots.platform import Platform
from citybots.settings import Settings, load_settings
from citybots.wiring import Services
from services.db import connect, create_pool
from services.migrations import migrate

AUDIT_CHAIN_KEY = "test audit chain key"  # every platform and command of a test session


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@dataclass(frozen=True)
class Servers:
    """The tests' PostgreSQL (as the application's role, and as a superuser) and Redis."""

    database_url: str
    superuser_url: str
    redis_url: str


@contextlib.contextmanager
def _own_redis_database(url: str) -> Iterator[str]:
    """A logical database of this session's own on a shared Redis (REDIS_URL), claimed
    in database 0 so that two sessions never share one, and emptied before and after:
    counters keyed by ids that each session's new PostgreSQL database hands out again
    (a venue's look-ups today, say) would otherwise carry over from earlier runs."""
    parts = urlsplit(url)
    claims = SyncRedis.from_url(urlunsplit(parts._replace(path="/0")))
    for index in range(1, 16):
        claim = f"citybots-tests:database:{index}"
        if claims.set(claim, os.getpid(), nx=True, ex=6 * 3600):
            break
    else:
        claims.close()
        yield url  # every database taken by other sessions: share the one given
        return
    own = urlunsplit(parts._replace(path=f"/{index}"))
    with SyncRedis.from_url(own) as database:
        database.flushdb()
    try:
        yield own
    finally:
        with SyncRedis.from_url(own) as database:
            database.flushdb()
        claims.delete(claim)
        claims.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield from _servers(tmp_path_factory, stack)


def _servers(
    tmp_path_factory: pytest.TempPathFactory, stack: contextlib.ExitStack
) -> Iterator[Servers]:
    pg_url = superuser_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        redis_url = stack.enter_context(_own_redis_database(redis_url))
    embedded_pg = embedded_redis = None
    base = tmp_path_factory.mktemp("servers")
    if not pg_url:
        # The application's role (not a superuser), allowed to create the tests' databases.
        embedded_pg = EmbeddedPostgres(base / "postgres", fast=True, for_tests=True)
        pg_url = embedded_pg.start()
        superuser_url = embedded_pg.superuser_url
    if not redis_url:
        embedded_redis = EmbeddedRedis(base / "redis", persist=False)
        redis_url = embedded_redis.start()
    assert superuser_url is not None
    yield Servers(pg_url, superuser_url, redis_url)
    if embedded_redis is not None:
        embedded_redis.stop()
    if embedded_pg is not None:
        embedded_pg.stop()


@pytest.fixture(scope="session")
def server_urls(servers: Servers) -> tuple[str, str]:
    return servers.database_url, servers.redis_url


@contextlib.asynccontextmanager
async def new_database(server: str, prefix: str = "citybots_test") -> AsyncIterator[str]:
    """A new database on the server, migrated, dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_with_database(server, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server, name)
        conn = await connect(url, audit_key=AUDIT_CHAIN_KEY.encode())
        await migrate(conn)  # with the key: the chain is this key's from the start
        await conn.close()
        yield url
    finally:
        await drop_database(admin, name)
        await admin.close()


async def drop_database(admin: asyncpg.Connection, name: str) -> None:
    """Drop a test database, whoever is still in it.

    ``WITH (FORCE)`` alone is not enough on the embedded servers: the tests' role there is
    not a superuser, and an autovacuum worker busy in the database (after a test wrote a lot)
    belongs to the server, so terminating it is refused. A plain ``DROP DATABASE`` stops such
    workers itself and waits a few seconds for clients; a client that stays is then
    terminated with ``FORCE``."""
    for _ in range(20):
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except asyncpg.ObjectInUseError:
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                await asyncio.sleep(0.5)
    raise RuntimeError(f"test database {name} could not be dropped")


@pytest.fixture(scope="session")
async def database_url(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A fresh database for this test session."""
    async with new_database(server_urls[0]) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(server_urls: tuple[str, str]) -> str:
    return server_urls[1]


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, size=5, audit_key=AUDIT_CHAIN_KEY.encode())
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings for a test platform: no tokens (sandbox), a free port, no .env file."""
    values: dict[str, object] = {
        "data_dir": tmp,
        "admin_port": free_port(),
        "audit_chain_key": AUDIT_CHAIN_KEY,
        # Tests of other flows read a chat's replies in order; a person's own result told
        # a few seconds after a test stored it would land among them. Those notices are
        # tested on a platform of their own (tests/e2e/test_results_told.py).
        "citizen_status_notices": False,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
async def platform(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """The whole platform in polling mode, all five bots on the sandbox."""
    settings = make_settings(
        tmp_path_factory.mktemp("platform"), database_url=database_url, redis_url=redis_url
    )
    async with Platform(settings) as running:
        yield running


@pytest.fixture
async def sandbox(platform: Platform) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(f"{platform.base_url}/sandbox") as client:
        yield client


@pytest.fixture(scope="session")
def services(pool: asyncpg.Pool, redis: Redis) -> Services:
    from citybots.wiring import build_services

    return build_services(pool, redis, load_settings(_env_file=None))


@pytest.fixture(autouse=True)
def _no_429_a_test_did_not_ask_for(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every sandbox of this process keeps Telegram's flood limits: a test that made a bot
    send faster than Telegram allows, without asking to (``@pytest.mark.telegram_limits``),
    fails, because on Telegram those messages would have been late or lost."""
    before = {
        id(sandbox): (Counter(sandbox.limits.refused), Counter(sandbox.limits.refused_by_limit))
        for sandbox in Sandbox.instances
    }
    yield
    if request.node.get_closest_marker("telegram_limits"):
        return
    refused: Counter[tuple[str, int]] = Counter()
    by_limit: Counter[str] = Counter()
    for sandbox in Sandbox.instances:
        chats_before, limits_before = before.get(id(sandbox), (Counter(), Counter()))
        refused += sandbox.limits.refused - chats_before
        by_limit += sandbox.limits.refused_by_limit - limits_before
    assert not refused, (
        f"Telegram's limits refused sends this test did not ask for: {dict(refused)} "
        f"(by limit: {dict(by_limit)})"
    )
