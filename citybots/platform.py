"""The composition root: builds pools, bots, the web app and the scheduler into one
running platform, and takes them down again in order.

Each part is started next to the registration of its stop on one ``AsyncExitStack``, so a
part that started is stopped exactly once, in the reverse order, whether the platform stops
or a later part fails to start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramServerError
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand
from aiohttp import web
from redis.asyncio import Redis

from admin.miniapp import PATH as MINIAPP_PATH
from bots.dispatcher import CityDispatcher
from bots.notifier import Notifier
from bots.polling import poll
from bots.registry import BOT_MODULES, build_dispatcher
from bots.sandbox import Sandbox
from bots.session import ApiHealth, PacingMiddleware, RetryAfterMiddleware
from bots.storage import CoalescingRedisStorage
from bots.webhook import WebhookEndpoint, WebhookTarget
from citybots.infrastructure import (
    Infrastructure,
    StartupError,
    api_base,
    infrastructure,
    postgres,
    redis_client,
)
from citybots.jobs import Jobs, watch_quarantine_again
from citybots.settings import Settings
from citybots.webapp import WebApp, build_web_app
from citybots.wiring import Services, build_services
from flows.context import BotContext, BotLinks, BotProfile, Limits
from flows.hotline.call_scripts import ScriptError
from flows.hotline.call_scripts import scripts as call_scripts
from flows.miniapp import MiniApp
from flows.quarantine.live import LiveIngest
from nlu.service import Nlu, load_or_train
from presentation.i18n import LANGUAGES, text
from presentation.keys import COMMANDS
from services.db import is_unavailable
from services.localcache import InvalidationListener
from services.metrics import Metrics
from services.pacing import SendQueue, send_queues
from services.private_files import private_folder, remove_leftovers

__all__ = ["Platform", "RunningBot", "StartupError"]

log = logging.getLogger(__name__)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has stopped."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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

    async def stop(self) -> None:
        if self.polling is not None:
            await _cancelled(self.polling)
        if self.dispatcher is not None and self.dispatcher.fast_path is not None:
            await self.dispatcher.fast_path.close()
        await self.bot.session.close()


@dataclass
class Platform:
    """Everything `citybots run` starts. ``start()`` then ``stop()``; or ``async with``."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    bots: dict[str, RunningBot] = field(default_factory=dict)
    port: int = 0
    started_in: float = 0.0
    sandbox: Sandbox | None = None  # mounted only when a bot has no token (SANDBOX)
    # The parts set by start(): reading one earlier raises AttributeError.
    infra: Infrastructure = field(init=False, repr=False)
    pool: asyncpg.Pool = field(init=False, repr=False)
    redis: Redis = field(init=False, repr=False)
    services: Services = field(init=False, repr=False)
    nlu: Nlu = field(init=False, repr=False)
    live_ingest: LiveIngest = field(init=False, repr=False)
    miniapp: MiniApp = field(init=False, repr=False)
    notifier: Notifier = field(init=False, repr=False)
    jobs: Jobs = field(init=False, repr=False)
    _runner: web.AppRunner = field(init=False, repr=False)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack, repr=False)

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def web_app(self) -> web.Application:
        """The running web application (its route table is what access tests crawl)."""
        return self._runner.app

    @property
    def base_url(self) -> str:
        host = self.settings.admin_url.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Start every part; when one cannot start, those already started are stopped."""
        began = time.perf_counter()
        async with AsyncExitStack() as stack:
            await self._start(stack)
            self._stack = stack.pop_all()
        self.started_in = time.perf_counter() - began

    async def stop(self) -> None:
        """Stop what ``start()`` started, the last started first."""
        await self._stack.aclose()

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        self.infra = await stack.enter_async_context(infrastructure(settings))
        self.pool = await stack.enter_async_context(
            postgres(self.infra.database_url, settings, size=settings.db_pool_size)
        )
        self.redis = await stack.enter_async_context(redis_client(self.infra.redis_url, settings))
        self.services = build_services(self.pool, self.redis, settings, self.metrics)
        self.live_ingest = LiveIngest(self.services.quarantine, self.metrics)
        stack.push_async_callback(self.live_ingest.close)
        # stopped after the bots (pushed later, so stopped earlier): their last check-ins stored
        stack.push_async_callback(self.services.visits.close)
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
        stack.push_async_callback(self.nlu.close)
        await watch_quarantine_again(self.services)
        web_app = build_web_app(
            settings,
            self.services,
            self.pool,
            self.redis,
            self.nlu,
            self.metrics,
            health=self.health,
            before_scrape=self._outbox_backlog,
            send_queues=self.send_queues,
        )
        self.miniapp, self.sandbox = web_app.miniapp, web_app.sandbox
        decision = settings.sandbox_decision()
        (log.warning if "not started" in decision else log.info)("%s", decision)
        await self._serve(stack, web_app.app)
        stack.push_async_callback(self._stop_bots)
        await self._start_bots(web_app)
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
        notifier = asyncio.create_task(self.notifier.run(), name="notifier")
        stack.push_async_callback(_cancelled, notifier)
        invalidations = InvalidationListener(
            self.redis,
            [
                self.services.statuses.local,
                self.services.citizens.local,
                self.services.venues.local,
            ],
        )
        await invalidations.start()
        stack.push_async_callback(invalidations.stop)
        self.jobs = Jobs(settings, self.services, self.pool, self.redis, self.metrics)
        scheduler = self.jobs.scheduler()
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)

    async def _serve(self, stack: AsyncExitStack, app: web.Application) -> None:
        """Listen on ADMIN_HOST:ADMIN_PORT (``port`` is the one bound, for port 0)."""
        settings = self.settings
        # An idle keep-alive connection, and one whose request head is still arriving,
        # is closed after the keep-alive timeout (aiohttp's own default is an hour).
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=settings.web_keepalive_timeout
        )
        await self._runner.setup()
        stack.push_async_callback(self._runner.cleanup)
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

    async def _start_bots(self, web_app: WebApp) -> None:
        """Two phases: every bot first learns who it is (deep links need the usernames),
        then starts taking updates. Task groups, so that when one bot cannot start, the
        others stop starting too."""
        settings = self.settings
        links = web_app.links
        storage = CoalescingRedisStorage(
            self.redis, key_builder=DefaultKeyBuilder(with_bot_id=True)
        )
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
                    group.create_task(self._start_bot(name, context, storage, web_app.webhooks))
        except ExceptionGroup as errors:
            raise errors.exceptions[0] from None

    async def _stop_bots(self) -> None:
        await asyncio.gather(*(running.stop() for running in self.bots.values()))
        self.bots.clear()

    async def _outbox_backlog(self) -> None:
        """The messages due and not sent, counted at each scrape of /metrics (each worker
        reports it: a dashboard takes the max); with PostgreSQL away the last count stays."""
        try:
            waiting = await asyncio.wait_for(self.services.outbox.waiting(), 2)
        except Exception as error:
            if not is_unavailable(error) and not isinstance(error, TimeoutError):
                raise
            return
        for bot in self.bots:
            self.metrics.outbox_backlog.labels(bot).set(waiting.get(bot, 0))

    def _context(self, name: str, links: BotLinks) -> BotContext:
        services = self.services
        return BotContext(
            languages=services.languages,
            ledger=services.ledger,
            statuses=services.statuses,
            citizens=services.citizens,
            venues=services.venues,
            visits=services.visits,
            disputes=services.disputes,
            quotas=services.quotas,
            quarantine=services.quarantine,
            permits=services.permits,
            applications=services.applications,
            checkpoints=services.checkpoints,
            hotline=services.hotline,
            tickets=services.tickets,
            brigades=services.brigades,
            news=services.news,
            profile=BOT_MODULES[name].PROFILE,
            metrics=self.metrics,
            redis=self.redis,
            live_ingest=self.live_ingest,
            nlu=self.nlu,
            links=links,
            default_language=self.settings.default_language,
            city_tz=ZoneInfo(self.settings.city_timezone),
            limits=Limits(
                fix_retention_days=self.settings.quarantine_fix_retention_days,
                positive_isolation_days=self.settings.positive_isolation_days,
                visit_retention_days=self.settings.visit_retention_days,
            ),
        )

    async def _connect_bot(self, name: str) -> None:
        """Make the bot's client and ask its API server who it is."""
        settings = self.settings
        token = settings.bot_token(name)
        if token is None:
            assert self.sandbox is not None  # a bot without a token mounts the sandbox
            token = self.sandbox.register_bot(name).token
            server = f"{self.base_url}/sandbox"
        else:
            server = api_base(settings)
        health = ApiHealth()
        session = AiohttpSession(api=TelegramAPIServer.from_base(server))
        session.middleware(RetryAfterMiddleware(name, self.metrics, health))
        session.middleware(PacingMiddleware(name, self.services.pacer, self.metrics))
        bot = Bot(token=token, session=session)
        try:
            me = await bot.get_me()
        except (TelegramNetworkError, TelegramServerError, OSError) as error:
            await session.close()
            raise StartupError(
                f"{name} bot: cannot reach the Bot API at {server} (TELEGRAM_API_BASE): "
                f"{type(error).__name__}"
            ) from error
        except TelegramAPIError as error:
            await session.close()
            raise StartupError(
                f"{name} bot: the Bot API at {server} refused the token "
                f"({name.upper()}_BOT_TOKEN): {error.message}"
            ) from error
        on_sandbox = settings.bot_token(name) is None
        self.bots[name] = RunningBot(name, bot, me.username or name, on_sandbox, server, health)

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

    async def send_queues(self) -> list[SendQueue]:
        """Each bot's messages waiting to go out ([] while PostgreSQL or Redis is away)."""
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
            await self.pool.fetchval("SELECT 1")

        async def rd() -> None:
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

    def summary(self) -> str:
        """What started where, which bots are on the sandbox, how to talk to them."""
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
