"""Bots with a token talk to the Bot API server named by TELEGRAM_API_BASE (here a
separate sandbox standing in for Telegram or a self-hosted Bot API server)."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession

from bots.sandbox import Sandbox
from bots.sandbox.client import SandboxClient
from citybots.embedded import free_port
from citybots.platform import Platform, StartupError
from citybots.settings import Settings
from tests.conftest import make_settings
from tests.factories import help_reply
from tests.sandbox_server import serve_sandbox


@pytest.fixture
def settings_with(database_url: str, redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the tests' servers, with these overrides (bot tokens, the API server)."""

    def settings(**overrides: object) -> Settings:
        return make_settings(tmp_path, database_url=database_url, redis_url=redis_url, **overrides)

    return settings


@pytest.fixture
async def remote_api() -> AsyncIterator[tuple[Sandbox, str]]:
    async with serve_sandbox() as served:
        yield served


async def test_a_bot_with_a_token_runs_on_the_configured_api_server(
    remote_api: tuple[Sandbox, str], settings_with: Callable[..., Settings]
) -> None:
    remote, base = remote_api
    token = remote.register_bot("citizen", username="almaty_citizen_bot").token
    settings = settings_with(
        citizen_bot_token=token,
        telegram_api_base=base,
        sandbox="on",  # the others on the platform's own sandbox, as asked
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
    remote_api: tuple[Sandbox, str], settings_with: Callable[..., Settings]
) -> None:
    _, base = remote_api
    settings = settings_with(
        doctor_bot_token="123456:revoked-token",
        telegram_api_base=base,
    )
    with pytest.raises(StartupError, match="DOCTOR_BOT_TOKEN"):
        await Platform(settings).start()


async def test_an_unreachable_api_server_stops_the_start_naming_the_setting(
    settings_with: Callable[..., Settings],
) -> None:
    settings = settings_with(
        agent_bot_token="123456:some-token",
        telegram_api_base=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(StartupError, match="TELEGRAM_API_BASE"):
        await Platform(settings).start()


async def test_a_partial_token_set_serves_no_sandbox_and_says_which_bots_did_not_start(
    remote_api: tuple[Sandbox, str],
    settings_with: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17 §7: one bot given a token used to put the sandbox, faults API and all, on
    the public web app for the other four."""
    remote, base = remote_api
    token = remote.register_bot("citizen").token
    settings = settings_with(
        citizen_bot_token=token,
        telegram_api_base=base,
    )
    with caplog.at_level("INFO", logger="citybots.platform"):
        async with Platform(settings) as platform, ClientSession() as http:
            assert platform.sandbox is None
            assert list(platform.bots) == ["citizen"]
            for path in ("/sandbox/api/faults", "/sandbox/api/users", "/sandbox/"):
                async with http.post(platform.base_url + path, json={"count": 5}) as response:
                    assert response.status in (404, 405), path
            health = await platform.health()
            assert health["status"] == "ok"
            assert "not started, no token: staff, quarantine" in platform.summary()
    assert "sandbox: off (SANDBOX=auto and some bots have a token)" in caplog.text
