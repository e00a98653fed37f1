"""The one aiohttp application the platform serves: the panel and its pages, the public
pages and API, the Mini App, and (when mounted) the sandbox and the bots' webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from admin.ambulance_pages import setup_ambulance_pages
from admin.api import setup_api
from admin.app import init_app as init_admin
from admin.audit_pages import setup_audit_pages
from admin.brigades_pages import setup_brigades_pages
from admin.checkpoints_pages import setup_checkpoints_pages
from admin.feeds_pages import setup_feeds_pages
from admin.hardening import BODY_TIMEOUT, body_deadline, input_guard
from admin.hotline_pages import setup_hotline_pages
from admin.indicators_pages import setup_indicators_pages
from admin.map_pages import setup_map_pages
from admin.miniapp import setup_miniapp
from admin.model_pages import setup_model_pages
from admin.news_pages import setup_news_pages
from admin.nlu_api import setup_nlu_api
from admin.panel import SEND_QUEUES, add_page, setup_panel
from admin.permits_pages import setup_permits_pages
from admin.public import setup_public
from admin.quarantine_pages import setup_quarantine_pages
from admin.registry_pages import setup_registry_pages
from admin.situation_pages import setup_situation_pages
from admin.users_pages import setup_users_pages
from admin.venues_pages import setup_venues_pages
from bots.sandbox import Sandbox
from bots.webhook import WebhookEndpoint
from citybots.settings import Settings
from citybots.wiring import Services
from flows.context import BotLinks
from flows.miniapp import MiniApp
from nlu.service import Nlu
from services.map import MapLayers
from services.metrics import Metrics
from services.pacing import SendQueue
from services.situation import SituationCentre


@dataclass
class WebApp:
    """The application and the parts of it the bots are wired to once they have started."""

    app: web.Application
    links: BotLinks
    miniapp: MiniApp
    sandbox: Sandbox | None
    webhooks: WebhookEndpoint | None


def build_web_app(
    settings: Settings,
    services: Services,
    pool: asyncpg.Pool,
    redis: Redis,
    nlu: Nlu,
    metrics: Metrics,
    *,
    health: Callable[[], Awaitable[dict[str, Any]]],
    before_scrape: Callable[[], Awaitable[None]],
    send_queues: Callable[[], Awaitable[list[SendQueue]]],
) -> WebApp:
    app = web.Application(client_max_size=32 * 1024**2, middlewares=[body_deadline, input_guard])
    app[BODY_TIMEOUT] = settings.web_body_timeout
    setup_api(app, services)
    setup_public(
        app,
        services.permits,
        redis,
        frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip()),
    )
    init_admin(
        app, health, metrics if settings.metrics_enabled else None, before_scrape=before_scrape
    )
    setup_panel(app, services.panel, redis, timezone=settings.city_timezone)
    app[SEND_QUEUES] = send_queues
    setup_situation_pages(app, SituationCentre(services.rollups, services.indicators))
    setup_map_pages(
        app,
        MapLayers(pool, services.zones),
        tile_url=settings.map_tile_url,
        attribution=settings.map_tile_attribution,
        center=settings.map_center,
    )
    setup_model_pages(app, services.model_runs)
    setup_audit_pages(app, services.staff_lookups)
    setup_permits_pages(app, services.applications)
    setup_checkpoints_pages(app, services.checkpoints)
    setup_users_pages(app)
    setup_nlu_api(app, nlu)
    setup_hotline_pages(app, services.hotline, services.tickets, services.rollups)
    setup_quarantine_pages(app, services.quarantine)
    setup_venues_pages(app, services.venues)
    setup_indicators_pages(app, services.indicators)
    setup_registry_pages(
        app,
        services.importer,
        services.disputes,
        settings.reports_dir,
        max_upload=settings.registry_upload_max_mb * 1024**2,
    )
    setup_ambulance_pages(app, services.ambulance)
    setup_feeds_pages(app, services.feeds, services.rollups)
    setup_news_pages(app, services.news)
    links = BotLinks(miniapp_short_name=settings.miniapp_short_name)
    setup_brigades_pages(app, services.brigades, lambda token: links.deep_link("staff", token))
    miniapp = MiniApp(
        citizens=services.citizens,
        statuses=services.statuses,
        venues=services.venues,
        visits=services.visits,
        languages=services.languages,
        openings=services.openings,
        links=links,
        default_language=settings.default_language,
        city_tz=ZoneInfo(settings.city_timezone),
        max_age=timedelta(seconds=settings.miniapp_init_data_max_age_seconds),
    )
    setup_miniapp(app, miniapp)
    sandbox: Sandbox | None = None
    if settings.sandbox_mounted:
        sandbox = Sandbox()
        sandbox.setup(app)
        add_page(app, "/sandbox/", "Sandbox chat")
    webhooks: WebhookEndpoint | None = None
    if settings.webhook_mode:
        assert settings.webhook_secret is not None  # the settings refuse webhooks without one
        webhooks = WebhookEndpoint(settings.webhook_secret.get_secret_value())
        webhooks.setup(app)
    return WebApp(app, links, miniapp, sandbox, webhooks)
