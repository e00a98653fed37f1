"""Middlewares for per-update context, shared by every bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from flows.i18n import pick_language
from services.users import LanguagePreferences


class LanguageMiddleware(BaseMiddleware):
    """Puts ``lang`` in the handler data: the person's /language choice, else their
    Telegram app's language, else DEFAULT_LANGUAGE."""

    def __init__(self, preferences: LanguagePreferences, default: str) -> None:
        self.preferences = preferences
        self.default = default

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        lang = self.default
        if user is not None:
            choice = await self.preferences.get(user.id)
            app_language = pick_language(user.language_code, default="")
            if app_language and app_language != choice.telegram:
                await self.preferences.note_telegram_language(user.id, app_language)
            lang = choice.chosen or app_language or self.default
        data["lang"] = lang
        return await handler(event, data)
