"""Async filters shared by flows (aiogram runs sync filters in a thread: ~240 µs each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Router
from aiogram.filters import Command, Filter
from aiogram.types import Message

from presentation.i18n import LANGUAGES, text
from services.validation import is_deep_link_payload


class MenuButton(Filter):
    """Matches a reply-keyboard button by its text key, in any language."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.labels = frozenset(text(lang, key) for lang in LANGUAGES)

    async def __call__(self, message: Message) -> bool:
        return message.text in self.labels


def start_payload(text_: str, prefixes: tuple[str, ...]) -> str | None:
    """The payload of ``/start <payload>`` when it starts with one of ``prefixes`` and has
    the shape of a Telegram deep-link parameter (anything else never reaches a query)."""
    if not text_.startswith("/start "):
        return None
    payload = text_[len("/start ") :].strip()
    return payload if payload.startswith(prefixes) and is_deep_link_payload(payload) else None


class StartPayload(Filter):
    """``/start <payload>`` whose payload starts with one of ``prefixes``; the handler
    gets it as ``payload``."""

    def __init__(self, *prefixes: str) -> None:
        self.prefixes = prefixes

    async def __call__(self, message: Message) -> bool | dict[str, str]:
        payload = start_payload(message.text or "", self.prefixes)
        return False if payload is None else {"payload": payload}


class PlainStart(Filter):
    """``/start`` without a payload: deep links are left to the flows that own them."""

    async def __call__(self, message: Message) -> bool:
        command = (message.text or "").strip().split("@", 1)[0]
        return command == "/start"


class HasContact(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.contact is not None


class HasLocation(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.location is not None


class HasDocument(Filter):
    """A message carrying a file (a CSV upload)."""

    async def __call__(self, message: Message) -> bool:
        return message.document is not None


def register_entry(
    router: Router,
    handler: Callable[..., Any],
    *,
    button: str | None = None,
    command: str | None = None,
) -> None:
    """A way into a flow: its main-menu button (by text key), its slash command, or both,
    taken by the one handler."""
    if button is not None:
        router.message.register(handler, MenuButton(button))
    if command is not None:
        router.message.register(handler, Command(command))
