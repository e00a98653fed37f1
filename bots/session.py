"""The Bot API client side: pacing every send, waiting out 429s, and knowing whether the
API answers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import KW_ONLY, dataclass
from typing import Any

from aiogram import Bot
from aiogram import methods as aiogram_methods
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType as T

from services.metrics import Metrics
from services.pacing import Pacer, current_sending

log = logging.getLogger(__name__)


def _pin_response_models() -> list[type]:
    """Keep every ``Response[T]`` model aiogram asks for alive.

    aiogram parametrises ``Response[method.__returning__]`` on every API call, and
    pydantic 2.13 caches parametrised generic models only weakly: with no strong
    reference the model class is rebuilt each time, which cost about 1 ms per call and
    a fifth of all CPU under load (measured with py-spy on bench/ashyq.py).
    """
    pinned: list[type] = []
    for name in aiogram_methods.__all__:
        method = getattr(aiogram_methods, name)
        if not (isinstance(method, type) and issubclass(method, TelegramMethod)):
            continue
        returning = method.__dict__.get("__returning__")
        if returning is not None and not isinstance(returning, property):
            pinned.append(Response[returning])  # type: ignore[valid-type]
    return pinned


_PINNED_RESPONSE_MODELS = _pin_response_models()


@dataclass
class ApiHealth:
    """What /healthz says about one bot's connection to its Bot API server."""

    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    @property
    def ok(self) -> bool:
        if self.last_ok is None:
            return False
        return self.last_error_at is None or self.last_ok >= self.last_error_at


@dataclass(eq=False)
class RetryAfterMiddleware(BaseRequestMiddleware):
    """aiogram does not retry on 429: wait ``retry_after`` seconds and send again, so the
    message is delivered once, late, rather than lost."""

    bot_name: str
    metrics: Metrics
    health: ApiHealth
    _: KW_ONLY
    attempts: int = 5
    longest_wait: int = 120

    async def __call__(
        self, make_request: NextRequestMiddlewareType[T], bot: Bot, method: TelegramMethod[T]
    ) -> Response[T]:
        attempt = 1
        while True:
            try:
                response = await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt >= self.attempts or error.retry_after > self.longest_wait:
                    raise
                self.metrics.api_retries.labels(self.bot_name).inc()
                log.warning(
                    "%s bot: %s got 429, retrying in %d s (attempt %d)",
                    self.bot_name,
                    type(method).__name__,
                    error.retry_after,
                    attempt,
                )
                await asyncio.sleep(error.retry_after)
                attempt += 1
                continue
            except (TelegramNetworkError, TelegramServerError) as error:
                self.health.last_error = type(error).__name__
                self.health.last_error_at = time.monotonic()
                raise
            self.health.last_ok = time.monotonic()
            return response


@dataclass(eq=False)
class PacingMiddleware(BaseRequestMiddleware):
    """Every message a bot sends waits for its turn in the shared pacer (services/pacing.py):
    replies, notices, alerts and news alike, from every worker. Registered after
    :class:`RetryAfterMiddleware`, so a send retried after a 429 waits its turn again."""

    bot_name: str
    pacer: Pacer
    metrics: Metrics

    async def __call__(
        self, make_request: NextRequestMiddlewareType[T], bot: Bot, method: TelegramMethod[T]
    ) -> Response[T]:
        chat_id = getattr(method, "chat_id", None)
        priority, paced = current_sending()
        if not paced and isinstance(chat_id, int) and _sends_a_message(method):
            paid = bool(getattr(method, "allow_paid_broadcast", False))
            waited = await self.pacer.turn(bot.id, chat_id, priority, paid=paid)
            self.metrics.send_wait_seconds.labels(self.bot_name, priority.name.lower()).observe(
                waited
            )
        return await make_request(bot, method)


def _sends_a_message(method: TelegramMethod[Any]) -> bool:
    """The calls Telegram counts against its message limits: sendX (not chat actions),
    copies and forwards."""
    name = method.__api_method__
    if name == "sendChatAction":
        return False
    return name.startswith(("send", "copyMessage", "forwardMessage"))
