"""The Feeds pages (road traffic, public transport, flights, hospital beds, medical workers,
pharmacies and quarantine centres, budget): each feed's daily chart from the roll-ups,
its latest rows, a CSV upload (the registers' upload and report) and a CSV export in the
import's own format; the push API, ``POST /api/v1/feeds/<feed>`` with a source's key; and
the Map page's operators and calls layers (``/map/feeds.json``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from markupsafe import Markup

from admin.ambulance_pages import day_range
from admin.api import (
    api_client,
    json_error,
    key_required,
    numbered_rows,
    pushed_items,
    report_answer,
)
from admin.charts import Series, bar_chart
from admin.choropleth import choropleth
from admin.hotline_pages import call_topic_titles
from admin.panel import CITY_TIMEZONE, add_route, audited_json, render
from admin.registry_pages import MAX_UPLOAD, import_upload, rejected
from admin.templating import csv_download
from services.feeds.calls import call_picture
from services.feeds.figures import FeedSeries, feed_series, quarantine_zones_by_day, window
from services.feeds.maps import feed_layers
from services.feeds.operators import operator_picture
from services.feeds.specs import FEEDS, LINES, FeedSpec
from services.feeds.store import Feeds, item_fields
from services.hotline import call_counts
from services.registry import RegistryImporter
from services.rollups import Rollups

FEEDS_KEY: web.AppKey[Feeds] = web.AppKey("feeds", Feeds)
ROLLUPS: web.AppKey[Rollups] = web.AppKey("feeds_rollups", Rollups)
FEED_IMPORTER: web.AppKey[RegistryImporter] = web.AppKey("feed_importer", RegistryImporter)
ROLES = frozenset({"analyst"})
CHART_DAYS = 60
ROWS_SHOWN = 100


def feed_chart(series: FeedSeries, zones: list[int], *, element_id: str) -> Markup:
    """The headline figure per day by the feed's first name; road traffic against the days
    a quarantine zone was in force, drawn as a band along the top."""
    spec = series.spec
    figure = spec.tile_figure
    lines = []
    if spec.name == "traffic" and any(zones):
        top = max(series.headline, default=0) or 1
        lines.append(Series("quarantine in force", [top if z else None for z in zones], "#c62828"))
    if spec.name == "budget":
        lines.append(Series("planned", series.totals["planned"], "#1d2733"))
    if spec.name == "beds":
        lines.append(Series("beds", series.totals["beds"], "#1d2733"))
    return bar_chart(
        [d.strftime("%d %b") for d in series.days],
        [Series(key or "—", values) for key, values in series.by_key.items()],
        lines,
        element_id=element_id,
        caption=f"{spec.title}: {figure.title.lower()} per day by {spec.keys[0].title.lower()}",
    )


def _spec(request: web.Request) -> FeedSpec:
    spec = FEEDS.get(request.match_info["feed"])
    if spec is None:
        raise web.HTTPNotFound(text="no such feed")
    return spec


async def feeds_page(request: web.Request) -> web.Response:
    imported = await request.app[FEEDS_KEY].records.last_imported()
    return render(
        request,
        "panel/feeds.html",
        feeds=FEEDS,
        imported=imported,
        tz=request.app[CITY_TIMEZONE],
        max_mb=request.app[MAX_UPLOAD] // 1024**2,
    )


async def feed_page(request: web.Request) -> web.Response:
    spec = _spec(request)
    tz = request.app[CITY_TIMEZONE]
    rollups = request.app[ROLLUPS]
    first, last = window(datetime.now(tz).date(), CHART_DAYS)
    series = (await feed_series(rollups, first, last))[spec.name]
    zones = await quarantine_zones_by_day(rollups, series.days) if spec.name == "traffic" else []
    rows = await request.app[FEEDS_KEY].records.rows(spec.name, limit=ROWS_SHOWN)
    extra: dict[str, Any] = {}
    if spec.name == "operators":
        picture = await operator_picture(rollups, last)
        extra = {
            "picture": picture,
            "map": choropleth(
                picture.sectors,
                dict(picture.by_sector),
                element_id="choropleth",
                unit="subscribers away",
            ),
            "heat_rows": picture.by_day_hour,
            "peak": max((max(r) for r in picture.by_day_hour.values()), default=0) or 1,
        }
    if spec.name == "calls":
        extra = await _calls(request, rollups, last)
    return render(
        request,
        "panel/feed.html",
        spec=spec,
        series=series,
        chart=feed_chart(series, zones, element_id=f"chart-{spec.name}"),
        rows=[row.fields(spec) for row in rows],
        refreshed_at=await rollups.refreshed_at(),
        tz=tz,
        max_mb=request.app[MAX_UPLOAD] // 1024**2,
        **extra,
    )


async def _calls(request: web.Request, rollups: Rollups, today: date) -> dict[str, Any]:
    """The calls' block: per line, by hour of day (``?line=``, ``?hour=`` narrow it), by
    district on the map, and beside them the topics 1308's agents logged."""
    line = request.query.get("line")
    line = line if line in LINES else None
    raw_hour = request.query.get("hour", "")
    hour = (
        int(raw_hour) if raw_hour.isascii() and raw_hour.isdigit() and int(raw_hour) < 24 else None
    )
    picture = await call_picture(rollups, today, line=line, hour=hour)
    tz = request.app[CITY_TIMEZONE]
    now = datetime.now(tz)
    logged = await call_counts(rollups, since=now - timedelta(days=picture.days), until=now)
    what = f"calls to {line}" if line else "calls"
    return {
        "calls": picture,
        "lines": LINES,
        "map": choropleth(
            picture.districts, dict(picture.by_district), element_id="choropleth", unit=what
        ),
        "heat_rows": picture.by_district_hour,
        "heat_unit": what,
        "peak": max((max(r) for r in picture.by_district_hour.values()), default=0) or 1,
        "topics": logged.by_topic[:10],
        "topic_titles": call_topic_titles(),
    }


async def upload(request: web.Request) -> web.Response:
    return await import_upload(request, FEED_IMPORTER, FEEDS, "/feeds/rejected")


async def export(request: web.Request) -> web.Response:
    spec = _spec(request)
    rows = await request.app[FEEDS_KEY].records.rows(spec.name)
    return csv_download(f"{spec.name}.csv", spec.columns, (row.fields(spec) for row in rows))


async def push(request: web.Request) -> web.Response:
    """A source pushes rows of one feed: a JSON list of objects with the feed's columns
    (or ``{"rows": [...]}``); the answer is the import's report."""
    feeds = request.app[FEEDS_KEY]
    source = await api_client(request, feeds.sources.authenticate)
    if source is None:
        return key_required("feed source")
    spec = FEEDS.get(request.match_info["feed"])
    if spec is None:
        return json_error(404, "no such feed; feeds are: " + ", ".join(FEEDS))
    if spec.name not in source.feeds:
        return json_error(403, f"this source may push only: {', '.join(source.feeds)}")
    items = await pushed_items(request, "rows")
    if isinstance(items, web.Response):
        return items
    report = await feeds.importer.import_rows(
        spec.name,
        numbered_rows(items, partial(item_fields, spec)),
        source=f"feed:{source.name}",
        actor=f"feed:{source.id}",
        about={"format": "json", "bytes": request.content_length},
    )
    return report_answer(report)


async def map_layer(request: web.Request) -> web.Response:
    """The Map page's operators and calls choropleths for a range of days (``from``,
    ``to``: the last 7 days by default, up to a quarter)."""
    first, last = day_range(request.query, datetime.now(request.app[CITY_TIMEZONE]).date())
    layers = await feed_layers(request.app[ROLLUPS], first, last)
    return await audited_json(request, "map.feeds", {"from": str(first), "to": str(last)}, layers)


def setup_feeds_pages(app: web.Application, feeds: Feeds, rollups: Rollups) -> None:
    """The pages, for analysts. Uploads share the registers' size cap and folder for the
    rejected rows' reports (set by setup_registry_pages)."""
    app[FEEDS_KEY] = feeds
    app[FEED_IMPORTER] = feeds.importer
    app[ROLLUPS] = rollups
    add_route(app, "GET", "/feeds", feeds_page, roles=ROLES, title="Feeds")
    add_route(app, "POST", "/feeds/import", upload, roles=ROLES)
    add_route(app, "GET", "/feeds/rejected/{report_id}", rejected, roles=ROLES)
    add_route(app, "GET", "/feeds/{feed}.csv", export, roles=ROLES)
    add_route(app, "GET", "/feeds/{feed}", feed_page, roles=ROLES)
    add_route(app, "GET", "/map/feeds.json", map_layer, roles=ROLES)
    app.router.add_post("/api/v1/feeds/{feed}", push)
