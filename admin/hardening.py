"""The web application's outermost middlewares.

``body_deadline``: a request body that stops arriving is cut off with 408 (idle
connections and slow heads are closed by the server's keep-alive timeout).
``input_guard``: input no handler can use is refused with a clear 400 before any handler
runs (a NUL character in the query or a form field, a form body that is not UTF-8), and
what slipped past the handlers' own checks into PostgreSQL as a data error (a number
beyond bigint, a NUL in a multipart field) is a 400 too, never a 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import asyncpg
from aiohttp import StreamReader, web

from admin.panel import Handler, refuse

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
# Forms read ahead of the handler: the panel's are a few hundred bytes. A bigger or
# chunked one is left to its handler (the catch below still answers 400, not 500), so
# that a stranger cannot make the server parse megabytes before the login check.
EARLY_FORM_MAX = 64 * 1024
# Machine clients: refused in JSON whatever they sent.
API_PREFIXES = ("/api/", "/webhook/", "/model/parse")
# Left to their own checks: the sandbox speaks the Bot API's error shapes (it stands in
# for Telegram, in tests); the public permit check answers any value on its own page, in
# the citizen's language.
OWN_RULES_PREFIXES = ("/sandbox/",)
OWN_RULES_PATHS = frozenset({"/check"})


def _refuse(request: web.Request, message: str) -> web.StreamResponse:
    if request.path.startswith(API_PREFIXES):
        return web.json_response({"error": message}, status=400)
    return refuse(request, 400, message)


def _has_nul(pairs: Mapping[str, object]) -> bool:
    return any("\x00" in key or (isinstance(v, str) and "\x00" in v) for key, v in pairs.items())


def _bad_data(error: BaseException) -> bool:
    """A data error PostgreSQL (class 22: a NUL, a number out of range, bad text) or
    asyncpg's own argument check (an int beyond int64) raised about input."""
    if isinstance(error, asyncpg.exceptions.DataError):
        return True
    return isinstance(error, asyncpg.InterfaceError) and isinstance(error, ValueError)


@web.middleware
async def input_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OWN_RULES_PATHS or request.path.startswith(OWN_RULES_PREFIXES):
        return await handler(request)
    if "\x00" in request.query_string or _has_nul(request.query):
        return _refuse(request, "Refused: a query parameter holds a NUL character.")
    if (
        request.method == "POST"
        and request.content_type == FORM
        and 0 < (request.content_length or 0) <= EARLY_FORM_MAX
    ):
        try:
            form = await request.post()
        except UnicodeDecodeError:
            return _refuse(request, "Refused: the form is not UTF-8 text.")
        if _has_nul(form):
            return _refuse(request, "Refused: a form field holds a NUL character.")
    try:
        return await handler(request)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        if not _bad_data(error):
            raise
        log.warning("refused %s %s: %s", request.method, request.path, type(error).__name__)
        return _refuse(request, "Refused: a value is out of range or not valid text.")
    except UnicodeDecodeError:
        log.warning("refused %s %s: not UTF-8", request.method, request.path)
        return _refuse(request, "Refused: the request is not UTF-8 text.")
    except RecursionError:
        log.warning("refused %s %s: nested too deep", request.method, request.path)
        return _refuse(request, "Refused: the input nests too deeply.")


class BodyTooSlow(TimeoutError):
    """The request body stopped arriving at a usable pace (a TimeoutError, which aiohttp's
    lingering read after the answer takes as the end of the connection)."""


BODY_TIMEOUT: web.AppKey[float] = web.AppKey("body_timeout", float)
MIN_BODY_RATE = 8 * 1024  # bytes a second, on average, once the body's time is up
_TICK = 1.0


async def _watch_body(content: StreamReader, allowed: float) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not content.is_eof():
        await asyncio.sleep(min(_TICK, allowed))
        elapsed = loop.time() - started
        if elapsed >= allowed and content.total_bytes < MIN_BODY_RATE * elapsed:
            content.set_exception(BodyTooSlow())
            return


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request body must arrive: one not complete after BODY_TIMEOUT seconds and
    slower on average than MIN_BODY_RATE since the head arrived is cut off with 408 and
    the connection closed (a client dripping a byte every few seconds holds nothing)."""
    if not request.body_exists or request.content.is_eof():
        return await handler(request)
    watch = asyncio.create_task(_watch_body(request.content, request.app[BODY_TIMEOUT]))
    try:
        return await handler(request)
    except BodyTooSlow:
        log.warning("cut off a request body to %s arriving too slowly", request.path)
        response = web.json_response(
            {"error": "the request body arrived too slowly"},
            status=408,
            headers={"Connection": "close"},
        )
        response.force_close()
        return response
    finally:
        watch.cancel()
