"""The Venues page: every registered venue with how many people are inside now against
its capacity, fullest first, searchable by name, address or BIN; whether each is verified
(its staff may check people in by IIN only then), and for registry officers the
approval of a venue and the withdrawal of a verification, each audited."""

from __future__ import annotations

from aiohttp import web

from admin.panel import add_route, path_id, render_page, session_of
from services.venues import VenueError, VenueService

VENUES: web.AppKey[VenueService] = web.AppKey("venues", VenueService)
ROLES = frozenset({"analyst", "epidemiologist", "registry_officer"})
OFFICERS = frozenset({"registry_officer"})
VERIFIERS = OFFICERS | {"admin"}
ERRORS = {
    "venue.not_found": "No such venue.",
    "venue.already_verified": "This venue is already verified.",
    "venue.no_owner": "This venue has no owner in the staff bot to verify it with.",
    "venue.not_verified": "This venue is not verified.",
    "venue.reason_needed": "Say why the verification is withdrawn (the owner is told).",
}


async def _page(request: web.Request, *, notice: str = "", error: str = "") -> web.Response:
    search = request.query.get("q", "").strip()[:80]
    return render_page(
        request,
        "panel/venues.html",
        venues=await request.app[VENUES].overview(search),
        search=search,
        may_verify=session_of(request).user.role in VERIFIERS,
        notice=notice,
        error=error,
    )


async def venues_page(request: web.Request) -> web.Response:
    return await _page(request)


async def verification(request: web.Request) -> web.Response:
    """Approve a venue (verify it with its owner) or withdraw its verification."""
    form = await request.post()
    officer = session_of(request).user.username
    venues = request.app[VENUES]
    try:
        venue_id = path_id(request, "venue_id", "venue")
        if form.get("decision") == "approve":
            venue = await venues.approve(venue_id, officer=officer)
            notice = f"{venue.name} is verified; its owner is told in the staff bot."
        else:
            await venues.withdraw_verification(
                venue_id, officer=officer, reason=str(form.get("reason", ""))
            )
            venue = await venues.venue(venue_id)
            notice = f"{venue.name} is no longer verified; its owner is told."
    except web.HTTPNotFound:
        return await _page(request, error=ERRORS["venue.not_found"])
    except VenueError as error:
        return await _page(request, error=ERRORS.get(error.code, error.code))
    return await _page(request, notice=notice)


def setup_venues_pages(app: web.Application, venues: VenueService) -> None:
    app[VENUES] = venues
    add_route(app, "GET", "/venues", venues_page, roles=ROLES, title="Venues")
    add_route(app, "POST", "/venues/{venue_id}/verification", verification, roles=OFFICERS)
