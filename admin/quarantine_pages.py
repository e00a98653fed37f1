"""The Quarantine page: open cases by state and the open alerts (violations) by case
code — never a name or a place — which an epidemiologist can acknowledge."""

from __future__ import annotations

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, audited_page, path_id, session_of
from flows.quarantine.alerts import KIND_NAMES
from presentation.i18n import text
from services.quarantine import AlertKind, QuarantineError, QuarantineService

QUARANTINE: web.AppKey[QuarantineService] = web.AppKey("quarantine", QuarantineService)
ROLES = frozenset({"epidemiologist"})


async def _page(request: web.Request, *, notice: str = "", error: str = "") -> web.Response:
    service = request.app[QUARANTINE]
    return await audited_page(
        request,
        "quarantine.view",
        {},
        "panel/quarantine.html",
        counts=await service.case_counts(),
        alerts=await service.open_alerts(),
        kind=lambda k: text("en", KIND_NAMES[AlertKind(k)]),
        tz=request.app[CITY_TIMEZONE],
        notice=notice,
        error=error,
    )


async def quarantine_page(request: web.Request) -> web.Response:
    return await _page(request)


async def acknowledge(request: web.Request) -> web.Response:
    try:
        episode = path_id(request, "episode_id", "alert")
        await request.app[QUARANTINE].acknowledge_from_panel(
            episode, actor=session_of(request).user.username
        )
    except (web.HTTPNotFound, ValueError, QuarantineError):
        return await _page(request, error="No such alert.")
    return await _page(request, notice=f"Alert #{episode} acknowledged.")


def setup_quarantine_pages(app: web.Application, quarantine: QuarantineService) -> None:
    app[QUARANTINE] = quarantine
    add_route(app, "GET", "/quarantine", quarantine_page, roles=ROLES, title="Quarantine")
    add_route(app, "POST", "/quarantine/alerts/{episode_id}/acknowledge", acknowledge, roles=ROLES)
