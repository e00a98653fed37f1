"""The embedded path (no DATABASE_URL / REDIS_URL: the platform starts its own servers),
and what people see when PostgreSQL or Redis goes away and comes back."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.embedded import EmbeddedPostgres, EmbeddedRedis
from citybots.platform import Platform
from presentation.i18n import text
from tests.conftest import make_settings
from tests.factories import help_reply


@pytest.fixture(scope="module")
async def embedded_platform(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    data_dir = tmp_path_factory.mktemp("embedded")
    saved = {k: os.environ.pop(k) for k in ("DATABASE_URL", "REDIS_URL") if k in os.environ}
    try:
        settings = make_settings(data_dir, database_url=None, redis_url=None)
        async with Platform(settings) as running:
            yield running
    finally:
        os.environ.update(saved)


@pytest.fixture
async def client(embedded_platform: Platform) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(f"{embedded_platform.base_url}/sandbox") as sandbox:
        yield sandbox


def _servers(platform: Platform) -> tuple[EmbeddedPostgres, EmbeddedRedis]:
    pg, rd = platform.infra.embedded_postgres, platform.infra.embedded_redis
    assert pg is not None
    assert rd is not None
    return pg, rd


async def _eventually_answers(chat: SandboxChat, command: str, expected: str) -> int:
    """Send until the expected answer comes; returns how many tries it took."""
    for attempt in range(1, 6):
        await chat.send(command)
        replies = await chat.replies(1, wait=15)
        if replies[-1]["text"] == expected:
            return attempt
        await asyncio.sleep(0.5)
    raise AssertionError(f"no {expected!r} after 5 tries")


async def _eventually_flushed(platform: Platform) -> None:
    for _ in range(20):
        try:
            await platform.redis.flushdb()
            return
        except Exception:  # the client reconnects on the next call
            await asyncio.sleep(0.2)
    raise AssertionError("Redis did not come back")


async def test_with_no_urls_the_platform_runs_its_own_postgres_and_redis(
    embedded_platform: Platform,
) -> None:
    pg, rd = _servers(embedded_platform)
    assert (pg.pgdata / "PG_VERSION").exists()
    assert rd.process is not None
    async with (
        ClientSession() as http,
        http.get(f"{embedded_platform.base_url}/healthz") as response,
    ):
        assert response.status == 200


async def test_postgres_restart_gets_a_clear_message_and_service_resumes_by_itself(
    embedded_platform: Platform, client: SandboxClient
) -> None:
    pg, _ = _servers(embedded_platform)
    chat = await client.chat("citizen", language_code="ru")
    await asyncio.to_thread(pg.stop_keeping_port)
    try:
        await chat.send("/start")
        notice = await chat.reply(wait=20)
        assert notice["text"] == text("ru", "errors.unavailable")
        health = await embedded_platform.health()
        assert health["status"] == "degraded"
        assert not health["postgres"]["ok"]
    finally:
        await asyncio.to_thread(pg.resume)
    tries = await _eventually_answers(chat, "/help", help_reply("ru", "citizen"))
    assert tries <= 2


async def _asked_for_the_language(client: SandboxClient, bot: str) -> SandboxChat:
    """A new chat with the bot, in English, that sent /language (the choice is shown)."""
    chat = await client.chat(bot, language_code="en")
    await chat.send("/language")
    await chat.reply()
    return chat


async def _unavailable_while_down(
    server: EmbeddedPostgres | EmbeddedRedis,
    chat: SandboxChat,
    act: Callable[[], Awaitable[object]],
) -> None:
    """The person acts in the chat while the server is down (its port kept): the bot says
    it is unavailable, in English. The server runs again afterwards."""
    await asyncio.to_thread(server.stop_keeping_port)
    try:
        await act()
        assert (await chat.reply(wait=20))["text"] == text("en", "errors.unavailable")
    finally:
        await asyncio.to_thread(server.resume)


async def test_a_language_chosen_during_an_outage_is_not_half_stored(
    embedded_platform: Platform, client: SandboxClient
) -> None:
    pg, _ = _servers(embedded_platform)
    chat = await _asked_for_the_language(client, "staff")
    await _unavailable_while_down(pg, chat, lambda: chat.press("Қазақша"))
    await _eventually_answers(chat, "/help", help_reply("en", "staff"))
    stored = await embedded_platform.pool.fetchval(
        "SELECT language FROM tg_users WHERE tg_user_id = $1", chat.user_id
    )
    assert stored is None


async def test_redis_restart_gets_a_clear_message_and_stored_data_survives(
    embedded_platform: Platform, client: SandboxClient
) -> None:
    _, rd = _servers(embedded_platform)
    chat = await _asked_for_the_language(client, "doctor")
    await chat.press("Русский")
    await chat.reply()
    await _unavailable_while_down(rd, chat, lambda: chat.send("/help"))
    await _eventually_flushed(embedded_platform)
    # The language lives in PostgreSQL: it is still Russian after Redis lost everything.
    await _eventually_answers(chat, "/help", help_reply("ru", "doctor"))


async def test_embedded_postgres_keeps_data_between_runs(tmp_path: Path) -> None:
    import asyncpg

    pg = EmbeddedPostgres(tmp_path / "pg", fast=True)
    url = await asyncio.to_thread(pg.start)
    assert pg.initialised_now
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    await conn.close()
    await asyncio.to_thread(pg.stop)
    url = await asyncio.to_thread(pg.start)
    assert not pg.initialised_now
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT v FROM kept") == "still here"
    await conn.close()
    await asyncio.to_thread(pg.stop)
    assert not (pg.pgdata / "postmaster.pid").exists()
