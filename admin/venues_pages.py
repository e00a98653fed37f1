"""The Venues page: every registered venue with how many people are inside now against
its capacity, fullest first, searchable by name or address."""

from __future__ import annotations

from aiohttp import web

from admin.panel import add_route, render
from services.venues import VenueService

VENUES: web.AppKey[VenueService] = web.AppKey("venues", VenueService)
ROLES = frozenset({"analyst", "epidemiologist"})


async def venues_page(request: web.Request) -> web.Response:
    search = request.query.get("q", "").strip()[:80]
    return render(
        request,
        "panel/venues.html",
        venues=await request.app[VENUES].overview(search),
        search=search,
    )


def setup_venues_pages(app: web.Application, venues: VenueService) -> None:
    app[VENUES] = venues
    add_route(app, "GET", "/venues", venues_page, roles=ROLES, title="Venues")
