"""The citizen bot's Mini App, served by the platform's web app: the page (``GET
/miniapp/``) and the one call it makes (``POST /miniapp/api/open`` with Telegram's signed
``initData``). Access rests on that signature alone (flows/miniapp.py): no cookie, no
session, so no cross-site request can act for anyone."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from admin.templating import html
from flows.miniapp import InitDataRefused, MiniApp
from presentation.i18n import pick_language, text
from presentation.keys import MINIAPP_LABELS
from services.db import is_unavailable

log = logging.getLogger(__name__)

MINIAPP: web.AppKey[MiniApp] = web.AppKey("miniapp")
PATH = "/miniapp/"
MAX_BODY = 8192  # {"init_data": ...}: Telegram's initData is well under 1 KB
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'"
    ),
}


async def page(request: web.Request) -> web.Response:
    """The page: static (no personal data); what it shows comes from the call below."""
    response = html("miniapp.html")
    response.headers.update(_HEADERS)
    return response


async def open_pass(request: web.Request) -> web.Response:
    """Verify the opening, store the scan it carries (once) and answer the pass."""
    miniapp = request.app[MINIAPP]
    lang = pick_language(request.headers.get("Accept-Language", "").split(",")[0], default="ru")
    raw = await request.content.read(MAX_BODY + 1)  # not the app's 32 MB for uploads
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    init_data = body.get("init_data") if isinstance(body, dict) else None
    try:
        opening = miniapp.verify(init_data if isinstance(init_data, str) else "")
    except InitDataRefused as refused:
        reason = refused.reason.value
        return web.json_response(
            {"error": reason, "message": text(lang, MINIAPP_LABELS[reason])},
            status=401,
            headers={"Cache-Control": "no-store"},
        )
    try:
        answer = await miniapp.open(opening)
    except Exception as error:
        if not is_unavailable(error):
            raise
        log.warning("mini app: storage unavailable (%s)", type(error).__name__)
        return web.json_response(
            {"error": "unavailable", "message": text(lang, "errors.unavailable")},
            status=503,
            headers={"Cache-Control": "no-store", "Retry-After": "2"},
        )
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


def setup_miniapp(app: web.Application, miniapp: MiniApp) -> None:
    app[MINIAPP] = miniapp
    app.router.add_get(PATH, page)
    app.router.add_post(PATH + "api/open", open_pass)
