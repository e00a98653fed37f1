"""An aiohttp app served on a port of its own for a test: a stand-in for another server (a
sandbox standing in for Telegram, a Rasa server, the app behind a proxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bots.sandbox import Sandbox
from citybots.embedded import free_port


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """The app served on 127.0.0.1 until the block ends; its port."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_sandbox() -> AsyncIterator[tuple[Sandbox, str]]:
    """A running sandbox and its Bot API base URL."""
    sandbox = Sandbox()
    app = web.Application()
    sandbox.setup(app)
    async with serve(app) as port:
        yield sandbox, f"http://127.0.0.1:{port}/sandbox"
