"""The servers under the platform and the one-off commands: PostgreSQL and Redis (the
configured ones or private embedded ones), their pools, and the audit chain's key. Each
is an async context manager, so that what starts a server or a pool also stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from redis.asyncio import BlockingConnectionPool, Redis

from bots.sandbox import default_username
from citybots.embedded import DataDirLock, EmbeddedPostgres, EmbeddedRedis
from citybots.settings import Settings
from citybots.wiring import Services, build_services
from services.db import connect, create_pool
from services.migrations import migrate

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The platform cannot start; the message is one line saying what and why."""


def make_redis(url: str, pool_size: int) -> Redis:
    """A client whose pool makes a burst of updates wait for a free connection (up to a
    few seconds) instead of failing with MaxConnectionsError."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


@dataclass
class Infrastructure:
    """PostgreSQL and Redis URLs, and the embedded servers started to serve them."""

    database_url: str
    redis_url: str
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop the embedded servers this process started (never a running one it found)."""
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()


def audit_chain_key(settings: Settings) -> bytes:
    """The audit chain's HMAC key: AUDIT_CHAIN_KEY, else a random key made once in
    DATA_DIR (readable by this user only). Every worker must use the same key."""
    if settings.audit_chain_key is not None:
        return settings.audit_chain_key.get_secret_value().encode()
    path = settings.data_dir / "audit-chain.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


@contextlib.asynccontextmanager
async def infrastructure(settings: Settings) -> AsyncIterator[Infrastructure]:
    """DATABASE_URL / REDIS_URL, or the private servers under DATA_DIR, started here and
    stopped on the way out."""
    infra = Infrastructure(settings.database_url or "", settings.redis_url or "")
    try:
        if not settings.database_url:
            infra.embedded_postgres = EmbeddedPostgres(settings.data_dir / "postgres")
            infra.database_url = await asyncio.to_thread(infra.embedded_postgres.start)
        if not settings.redis_url:
            infra.embedded_redis = EmbeddedRedis(settings.data_dir / "redis")
            infra.redis_url = await asyncio.to_thread(infra.embedded_redis.start)
        yield infra
    finally:
        await asyncio.to_thread(infra.stop)


@contextlib.asynccontextmanager
async def postgres(url: str, settings: Settings, size: int) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a database brought up to the newest migration; closed on the way out."""
    try:
        pool = await create_pool(url, size=size, audit_key=audit_chain_key(settings))
    except (OSError, asyncpg.PostgresError) as error:
        raise StartupError(f"cannot connect to PostgreSQL: {error}") from error
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def redis_client(url: str, settings: Settings) -> AsyncIterator[Redis]:
    """A client that has answered a ping; closed on the way out."""
    redis = make_redis(url, settings.redis_pool_size)
    try:
        try:
            await redis.ping()
        except Exception as error:
            raise StartupError(f"cannot connect to Redis: {type(error).__name__}") from error
        yield redis
    finally:
        await redis.aclose()


@contextlib.contextmanager
def _command_lock(settings: Settings) -> Iterator[None]:
    """A one-off command that starts embedded servers holds the data folder's lock while
    it runs, so that no `citybots run` starts on servers the command will stop. When a
    run holds it, the command uses that run's servers (and stops none: see ``reused``)."""
    lock = DataDirLock(settings.data_dir)
    if not (settings.database_url and settings.redis_url):
        lock.try_acquire()
    try:
        yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def command_infrastructure(settings: Settings) -> AsyncIterator[Infrastructure]:
    """The servers for a one-off command: the configured ones, or the embedded ones (a
    running `citybots run`'s, else started for the command and stopped after it)."""
    with _command_lock(settings):
        async with infrastructure(settings) as infra:
            yield infra


@contextlib.asynccontextmanager
async def command_services(settings: Settings) -> AsyncIterator[Services]:
    """The services for a one-off command (`citybots import ...`), on the servers of
    :func:`command_infrastructure`."""
    async with (
        command_infrastructure(settings) as infra,
        postgres(infra.database_url, settings, size=4) as pool,
        redis_client(infra.redis_url, settings) as redis,
    ):
        yield build_services(pool, redis, settings)


@contextlib.asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """DATABASE_URL, or the embedded server's (started when needed and stopped afterwards,
    unless a running `citybots run` owns it)."""
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    with _command_lock(settings):
        if not url:
            embedded = EmbeddedPostgres(settings.data_dir / "postgres")
            url = await asyncio.to_thread(embedded.start)
        try:
            yield url
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one-off commands (`citybots db ...`) on :func:`database_url`."""
    async with database_url(settings) as url:
        conn = await connect(url, audit_key=audit_chain_key(settings))
        try:
            yield conn
        finally:
            await conn.close()


def api_base(settings: Settings) -> str:
    """The Bot API server's address for bots with a token (TELEGRAM_API_BASE or
    Telegram's)."""
    return settings.telegram_api_base or PRODUCTION.base.split("/bot{token}")[0]


async def bot_username(settings: Settings, name: str) -> str:
    """A bot's @username for deep links printed by commands: asked of the Bot API when
    the bot has a token, the sandbox's name for it otherwise."""
    token = settings.bot_token(name)
    if token is None:
        return default_username(name)
    server = TelegramAPIServer.from_base(api_base(settings))
    bot = Bot(token=token, session=AiohttpSession(api=server))
    try:
        me = await bot.get_me()
    except (TelegramAPIError, OSError) as error:
        raise StartupError(f"{name} bot: cannot ask the Bot API who it is: {error}") from error
    finally:
        await bot.session.close()
    return me.username or name
