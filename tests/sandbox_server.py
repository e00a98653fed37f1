"""A sandbox served on its own port, standing in for Telegram in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bots.sandbox import Sandbox
from citybots.embedded import free_port


@asynccontextmanager
async def serve_sandbox() -> AsyncIterator[tuple[Sandbox, str]]:
    """A running sandbox and its Bot API base URL."""
    sandbox = Sandbox()
    app = web.Application()
    sandbox.setup(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield sandbox, f"http://127.0.0.1:{port}/sandbox"
    finally:
        await runner.cleanup()
