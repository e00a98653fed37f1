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
import base64
import binascii
import bisect
import contextlib
import itertools
import json
import logging
import mimetypes
import random
import re
import secrets
import struct
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import (
    BodyPartReader,
    ClientError,
    ClientSession,
    ClientTimeout,
    TCPConnector,
    web,
)

from bots.sandbox.limits import FloodLimits
from bots.sandbox.markup import MAX_CAPTION, BadRequest, check_markup, check_text
from bots.sandbox.webapp import launch_url, sign_init_data
from services.validation import is_deep_link_payload

log = logging.getLogger(__name__)

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


class Sandbox:
    """Holds the sandbox's state and serves both sides under one URL prefix."""

    # Every sandbox of this process, so that the test suite can check none refused a
    # send for Telegram's limits that a test did not ask for.
    instances: ClassVar[weakref.WeakSet[Sandbox]] = weakref.WeakSet()

    def __init__(self, prefix: str = "/sandbox") -> None:
        self.prefix = prefix.rstrip("/")
        self.bots_by_token: dict[str, SandboxBot] = {}
        self.bots_by_username: dict[str, SandboxBot] = {}
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[tuple[int, int], Chat] = {}
        self.groups: dict[int, Group] = {}
        self._group_ids = itertools.count(1_000_000_000_000 + secrets.randbelow(10**9))
        self.files: dict[str, StoredFile] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.faults_injected: dict[int, int] = {}  # by status, since the start
        self.limits = FloodLimits()
        Sandbox.instances.add(self)
        self._fault_dice = random.Random()  # noqa: S311 - which sends fail, not a secret
        self.requests_served = 0
        self.closing = False
        # Random bases: a new sandbox must not reuse ids that a database or Redis kept
        # from an earlier run (the update ledger and the FSM are keyed by them).
        self._user_ids = itertools.count(1_000_000_000 + secrets.randbelow(10**9))
        self._bot_ids = itertools.count(8_000_000_000 + secrets.randbelow(10**9) * 8)
        self._http: ClientSession | None = None

    # ----------------------------------------------------------------- set-up

    def register_bot(self, name: str, username: str | None = None) -> SandboxBot:
        """Create a bot identity (id, @username, token) the way @BotFather would."""
        bot_id = next(self._bot_ids)
        token = f"{bot_id}:SANDBOX-{secrets.token_urlsafe(24)}"
        bot = SandboxBot(
            name=name, id=bot_id, username=username or default_username(name), token=token
        )
        self.bots_by_token[token] = bot
        self.bots_by_username[bot.username.lower()] = bot
        return bot

    def create_user(
        self,
        first_name: str = "Sandbox user",
        language_code: str | None = "en",
        username: str | None = None,
    ) -> SandboxUser:
        user = SandboxUser(next(self._user_ids), first_name, language_code, username)
        self.users[user.id] = user
        return user

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
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)

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
        for bot in self.bots_by_token.values():
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot.webhook_task
        if self._http is not None:
            await self._http.close()

    # --------------------------------------------------------------- bot side

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[bytes, str | None, str | None]] = {}
        # body_exists, not can_read_body: the web app's input guard may have read the form.
        if request.method == "POST" and request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise BadRequest("parameters must be a JSON object")
                return body
            if ctype.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, BodyPartReader) or part.name is None:
                        continue
                    data = await part.read()
                    if part.filename:
                        mime = part.headers.get("Content-Type")
                        files[part.name] = (bytes(data), part.filename, mime)
                    else:
                        raw[part.name] = bytes(data).decode("utf-8")
            else:
                raw.update(await request.post())
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str) and key not in _STRING_PARAMS:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value
            else:
                params[key] = value
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                attached = files.get(value.removeprefix("attach://"))
                if attached is None:
                    raise BadRequest(f"file {value} is not attached")
                params[key] = attached
        params.update({k: v for k, v in files.items() if k not in params})
        return params

    async def _bot_api(self, request: web.Request) -> web.Response:
        self.requests_served += 1
        bot = self.bots_by_token.get(request.match_info["token"])
        if bot is None:
            return _error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        fault = self._take_fault(method)
        if fault is not None:
            if fault.status == 429:
                return _too_many(fault.retry_after)
            return _error(fault.status, "Internal Server Error")
        try:
            params = await self._params(request)
            limited = self._limited(bot, method, params)
            if limited is not None:
                chat_id, paid = limited
                retry_after = self.limits.wait(bot.id, bot.name, chat_id, paid=paid)
                if retry_after is not None:
                    return _too_many(retry_after)
            result = await handler(bot, params)
            if limited is not None:
                self.limits.record(bot.id, limited[0], paid=limited[1])
        except BadRequest as error:
            return _error(400, f"Bad Request: {error}")
        except _Forbidden as error:
            return _error(403, f"Forbidden: {error}")
        except _Conflict as error:
            return _error(409, f"Conflict: {error}")
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _limited(bot: SandboxBot, method: str, params: dict[str, Any]) -> tuple[int, bool] | None:
        """(chat, paid broadcast) of a send Telegram counts against its flood limits."""
        if method == "sendchataction" or not (
            method.startswith("send") or method in ("copymessage", "forwardmessage")
        ):
            return None
        chat_id = _chat_id(params)
        if not isinstance(chat_id, int):
            return None  # the method itself answers "chat not found"
        return chat_id, params.get("allow_paid_broadcast") is True

    def _take_fault(self, method: str) -> Fault | None:
        """The fault this send of ``method`` meets, if any (counted as injected)."""
        if not self.faults:
            return None
        self.faults = [f for f in self.faults if not f.spent]
        for fault in self.faults:
            if method not in fault.methods:
                continue
            if fault.rate < 1.0 and self._fault_dice.random() >= fault.rate:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.injected += 1
            self.faults_injected[fault.status] = self.faults_injected.get(fault.status, 0) + 1
            return fault
        return None

    def add_fault(
        self,
        *,
        status: int = 429,
        retry_after: int = 1,
        methods: list[str] | None = None,
        count: int | None = None,
        rate: float = 1.0,
        seconds: float | None = None,
    ) -> Fault:
        """Make sends fail like Telegram under load: the next ``count`` sends, each with
        probability ``rate``, for ``seconds`` (None: until cleared). Without a count, a
        fault with a rate or a duration has no limit of sends; one with neither fails
        the next send only."""
        if not 400 <= status <= 599:
            raise ValueError("status must be 4xx or 5xx")
        if not 0.0 < rate <= 1.0:
            raise ValueError("rate must be above 0 and at most 1")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if count is None and seconds is None and rate >= 1.0:
            count = 1
        fault = Fault(
            status=status,
            retry_after=retry_after,
            methods=frozenset(m.lower() for m in methods or _FAULT_METHODS),
            remaining=count,
            rate=rate,
            until=None if seconds is None else time.monotonic() + seconds,
        )
        self.faults.append(fault)
        return fault

    def faults_report(self) -> dict[str, Any]:
        """The faults in force and how many sends each status failed, since the start."""
        self.faults = [f for f in self.faults if not f.spent]
        return {
            "faults": [f.public() for f in self.faults],
            "injected": {str(k): v for k, v in sorted(self.faults_injected.items())},
            "injected_total": sum(self.faults_injected.values()),
        }

    def _chat_for(self, bot: SandboxBot, params: dict[str, Any]) -> tuple[int, Chat]:
        chat_id = _chat_id(params)
        if chat_id is None:
            raise BadRequest("chat_id is empty")
        if not isinstance(chat_id, int) or chat_id not in self.users:
            raise BadRequest("chat not found")
        chat = self.chats.get((bot.id, chat_id))
        if chat is None or not chat.started:
            raise _Forbidden("bot can't initiate conversation with a user")
        if chat.blocked:
            raise _Forbidden("bot was blocked by the user")
        return chat_id, chat

    def _message_for(self, bot: SandboxBot, params: dict[str, Any]) -> tuple[Chat, dict[str, Any]]:
        _, chat = self._chat_for(bot, params)
        message = chat.messages.get(_int(params.get("message_id")))
        if message is None or message.get("deleted"):
            raise BadRequest("message to edit not found")
        return chat, message

    async def _post_bot_message(
        self, bot: SandboxBot, chat_id: int, chat: Chat, content: dict[str, Any]
    ) -> dict[str, Any]:
        message = {
            "message_id": chat.next_message_id,
            "from": bot.public(),
            "chat": self._chat_json(chat_id),
            "date": int(time.time()),
            **content,
        }
        chat.blocked = False  # writing to a bot unblocks it
        chat.next_message_id += 1
        await self._record(chat, message)
        return message

    async def _record(self, chat: Chat, message: dict[str, Any]) -> None:
        async with chat.changed:
            chat.seq += 1
            message["_seq"] = chat.seq
            chat.messages[message["message_id"]] = message
            if message["from"].get("is_bot"):
                chat.bot_changes.append(chat.seq)
                chat.bot_changed.append(message["message_id"])
            chat.changed.notify_all()

    def _chat_json(self, user_id: int) -> dict[str, Any]:
        user = self.users[user_id]
        return {"id": user.id, "type": "private", "first_name": user.first_name}

    async def _m_getme(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot.public(),
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getupdates(self, bot: SandboxBot, params: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            raise _Conflict(
                "can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        timeout = min(max(_int(params.get("timeout"), 0), 0), 50)
        async with bot.arrived:
            while bot.updates and offset and bot.updates[0]["update_id"] < offset:
                bot.updates.popleft()
            if not bot.updates and timeout and not self.closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bot.arrived.wait(), timeout)
            return list(itertools.islice(bot.updates, limit))

    async def _m_setwebhook(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if url and not url.startswith(("http://", "https://")):
            raise BadRequest("bad webhook: invalid URL")
        bot.webhook_url = url or None
        bot.webhook_secret = params.get("secret_token") or None
        bot.max_connections = min(max(_int(params.get("max_connections"), 40), 1), 100)
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        if bot.webhook_url and bot.webhook_task is None:
            bot.webhook_queue = asyncio.Queue()
            while bot.updates:
                bot.webhook_queue.put_nowait(bot.updates.popleft())
            bot.webhook_task = asyncio.create_task(self._deliver_webhooks(bot))
        return True

    async def _m_deletewebhook(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        bot.webhook_url = None
        bot.webhook_secret = None
        if bot.webhook_task is not None:
            bot.webhook_task.cancel()
            bot.webhook_task = None
        if bot.webhook_queue is not None:
            while not bot.webhook_queue.empty():
                bot.updates.append(bot.webhook_queue.get_nowait())
            bot.webhook_queue = None
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        return True

    async def _m_getwebhookinfo(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        pending = bot.webhook_queue.qsize() if bot.webhook_queue else len(bot.updates)
        return {
            "url": bot.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": pending,
        }

    async def _m_setmycommands(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not commands:
            raise BadRequest("commands must be a non-empty array")
        for command in commands:
            if (
                not isinstance(command, dict)
                or not command.get("command")
                or not command.get("description")
            ):
                raise BadRequest("BOT_COMMAND_INVALID")
        bot.commands[params.get("language_code") or ""] = commands
        return True

    async def _m_getmycommands(self, bot: SandboxBot, params: dict[str, Any]) -> list[Any]:
        return bot.commands.get(params.get("language_code") or "", [])

    async def _m_deletemycommands(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        bot.commands.pop(params.get("language_code") or "", None)
        return True

    async def _m_sendchataction(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        self._chat_for(bot, params)
        return True

    async def _m_sendmessage(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_for(bot, params)
        if group is not None:
            check_text(params.get("text"), params.get("parse_mode"))
            return await self._group_event(group, {"from": bot.public(), "text": params["text"]})
        chat_id, chat = self._chat_for(bot, params)
        check_text(params.get("text"), params.get("parse_mode"))
        content: dict[str, Any] = {"text": params["text"], "parse_mode": params.get("parse_mode")}
        markup = check_markup(params.get("reply_markup"))
        if markup is not None:
            content["reply_markup"] = markup
        return _public(await self._post_bot_message(bot, chat_id, chat, content))

    async def _m_leavechat(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        group = self._group_for(bot, params)
        if group is None:
            raise BadRequest("chat not found")
        group.members.discard(bot.id)
        await self._group_event(group, {"from": bot.public(), "left_chat_member": bot.public()})
        return True

    def _group_for(self, bot: SandboxBot, params: dict[str, Any]) -> Group | None:
        """The group ``chat_id`` names (None for a private chat); 403 if the bot is not in
        it, as Telegram answers."""
        group = self.groups.get(_int(params.get("chat_id"), 0))
        if group is not None and bot.id not in group.members:
            raise _Forbidden(f"bot is not a member of the {group.type} chat")
        return group

    async def _group_event(self, group: Group, content: dict[str, Any]) -> dict[str, Any]:
        message = {
            "message_id": group.next_message_id,
            "chat": group.public(),
            "date": int(time.time()),
            **content,
        }
        group.next_message_id += 1
        async with group.changed:
            group.events.append(message)
            group.changed.notify_all()
        return message

    def create_group(self, kind: str = "group", title: str = "Sandbox group") -> Group:
        if kind not in GROUP_TYPES:
            raise ValueError(f"a group's type is one of {', '.join(GROUP_TYPES)}")
        group = Group(-next(self._group_ids), kind, title)
        self.groups[group.id] = group
        return group

    async def add_to_group(
        self, bot: SandboxBot, group: Group, by: SandboxUser, *, quietly: bool = False
    ) -> int:
        """``by`` adds ``bot`` to the group (an administrator of a channel); the bot gets
        a ``my_chat_member`` update (not ``quietly``: as a bot whose allowed updates left
        it out, or one added before it asked). Returns its update id (0 if quietly)."""
        group.members.add(bot.id)
        if quietly:
            return 0
        member: dict[str, Any] = {"user": bot.public()}
        status = "member"
        if group.type == "channel":  # bots join channels as administrators
            status = "administrator"
            member |= {right: False for right in _ADMIN_RIGHTS}
            member["can_post_messages"] = True
        update = await self._push_update(
            bot,
            {
                "my_chat_member": {
                    "chat": group.public(),
                    "from": by.public(),
                    "date": int(time.time()),
                    "old_chat_member": {"status": "left", **member},
                    "new_chat_member": {"status": status, **member},
                }
            },
        )
        return int(update["update_id"])

    async def post_in_group(
        self, bot: SandboxBot, group: Group, user: SandboxUser | None, text: str
    ) -> int:
        """A message in the group as ``bot`` sees it: from ``user``, or with no sender (an
        anonymous administrator: ``sender_chat`` only); in a channel, a channel post."""
        if bot.id not in group.members:
            raise ValueError("the bot is not in that group")
        message: dict[str, Any] = {
            "message_id": group.next_message_id,
            "chat": group.public(),
            "date": int(time.time()),
            "text": text,
        }
        group.next_message_id += 1
        if user is not None and group.type != "channel":
            message["from"] = user.public()
        else:
            message["sender_chat"] = group.public()
        kind = "channel_post" if group.type == "channel" else "message"
        update = await self._push_update(bot, {kind: message})
        return int(update["update_id"])

    async def _send_file(
        self, bot: SandboxBot, params: dict[str, Any], kind: str
    ) -> dict[str, Any]:
        chat_id, chat = self._chat_for(bot, params)
        value = params.get(kind)
        if isinstance(value, tuple):
            data, file_name, mime_type = value
        elif isinstance(value, str) and value in self.files:
            stored = self.files[value]
            data, file_name, mime_type = stored.data, stored.file_name, stored.mime_type
        else:
            raise BadRequest(f"there is no {kind} in the request")
        if not data:
            raise BadRequest("file must be non-empty")
        file_id = "SBX" + secrets.token_urlsafe(12)
        self.files[file_id] = StoredFile(data, kind, file_name, mime_type)
        content: dict[str, Any] = {}
        if kind == "photo":
            width, height = _png_size(data)
            content["photo"] = [
                {
                    "file_id": file_id,
                    "file_unique_id": file_id[3:15],
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            ]
        else:
            content["document"] = {
                "file_id": file_id,
                "file_unique_id": file_id[3:15],
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(data),
            }
        caption = params.get("caption")
        if caption:
            check_text(caption, params.get("parse_mode"), limit=MAX_CAPTION)
            content["caption"] = caption
        markup = check_markup(params.get("reply_markup"))
        if markup is not None:
            content["reply_markup"] = markup
        return _public(await self._post_bot_message(bot, chat_id, chat, content))

    async def _m_sendphoto(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(bot, params, "photo")

    async def _m_senddocument(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(bot, params, "document")

    async def _m_sendlocation(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, chat = self._chat_for(bot, params)
        try:
            location = {
                "latitude": float(params["latitude"]),
                "longitude": float(params["longitude"]),
            }
        except (KeyError, TypeError, ValueError):
            raise BadRequest("wrong latitude or longitude") from None
        return _public(await self._post_bot_message(bot, chat_id, chat, {"location": location}))

    async def _edit(
        self, bot: SandboxBot, params: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any]:
        chat, message = self._message_for(bot, params)
        if not message["from"].get("is_bot") or message["from"]["id"] != bot.id:
            raise BadRequest("message can't be edited")
        new = {**message, **changes, "edit_date": int(time.time())}
        if "reply_markup" in changes and changes["reply_markup"] is None:
            new.pop("reply_markup")
        same = all(message.get(k) == new.get(k) for k in ("text", "caption", "reply_markup"))
        if same:
            raise BadRequest(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        await self._record(chat, new)
        return _public(new)

    async def _m_editmessagetext(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        check_text(params.get("text"), params.get("parse_mode"))
        markup = check_markup(params.get("reply_markup"))
        return await self._edit(
            bot,
            params,
            {
                "text": params["text"],
                "parse_mode": params.get("parse_mode"),
                "reply_markup": markup,
            },
        )

    async def _m_editmessagecaption(
        self, bot: SandboxBot, params: dict[str, Any]
    ) -> dict[str, Any]:
        caption = params.get("caption") or ""
        if caption:
            check_text(caption, params.get("parse_mode"), limit=MAX_CAPTION)
        markup = check_markup(params.get("reply_markup"))
        return await self._edit(bot, params, {"caption": caption, "reply_markup": markup})

    async def _m_editmessagereplymarkup(
        self, bot: SandboxBot, params: dict[str, Any]
    ) -> dict[str, Any]:
        markup = check_markup(params.get("reply_markup"))
        return await self._edit(bot, params, {"reply_markup": markup})

    async def _m_deletemessage(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        _, chat = self._chat_for(bot, params)
        message = chat.messages.get(_int(params.get("message_id")))
        if message is None or message.get("deleted"):
            raise BadRequest("message to delete not found")
        await self._record(chat, {**message, "deleted": True})
        return True

    async def _m_answercallbackquery(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        query = self.callbacks.get(str(params.get("callback_query_id")))
        if query is None or query["bot_id"] != bot.id:
            raise BadRequest(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if query.get("answered"):
            raise BadRequest(
                "query is too old and response timeout expired or query ID is invalid"
            )
        query["answered"] = {
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert")),
        }
        return True

    async def _m_close(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        return True

    async def _m_logout(self, bot: SandboxBot, params: dict[str, Any]) -> bool:
        return True

    # -------------------------------------------------------- update delivery

    async def _push_update(self, bot: SandboxBot, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": bot.next_update_id, **payload}
        bot.next_update_id += 1
        if bot.webhook_url and bot.webhook_queue is not None:
            bot.webhook_queue.put_nowait(update)
            return update
        async with bot.arrived:
            bot.updates.append(update)
            bot.arrived.notify_all()
        return update

    async def _deliver_webhooks(self, bot: SandboxBot) -> None:
        """Post updates to the webhook as Telegram does: up to ``max_connections`` at once,
        but one at a time per chat so that a person's messages arrive in order; a
        delivery that is not answered 2xx is retried with backoff."""
        assert bot.webhook_queue is not None
        queue = bot.webhook_queue
        if self._http is None:
            # A connection per delivery, as a load balancer in front of several workers
            # expects; kept-alive connections would all stay with the first worker.
            self._http = ClientSession(
                timeout=ClientTimeout(total=60), connector=TCPConnector(force_close=True)
            )
        pending: deque[dict[str, Any]] = deque()
        busy: set[int] = set()
        changed = asyncio.Condition()

        def take() -> tuple[dict[str, Any], int | None] | None:
            for index, update in enumerate(pending):
                chat = _chat_of(update)
                if chat is None or chat not in busy:
                    del pending[index]
                    if chat is not None:
                        busy.add(chat)
                    return update, chat
            return None

        async def feed() -> None:
            while True:
                update = await queue.get()
                async with changed:
                    pending.append(update)
                    changed.notify_all()

        async def deliver() -> None:
            while True:
                async with changed:
                    while (picked := take()) is None:
                        await changed.wait()
                update, chat = picked
                try:
                    await self._post_webhook(bot, update)
                finally:
                    async with changed:
                        busy.discard(chat)
                        changed.notify_all()

        try:
            await asyncio.gather(feed(), *(deliver() for _ in range(bot.max_connections)))
        finally:
            bot.updates.extend(pending)

    async def _post_webhook(self, bot: SandboxBot, update: dict[str, Any]) -> None:
        assert self._http is not None
        delay = 0.05
        while bot.webhook_url:
            headers = {}
            if bot.webhook_secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook_secret
            try:
                async with self._http.post(bot.webhook_url, json=update, headers=headers) as r:
                    if 200 <= r.status < 300:
                        return
                    log.info("sandbox webhook for %s answered %d; retrying", bot.name, r.status)
            except (OSError, TimeoutError, ClientError) as error:
                log.info(
                    "sandbox webhook for %s failed (%s); retrying", bot.name, type(error).__name__
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -------------------------------------------------------------- user side

    def bot_named(self, name: str) -> SandboxBot | None:
        """A bot by its name or @username."""
        name = name.lower().lstrip("@")
        bot = self.bots_by_username.get(name)
        if bot is None:
            for candidate in self.bots_by_token.values():
                if candidate.name == name:
                    return candidate
        return bot

    def _bot_from(self, request: web.Request) -> SandboxBot:
        bot = self.bot_named(request.match_info["bot"])
        if bot is None:
            raise web.HTTPNotFound(text=f"no sandbox bot {request.match_info['bot']!r}")
        return bot

    def _user_from(self, request: web.Request) -> SandboxUser:
        user = self.users.get(_int(request.match_info["user_id"]))
        if user is None:
            raise web.HTTPNotFound(text="no such sandbox user")
        return user

    def _user_chat(self, bot: SandboxBot, user: SandboxUser) -> Chat:
        chat = self.chats.get((bot.id, user.id))
        if chat is None:  # not setdefault: a Chat (with its Condition) is costly to make
            chat = self.chats[bot.id, user.id] = Chat()
        return chat

    async def _ui(self, request: web.Request) -> web.FileResponse:
        """The page where a person plays the user's side."""
        return web.FileResponse(Path(__file__).with_name("static") / "index.html")

    async def _api_bots(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "name": b.name,
                    "username": b.username,
                    "id": b.id,
                    "webhook": bool(b.webhook_url),
                }
                for b in self.bots_by_token.values()
            ]
        )

    async def _api_create_user(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        user = self.create_user(
            str(body.get("first_name") or "Sandbox user"),
            body.get("language_code", "en"),
            body.get("username"),
        )
        return web.json_response(user.public())

    async def _api_faults(self, request: web.Request) -> web.Response:
        """``{"count"}``: the next N sends fail; ``{"rate", "seconds"}``: that fraction of
        sends fails for that long (without ``seconds``, until cleared); ``{"clear": true}``
        alone ends every fault. ``GET`` reads the faults and the counts injected."""
        if request.method == "GET":
            return web.json_response(self.faults_report())
        body = await _json_body(request)
        if body.get("clear"):
            self.faults.clear()
            if not body.keys() - {"clear"}:
                return web.json_response(self.faults_report())
        try:
            rate = float(body.get("rate", 1.0))
            seconds = body.get("seconds")
            count = body.get("count")
            self.add_fault(
                status=int(body.get("status", 429)),
                retry_after=int(body.get("retry_after", 1)),
                methods=body.get("methods") or None,
                count=None if count is None else int(count),
                rate=rate,
                seconds=None if seconds is None else float(seconds),
            )
        except (TypeError, ValueError) as error:
            return web.json_response({"ok": False, "description": str(error)}, status=400)
        return web.json_response(self.faults_report())

    async def _api_limits(self, request: web.Request) -> web.Response:
        """Telegram's limits: ``GET`` reads them and the sends refused per bot and chat;
        ``POST {"enabled": false}`` switches them off (for a test about something else),
        ``{"enabled": true}`` on again."""
        if request.method == "POST":
            body = await _json_body(request)
            enabled = body.get("enabled")
            if not isinstance(enabled, bool):
                return web.json_response(
                    {"ok": False, "description": "enabled must be true or false"}, status=400
                )
            self.limits.enabled = enabled
        return web.json_response(self.limits.report())

    async def _m_getfile(self, bot: SandboxBot, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        stored = self.files.get(file_id)
        if stored is None:
            raise BadRequest("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": file_id[3:15],
            "file_size": len(stored.data),
            "file_path": f"documents/{file_id}",
        }

    async def _file_download(self, request: web.Request) -> web.Response:
        """Bot API file downloads: ``/file/bot<token>/<file_path>``."""
        if request.match_info["token"] not in self.bots_by_token:
            raise web.HTTPUnauthorized(text="Unauthorized")
        stored = self.files.get(request.match_info["path"].rsplit("/", 1)[-1])
        if stored is None:
            raise web.HTTPNotFound(text="no such file")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _api_file(self, request: web.Request) -> web.Response:
        """A file of the chat for the sandbox page: pictures and PDFs open in the browser,
        anything else downloads under its name. The page shares the panel's origin, so a
        file never runs there: a sandboxing CSP (an SVG's script stays dead) and no
        sniffing."""
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            raise web.HTTPNotFound(text="no such file")
        mime_type = _file_type(stored)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", stored.file_name or "file")[:100]
        disposition = "inline" if mime_type in _OPENED_INLINE else "attachment"
        return web.Response(
            body=stored.data,
            content_type=mime_type,
            headers={
                "Content-Disposition": f'{disposition}; filename="{name}"',
                "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:;"
                " style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _user_message(
        self, bot: SandboxBot, user: SandboxUser, content: dict[str, Any]
    ) -> dict[str, Any]:
        chat = self._user_chat(bot, user)
        chat.started = True
        message = {
            "message_id": chat.next_message_id,
            "from": user.public(),
            "chat": self._chat_json(user.id),
            "date": int(time.time()),
            **content,
        }
        chat.blocked = False  # writing to a bot unblocks it
        chat.next_message_id += 1
        await self._record(chat, message)
        return message

    async def user_sends(self, bot: SandboxBot, user: SandboxUser, text: str) -> int:
        """In-process user side (benchmarks): a text message; returns the chat's sequence
        number before it, for :meth:`wait_for_replies`."""
        return await self.user_sends_update(bot, user, {"text": text})

    async def user_sends_update(
        self, bot: SandboxBot, user: SandboxUser, body: dict[str, Any]
    ) -> int:
        """In-process user side (benchmarks, fuzzing): what ``POST .../send`` takes (text,
        contact, location or document; ValueError otherwise); returns the chat's sequence
        number before it, for :meth:`wait_for_replies`."""
        chat = self._user_chat(bot, user)
        before = chat.seq
        message = await self._user_message(bot, user, self._content(user, body))
        await self._push_update(bot, {"message": _public(message)})
        return before

    def _content(self, user: SandboxUser, body: dict[str, Any]) -> dict[str, Any]:
        """A user's message content from the body ``POST .../send`` takes."""
        content: dict[str, Any]
        if "text" in body:
            text = str(body["text"])
            content = {"text": text}
            if text.startswith("/"):
                command = text.split()[0]
                content["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(command)}
                ]
        elif "contact" in body:
            contact = dict(body["contact"])
            contact.setdefault("first_name", user.first_name)
            if contact.pop("own", True):
                contact["user_id"] = user.id
            content = {"contact": contact}
        elif "location" in body:
            location = dict(body["location"])
            content = {"location": location}
            if _int(body.get("at"), 0) > 0:
                content["date"] = _int(body.get("at"))
            if body.get("forwarded"):
                content["forward_origin"] = {
                    "type": "hidden_user",
                    "date": int(time.time()),
                    "sender_user_name": "Someone else",
                }
        elif "document" in body:
            document = dict(body["document"])
            if "content_base64" in document:  # a file picked on the sandbox page
                try:
                    data = base64.b64decode(str(document["content_base64"]), validate=True)
                except binascii.Error:
                    raise ValueError("content_base64 is not base64") from None
            else:
                data = str(document.get("content", "")).encode()
            if not data:
                raise ValueError("the document is empty")
            file_id = "SBX" + secrets.token_urlsafe(12)
            self.files[file_id] = StoredFile(
                data, "document", document.get("file_name"), document.get("mime_type", "text/csv")
            )
            content = {
                "document": {
                    "file_id": file_id,
                    "file_unique_id": file_id[3:15],
                    "file_name": document.get("file_name"),
                    "mime_type": document.get("mime_type", "text/csv"),
                    "file_size": len(data),
                }
            }
        elif "photo" in body:
            try:
                data = base64.b64decode(str(body["photo"]), validate=True)
            except binascii.Error:
                raise ValueError("photo is not base64") from None
            if not data:
                raise ValueError("the photo is empty")
            file_id = "SBX" + secrets.token_urlsafe(12)
            self.files[file_id] = StoredFile(data, "photo", None, "image/jpeg")
            size = {"file_id": file_id, "file_unique_id": file_id[3:15], "file_size": len(data)}
            content = {"photo": [{**size, "width": 640, "height": 480}]}
        else:
            raise ValueError("send needs text, contact, location, document or photo")
        return content

    async def wait_for_replies(
        self, bot: SandboxBot, user: SandboxUser, since: int, count: int = 1
    ) -> list[dict[str, Any]]:
        chat = self._user_chat(bot, user)

        def enough() -> bool:  # counted without a pass over the chat
            new = len(chat.bot_changes) - bisect.bisect_right(chat.bot_changes, since)
            return new >= count or self.closing

        async with chat.changed:
            await chat.changed.wait_for(enough)
            changed = chat.bot_changed[bisect.bisect_right(chat.bot_changes, since) :]
            return [chat.messages[i] for i in sorted(set(changed))]

    async def _api_send(self, request: web.Request) -> web.Response:
        bot, user = self._bot_from(request), self._user_from(request)
        body = await _json_body(request)
        try:
            content = self._content(user, body)
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        message = await self._user_message(bot, user, content)
        update = await self._push_update(bot, {"message": _public(message)})
        return web.json_response(
            {"update_id": update["update_id"], "message_id": message["message_id"]}
        )

    async def _api_webapp(self, request: web.Request) -> web.Response:
        """The user opens a Mini App of the bot: ``{"url"}`` (a web_app button's page;
        without it, the bot's main Mini App) and ``{"start_param"}`` (from a direct link
        ``t.me/<bot>/<app>?startapp=``); ``{"auth_date"}`` back-dates the opening. The
        initData signed with the bot's token, and the page's address with it."""
        bot, user = self._bot_from(request), self._user_from(request)
        body = await _json_body(request)
        page = body.get("url") or bot.web_app_url
        start_param, auth_date = body.get("start_param"), body.get("auth_date")
        if not isinstance(page, str) or not page.startswith(("http://", "https://")):
            raise web.HTTPNotFound(text="this bot has no Mini App")
        if start_param is not None and not (
            isinstance(start_param, str) and is_deep_link_payload(start_param)
        ):
            raise web.HTTPBadRequest(text="start_param: 1-64 of A-Z a-z 0-9 _ -")
        if auth_date is not None and not isinstance(auth_date, int):
            raise web.HTTPBadRequest(text="auth_date: Unix time")
        init_data = sign_init_data(
            bot.token, user.public(), start_param=start_param, auth_date=auth_date
        )
        return web.json_response({"init_data": init_data, "url": launch_url(page, init_data)})

    async def _api_edit(self, request: web.Request) -> web.Response:
        """A live-location move (or its end) arrives as an edited message."""
        bot, user = self._bot_from(request), self._user_from(request)
        body = await _json_body(request)
        chat = self._user_chat(bot, user)
        message = chat.messages.get(_int(body.get("message_id")))
        if message is None or message["from"]["id"] != user.id or "location" not in message:
            raise web.HTTPBadRequest(text="no live location message with that id")
        update = await self.user_moves(
            bot,
            user,
            message["message_id"],
            body.get("location") or {},
            stop=bool(body.get("stop")),
            at=_int(body.get("at"), 0) or None,
        )
        return web.json_response({"update_id": update["update_id"]})

    async def user_moves(
        self,
        bot: SandboxBot,
        user: SandboxUser,
        message_id: int,
        location: dict[str, Any],
        *,
        stop: bool = False,
        at: int | None = None,
    ) -> dict[str, Any]:
        """A live location's move (or its end) as Telegram reports it: an edit of the
        location message. ``at`` stands in for the clock (tests of time rules)."""
        chat = self._user_chat(bot, user)
        edited = _moved(chat.messages[message_id], location, stop=stop, at=at)
        await self._record(chat, edited)
        return await self._push_update(bot, {"edited_message": _public(edited)})

    async def user_shares_live(
        self,
        bot: SandboxBot,
        user: SandboxUser,
        location: dict[str, Any],
        *,
        deliver: bool = True,
    ) -> int:
        """In-process user side (benchmarks): a live-location message; its id. Without
        ``deliver`` the message is only in the chat (a share begun before the run)."""
        message = await self._user_message(bot, user, {"location": location})
        if deliver:
            await self._push_update(bot, {"message": _public(message)})
        return int(message["message_id"])

    async def users_move(
        self, bot: SandboxBot, moves: list[tuple[SandboxUser, int, dict[str, Any], int]]
    ) -> None:
        """In-process user side (benchmarks): many live locations move at once, each
        ``(user, message_id, location, at)``, as one burst of edits from Telegram."""
        updates = []
        for user, message_id, location, at in moves:
            chat = self._user_chat(bot, user)
            edited = _moved(chat.messages[message_id], location, at=at)
            chat.messages[message_id] = edited
            updates.append({"edited_message": _public(edited)})
        if bot.webhook_url:
            for payload in updates:
                await self._push_update(bot, payload)
            return
        async with bot.arrived:
            for payload in updates:
                bot.updates.append({"update_id": bot.next_update_id, **payload})
                bot.next_update_id += 1
            bot.arrived.notify_all()

    async def _api_block(self, request: web.Request) -> web.Response:
        """The user blocks the bot (or unblocks it with ``{"blocked": false}``): the bot
        gets a ``my_chat_member`` update and, while blocked, 403 on every send."""
        bot, user = self._bot_from(request), self._user_from(request)
        body = await _json_body(request)
        chat = self._user_chat(bot, user)
        blocked = bool(body.get("blocked", True))
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        chat.blocked = blocked
        bot_member = {"user": bot.public()}
        update = await self._push_update(
            bot,
            {
                "my_chat_member": {
                    "chat": self._chat_json(user.id),
                    "from": user.public(),
                    "date": int(time.time()),
                    "old_chat_member": {"status": old, **bot_member},
                    "new_chat_member": (
                        {"status": new, "until_date": 0, **bot_member}
                        if blocked
                        else {"status": new, **bot_member}
                    ),
                }
            },
        )
        return web.json_response({"update_id": update["update_id"]})

    async def _api_press(self, request: web.Request) -> web.Response:
        bot, user = self._bot_from(request), self._user_from(request)
        body = await _json_body(request)
        chat = self._user_chat(bot, user)
        message = chat.messages.get(_int(body.get("message_id")))
        if message is None or message.get("deleted"):
            raise web.HTTPBadRequest(text="no such message")
        data = body.get("data")
        buttons = [
            b
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        ]
        if not any(b.get("callback_data") == data for b in buttons):
            raise web.HTTPBadRequest(text="that message has no button with this callback data")
        query_id = str(secrets.randbits(63))
        self.callbacks[query_id] = {"bot_id": bot.id, "user_id": user.id}
        update = await self._push_update(
            bot,
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.public(),
                    "message": _public(message),
                    "chat_instance": str(bot.id ^ user.id),
                    "data": data,
                }
            },
        )
        return web.json_response({"update_id": update["update_id"], "callback_query_id": query_id})

    def _group_from(self, request: web.Request) -> Group:
        group = self.groups.get(_int(request.match_info["group_id"], 0))
        if group is None:
            raise web.HTTPNotFound(text="no such sandbox group")
        return group

    def _bot_in_body(self, body: dict[str, Any]) -> SandboxBot:
        bot = self.bot_named(str(body.get("bot", "")))
        if bot is None:
            raise web.HTTPNotFound(text=f"no sandbox bot {body.get('bot')!r}")
        return bot

    async def _api_create_group(self, request: web.Request) -> web.Response:
        """``{"type": "group"|"supergroup"|"channel", "title"}``: a new group."""
        body = await _json_body(request)
        try:
            group = self.create_group(str(body.get("type", "group")), str(body.get("title", "")))
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return web.json_response(group.public())

    async def _api_group(self, request: web.Request) -> web.Response:
        """The group, the bots still in it, and what bots did there (after ``since``, a
        count of events, waiting up to ``wait`` seconds until there are ``count``)."""
        group = self._group_from(request)
        since = _int(request.query.get("since"), 0)
        count = _int(request.query.get("count"), 0)
        wait = min(float(request.query.get("wait", 0) or 0), 60.0)
        async with group.changed:
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        group.changed.wait_for(
                            lambda: self.closing or len(group.events) - since >= count
                        ),
                        wait,
                    )
            events = group.events[since:]
        members = [b.username for b in self.bots_by_token.values() if b.id in group.members]
        return web.json_response({**group.public(), "bots": members, "events": events})

    async def _api_group_add(self, request: web.Request) -> web.Response:
        """``{"bot", "user_id", "quietly"}``: the user adds the bot to the group (quietly:
        without telling the bot)."""
        group = self._group_from(request)
        body = await _json_body(request)
        bot = self._bot_in_body(body)
        user = self.users.get(_int(body.get("user_id")))
        if user is None:
            raise web.HTTPNotFound(text="no such sandbox user")
        quietly = bool(body.get("quietly"))
        return web.json_response(
            {"update_id": await self.add_to_group(bot, group, user, quietly=quietly)}
        )

    async def _api_group_send(self, request: web.Request) -> web.Response:
        """``{"bot", "user_id", "text"}``: a message in the group, as that bot gets it
        (without ``user_id``: a message with no sender; in a channel: a channel post)."""
        group = self._group_from(request)
        body = await _json_body(request)
        bot = self._bot_in_body(body)
        user = self.users.get(_int(body.get("user_id")))
        if body.get("user_id") is not None and user is None:
            raise web.HTTPNotFound(text="no such sandbox user")
        try:
            update_id = await self.post_in_group(bot, group, user, str(body.get("text", "")))
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return web.json_response({"update_id": update_id})

    async def _api_messages(self, request: web.Request) -> web.Response:
        """Messages changed after ``since`` (a sequence number), waiting up to ``wait``
        seconds until at least ``count`` bot messages are among them."""
        bot, user = self._bot_from(request), self._user_from(request)
        chat = self._user_chat(bot, user)
        since = _int(request.query.get("since"), 0)
        count = _int(request.query.get("count"), 0)
        wait = min(float(request.query.get("wait", 0) or 0), 60.0)

        def changed() -> list[dict[str, Any]]:
            return sorted(
                (m for m in chat.messages.values() if m["_seq"] > since), key=lambda m: m["_seq"]
            )

        def enough() -> bool:
            if self.closing:
                return True
            return sum(1 for m in changed() if m["from"].get("is_bot")) >= count

        async with chat.changed:
            if wait and not enough():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(chat.changed.wait_for(enough), wait)
            messages = changed()
        return web.json_response({"seq": chat.seq, "messages": [_transcript(m) for m in messages]})


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
