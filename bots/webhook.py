"""Webhook endpoint: one route for every bot, ``POST /webhook/<bot name>``.

The secret header is checked before the body is read. Telegram gets its 200 only
after the update was handled (or found already handled), so a worker that dies
mid-update leaves it to be delivered again; aiogram's default of answering first
and handling in the background would lose it.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiohttp import web
from pydantic import ValidationError

from bots.dispatcher import IN_FLIGHT, CityDispatcher
from services.validation import is_bigint, loads_json

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


@dataclass
class WebhookTarget:
    bot: Bot
    dispatcher: CityDispatcher


class WebhookEndpoint:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.targets: dict[str, WebhookTarget] = {}

    def setup(self, app: web.Application) -> None:
        app.router.add_post("/webhook/{bot}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        target = self.targets.get(request.match_info["bot"])
        if target is None:
            raise web.HTTPNotFound()
        try:
            payload = loads_json(await request.read())
            if not isinstance(payload, dict) or not is_bigint(payload.get("update_id")):
                raise ValueError("an update is a JSON object with an update_id")
            result = await target.dispatcher.feed_raw(target.bot, payload)
        except (ValueError, ValidationError) as error:
            log.warning(
                "webhook %s: malformed update (%s)",
                request.match_info["bot"],
                type(error).__name__,
            )
            return web.json_response({"ok": False, "description": "malformed update"}, status=400)
        if result is IN_FLIGHT:
            return web.json_response(
                {"ok": False, "description": "being handled"},
                status=503,
                headers={"Retry-After": "5"},
            )
        if isinstance(result, TelegramMethod):
            await target.bot(result)
        return web.json_response({"ok": True})
