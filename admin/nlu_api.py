"""``POST /model/parse``: Rasa's parse endpoint on the web app, answered by the configured
NLU backend. Like every API route it needs a panel login (and, being a POST, the
session's CSRF token in ``X-CSRF-Token``)."""

from __future__ import annotations

import json

from aiohttp import web

from admin.panel import EVERY_ROLE, add_route
from nlu.service import Nlu

NLU: web.AppKey[Nlu] = web.AppKey("nlu", Nlu)
MAX_TEXT = 1000


async def parse(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.json_response({"error": 'send JSON like {"text": "..."}'}, status=400)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return web.json_response({"error": 'send JSON like {"text": "..."}'}, status=400)
    if len(text) > MAX_TEXT:
        return web.json_response({"error": f"text longer than {MAX_TEXT} characters"}, status=400)
    return web.json_response(await request.app[NLU].parse_async(text))


def setup_nlu_api(app: web.Application, nlu: Nlu) -> None:
    app[NLU] = nlu
    add_route(app, "POST", "/model/parse", parse, roles=EVERY_ROLE)
