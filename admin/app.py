"""The web application's probes: ``/healthz`` and ``/metrics`` (the panel is admin/panel.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.metrics import Metrics

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
HEALTH_PROBE: web.AppKey[HealthProbe] = web.AppKey("health_probe")
METRICS = web.AppKey("metrics", Metrics)
# Gauges read from the database at each scrape (the outbox backlog), so always fresh.
BeforeScrape = Callable[[], Awaitable[None]]
BEFORE_SCRAPE: web.AppKey[BeforeScrape] = web.AppKey("before_scrape")


async def healthz(request: web.Request) -> web.Response:
    """200 when PostgreSQL, Redis and every bot answer; 503 (same body) otherwise."""
    report = await request.app[HEALTH_PROBE]()
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


async def metrics(request: web.Request) -> web.Response:
    if BEFORE_SCRAPE in request.app:
        await request.app[BEFORE_SCRAPE]()
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(
    app: web.Application,
    health_probe: HealthProbe,
    metrics_registry: Metrics | None,
    before_scrape: BeforeScrape | None = None,
) -> None:
    """Mount the admin routes on the platform's one web application."""
    app[HEALTH_PROBE] = health_probe
    app.router.add_get("/healthz", healthz)
    if metrics_registry is not None:
        app[METRICS] = metrics_registry
        if before_scrape is not None:
            app[BEFORE_SCRAPE] = before_scrape
        app.router.add_get("/metrics", metrics)
