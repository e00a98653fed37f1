"""What every handler may ask for by name (aiogram workflow data), typed in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from flows.faq.handlers import Parser
from flows.quarantine.live import LiveIngest
from services.brigades import BrigadeService
from services.checkpoints import CheckpointService
from services.citizens import CitizenService
from services.disputes import DisputeService
from services.hotline import HotlineService, Tickets
from services.metrics import Metrics
from services.news import NewsService
from services.permit_applications import PermitApplications
from services.permits import PermitService
from services.quarantine import QuarantineService
from services.quotas import LookupQuotas
from services.status import StatusService
from services.updates import UpdateLedger
from services.users import LanguagePreferences
from services.venues import VenueService
from services.visits import VisitService


@dataclass(frozen=True)
class BotProfile:
    """A bot: its name, the text keys of its main-menu buttons, in order, and its own
    commands (besides those every bot has), as listed by /help and in Telegram's menu."""

    name: str
    menu: tuple[str, ...] = field(default=("menu.help", "menu.language"))
    commands: tuple[str, ...] = ()

    @property
    def all_commands(self) -> tuple[str, ...]:
        return ("start", *self.commands, "help", "language", "cancel")


@dataclass
class BotLinks:
    """The bots' @usernames, known once each bot has asked its API server who it is;
    deep links (QR codes, invites) point at them."""

    usernames: dict[str, str] = field(default_factory=dict)
    miniapp_short_name: str = ""
    """The citizen bot's Mini App as registered with @BotFather (MINIAPP_SHORT_NAME):
    venue codes open it directly; empty, they open the chat."""
    pass_url: str | None = None
    """The Mini App page's https address (the sandbox's may be http), for "My status"
    to open the live pass from a button; None where no such address is known."""

    def deep_link(self, bot: str, payload: str) -> str:
        return f"https://t.me/{self.usernames.get(bot, bot)}?start={payload}"

    def venue_link(self, token: str) -> str:
        """What a venue's QR code holds: the Mini App's direct link when the Mini App is
        named (``startapp``: a check-in without a chat message), else the chat's deep
        link; the bot answers ``/start <token>`` either way."""
        if not self.miniapp_short_name:
            return self.deep_link("citizen", token)
        username = self.usernames.get("citizen", "citizen")
        return f"https://t.me/{username}/{self.miniapp_short_name}?startapp={token}"


@dataclass(frozen=True)
class Limits:
    """The settings' rule values that the bots' texts name."""

    fix_retention_days: int = 14
    positive_isolation_days: int = 14
    visit_retention_days: int = 28


class BotContext(TypedDict):
    profile: BotProfile
    languages: LanguagePreferences
    ledger: UpdateLedger
    metrics: Metrics
    default_language: str
    statuses: StatusService
    citizens: CitizenService
    venues: VenueService
    visits: VisitService
    disputes: DisputeService
    redis: Redis
    links: BotLinks
    city_tz: ZoneInfo
    limits: Limits
    quotas: LookupQuotas
    quarantine: QuarantineService
    live_ingest: LiveIngest
    permits: PermitService
    applications: PermitApplications
    checkpoints: CheckpointService
    hotline: HotlineService
    tickets: Tickets
    nlu: Parser
    brigades: BrigadeService
    news: NewsService
