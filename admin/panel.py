"""The admin panel's access rules, in one middleware: every route needs a logged-in user
of a role allowed on it, except a short list of public paths; every state-changing
request must come from the panel's own pages (same origin) and carry the session's CSRF
token. Deny by default: a route registered without roles is open to admins only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from redis.asyncio import Redis

from admin.public import TRUSTED_PROXIES, client_id, client_network
from admin.templating import html
from services.audit import record
from services.pacing import SendQueue
from services.panel import ROLE_NAMES, ROLES, PanelError, PanelService, Session
from services.ratelimit import allow

log = logging.getLogger(__name__)

SESSION_COOKIE = "citybots_session"
LOGIN_CSRF_COOKIE = "citybots_login_csrf"
LOGIN_ATTEMPTS = 10  # per username, and 3x that per client network, per window
LOGIN_WINDOW = timedelta(minutes=15)

# Paths that answer without a panel login: each has its own access rule (none for the
# health and metrics probes and the public check page; a per-lab key for the push API;
# Telegram's secret token for webhooks; Telegram's signed initData for the citizen bot's
# Mini App (admin/miniapp.py); the sandbox stands in for Telegram and exists
# only while a bot has no token, never in a production deployment).
PUBLIC_PATHS = frozenset({"/login", "/healthz", "/metrics", "/check", "/api/v1/pcr-results"})
PUBLIC_PREFIXES = ("/static/", "/webhook/", "/sandbox/", "/miniapp/")

PANEL: web.AppKey[PanelService] = web.AppKey("panel")
CITY_TIMEZONE: web.AppKey[ZoneInfo] = web.AppKey("city_timezone")
PANEL_REDIS: web.AppKey[Redis] = web.AppKey("panel_redis")
PAGES: web.AppKey[list[Page]] = web.AppKey("panel_pages")
ROUTE_ROLES: web.AppKey[dict[str, frozenset[str]]] = web.AppKey("panel_route_roles")
# Each bot's messages waiting to go out (set by whoever runs the bots).
SEND_QUEUES: web.AppKey[Callable[[], Awaitable[list[SendQueue]]]] = web.AppKey("send_queues")
SESSION_KEY: web.RequestKey[Session] = web.RequestKey("panel_session", Session)

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
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise web.HTTPNotFound(text=f"no such {what}")
    return int(raw)


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


def _refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
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
        return _refuse(
            request,
            403,
            f"This page is not open to the role {ROLE_NAMES.get(session.user.role)}.",
        )
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not _same_origin(request):
            log.warning(
                "refused a cross-site %s to %s", request.method, route.canonical if route else ""
            )
            return _refuse(request, 403, "Refused: the request did not come from this panel.")
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            sent = str((await request.post()).get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            return _refuse(
                request, 403, "The form has expired or was not sent from this panel; reload it."
            )
    response = await handler(request)
    response.headers["Cache-Control"] = "no-store"
    return response


def _local(next_path: str) -> str:
    """Only a path on this site: never an open redirect."""
    if next_path.startswith("/") and not next_path.startswith(("//", "/\\")):
        return next_path
    return "/"


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
        next=_local(request.query.get("next", "/")),
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


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:80]
    password = str(form.get("password", ""))[:200]
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(
        str(form.get("csrf", "")).encode(), expected.encode()
    ):
        return _login_page(request, error="The form expired; please try again.", status=403)
    if not _same_origin(request):
        return _login_page(request, error="Refused: not sent from this page.", status=403)
    redis = request.app[PANEL_REDIS]
    client = client_network(request)
    name = username.strip().lower()
    if not await allow(
        redis, f"panel-login:net:{client}", limit=3 * LOGIN_ATTEMPTS, window=LOGIN_WINDOW
    ) or not await allow(
        redis, f"panel-login:user:{name}", limit=LOGIN_ATTEMPTS, window=LOGIN_WINDOW
    ):
        return _login_page(
            request,
            error="Too many attempts. Try again in 15 minutes.",
            username=username,
            status=429,
        )
    panel = request.app[PANEL]
    try:
        token, _ = await panel.log_in(username, password, client=await client_id(request))
    except PanelError as error:
        return _login_page(
            request, error=str(error).capitalize() + ".", username=username, status=401
        )
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new session id at every login; the old one ends
        await panel.log_out(old)
    response = _see_other(_local(str(form.get("next", "/"))))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_is_https(request),
        max_age=int(panel.session_life.total_seconds()),
        path="/",
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
    return render(
        request,
        "panel/home.html",
        metrics=any(r.canonical == "/metrics" for r in request.app.router.resources()),
        sandbox=request.app.router.get("sandbox-ui") is not None,
        queues=await queues() if queues is not None else [],
    )


def setup_panel(app: web.Application, panel: PanelService, redis: Redis, *, timezone: str) -> None:
    app[PANEL] = panel
    app[CITY_TIMEZONE] = ZoneInfo(timezone)
    app[PANEL_REDIS] = redis
    app[PAGES] = []
    app[ROUTE_ROLES] = {}
    app.middlewares.append(panel_guard)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    add_route(app, "POST", "/logout", logout, roles=EVERY_ROLE)
    add_route(app, "GET", "/", home, roles=EVERY_ROLE, title="Home")
