"""Bots with a token talk to the Bot API server named by TELEGRAM_API_BASE (here a
separate sandbox standing in for Telegram or a self-hosted Bot API server)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.sandbox import Sandbox
from bots.sandbox.client import SandboxClient
from citybots.embedded import free_port
from citybots.platform import Platform, StartupError
from tests.conftest import make_settings
from tests.factories import help_reply
from tests.sandbox_server import serve_sandbox


@pytest.fixture
async def remote_api() -> AsyncIterator[tuple[Sandbox, str]]:
    async with serve_sandbox() as served:
        yield served


async def test_a_bot_with_a_token_runs_on_the_configured_api_server(
    remote_api: tuple[Sandbox, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    remote, base = remote_api
    token = remote.register_bot("citizen", username="almaty_citizen_bot").token
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        citizen_bot_token=token,
        telegram_api_base=base,
    )
    async with Platform(settings) as platform, SandboxClient(base) as client:
        health = await platform.health()
        assert health["bots"]["citizen"]["api"] == "telegram"
        assert health["bots"]["citizen"]["username"] == "almaty_citizen_bot"
        assert health["bots"]["staff"]["api"] == "sandbox"
        assert "almaty_citizen_bot" in platform.summary()
        chat = await client.chat("almaty_citizen_bot", language_code="en")
        await chat.send("/help")
        assert (await chat.reply())["text"] == help_reply("en", "citizen")


async def test_a_refused_token_stops_the_start_naming_the_setting(
    remote_api: tuple[Sandbox, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    _, base = remote_api
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        doctor_bot_token="123456:revoked-token",
        telegram_api_base=base,
    )
    with pytest.raises(StartupError, match="DOCTOR_BOT_TOKEN"):
        await Platform(settings).start()


async def test_an_unreachable_api_server_stops_the_start_naming_the_setting(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        agent_bot_token="123456:some-token",
        telegram_api_base=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(StartupError, match="TELEGRAM_API_BASE"):
        await Platform(settings).start()
