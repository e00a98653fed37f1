"""The Brigades page (the `operations` role): brigades and their invite links to the staff
bot, a day's plan (a district in one step, longest-untreated sectors first; a sector; or
a line or polygon drawn on the map), the day's tasks with their coverage, and one line
per brigade that stands still or is outside its area. The map's clean-zones layer and the
situation centre's figures per district are served from here too."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from admin.map_pages import MAP_CONFIG
from admin.panel import (
    ATTENTION,
    CITY_TIMEZONE,
    add_route,
    audited_page,
    path_id,
    session_of,
)
from services.brigades import METHODS, BrigadeError, BrigadeService, DistrictDay
from services.validation import parse_row_id

BRIGADES: web.AppKey[BrigadeService] = web.AppKey("brigades", BrigadeService)
INVITE_LINK: web.AppKey[Callable[[str], str]] = web.AppKey("brigade_invite_link")
ROLES = frozenset({"operations"})
SEES_CLEAN_ZONES = frozenset({"operations", "analyst", "epidemiologist", "permits_officer"})
ERRORS = {
    "brigade.name": "A brigade needs a name and a district (up to 100 characters each).",
    "brigade.exists": "A brigade of that name exists already.",
    "brigade.not_found": "No such brigade.",
    "brigade.method": "Choose a method.",
    "brigade.zone": "That sector is not in force any more.",
    "brigade.no_district": "The brigade's district is not among the zones in force: import "
    "the districts (citybots import zones) or rename the brigade's district.",
    "brigade.day": "The day is a date from yesterday to 60 days ahead.",
    "brigade.area": "Draw a line or a polygon on the map (at most 500 points, within 20 km).",
}


def _day(raw: object, today: date) -> date:
    try:
        return date.fromisoformat(str(raw)) if raw else today
    except ValueError:
        raise BrigadeError("brigade.day") from None


async def brigades_page(
    request: web.Request, *, error: str = "", notice: str = "", invite: str = ""
) -> web.Response:
    service = request.app[BRIGADES]
    tz = request.app[CITY_TIMEZONE]
    today = datetime.now(tz).date()
    try:
        day = _day(request.query.get("day"), today)
    except BrigadeError:
        day = today
    districts, sectors = await service.zones()
    return await audited_page(
        request,
        "brigades.view",
        {"day": str(day)},
        "panel/brigades.html",
        brigades=await service.brigades(),
        tasks=await service.tasks(day),
        watch=await service.watch(datetime.now(UTC)),
        districts=districts,
        sectors=sectors,
        methods=METHODS,
        day=day,
        tz=tz,
        error=error,
        notice=notice,
        invite=invite,
        clean_coverage=service.clean_coverage,
        center=json.dumps(json.loads(request.app[MAP_CONFIG])["center"]),
    )


async def show(request: web.Request) -> web.Response:
    return await brigades_page(request)


async def _act(request: web.Request, action: Callable[..., object]) -> web.Response:
    try:
        notice = await action()  # type: ignore[misc]
    except BrigadeError as error:
        return await brigades_page(request, error=ERRORS.get(error.code, "Check the form."))
    return await brigades_page(request, notice=str(notice))


async def create(request: web.Request) -> web.Response:
    form = await request.post()
    by = session_of(request).user.username

    async def action() -> str:
        brigade = await request.app[BRIGADES].create(
            str(form.get("name", "")), str(form.get("district", "")), by=by
        )
        return f"Brigade «{brigade.name}» added: invite its members."

    return await _act(request, action)


async def invite(request: web.Request) -> web.Response:
    brigade_id = path_id(request, "brigade_id", "brigade")
    by = session_of(request).user.username
    try:
        token = await request.app[BRIGADES].invite(brigade_id, by=by)
    except BrigadeError as error:
        return await brigades_page(request, error=ERRORS.get(error.code, error.code))
    return await brigades_page(
        request,
        notice="A one-use invite (7 days): send it to one member, who opens it in Telegram.",
        invite=request.app[INVITE_LINK](token),
    )


async def plan(request: web.Request) -> web.Response:
    """A district in one step, a sector, or a drawn area: appended to the day in order."""
    form = await request.post()
    service = request.app[BRIGADES]
    by = session_of(request).user.username
    brigade_id = parse_row_id(str(form.get("brigade", "")))
    method = str(form.get("method", ""))
    today = datetime.now(request.app[CITY_TIMEZONE]).date()

    async def action() -> str:
        if brigade_id is None:
            raise BrigadeError("brigade.not_found")
        day = _day(form.get("day"), today)
        if not today - timedelta(days=1) <= day <= today + timedelta(days=60):
            raise BrigadeError("brigade.day")
        what = str(form.get("what", "district"))
        if what == "district":
            count = parse_row_id(str(form.get("count", ""))) or 5
            tasks = await service.plan_district(brigade_id, day, method, count=count, by=by)
            return f"{len(tasks)} sectors planned for {day}, longest untreated first."
        if what == "sector":
            zone_id = parse_row_id(str(form.get("sector", "")))
            if zone_id is None:
                raise BrigadeError("brigade.zone")
            task = await service.add_task(brigade_id, day, method, zone_id=zone_id, by=by)
        else:
            try:
                area = json.loads(str(form.get("area", "")))
            except ValueError:
                raise BrigadeError("brigade.area") from None
            name = str(form.get("area_name", ""))
            task = await service.add_task(
                brigade_id, day, method, area=area, area_name=name, by=by
            )
        return f"Task {task.position} ({task.area_name}) planned for {day}."

    return await _act(request, action)


async def clean_zones(request: web.Request) -> web.Response:
    features = await request.app[BRIGADES].clean_zones(datetime.now(UTC))
    return web.json_response(
        {"type": "FeatureCollection", "features": features},
        headers={"Cache-Control": "no-store"},
    )


@dataclass(frozen=True)
class BrigadeFigures:
    days: list[DistrictDay]


async def brigade_figures(request: web.Request) -> BrigadeFigures | None:
    """For the situation centre: the last 7 days per district; None without brigades."""
    service = request.app.get(BRIGADES)
    if service is None:
        return None
    last = datetime.now(request.app[CITY_TIMEZONE]).date()
    return BrigadeFigures(await service.district_days(last - timedelta(days=6), last))


def _watch_words(kind: str) -> str:
    return "has not moved for a while" if kind == "still" else "is outside its area"


def setup_brigades_pages(
    app: web.Application, brigades: BrigadeService, invite_link: Callable[[str], str]
) -> None:
    app[BRIGADES] = brigades
    app[INVITE_LINK] = invite_link

    async def brigades_to_look_at(role: str) -> list[tuple[str, str]]:
        if role not in ROLES | {"admin"}:
            return []
        watch = await brigades.watch(datetime.now(UTC))
        return [(f"{w.brigade}: " + _watch_words(w.kind), "/brigades") for w in watch]

    app[ATTENTION].append(brigades_to_look_at)
    add_route(app, "GET", "/brigades", show, roles=ROLES, title="Brigades")
    add_route(app, "POST", "/brigades", create, roles=ROLES)
    add_route(app, "POST", "/brigades/{brigade_id}/invite", invite, roles=ROLES)
    add_route(app, "POST", "/brigades/plan", plan, roles=ROLES)
    add_route(app, "GET", "/map/clean-zones.json", clean_zones, roles=SEES_CLEAN_ZONES)
