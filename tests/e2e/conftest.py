"""Fixtures of the end-to-end tests: the running platform's services and a new venue with
its codes; and the platform in webhook mode, for the tests of webhooks (one per test
module): every bot has a token on a sandbox served apart, standing in for Telegram (webhook
mode never serves the sandbox itself), which posts updates to the platform's webhooks."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession

from citybots.embedded import free_port
from citybots.platform import Platform
from citybots.settings import BOT_NAMES
from citybots.wiring import Services
from tests.conftest import make_settings
from tests.factories import Door, open_venue
from tests.sandbox_server import serve_sandbox

WEBHOOK_SECRET = "webhook-secret-for-tests-0123"


@pytest.fixture
def services(platform: Platform) -> Services:
    """The running platform's own services (what its bots use); a module that overrides
    ``platform`` gets its platform's."""
    return platform.services


@pytest.fixture
async def door(services: Services) -> Door:
    """A new venue (registered as in the staff bot, unverified) and its QR codes."""
    return await open_venue(services)


@pytest.fixture(scope="module")
async def webhook_api() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The stand-in Bot API's base URL, and a token for each bot on it."""
    async with serve_sandbox() as (remote, base):
        yield base, {name: remote.register_bot(name).token for name in BOT_NAMES}


@pytest.fixture(scope="module")
async def webhook_platform(
    database_url: str,
    redis_url: str,
    webhook_api: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    port = free_port()
    base, tokens = webhook_api
    settings = make_settings(
        tmp_path_factory.mktemp("webhook"),
        database_url=database_url,
        redis_url=redis_url,
        admin_port=port,
        webhook_base_url=f"http://127.0.0.1:{port}",
        webhook_secret=WEBHOOK_SECRET,
        telegram_api_base=base,
        **{f"{name}_bot_token": token for name, token in tokens.items()},
    )
    async with Platform(settings) as running:
        yield running


async def delivered_at_once(
    url: str, update: dict[str, Any], *, times: int = 5, tries: int = 20
) -> list[int]:
    """``update`` posted to the webhook at ``url`` ``times`` at once; like Telegram, a
    delivery answered 503 is tried again, ``tries`` times at most. Each one's last status."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}

    async def deliver(http: ClientSession) -> int:
        for _ in range(tries):
            async with http.post(url, json=update, headers=headers) as response:
                if response.status == 200:
                    return 200
                assert response.status == 503
            await asyncio.sleep(0.1)
        return 503

    async with ClientSession() as http:
        return list(await asyncio.gather(*(deliver(http) for _ in range(times))))
