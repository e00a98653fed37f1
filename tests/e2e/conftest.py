"""The platform in webhook mode, for the tests of webhooks (one per test module)."""

from collections.abc import AsyncIterator

import pytest

from citybots.embedded import free_port
from citybots.platform import Platform
from tests.conftest import make_settings

WEBHOOK_SECRET = "webhook-secret-for-tests-0123"


@pytest.fixture(scope="module")
async def webhook_platform(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("webhook"),
        database_url=database_url,
        redis_url=redis_url,
        admin_port=port,
        webhook_base_url=f"http://127.0.0.1:{port}",
        webhook_secret=WEBHOOK_SECRET,
    )
    async with Platform(settings) as running:
        yield running
