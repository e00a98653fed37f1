"""Middlewares for per-update context, shared by every bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from presentation.i18n import language_for
from services.users import LanguagePreferences

HandlerData = dict[str, Any]
"""What aiogram hands a middleware and the handler: the update's context by name."""
NextHandler = Callable[[TelegramObject, HandlerData], Awaitable[Any]]
"""The rest of the chain after a middleware: the next middleware, then the handler."""


class LanguageMiddleware(BaseMiddleware):
    """Puts ``lang`` in the handler data: the person's /language choice, else their
    Telegram app's language, else DEFAULT_LANGUAGE."""

    def __init__(self, preferences: LanguagePreferences, default: str) -> None:
        self.preferences = preferences
        self.default = default

    async def __call__(
        self, handler: NextHandler, event: TelegramObject, data: HandlerData
    ) -> Any:
        user: User | None = data.get("event_from_user")
        lang = self.default
        if user is not None:
            lang = await language_for(self.preferences, user.id, user.language_code, self.default)
        data["lang"] = lang
        return await handler(event, data)
