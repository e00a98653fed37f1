"""A small client for the sandbox's user side, for tests, benchmarks and scripts.

async with SandboxClient("http://127.0.0.1:8080/sandbox") as sandbox:
    chat = await sandbox.chat("citizen", language_code="ru")
    await chat.send("/start")
    reply = await chat.reply()
    await chat.press("English")
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from bots.sandbox.model import MAX_WAIT


class SandboxError(RuntimeError):
    pass


class SandboxClient:
    def __init__(self, base_url: str, session: ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=90))
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.base_url + "/api" + path, **kwargs) as r:
            if r.status >= 400:
                raise SandboxError(f"{method} {path}: {r.status} {await r.text()}")
            if r.content_type == "application/json":
                return await r.json()
            return await r.read()

    async def bots(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/bots")
        return result

    async def create_user(
        self, first_name: str = "Test user", language_code: str | None = "en"
    ) -> dict[str, Any]:
        body = {"first_name": first_name, "language_code": language_code}
        result: dict[str, Any] = await self.request("POST", "/users", json=body)
        return result

    async def chat(
        self,
        bot: str,
        *,
        first_name: str = "Test user",
        language_code: str | None = "en",
        user_id: int | None = None,
    ) -> SandboxChat:
        """A new user (or the given one) opening a chat with a bot (by name or @username)."""
        if user_id is None:
            user_id = int((await self.create_user(first_name, language_code))["id"])
        return SandboxChat(self, bot, user_id)

    async def inject_faults(
        self,
        *,
        count: int | None = None,
        status: int = 429,
        retry_after: int = 1,
        methods: list[str] | None = None,
        rate: float | None = None,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Make bot calls of ``methods`` fail like Telegram under load: the next ``count``
        (1 unless a rate or a duration is given), or a ``rate`` of them for ``seconds``."""
        body: dict[str, Any] = {"status": status, "retry_after": retry_after}
        for key, value in (("count", count), ("rate", rate), ("seconds", seconds)):
            if value is not None:
                body[key] = value
        if methods:
            body["methods"] = methods
        result: dict[str, Any] = await self.request("POST", "/faults", json=body)
        return result

    async def faults(self) -> dict[str, Any]:
        """The faults in force and how many sends were failed, by status."""
        result: dict[str, Any] = await self.request("GET", "/faults")
        return result

    async def clear_faults(self) -> None:
        await self.request("POST", "/faults", json={"clear": True})

    async def create_group(self, kind: str = "group", title: str = "Test group") -> int:
        """A group, supergroup or channel (``kind``); returns its chat id."""
        body = {"type": kind, "title": title}
        return int((await self.request("POST", "/groups", json=body))["id"])

    async def add_to_group(
        self, group_id: int, bot: str, user_id: int, *, quietly: bool = False
    ) -> None:
        """The user adds the bot to the group (the bot gets ``my_chat_member``, unless
        ``quietly``)."""
        body = {"bot": bot, "user_id": user_id, "quietly": quietly}
        await self.request("POST", f"/groups/{group_id}/add", json=body)

    async def send_in_group(
        self, group_id: int, bot: str, text: str, *, user_id: int | None = None
    ) -> None:
        """A message in the group, as ``bot`` gets it: without ``user_id``, one with no
        sender; in a channel, a channel post."""
        body: dict[str, Any] = {"bot": bot, "text": text}
        if user_id is not None:
            body["user_id"] = user_id
        await self.request("POST", f"/groups/{group_id}/send", json=body)

    async def group(
        self, group_id: int, *, since: int = 0, count: int = 0, wait: float = 0
    ) -> dict[str, Any]:
        """The group: ``bots`` still in it, ``events`` (bots' messages and leaves) after
        ``since``, waiting up to ``wait`` seconds until there are ``count`` of them."""
        query = {"since": since, "count": count, "wait": wait}
        result: dict[str, Any] = await self.request("GET", f"/groups/{group_id}", params=query)
        return result

    async def file(self, file_id: str) -> bytes:
        data: bytes = await self.request("GET", f"/files/{file_id}")
        return data


@dataclass
class SandboxChat:
    """One user's chat with one bot; ``seen`` is how far this side has read."""

    client: SandboxClient
    bot: str
    user_id: int
    seen: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)

    @property
    def _path(self) -> str:
        return f"/bots/{self.bot}/users/{self.user_id}"

    async def _post(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.request(
            "POST", f"{self._path}/{action}", json=body
        )
        return result

    async def send(self, text: str) -> int:
        return int((await self._post("send", {"text": text}))["message_id"])

    async def open_web_app(
        self,
        *,
        start_param: str | None = None,
        url: str | None = None,
        auth_date: int | None = None,
    ) -> dict[str, Any]:
        """Open the bot's Mini App (or a web_app button's ``url``) as this user:
        ``{"init_data", "url"}``, signed as Telegram signs it."""
        body: dict[str, Any] = {"start_param": start_param, "url": url, "auth_date": auth_date}
        return await self._post("webapp", {k: v for k, v in body.items() if v is not None})

    async def send_contact(self, phone_number: str, *, own: bool = True) -> int:
        body = {"contact": {"phone_number": phone_number, "own": own}}
        return int((await self._post("send", body))["message_id"])

    async def send_location(
        self,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        horizontal_accuracy: float | None = None,
        at: int | None = None,
        forwarded: bool = False,
    ) -> int:
        """A location message; with ``live_period`` a live one. ``at`` (Unix time) stands
        in for the moment it was sent."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if live_period is not None:
            location["live_period"] = live_period
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        body: dict[str, Any] = {"location": location, "at": at, "forwarded": forwarded}
        return int((await self._post("send", body))["message_id"])

    async def move_location(
        self,
        message_id: int,
        latitude: float,
        longitude: float,
        *,
        horizontal_accuracy: float | None = None,
        at: int | None = None,
    ) -> int:
        """The live location moves (an edited message); returns the update's id."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        body = {"message_id": message_id, "location": location, "at": at}
        return int((await self._post("edit", body))["update_id"])

    async def stop_location(self, message_id: int, *, at: int | None = None) -> None:
        await self._post("edit", {"message_id": message_id, "stop": True, "at": at})

    async def block(self, blocked: bool = True) -> None:
        """Block (or unblock) the bot, as a user leaving the chat does."""
        await self._post("block", {"blocked": blocked})

    async def send_document(
        self, file_name: str, content: str, mime_type: str = "text/csv"
    ) -> int:
        body = {"document": {"file_name": file_name, "content": content, "mime_type": mime_type}}
        return int((await self._post("send", body))["message_id"])

    async def send_photo(self, data: bytes) -> int:
        """A photo from the phone's camera (the bytes of an image, any)."""
        body = {"photo": base64.b64encode(data).decode()}
        return int((await self._post("send", body))["message_id"])

    async def press(self, button_text: str) -> None:
        """Press the inline button with this text on the newest bot message that has it."""
        for message in reversed(self.transcript):
            if not message["from_bot"]:
                continue
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            for row in rows:
                for button in row:
                    if button["text"] == button_text and "callback_data" in button:
                        await self._post(
                            "press",
                            {"message_id": message["message_id"], "data": button["callback_data"]},
                        )
                        return
        raise SandboxError(f"no inline button {button_text!r} in the chat so far")

    async def updates(self, *, count: int = 1, wait: float = 10.0) -> list[dict[str, Any]]:
        """Bot messages new or changed since the last read, waiting up to ``wait`` seconds
        for ``count`` of them (the server holds one request at most a minute, so a longer
        wait asks again)."""
        deadline = time.monotonic() + wait
        got: list[dict[str, Any]] = []
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            result = await self.client.request(
                "GET",
                f"{self._path}/messages",
                params={"since": self.seen, "count": count - len(got), "wait": remaining},
                # the server answers by the wait it was given; the client must not give up first
                timeout=ClientTimeout(total=min(remaining, MAX_WAIT) + 30),
            )
            self.seen = int(result["seq"])
            changed = result["messages"]
            by_id = {m["message_id"]: i for i, m in enumerate(self.transcript)}
            for message in changed:
                if message["message_id"] in by_id:
                    self.transcript[by_id[message["message_id"]]] = message
                else:
                    self.transcript.append(message)
            got += [m for m in changed if m["from_bot"]]
            if len(got) >= count or time.monotonic() >= deadline:
                return got

    async def replies(self, count: int = 1, wait: float = 10.0) -> list[dict[str, Any]]:
        got = await self.updates(count=count, wait=wait)
        if len(got) < count:
            raise SandboxError(
                f"expected {count} bot message(s) from {self.bot}, got {len(got)}: "
                + repr([m.get("text") for m in got])
            )
        return got

    async def reply(self, wait: float = 10.0) -> dict[str, Any]:
        """The newest bot message after waiting for at least one."""
        return (await self.replies(1, wait))[-1]


def buttons(message: dict[str, Any]) -> list[str]:
    """Every button's text on a message, inline or reply keyboard, in order."""
    markup = message.get("reply_markup") or {}
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return [b if isinstance(b, str) else b["text"] for row in rows for b in row]
