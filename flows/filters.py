"""Async filters shared by flows (aiogram runs sync filters in a thread: ~240 µs each)."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import Message

from flows.i18n import LANGUAGES, text


class MenuButton(Filter):
    """Matches a reply-keyboard button by its text key, in any language."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.labels = frozenset(text(lang, key) for lang in LANGUAGES)

    async def __call__(self, message: Message) -> bool:
        return message.text in self.labels
