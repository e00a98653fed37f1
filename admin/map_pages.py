"""The Map page: zones and sectors, checkpoints, venues with occupancy and open quarantine
violations by case code, drawn by Leaflet (installed from the npm registry and served
from /static/); for analysts also the ambulance calls (admin/ambulance_pages.py) and the
operators' and calls' choropleths (admin/feeds_pages.py), each over a range of days. The
base map's tiles are a setting; the layers show without them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from admin.ambulance_pages import ROLES as AMBULANCE_ROLES
from admin.feeds_pages import ROLES as FEEDS_ROLES
from admin.panel import CITY_TIMEZONE, add_route, audited_json, render, session_of
from services.map import MapLayers

STATIC = Path(__file__).with_name("static")
LEAFLET = STATIC / "vendor" / "leaflet" / "leaflet.js"
MAP_LAYERS: web.AppKey[MapLayers] = web.AppKey("map_layers", MapLayers)
MAP_CONFIG: web.AppKey[str] = web.AppKey("map_config", str)  # JSON for the page's script
ROLES = frozenset({"analyst", "epidemiologist", "permits_officer", "operations"})
SEES_VIOLATIONS = frozenset({"admin", "epidemiologist"})


async def map_page(request: web.Request) -> web.Response:
    config = json.loads(request.app[MAP_CONFIG])
    return render(
        request,
        "panel/map.html",
        config=request.app[MAP_CONFIG],
        leaflet=LEAFLET.exists(),
        tiles=bool(config["tileUrl"]),
        violations=session_of(request).user.role in SEES_VIOLATIONS,
        ambulance=session_of(request).user.role in AMBULANCE_ROLES | {"admin"},
        feeds=session_of(request).user.role in FEEDS_ROLES | {"admin"},
    )


async def map_layers(request: web.Request) -> web.Response:
    violations = session_of(request).user.role in SEES_VIOLATIONS
    layers = await request.app[MAP_LAYERS].layers(
        datetime.now(UTC), violations=violations, tz=request.app[CITY_TIMEZONE]
    )
    cases = (
        [f["properties"]["case"] for f in layers["violations"]["features"]] if violations else []
    )
    return await audited_json(request, "map.view", {"violations": ", ".join(cases)}, layers)


def setup_map_pages(
    app: web.Application,
    layers: MapLayers,
    *,
    tile_url: str,
    attribution: str,
    center: str,
) -> None:
    app[MAP_LAYERS] = layers
    latitude, longitude = (float(part) for part in center.split(","))
    app[MAP_CONFIG] = json.dumps(
        {"tileUrl": tile_url, "attribution": attribution, "center": [latitude, longitude]}
    )
    app.router.add_static("/static/", STATIC)
    add_route(app, "GET", "/map", map_page, roles=ROLES, title="Map")
    add_route(app, "GET", "/map/layers.json", map_layers, roles=ROLES)
