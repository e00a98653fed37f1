"""The sandbox's records (bots, users, chats, groups, faults, files) and the helpers that
read and write the Bot API's wire format."""

from __future__ import annotations

import asyncio
import mimetypes
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import (
    web,
)

# The sends a fault hits unless it names its methods.
_FAULT_METHODS = ("sendMessage", "sendPhoto", "sendDocument")

# Parameters that Telegram takes as strings even when they look like numbers or JSON.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "photo",
        "document",
        "inline_message_id",
        "language_code",
        "ip_address",
        "description",
        "short_description",
        "name",
        "file_id",
        "emoji",
        "action",
    }
)


@dataclass
class SandboxBot:
    name: str
    id: int
    username: str
    token: str
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    next_update_id: int = 1
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_queue: asyncio.Queue[dict[str, Any]] | None = None
    webhook_task: asyncio.Task[None] | None = None
    max_connections: int = 40
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    web_app_url: str | None = None  # the bot's main Mini App, as set with @BotFather

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.name.title() + " bot",
            "username": self.username,
        }


@dataclass
class SandboxUser:
    id: int
    first_name: str
    language_code: str | None
    username: str | None = None

    def public(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        if self.username:
            user["username"] = self.username
        return user


@dataclass
class Chat:
    """One user's private chat with one bot: every message and every change to it."""

    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1
    seq: int = 0
    started: bool = False
    blocked: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    bot_changes: list[int] = field(default_factory=list)  # sequence numbers, ascending
    bot_changed: list[int] = field(default_factory=list)  # the message id of each


@dataclass
class Group:
    """A group, supergroup or channel that bots can be added to: what the bots said in
    it and whether each is still there (to show that bots stay out of them)."""

    id: int
    type: str
    title: str
    members: set[int] = field(default_factory=set)  # the bots in it, by id
    events: list[dict[str, Any]] = field(default_factory=list)  # bots' sends and leaves
    next_message_id: int = 1
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "title": self.title}


# The longest the sandbox holds one request for messages (a client wanting longer asks again).
MAX_WAIT = 60.0

GROUP_TYPES = ("group", "supergroup", "channel")
_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
)


@dataclass
class Fault:
    """Sends of ``methods`` fail with ``status``: each with probability ``rate``, until
    ``remaining`` have failed (None: no limit) or ``until`` (monotonic time) has passed."""

    status: int
    retry_after: int
    methods: frozenset[str]
    remaining: int | None = 1
    rate: float = 1.0
    until: float | None = None
    injected: int = 0

    @property
    def spent(self) -> bool:
        return (self.remaining is not None and self.remaining <= 0) or (
            self.until is not None and time.monotonic() >= self.until
        )

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "retry_after": self.retry_after,
            "methods": sorted(self.methods),
            "remaining": self.remaining,
            "rate": self.rate,
            "seconds_left": None
            if self.until is None
            else max(0.0, round(self.until - time.monotonic(), 1)),
            "injected": self.injected,
        }


@dataclass
class StoredFile:
    data: bytes
    kind: str
    file_name: str | None
    mime_type: str | None


_OPENED_INLINE = frozenset({"image/png", "image/jpeg", "image/svg+xml", "application/pdf"})


def _file_type(stored: StoredFile) -> str:
    """The file's type as sent, else guessed from its name (aiogram uploads say
    application/octet-stream)."""
    if stored.mime_type and stored.mime_type != "application/octet-stream":
        return stored.mime_type
    if stored.kind == "photo":
        return "image/png"
    guessed, _ = mimetypes.guess_type(stored.file_name or "")
    return guessed or "application/octet-stream"


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 0, 0


def _moved(
    message: dict[str, Any], location: dict[str, Any], *, stop: bool = False, at: int | None
) -> dict[str, Any]:
    """A live-location message after a move (or its end: Telegram drops ``live_period``)."""
    moved = dict(message["location"])
    if stop:
        moved.pop("live_period", None)
    else:
        moved.update(location)
    return {**message, "location": moved, "edit_date": at or int(time.time())}


def default_username(bot_name: str) -> str:
    """The @username a sandbox bot gets unless told otherwise."""
    return f"citybots_{bot_name}_bot"


class _Forbidden(Exception):
    pass


class _Conflict(Exception):
    pass


def _chat_of(update: dict[str, Any]) -> int | None:
    for kind in ("message", "edited_message"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    if "callback_query" in update:
        return int(update["callback_query"]["from"]["id"])
    return None


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the Bot API shows it to bots: Telegram returns only inline
    keyboards inside Message objects, never reply keyboards."""
    public = {
        k: v
        for k, v in message.items()
        if not k.startswith("_") and k != "deleted" and v is not None
    }
    if "inline_keyboard" not in (public.get("reply_markup") or {}):
        public.pop("reply_markup", None)
    return public


def _transcript(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the user side sees it: with any keyboard, and its change number."""
    shown = {k: v for k, v in message.items() if not k.startswith("_") and v is not None}
    return {
        **shown,
        "seq": message["_seq"],
        "from_bot": bool(message["from"].get("is_bot")),
        "deleted": bool(message.get("deleted")),
    }


def _int(value: Any, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _chat_id(params: dict[str, Any]) -> Any:
    """A send's ``chat_id``, a numeric string read as the number (as Telegram does)."""
    chat_id = params.get("chat_id")
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return chat_id


def _too_many(retry_after: int) -> web.Response:
    return _error(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body
