"""The composition root: builds pools, bots, the web app and the scheduler into one
running platform, and takes them down again in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramServerError
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand
from aiohttp import web
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import BlockingConnectionPool, Redis

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
from admin.miniapp import PATH as MINIAPP_PATH
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
from bots.dispatcher import CityDispatcher
from bots.notifier import Notifier
from bots.polling import poll
from bots.registry import BOT_MODULES, build_dispatcher
from bots.sandbox import Sandbox, default_username
from bots.session import ApiHealth, PacingMiddleware, RetryAfterMiddleware
from bots.storage import CoalescingRedisStorage
from bots.webhook import WebhookEndpoint, WebhookTarget
from citybots.embedded import DataDirLock, EmbeddedPostgres, EmbeddedRedis
from citybots.settings import Settings
from citybots.wiring import Services, build_services
from flows.context import BotContext, BotLinks, BotProfile, Limits
from flows.hotline.call_scripts import ScriptError
from flows.hotline.call_scripts import scripts as call_scripts
from flows.miniapp import MiniApp
from flows.quarantine.live import LiveIngest
from nlu.service import Nlu, load_or_train
from presentation.i18n import LANGUAGES, text
from presentation.keys import COMMANDS
from services.audit import head as audit_head
from services.db import connect, create_pool, is_unavailable
from services.localcache import InvalidationListener
from services.map import MapLayers
from services.metrics import Metrics
from services.migrations import migrate
from services.miniapp import OpeningLedger
from services.pacing import SendQueue, send_queues
from services.private_files import private_folder, remove_leftovers, remove_older_than
from services.retention import Retention, purge
from services.scheduler import run_exclusively
from services.situation import SituationCentre
from services.updates import UpdateLedger

log = logging.getLogger(__name__)


SWEEP_INTERVAL = 10  # seconds: a silent case is alerted at most this long after 15 minutes


class StartupError(RuntimeError):
    """The platform cannot start; the message is one line saying what and why."""


def make_redis(url: str, pool_size: int) -> Redis:
    """A client whose pool makes a burst of updates wait for a free connection (up to a
    few seconds) instead of failing with MaxConnectionsError."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


@dataclass
class Infrastructure:
    """PostgreSQL and Redis URLs, and the embedded servers started to serve them."""

    database_url: str
    redis_url: str
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop the embedded servers this process started (never a running one it found)."""
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()


def audit_chain_key(settings: Settings) -> bytes:
    """The audit chain's HMAC key: AUDIT_CHAIN_KEY, else a random key made once in
    DATA_DIR (readable by this user only). Every worker must use the same key."""
    if settings.audit_chain_key is not None:
        return settings.audit_chain_key.get_secret_value().encode()
    path = settings.data_dir / "audit-chain.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


async def start_infrastructure(settings: Settings) -> Infrastructure:
    """Use DATABASE_URL / REDIS_URL, or start the private servers under DATA_DIR."""
    infra = Infrastructure(settings.database_url or "", settings.redis_url or "")
    try:
        if not settings.database_url:
            infra.embedded_postgres = EmbeddedPostgres(settings.data_dir / "postgres")
            infra.database_url = await asyncio.to_thread(infra.embedded_postgres.start)
        if not settings.redis_url:
            infra.embedded_redis = EmbeddedRedis(settings.data_dir / "redis")
            infra.redis_url = await asyncio.to_thread(infra.embedded_redis.start)
    except BaseException:
        await asyncio.to_thread(infra.stop)
        raise
    return infra


@contextlib.contextmanager
def _command_lock(settings: Settings) -> Iterator[None]:
    """A one-off command that starts embedded servers holds the data folder's lock while
    it runs, so that no `citybots run` starts on servers the command will stop. When a
    run holds it, the command uses that run's servers (and stops none: see ``reused``)."""
    lock = DataDirLock(settings.data_dir)
    if not (settings.database_url and settings.redis_url):
        lock.try_acquire()
    try:
        yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def command_infrastructure(settings: Settings) -> AsyncIterator[Infrastructure]:
    """The servers for a one-off command: the configured ones, or the embedded ones (a
    running `citybots run`'s, else started for the command and stopped after it)."""
    with _command_lock(settings):
        infra = await start_infrastructure(settings)
        try:
            yield infra
        finally:
            await asyncio.to_thread(infra.stop)


@contextlib.asynccontextmanager
async def command_services(settings: Settings) -> AsyncIterator[Services]:
    """The services for a one-off command (`citybots import ...`), on the servers of
    :func:`command_infrastructure`."""
    async with command_infrastructure(settings) as infra:
        pool = redis = None
        try:
            pool = await create_pool(
                infra.database_url, size=4, audit_key=audit_chain_key(settings)
            )
            async with pool.acquire() as conn:
                await migrate(conn)
            redis = make_redis(infra.redis_url, settings.redis_pool_size)
            yield build_services(pool, redis, settings)
        finally:
            if redis is not None:
                await redis.aclose()
            if pool is not None:
                await pool.close()


@contextlib.asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """DATABASE_URL, or the embedded server's (started when needed and stopped afterwards,
    unless a running `citybots run` owns it)."""
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    with _command_lock(settings):
        if not url:
            embedded = EmbeddedPostgres(settings.data_dir / "postgres")
            url = await asyncio.to_thread(embedded.start)
        try:
            yield url
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one-off commands (`citybots db ...`) on :func:`database_url`."""
    async with database_url(settings) as url:
        conn = await connect(url, audit_key=audit_chain_key(settings))
        try:
            yield conn
        finally:
            await conn.close()


async def bot_username(settings: Settings, name: str) -> str:
    """A bot's @username for deep links printed by commands: asked of the Bot API when
    the bot has a token, the sandbox's name for it otherwise."""
    token = settings.bot_token(name)
    if token is None:
        return default_username(name)
    api_base = settings.telegram_api_base or PRODUCTION.base.split("/bot{token}")[0]
    bot = Bot(token=token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    try:
        me = await bot.get_me()
    except (TelegramAPIError, OSError) as error:
        raise StartupError(f"{name} bot: cannot ask the Bot API who it is: {error}") from error
    finally:
        await bot.session.close()
    return me.username or name


@dataclass
class RunningBot:
    name: str
    bot: Bot
    username: str
    on_sandbox: bool
    api_base: str
    health: ApiHealth
    dispatcher: CityDispatcher | None = None
    polling: asyncio.Task[None] | None = None


@dataclass
class Platform:
    """Everything `citybots run` starts. ``start()`` then ``stop()``; or ``async with``."""

    settings: Settings
    infra: Infrastructure | None = None
    pool: asyncpg.Pool | None = None
    redis: Redis | None = None
    metrics: Metrics = field(default_factory=Metrics)
    sandbox: Sandbox | None = None
    bots: dict[str, RunningBot] = field(default_factory=dict)
    port: int | None = None
    started_in: float = 0.0
    services: Services | None = None
    notifier: Notifier | None = None
    nlu: Nlu | None = None
    _runner: web.AppRunner | None = None
    _scheduler: AsyncIOScheduler | None = None
    _notifier_task: asyncio.Task[None] | None = None
    _invalidations: InvalidationListener | None = None
    live_ingest: LiveIngest | None = None
    _audit_head_logged: int = -1
    miniapp: MiniApp | None = None

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def web_app(self) -> web.Application:
        """The running web application (its route table is what access tests crawl)."""
        assert self._runner is not None
        return self._runner.app

    @property
    def base_url(self) -> str:
        host = self.settings.admin_url.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        began = time.perf_counter()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self.started_in = time.perf_counter() - began

    async def _start(self) -> None:
        settings = self.settings
        self.infra = await start_infrastructure(settings)
        try:
            self.pool = await create_pool(
                self.infra.database_url,
                size=settings.db_pool_size,
                audit_key=audit_chain_key(settings),
            )
        except (OSError, asyncpg.PostgresError) as error:
            raise StartupError(f"cannot connect to PostgreSQL: {error}") from error
        async with self.pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        self.redis = make_redis(self.infra.redis_url, settings.redis_pool_size)
        try:
            await self.redis.ping()
        except Exception as error:
            raise StartupError(f"cannot connect to Redis: {type(error).__name__}") from error

        self.services = build_services(self.pool, self.redis, settings, self.metrics)
        self.live_ingest = LiveIngest(self.services.quarantine, self.metrics)
        try:
            call_scripts()  # the agent bot's decision trees, checked before anything starts
        except ScriptError as error:
            raise StartupError(f"hotline call script {error}") from None
        left = await asyncio.to_thread(remove_leftovers, private_folder(settings.reports_dir))
        if left:
            log.info("removed %d temporary files a stopped process left behind", left)
        model, _ = await asyncio.to_thread(load_or_train, settings.data_dir / "nlu")
        self.nlu = Nlu(
            model,
            backend=settings.nlu_backend,
            rasa_url=settings.rasa_url,
            timeout=settings.nlu_rasa_timeout,
        )
        await self._quarantine_index()
        app = web.Application(
            client_max_size=32 * 1024**2, middlewares=[body_deadline, input_guard]
        )
        app[BODY_TIMEOUT] = settings.web_body_timeout
        setup_api(app, self.services)
        setup_public(
            app,
            self.services.permits,
            self.redis,
            frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip()),
        )
        init_admin(
            app,
            self.health,
            self.metrics if settings.metrics_enabled else None,
            before_scrape=self._outbox_backlog,
        )
        setup_panel(app, self.services.panel, self.redis, timezone=settings.city_timezone)
        app[SEND_QUEUES] = self.send_queues
        setup_situation_pages(
            app, SituationCentre(self.services.rollups, self.services.indicators)
        )
        setup_map_pages(
            app,
            MapLayers(self.pool, self.services.zones),
            tile_url=settings.map_tile_url,
            attribution=settings.map_tile_attribution,
            center=settings.map_center,
        )
        setup_model_pages(app, self.services.model_runs)
        setup_audit_pages(app, self.services.staff_lookups)
        setup_permits_pages(app, self.services.applications)
        setup_checkpoints_pages(app, self.services.checkpoints)
        setup_users_pages(app)
        setup_nlu_api(app, self.nlu)
        setup_hotline_pages(
            app, self.services.hotline, self.services.tickets, self.services.rollups
        )
        setup_quarantine_pages(app, self.services.quarantine)
        setup_venues_pages(app, self.services.venues)
        setup_indicators_pages(app, self.services.indicators)
        setup_registry_pages(
            app,
            self.services.importer,
            self.services.disputes,
            settings.reports_dir,
            max_upload=settings.registry_upload_max_mb * 1024**2,
        )
        setup_ambulance_pages(app, self.services.ambulance)
        setup_feeds_pages(app, self.services.feeds, self.services.rollups)
        setup_news_pages(app, self.services.news)
        links = BotLinks(miniapp_short_name=settings.miniapp_short_name)
        setup_brigades_pages(
            app, self.services.brigades, lambda token: links.deep_link("staff", token)
        )
        self.miniapp = MiniApp(
            citizens=self.services.citizens,
            statuses=self.services.statuses,
            venues=self.services.venues,
            visits=self.services.visits,
            languages=self.services.languages,
            openings=self.services.openings,
            links=links,
            default_language=settings.default_language,
            city_tz=ZoneInfo(settings.city_timezone),
            max_age=timedelta(seconds=settings.miniapp_init_data_max_age_seconds),
        )
        setup_miniapp(app, self.miniapp)
        decision = settings.sandbox_decision()
        (log.warning if "not started" in decision else log.info)("%s", decision)
        if settings.sandbox_mounted:
            self.sandbox = Sandbox()
            self.sandbox.setup(app)
            add_page(app, "/sandbox/", "Sandbox chat")
        webhooks: WebhookEndpoint | None = None
        if settings.webhook_mode:
            assert settings.webhook_secret is not None
            webhooks = WebhookEndpoint(settings.webhook_secret.get_secret_value())
            webhooks.setup(app)
        # An idle keep-alive connection, and one whose request head is still arriving,
        # is closed after the keep-alive timeout (aiohttp's own default is an hour).
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=settings.web_keepalive_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            settings.admin_host,
            settings.admin_port,
            reuse_port=settings.workers > 1,  # the kernel shares the port among workers
        )
        try:
            await site.start()
        except OSError as error:
            raise StartupError(
                f"cannot listen on {settings.admin_host}:{settings.admin_port} "
                f"(ADMIN_HOST/ADMIN_PORT): {error.strerror}"
            ) from error
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else settings.admin_port

        storage = CoalescingRedisStorage(
            self.redis, key_builder=DefaultKeyBuilder(with_bot_id=True)
        )
        # Two phases: every bot first learns who it is (deep links need the usernames),
        # then starts taking updates. A task group, so that when one bot cannot start,
        # the others stop starting too.
        try:
            async with asyncio.TaskGroup() as group:
                for name in settings.bots_to_run:
                    group.create_task(self._connect_bot(name))
            links.usernames.update({n: b.username for n, b in self.bots.items()})
            citizen = self.bots["citizen"]
            self.miniapp.token = citizen.bot.token
            public = settings.webhook_base_url or (self.base_url if citizen.on_sandbox else "")
            if public.startswith("https://") or citizen.on_sandbox:
                links.pass_url = f"{public}{MINIAPP_PATH}"
            if citizen.on_sandbox and self.sandbox is not None:
                sandbox_bot = self.sandbox.bot_named(citizen.username)
                if sandbox_bot is not None:  # its main Mini App, as @BotFather would set
                    sandbox_bot.web_app_url = links.pass_url
            async with asyncio.TaskGroup() as group:
                for name in settings.bots_to_run:
                    context = self._context(name, links)
                    group.create_task(self._start_bot(name, context, storage, webhooks))
        except ExceptionGroup as errors:
            raise errors.exceptions[0] from None
        self.notifier = Notifier(
            self.services.outbox,
            {n: b.bot for n, b in self.bots.items()},
            self.services.languages,
            default_language=settings.default_language,
            tz=ZoneInfo(settings.city_timezone),
            pacer=self.services.pacer,
            paid_broadcast=settings.telegram_paid_broadcast,
            news=self.services.news,
        )
        self._notifier_task = asyncio.create_task(self.notifier.run(), name="notifier")
        self._invalidations = InvalidationListener(
            self.redis,
            [
                self.services.statuses.local,
                self.services.citizens.local,
                self.services.venues.local,
            ],
        )
        await self._invalidations.start()
        self._scheduler = AsyncIOScheduler()
        self._scheduler.add_job(self._purge_ledger, "interval", hours=1, id="purge-ledger")
        self._scheduler.add_job(self._auto_checkout, "interval", minutes=1, id="auto-checkout")
        self._scheduler.add_job(self._retention, "interval", hours=1, id="retention")
        self._scheduler.add_job(
            self._rollups, "interval", minutes=1, id="rollups", next_run_time=datetime.now(UTC)
        )
        self._scheduler.add_job(self._log_audit_head, "interval", minutes=1, id="audit-head")
        self._scheduler.add_job(self._lookup_watch, "interval", hours=1, id="lookup-watch")
        self._scheduler.add_job(
            self._exposure_catch_up, "interval", seconds=30, id="exposure-catch-up"
        )
        self._scheduler.add_job(self._status_catch_up, "interval", seconds=5, id="status-catch-up")
        if settings.citizen_status_notices:
            self._scheduler.add_job(
                self._status_notices, "interval", seconds=2, id="status-notices"
            )
        self._scheduler.add_job(
            self._quarantine_sweep, "interval", seconds=SWEEP_INTERVAL, id="quarantine-sweep"
        )
        self._scheduler.add_job(
            self._quarantine_escalate, "interval", seconds=30, id="quarantine-escalate"
        )
        self._scheduler.add_job(
            self._quarantine_close, "interval", minutes=10, id="quarantine-close"
        )
        self._scheduler.add_job(self._ambulance, "interval", seconds=30, id="ambulance")
        self._scheduler.add_job(
            self._brigade_retention, "interval", hours=1, id="brigade-retention"
        )
        if settings.metrics_enabled:
            self._scheduler.add_listener(
                self._count_job_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
            )
        self._scheduler.start()

    def _count_job_run(self, event: JobExecutionEvent) -> None:
        outcome = {EVENT_JOB_EXECUTED: "ok", EVENT_JOB_ERROR: "error"}.get(event.code, "missed")
        self.metrics.job_runs.labels(event.job_id, outcome).inc()

    async def _outbox_backlog(self) -> None:
        """The messages due and not sent, counted at each scrape of /metrics (each worker
        reports it: a dashboard takes the max); with PostgreSQL away the last count stays."""
        assert self.services is not None
        try:
            waiting = await asyncio.wait_for(self.services.outbox.waiting(), 2)
        except Exception as error:
            if not is_unavailable(error) and not isinstance(error, TimeoutError):
                raise
            return
        for bot in self.bots:
            self.metrics.outbox_backlog.labels(bot).set(waiting.get(bot, 0))

    def _context(self, name: str, links: BotLinks) -> BotContext:
        assert self.services is not None
        assert self.redis is not None
        assert self.live_ingest is not None
        assert self.nlu is not None
        services = self.services
        return BotContext(
            profile=BOT_MODULES[name].PROFILE,
            languages=services.languages,
            ledger=services.ledger,
            metrics=self.metrics,
            default_language=self.settings.default_language,
            statuses=services.statuses,
            citizens=services.citizens,
            venues=services.venues,
            visits=services.visits,
            disputes=services.disputes,
            redis=self.redis,
            links=links,
            city_tz=ZoneInfo(self.settings.city_timezone),
            limits=Limits(
                fix_retention_days=self.settings.quarantine_fix_retention_days,
                positive_isolation_days=self.settings.positive_isolation_days,
                visit_retention_days=self.settings.visit_retention_days,
            ),
            quotas=services.quotas,
            quarantine=services.quarantine,
            live_ingest=self.live_ingest,
            permits=services.permits,
            applications=services.applications,
            checkpoints=services.checkpoints,
            hotline=services.hotline,
            tickets=services.tickets,
            nlu=self.nlu,
            brigades=services.brigades,
            news=services.news,
        )

    async def _connect_bot(self, name: str) -> None:
        """Make the bot's client and ask its API server who it is."""
        settings = self.settings
        token = settings.bot_token(name)
        if token is None:
            assert self.sandbox is not None
            token = self.sandbox.register_bot(name).token
            api_base = f"{self.base_url}/sandbox"
        else:
            api_base = settings.telegram_api_base or PRODUCTION.base.split("/bot{token}")[0]
        health = ApiHealth()
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
        session.middleware(RetryAfterMiddleware(name, self.metrics, health))
        assert self.services is not None
        session.middleware(PacingMiddleware(name, self.services.pacer, self.metrics))
        bot = Bot(token=token, session=session)
        try:
            me = await bot.get_me()
        except (TelegramNetworkError, TelegramServerError, OSError) as error:
            await session.close()
            raise StartupError(
                f"{name} bot: cannot reach the Bot API at {api_base} (TELEGRAM_API_BASE): "
                f"{type(error).__name__}"
            ) from error
        except TelegramAPIError as error:
            await session.close()
            raise StartupError(
                f"{name} bot: the Bot API at {api_base} refused the token "
                f"({name.upper()}_BOT_TOKEN): {error.message}"
            ) from error
        on_sandbox = settings.bot_token(name) is None
        self.bots[name] = RunningBot(name, bot, me.username or name, on_sandbox, api_base, health)

    async def _start_bot(
        self,
        name: str,
        context: BotContext,
        storage: RedisStorage,
        webhooks: WebhookEndpoint | None,
    ) -> None:
        settings = self.settings
        running = self.bots[name]
        bot = running.bot
        await self._set_commands(bot, BOT_MODULES[name].PROFILE)
        dispatcher = build_dispatcher(name, context, storage)
        running.dispatcher = dispatcher
        allowed = dispatcher.resolve_used_update_types()
        if webhooks is not None:
            assert settings.webhook_base_url
            assert settings.webhook_secret
            webhooks.targets[name] = WebhookTarget(bot, dispatcher)
            await bot.set_webhook(
                url=f"{settings.webhook_base_url}/webhook/{name}",
                secret_token=settings.webhook_secret.get_secret_value(),
                allowed_updates=allowed,
            )
        else:
            await bot.delete_webhook()
            running.polling = asyncio.create_task(
                poll(bot, dispatcher, allowed_updates=allowed),
                name=f"polling-{name}",
            )

    async def _set_commands(self, bot: Bot, profile: BotProfile) -> None:
        for lang in (*LANGUAGES, None):
            commands = [
                BotCommand(command=n, description=text(lang or "en", COMMANDS[n]))
                for n in profile.all_commands
            ]
            await bot.set_my_commands(commands, language_code=lang)

    async def _auto_checkout(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        await run_exclusively(
            self.redis,
            "auto-checkout",
            self.services.visits.auto_checkout,
            hold=timedelta(seconds=50),
        )

    async def _retention(self) -> None:
        assert self.pool is not None
        assert self.redis is not None
        pool = self.pool
        policy = Retention(
            visits=timedelta(days=self.settings.visit_retention_days),
            passings=timedelta(days=self.settings.visit_retention_days),
            location_fixes=timedelta(days=self.settings.quarantine_fix_retention_days),
            hotline=timedelta(days=self.settings.hotline_retention_days),
            reports=timedelta(days=self.settings.report_retention_days),
        )

        # Outside the lock: each host has its own DATA_DIR, and removing files is idempotent.
        reports = await asyncio.to_thread(
            remove_older_than, self.settings.reports_dir, policy.reports
        )
        if reports:
            log.info("retention: removed %d rejected-row reports", reports)

        async def job() -> None:
            removed = await purge(pool, policy)
            log.info("retention: removed %s", removed)

        await run_exclusively(self.redis, "retention", job, hold=timedelta(minutes=50))

    async def _log_audit_head(self) -> None:
        """Rows are chained as they are written (migration 0032); the head, when it moved,
        goes to the log so a copy lives outside the database (`audit verify --head`)."""
        assert self.pool is not None
        seq, digest = await audit_head(self.pool)
        if seq != self._audit_head_logged:
            self._audit_head_logged = seq
            log.info("audit chain: head #%d %s", seq, digest[:16])

    async def _lookup_watch(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        await run_exclusively(
            self.redis,
            "lookup-watch",
            self.services.staff_lookups.flag_unusual,
            hold=timedelta(minutes=50),
        )

    async def _exposure_catch_up(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        exposure = self.services.exposure

        async def job() -> None:
            found = await exposure.catch_up()
            if found:
                log.warning("exposure: %d notices from results whose search was missed", found)

        await run_exclusively(self.redis, "exposure-catch-up", job, hold=timedelta(seconds=25))

    async def _status_catch_up(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        statuses = self.services.statuses

        async def job() -> None:
            made_stale = await statuses.catch_up()
            if made_stale:
                log.warning("status: %d cached statuses made stale late", made_stale)

        await run_exclusively(self.redis, "status-catch-up", job, hold=timedelta(seconds=4))

    async def _status_notices(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        notices = self.services.status_notices

        async def job() -> None:
            await notices.tell_due()

        await run_exclusively(self.redis, "status-notices", job, hold=timedelta(seconds=1.5))

    async def _rollups(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        await run_exclusively(
            self.redis, "rollups", self.services.rollups.refresh, hold=timedelta(seconds=55)
        )

    async def _quarantine_sweep(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        quarantine = self.services.quarantine
        metrics = self.metrics

        async def job() -> None:
            await self._quarantine_index()
            report = await quarantine.sweep(datetime.now(UTC))
            if report.opened:
                log.info("quarantine sweep: %d alerts", report.opened)
                metrics.quarantine_alerts.labels("silence").inc(report.opened)

        await run_exclusively(
            self.redis, "quarantine-sweep", job, hold=timedelta(seconds=SWEEP_INTERVAL - 1)
        )

    async def _quarantine_index(self) -> None:
        assert self.services is not None
        watched = await self.services.quarantine.ensure_index()
        if watched:
            log.info("quarantine: watching %d cases again (Redis had lost the index)", watched)

    async def _quarantine_escalate(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        quarantine = self.services.quarantine

        async def job() -> None:
            await quarantine.escalate(datetime.now(UTC))

        await run_exclusively(self.redis, "quarantine-escalate", job, hold=timedelta(seconds=25))

    async def _quarantine_close(self) -> None:
        assert self.services is not None
        assert self.redis is not None
        quarantine = self.services.quarantine
        tz = ZoneInfo(self.settings.city_timezone)

        async def job() -> None:
            closed = await quarantine.close_finished(datetime.now(tz).date())
            if closed:
                log.info("quarantine: %d cases closed at the end of isolation", closed)

        await run_exclusively(self.redis, "quarantine-close", job, hold=timedelta(minutes=9))

    async def _ambulance(self) -> None:
        """Clusters of calls stored since the last run (an import clusters its own calls
        at once; this catches a CSV from the Health registry page and a failed run), and
        calls past AMBULANCE_RETENTION_DAYS."""
        assert self.services is not None
        assert self.redis is not None
        ambulance = self.services.ambulance
        kept = timedelta(days=self.settings.ambulance_retention_days)

        async def job() -> None:
            await ambulance.update_clusters()
            removed = await ambulance.purge(kept)
            if removed:
                log.info("retention: removed %d ambulance calls", removed)

        await run_exclusively(self.redis, "ambulance", job, hold=timedelta(minutes=5))

    async def _brigade_retention(self) -> None:
        """Brigades' tracks and photos past BRIGADE_TRACK_RETENTION_DAYS."""
        assert self.services is not None
        assert self.redis is not None
        brigades = self.services.brigades
        kept = timedelta(days=self.settings.brigade_track_retention_days)

        async def job() -> None:
            removed = await brigades.purge(kept)
            if removed:
                log.info("retention: removed %d brigade fixes and photos", removed)

        await run_exclusively(self.redis, "brigade-retention", job, hold=timedelta(minutes=50))

    async def _purge_ledger(self) -> None:
        assert self.pool is not None
        assert self.redis is not None
        ledger = UpdateLedger(self.pool)
        await run_exclusively(self.redis, "purge-ledger", ledger.purge, hold=timedelta(minutes=50))
        # an opening is refused once older than the setting; kept a day longer than that
        kept = timedelta(seconds=self.settings.miniapp_init_data_max_age_seconds, days=1)
        await run_exclusively(
            self.redis,
            "purge-miniapp-openings",
            partial(OpeningLedger(self.pool).purge, kept),
            hold=timedelta(minutes=50),
        )

    async def send_queues(self) -> list[SendQueue]:
        """Each bot's messages waiting to go out ([] while PostgreSQL or Redis is away)."""
        if self.services is None:
            return []
        try:
            waiting = await asyncio.wait_for(self.services.outbox.waiting(), 3)
            ids = {name: running.bot.id for name, running in self.bots.items()}
            return await asyncio.wait_for(send_queues(self.services.pacer, waiting, ids), 3)
        except Exception as error:
            if not is_unavailable(error) and not isinstance(error, TimeoutError):
                raise
            return []

    async def health(self) -> dict[str, Any]:
        """The state of PostgreSQL, Redis and each bot, for /healthz and `citybots check`."""
        report: dict[str, Any] = {"status": "ok", "worker_pid": os.getpid()}

        async def probe(name: str, check: Any) -> None:
            try:
                await asyncio.wait_for(check(), 3)
                report[name] = {"ok": True}
            except Exception as error:
                report[name] = {"ok": False, "error": type(error).__name__}

        async def pg() -> None:
            assert self.pool is not None
            await self.pool.fetchval("SELECT 1")

        async def rd() -> None:
            assert self.redis is not None
            await self.redis.ping()

        await asyncio.gather(probe("postgres", pg), probe("redis", rd))
        queues = {q.bot: q for q in await self.send_queues()}
        report["bots"] = {
            name: {
                "ok": running.health.ok,
                "username": running.username,
                "mode": "webhook" if self.settings.webhook_mode else "polling",
                "api": "sandbox" if running.on_sandbox else "telegram",
                **({"error": running.health.last_error} if not running.health.ok else {}),
                **(
                    {
                        "notices_waiting": queues[name].notices_waiting,
                        "expected_wait_seconds": round(queues[name].expected_wait, 1),
                    }
                    if name in queues
                    else {}
                ),
            }
            for name, running in self.bots.items()
        }
        healthy = (
            report["postgres"]["ok"]
            and report["redis"]["ok"]
            and all(b["ok"] for b in report["bots"].values())
            and len(self.bots) == len(self.settings.bots_to_run)
        )
        report["status"] = "ok" if healthy else "degraded"
        return report

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._invalidations is not None:
            await self._invalidations.stop()
            self._invalidations = None
        if self._notifier_task is not None:
            self._notifier_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier_task
            self._notifier_task = None
        await asyncio.gather(*(self._stop_bot(running) for running in self.bots.values()))
        if self.services is not None:
            await self.services.visits.close()
        if self.live_ingest is not None:
            await self.live_ingest.close()
            self.live_ingest = None
        if self.nlu is not None:
            await self.nlu.close()
            self.nlu = None
        self.bots.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self.infra is not None:
            await asyncio.to_thread(self.infra.stop)
            self.infra = None

    async def _stop_bot(self, running: RunningBot) -> None:
        if running.polling is not None:
            running.polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.polling
        if running.dispatcher is not None and running.dispatcher.fast_path is not None:
            await running.dispatcher.fast_path.close()
        await running.bot.session.close()

    def summary(self) -> str:
        """What started where, which bots are on the sandbox, how to talk to them."""
        assert self.infra is not None
        lines = ["citybots is running", ""]
        pg = self.infra.embedded_postgres
        rd = self.infra.embedded_redis
        lines.append(
            f"  PostgreSQL  embedded, data in {pg.pgdata}, port {pg.port}"
            if pg
            else "  PostgreSQL  DATABASE_URL"
        )
        lines.append(
            f"  Redis       embedded, data in {rd.data_dir}, port {rd.port}"
            if rd
            else "  Redis       REDIS_URL"
        )
        lines.append(f"  Web app     {self.base_url}/  (health: /healthz, metrics: /metrics)")
        lines.append(
            f"  Panel       {self.base_url}/login  (first account: "
            "citybots admin create-user NAME --role admin)"
        )
        mode = (
            f"webhooks at {self.settings.webhook_base_url}/webhook/<bot>"
            if self.settings.webhook_mode
            else "long polling"
        )
        lines.append(f"  Bots        {mode}")
        lines.append(f"              {self.settings.sandbox_decision()}")
        for name, running in self.bots.items():
            where = "sandbox" if running.on_sandbox else running.api_base
            lines.append(f"    {name:<11} @{running.username:<26} on {where}")
        if self.sandbox is not None:
            lines += [
                "",
                f"  Talk to the sandbox bots in a browser: {self.base_url}/sandbox/",
                f"  or over HTTP: POST {self.base_url}/sandbox/api/users, then "
                f"POST {self.base_url}/sandbox/api/bots/<bot>/users/<id>/send",
            ]
        lines += [
            "",
            "  A demo city to try every bot and page (venues, people, permits, a checkpoint,",
            "  the hotline, 60 days of history): citybots demo-data",
            "",
            "  Stop with Ctrl-C.",
        ]
        return "\n".join(lines)
