"""The sandbox: the server side of the Bot API, and a user side for people and tests.

Bot side, as Telegram serves it: ``POST|GET <base>/bot<token>/<method>`` with JSON,
form or multipart parameters, answering ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``.

User side (JSON, under ``<base>/api``): create users, send text, commands,
``/start`` payloads, contacts, locations and live-location moves, press inline
buttons, and read a chat's transcript (long-polling for what is new). Faults
(429 with ``retry_after``, 5xx) can be switched on for the next N sends, or for a
fraction of sends for a while; the faults injected are counted.

All state is in memory: the sandbox is for trying and testing, not for keeping.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from bots.sandbox.bot_api import BotApi
from bots.sandbox.limits import HEARTBEAT
from bots.sandbox.model import default_username
from bots.sandbox.user_side import UserSide

__all__ = ["Sandbox", "default_username"]


class Sandbox(BotApi, UserSide):
    """Holds the sandbox's state and serves both sides under one URL prefix."""

    _pause_watch: asyncio.Task[None] | None = None

    def setup(self, app: web.Application) -> None:
        p = self.prefix
        app.router.add_get(p + "/", self._ui, name="sandbox-ui")
        app.router.add_route("*", p + "/bot{token}/{method}", self._bot_api)
        app.router.add_get(p + "/file/bot{token}/{path:.+}", self._file_download)
        app.router.add_get(p + "/api/bots", self._api_bots)
        app.router.add_post(p + "/api/users", self._api_create_user)
        app.router.add_post(p + "/api/faults", self._api_faults)
        app.router.add_get(p + "/api/faults", self._api_faults)
        app.router.add_get(p + "/api/limits", self._api_limits)
        app.router.add_post(p + "/api/limits", self._api_limits)
        app.router.add_get(p + "/api/files/{file_id}", self._api_file)
        chat = p + "/api/bots/{bot}/users/{user_id}"
        app.router.add_post(chat + "/send", self._api_send)
        app.router.add_post(chat + "/edit", self._api_edit)
        app.router.add_post(chat + "/press", self._api_press)
        app.router.add_post(chat + "/block", self._api_block)
        app.router.add_get(chat + "/messages", self._api_messages)
        app.router.add_post(p + "/api/groups", self._api_create_group)
        group = p + "/api/groups/{group_id}"
        app.router.add_get(group, self._api_group)
        app.router.add_post(group + "/add", self._api_group_add)
        app.router.add_post(group + "/send", self._api_group_send)
        app.router.add_post(chat + "/webapp", self._api_webapp)
        app.on_startup.append(self._start_watching_pauses)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)

    async def _start_watching_pauses(self, _app: web.Application) -> None:
        self._pause_watch = asyncio.create_task(self._watch_pauses())

    async def _watch_pauses(self) -> None:
        """Beat the flood limits' heartbeat, so that they know a pause of this process's
        loop when they see one (bots/sandbox/limits.py)."""
        while True:
            self.limits.beat()
            await asyncio.sleep(HEARTBEAT)

    async def _shutdown(self, _app: web.Application) -> None:
        """Release long polls at once, so that the server stops without waiting them out."""
        self.closing = True
        for bot in self.bots_by_token.values():
            async with bot.arrived:
                bot.arrived.notify_all()
        for chat in self.chats.values():
            async with chat.changed:
                chat.changed.notify_all()

    async def _cleanup(self, _app: web.Application) -> None:
        if self._pause_watch is not None:
            self._pause_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pause_watch
        for bot in self.bots_by_token.values():
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.webhook_task
        if self._http is not None:
            await self._http.close()
