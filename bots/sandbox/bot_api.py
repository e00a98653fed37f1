"""The sandbox's bot side, as Telegram serves it: ``POST|GET <base>/bot<token>/<method>``
with JSON, form or multipart parameters, answering ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from typing import Any

from aiohttp import (
    BodyPartReader,
    web,
)

from bots.sandbox.markup import MAX_CAPTION, BadRequest, check_markup, check_text
from bots.sandbox.model import (
    _STRING_PARAMS,
    Group,
    SandboxBot,
    StoredFile,
    _chat_id,
    _Conflict,
    _error,
    _Forbidden,
    _int,
    _png_size,
    _public,
    _too_many,
)
from bots.sandbox.state import SandboxState


class BotApi(SandboxState):
    """The Bot API methods a bot calls (``_m_<method>``), with faults and flood limits."""

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
