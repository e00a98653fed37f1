"""Ambulance (103) calls: the dispatch systems' push API, the Ambulance page (clusters of
calls, new ones first until acknowledged), the map's ambulance layer and the hospitals'
figures on the situation centre.

``POST /api/v1/ambulance-calls`` with ``Authorization: Bearer <dispatch system key>`` and
a JSON list of calls (or ``{"calls": [...]}``): each ``{"call_id", "called_at",
"latitude", "longitude", "code", "outcome"}`` and, for a call taken to hospital,
``"hospital"`` and ``"placed_at"``; ``"address"`` is optional. The system stored with each
call is always the authenticated one. The answer is the import report (as the
laboratories' API): ``{"rows", "accepted", "duplicates", "rejected": [{"line", "code",
"reason"}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web

from admin.api import api_client, key_required, numbered_rows, pushed_items, report_answer
from admin.panel import (
    ATTENTION,
    CITY_TIMEZONE,
    add_route,
    audited_json,
    audited_page,
    path_id,
    session_of,
)
from services.ambulance import AmbulanceService, HospitalDay, Placement

AMBULANCE: web.AppKey[AmbulanceService] = web.AppKey("ambulance", AmbulanceService)
ROLES = frozenset({"analyst", "epidemiologist"})
ACKNOWLEDGES = frozenset({"admin", "epidemiologist"})
MAX_DAYS = 92  # the map's day range: a quarter at most
_REQUIRED = ("call_id", "called_at", "latitude", "longitude", "code", "outcome")
_OPTIONAL = ("address", "hospital", "placed_at")


def _text(value: Any) -> str | None:
    """A field as the CSV would hold it: text, or a number (coordinates) written out."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return None


def _row(item: Any, system: str) -> list[str] | None:
    if not isinstance(item, dict):
        return None
    required = [_text(item.get(name)) for name in _REQUIRED]
    optional = [_text(item.get(name, "")) for name in _OPTIONAL]
    if any(v is None for v in required + optional):
        return None
    call_id, called_at, lat, lon, code, outcome = required
    address, hospital, placed_at = optional
    fields = [call_id, called_at, lat, lon, address, code, outcome, hospital, placed_at, system]
    return [f or "" for f in fields]


async def push_calls(request: web.Request) -> web.Response:
    ambulance = request.app[AMBULANCE]
    system = await api_client(request, ambulance.authenticate)
    if system is None:
        return key_required("dispatch system")
    items = await pushed_items(request, "calls")
    if isinstance(items, web.Response):
        return items
    report = await ambulance.import_calls(
        numbered_rows(items, partial(_row, system=system.name)),
        source=f"ambulance:{system.name}",
        actor=f"ambulance:{system.id}",
        about={"format": "json", "bytes": request.content_length},
    )
    return report_answer(report)


async def ambulance_page(request: web.Request) -> web.Response:
    tz = request.app[CITY_TIMEZONE]
    clusters = await request.app[AMBULANCE].clusters(tz)
    return await audited_page(
        request,
        "ambulance.view",
        {},
        "panel/ambulance.html",
        clusters=clusters,
        tz=tz,
        acknowledges=session_of(request).user.role in ACKNOWLEDGES,
    )


async def acknowledge(request: web.Request) -> web.Response:
    cluster_id = path_id(request, "cluster_id", "cluster")
    if session_of(request).user.role not in ACKNOWLEDGES:
        raise web.HTTPForbidden(text="only epidemiologists acknowledge clusters")
    await request.app[AMBULANCE].acknowledge(cluster_id, session_of(request).user.username)
    raise web.HTTPSeeOther("/ambulance")


def day_range(query: Any, today: date) -> tuple[date, date]:
    """``from`` and ``to`` (YYYY-MM-DD) of a request, the last 7 days by default; a range
    backwards or longer than MAX_DAYS is 400."""
    try:
        last = date.fromisoformat(query.get("to") or today.isoformat())
        first = date.fromisoformat(query.get("from") or (last - timedelta(days=6)).isoformat())
    except ValueError:
        raise web.HTTPBadRequest(text="from and to are days: YYYY-MM-DD") from None
    if first > last or (last - first).days >= MAX_DAYS:
        raise web.HTTPBadRequest(text=f"from must not be after to, and at most {MAX_DAYS} days")
    return first, last


async def ambulance_layer(request: web.Request) -> web.Response:
    tz = request.app[CITY_TIMEZONE]
    first, last = day_range(request.query, datetime.now(tz).date())
    layer = await request.app[AMBULANCE].layer(first, last, tz)
    days = {"from": str(first), "to": str(last)}
    # the days as the city counts them, for the form (a browser's own date may be UTC's)
    layer.update(days)
    return await audited_json(request, "map.ambulance", days, layer)


@dataclass(frozen=True)
class HospitalFigures:
    """The situation centre's ambulance block: the last 7 days."""

    days: list[HospitalDay]
    placement: Placement


async def hospital_figures(request: web.Request) -> HospitalFigures | None:
    """For the situation centre; None where the ambulance pages are not set up."""
    ambulance = request.app.get(AMBULANCE)
    if ambulance is None:
        return None
    tz = request.app[CITY_TIMEZONE]
    last = datetime.now(tz).date()
    first = last - timedelta(days=6)
    return HospitalFigures(
        await ambulance.hospital_days(first, last, tz),
        await ambulance.placement(first, last, tz),
    )


def setup_ambulance_pages(app: web.Application, ambulance: AmbulanceService) -> None:
    app[AMBULANCE] = ambulance

    async def new_clusters(role: str) -> list[tuple[str, str]]:
        if role not in ROLES | {"admin"}:
            return []
        count = await ambulance.unacknowledged()
        return [(f"{count} new cluster(s) of ambulance calls", "/ambulance")] if count else []

    app[ATTENTION].append(new_clusters)
    app.router.add_post("/api/v1/ambulance-calls", push_calls)
    add_route(app, "GET", "/ambulance", ambulance_page, roles=ROLES, title="Ambulance")
    add_route(
        app, "POST", "/ambulance/clusters/{cluster_id}/acknowledge", acknowledge, roles=ROLES
    )
    add_route(app, "GET", "/map/ambulance.json", ambulance_layer, roles=ROLES)
