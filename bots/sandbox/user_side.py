"""The sandbox's user side (JSON, under ``<base>/api``): create users, send text,
commands, ``/start`` payloads, contacts, locations and live-location moves, press inline
buttons, and read a chat's transcript (long-polling for what is new); set faults and
limits; groups."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import re
import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import (
    web,
)

from bots.sandbox.model import (
    _ADMIN_RIGHTS,
    _OPENED_INLINE,
    GROUP_TYPES,
    MAX_WAIT,
    Group,
    SandboxBot,
    SandboxUser,
    StoredFile,
    _file_type,
    _int,
    _json_body,
    _moved,
    _public,
    _transcript,
)
from bots.sandbox.state import SandboxState
from bots.sandbox.webapp import launch_url, sign_init_data
from services.validation import is_deep_link_payload


class UserSide(SandboxState):
    """What a person (in the sandbox page) or a test does as a Telegram user."""

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
        wait = min(float(request.query.get("wait", 0) or 0), MAX_WAIT)
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
        wait = min(float(request.query.get("wait", 0) or 0), MAX_WAIT)

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
