"""The sandbox's state and what both of its sides use: bots and users, chats and their
transcripts, faults, and the delivery of updates (long polling or webhooks)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time
import weakref
from collections import deque
from typing import Any, ClassVar

from aiohttp import (
    ClientError,
    ClientSession,
    ClientTimeout,
    TCPConnector,
)

from bots.sandbox.limits import FloodLimits
from bots.sandbox.markup import BadRequest
from bots.sandbox.model import (
    _FAULT_METHODS,
    Chat,
    Fault,
    Group,
    SandboxBot,
    SandboxUser,
    StoredFile,
    _chat_id,
    _chat_of,
    _Forbidden,
    _int,
    default_username,
)

log = logging.getLogger(__name__)


class SandboxState:
    """All state is in memory: the sandbox is for trying and testing, not for keeping."""

    # Every sandbox of this process, so that the test suite can check none refused a
    # send for Telegram's limits that a test did not ask for.
    instances: ClassVar[weakref.WeakSet[SandboxState]] = weakref.WeakSet()

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
        SandboxState.instances.add(self)
        self._fault_dice = random.Random()  # noqa: S311 - which sends fail, not a secret
        self.requests_served = 0
        self.closing = False
        # Random bases: a new sandbox must not reuse ids that a database or Redis kept
        # from an earlier run (the update ledger and the FSM are keyed by them).
        self._user_ids = itertools.count(1_000_000_000 + secrets.randbelow(10**9))
        self._bot_ids = itertools.count(8_000_000_000 + secrets.randbelow(10**9) * 8)
        self._http: ClientSession | None = None

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

    def bot_named(self, name: str) -> SandboxBot | None:
        """A bot by its name or @username."""
        name = name.lower().lstrip("@")
        bot = self.bots_by_username.get(name)
        if bot is None:
            for candidate in self.bots_by_token.values():
                if candidate.name == name:
                    return candidate
        return bot

    def _user_chat(self, bot: SandboxBot, user: SandboxUser) -> Chat:
        chat = self.chats.get((bot.id, user.id))
        if chat is None:  # not setdefault: a Chat (with its Condition) is costly to make
            chat = self.chats[bot.id, user.id] = Chat()
        return chat
