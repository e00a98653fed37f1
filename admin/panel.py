"""The admin panel's access rules, in one middleware: every route needs a logged-in user
of a role allowed on it, except a short list of public paths; every state-changing
request must come from the panel's own pages (same origin) and carry the session's CSRF
token. Deny by default: a route registered without roles is open to admins only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from redis.asyncio import Redis

from admin.public import TRUSTED_PROXIES, client_id, client_network
from admin.templating import csv_download, html
from services.audit import record
from services.login_throttle import LoginThrottle
from services.pacing import SendQueue
from services.panel import ROLE_NAMES, ROLES, PanelError, PanelService, Session
from services.passwords import MAX_LENGTH
from services.validation import parse_row_id

log = logging.getLogger(__name__)

SESSION_COOKIE = "citybots_session"
LOGIN_CSRF_COOKIE = "citybots_login_csrf"
DEVICE_COOKIE = "citybots_device"  # a device that logged in: its own login throttle
DEVICE_LIFE = timedelta(days=90)

# Paths that answer without a panel login: each has its own access rule (none for the
# health and metrics probes and the public check page; a key per laboratory or per feed
# source for the push APIs; Telegram's secret token for webhooks; Telegram's signed
# initData for the citizen bot's Mini App (admin/miniapp.py); the sandbox stands in for
# Telegram and exists only while a bot has no token, never in a production deployment).
PUBLIC_PATHS = frozenset(
    {"/login", "/healthz", "/metrics", "/check", "/api/v1/pcr-results", "/api/v1/ambulance-calls"}
)
PUBLIC_PREFIXES = ("/static/", "/webhook/", "/sandbox/", "/miniapp/", "/api/v1/feeds/")

PANEL: web.AppKey[PanelService] = web.AppKey("panel")
CITY_TIMEZONE: web.AppKey[ZoneInfo] = web.AppKey("city_timezone")
PANEL_REDIS: web.AppKey[Redis] = web.AppKey("panel_redis")
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)
PAGES: web.AppKey[list[Page]] = web.AppKey("panel_pages")
ROUTE_ROLES: web.AppKey[dict[str, frozenset[str]]] = web.AppKey("panel_route_roles")
# Each bot's messages waiting to go out (set by whoever runs the bots).
SEND_QUEUES: web.AppKey[Callable[[], Awaitable[list[SendQueue]]]] = web.AppKey("send_queues")
SESSION_KEY: web.RequestKey[Session] = web.RequestKey("panel_session", Session)
# What needs someone's eye now, for the home page: each source answers a role with
# (text, link) lines (new clusters of ambulance calls, brigades standing still, ...).
Attention = Callable[[str], Awaitable[list[tuple[str, str]]]]
ATTENTION: web.AppKey[list[Attention]] = web.AppKey("panel_attention")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EVERY_ROLE = frozenset(ROLES)


@dataclass(frozen=True)
class Page:
    """A page in the navigation, shown only to the roles that may open it."""

    path: str
    title: str
    roles: frozenset[str]


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    *,
    roles: frozenset[str],
    title: str | None = None,
) -> None:
    """Register a panel route with the roles allowed on it (and, with a title, put it in
    the navigation)."""
    resource = app.router.add_route(method, path, handler).resource
    assert resource is not None
    app[ROUTE_ROLES][resource.canonical] = roles | {"admin"}
    if title is not None:
        app[PAGES].append(Page(path, title, roles | {"admin"}))


def add_page(app: web.Application, path: str, title: str) -> None:
    """A navigation entry for every role to a page served by another part of the app (the
    sandbox chat, which is the bots' stand-in for Telegram and has its own routes)."""
    app[PAGES].append(Page(path, title, EVERY_ROLE))


def path_id(request: web.Request, name: str, what: str) -> int:
    """A row id from the path: up to 18 ASCII digits (PostgreSQL's bigint holds them all),
    anything else is 404 "no such <what>" rather than a query that cannot run."""
    found = parse_row_id(request.match_info[name])
    if found is None:
        raise web.HTTPNotFound(text=f"no such {what}")
    return found


def session_of(request: web.Request) -> Session:
    return request[SESSION_KEY]


async def panel_audit(request: web.Request, action: str, details: dict[str, str]) -> None:
    """Record that the logged-in user looked at or exported something."""
    await record(
        request.app[PANEL].pool,
        actor=session_of(request).user.username,
        action=action,
        subject=None,
        details={k: v for k, v in details.items() if v},
    )


Item = TypeVar("Item")


async def audited_csv(
    request: web.Request,
    action: str,
    details: dict[str, str],
    filename: str,
    header: Sequence[str],
    items: Sequence[Item],
    row: Callable[[Item], Sequence[object]],
) -> web.Response:
    """A CSV download of ``items``, a ``row`` each, recorded in the audit log with its
    number of rows; a time in a row is written in the city's time, to the second."""
    await panel_audit(request, action, {**details, "rows": str(len(items))})
    tz = request.app[CITY_TIMEZONE]

    def cells(item: Item) -> list[object]:
        return [
            cell.astimezone(tz).isoformat(timespec="seconds")
            if isinstance(cell, datetime)
            else cell
            for cell in row(item)
        ]

    return csv_download(filename, header, (cells(item) for item in items))


async def audited_json(
    request: web.Request, action: str, details: dict[str, str], body: object
) -> web.Response:
    """JSON a page fetches (a map layer...), recorded in the audit log and never cached."""
    await panel_audit(request, action, details)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    return (
        request.remote in request.app[TRUSTED_PROXIES]
        and request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    )


def _same_origin(request: web.Request) -> bool:
    """A state-changing request must come from the panel's own pages."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return True  # an old browser or a script: the CSRF token still has to match
    return origin != "null" and urlsplit(origin).netloc == request.host


def _wants_html(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and "json" not in request.headers.get("Accept", "")


def render(
    request: web.Request, template: str, *, status: int = 200, **context: object
) -> web.Response:
    """A panel page: the layout with the navigation the user's role allows."""
    session: Session | None = request.get(SESSION_KEY)
    pages = [p for p in request.app[PAGES] if session is not None and session.user.role in p.roles]
    return html(
        template,
        status=status,
        session=session,
        role_name=ROLE_NAMES.get(session.user.role, "") if session else "",
        pages=pages,
        current=request.path,
        csrf=session.csrf_token if session else "",
        **context,
    )


def render_page(
    request: web.Request, template: str, *, error: str = "", notice: str = "", **context: object
) -> web.Response:
    """A page laid out by panel/page.html, with the outcome of the last action under its
    heading: an error (then the answer is 400) or a notice."""
    status = 400 if error else 200
    return render(request, template, status=status, error=error, notice=notice, **context)


async def audited_page(
    request: web.Request,
    action: str,
    details: dict[str, str],
    template: str,
    /,
    *,
    error: str = "",
    notice: str = "",
    **context: object,
) -> web.Response:
    """A page (as render_page makes it) whose viewing is recorded in the audit log."""
    await panel_audit(request, action, details)
    return render_page(request, template, error=error, notice=notice, **context)


def refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if _wants_html(request) or request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        return render(request, "panel/refused.html", status=status, message=message)
    return web.json_response({"error": message}, status=status)


@web.middleware
async def panel_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request.path):
        return await handler(request)
    panel = request.app[PANEL]
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await panel.session(token) if token else None
    if session is None:
        if _wants_html(request):
            raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
        return web.json_response({"error": "log in first"}, status=401)
    request[SESSION_KEY] = session
    if request.match_info.http_exception is not None:  # no such page: 404 (or 405)
        return await handler(request)
    route = request.match_info.route.resource
    roles = request.app[ROUTE_ROLES].get(route.canonical if route else "", frozenset({"admin"}))
    if session.user.role not in roles:
        return refuse(
            request,
            403,
            f"This page is not open to the role {ROLE_NAMES.get(session.user.role)}.",
        )
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not _same_origin(request):
            log.warning(
                "refused a cross-site %s to %s", request.method, route.canonical if route else ""
            )
            return refuse(request, 403, "Refused: the request did not come from this panel.")
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            sent = str((await request.post()).get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            return refuse(
                request, 403, "The form has expired or was not sent from this panel; reload it."
            )
    response = await handler(request)
    response.headers["Cache-Control"] = "no-store"
    return response


def local_path(target: str) -> str:
    """``target`` when it is a path on this site, else ``/``: every redirect to a place the
    request named goes through here. One leading slash, then no slash or backslash next,
    no control character or space anywhere (a browser drops a tab or newline and reads
    ``/\t/evil.example`` as ``//evil.example``), no scheme or host."""
    if (
        not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or "\\" in target
        or any(c <= " " or c == "\x7f" or "\x80" <= c <= "\x9f" for c in target)
        or len(target) > 2000
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _login_page(
    request: web.Request, *, error: str = "", username: str = "", status: int = 200
) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "panel/login.html",
        status=status,
        error=error,
        username=username,
        login_csrf=token,
        next=local_path(request.query.get("next", "/")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_is_https(request),
        path="/login",
    )
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


def _retry_after(wait: timedelta) -> str:
    seconds = max(1, round(wait.total_seconds()))
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:80]
    password = str(form.get("password", ""))
    if len(password) > MAX_LENGTH:  # never stored (refused at creation): never compared
        password = ""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(
        str(form.get("csrf", "")).encode(), expected.encode()
    ):
        return _login_page(request, error="The form expired; please try again.", status=403)
    if not _same_origin(request):
        return _login_page(request, error="Refused: not sent from this page.", status=403)
    throttle = request.app[THROTTLE]
    name = username.strip().lower()
    device = await throttle.device_of(request.cookies.get(DEVICE_COOKIE, ""), name)
    attempt = await throttle.begin(client_network(request), name, device)
    if not attempt.allowed:
        return _login_page(
            request,
            error=f"Too many failed attempts. Try again in {_retry_after(attempt.wait)}.",
            username=username,
            status=429,
        )
    panel = request.app[PANEL]
    try:
        token, _ = await panel.log_in(username, password, client=await client_id(request))
    except PanelError as error:
        await throttle.failed(attempt)
        return _login_page(
            request, error=str(error).capitalize() + ".", username=username, status=401
        )
    except BaseException:
        await throttle.failed(attempt)
        raise
    await throttle.succeeded(attempt)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new session id at every login; the old one ends
        await panel.log_out(old)
    response = _see_other(local_path(str(form.get("next", "/"))))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_is_https(request),
        max_age=int(panel.session_life.total_seconds()),
        path="/",
    )
    response.set_cookie(
        DEVICE_COOKIE,
        request.cookies[DEVICE_COOKIE] if device else await throttle.device_token(name),
        httponly=True,
        samesite="Strict",
        secure=_is_https(request),
        max_age=int(DEVICE_LIFE.total_seconds()),
        path="/login",
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[PANEL].log_out(request.cookies.get(SESSION_COOKIE, ""))
    response = _see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def home(request: web.Request) -> web.Response:
    queues = request.app.get(SEND_QUEUES)
    role = session_of(request).user.role
    attention = [line for source in request.app[ATTENTION] for line in await source(role)]
    return render(
        request,
        "panel/home.html",
        metrics=any(r.canonical == "/metrics" for r in request.app.router.resources()),
        sandbox=request.app.router.get("sandbox-ui") is not None,
        queues=await queues() if queues is not None else [],
        attention=attention,
    )


def setup_panel(app: web.Application, panel: PanelService, redis: Redis, *, timezone: str) -> None:
    app[PANEL] = panel
    app[CITY_TIMEZONE] = ZoneInfo(timezone)
    app[PANEL_REDIS] = redis
    app[THROTTLE] = LoginThrottle(redis)
    app[PAGES] = []
    app[ROUTE_ROLES] = {}
    app[ATTENTION] = []
    app.middlewares.append(panel_guard)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    add_route(app, "POST", "/logout", logout, roles=EVERY_ROLE)
    add_route(app, "GET", "/", home, roles=EVERY_ROLE, title="Home")
