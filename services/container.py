"""The domain services as one object: what the composition root (citybots/wiring.py)
builds, and what the bots, the panel and the API are handed. It lives beside the
services, so every layer above may import it without importing the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.ambulance import AmbulanceService
from services.brigades import BrigadeService
from services.checkpoints import CheckpointService
from services.citizens import CitizenService
from services.disputes import DisputeService
from services.exposure import ExposureService
from services.feeds.store import Feeds
from services.hotline import HotlineService, Tickets
from services.indicators import IndicatorService
from services.labs import LabService
from services.miniapp import OpeningLedger
from services.model.runs import ModelRuns
from services.news import NewsService
from services.outbox import Outbox
from services.pacing import Pacer
from services.panel import PanelService
from services.permit_applications import PermitApplications
from services.permits import PermitService
from services.quarantine import QuarantineService
from services.quotas import LookupQuotas
from services.registry import RegistryImporter
from services.rollups import Rollups
from services.staff_lookups import StaffLookups
from services.status import StatusService
from services.status_notices import StatusNotices
from services.updates import UpdateLedger
from services.users import LanguagePreferences
from services.venues import VenueService
from services.visits import VisitService
from services.zones import ZoneService

AuditWriter = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Services:
    languages: LanguagePreferences
    ledger: UpdateLedger
    statuses: StatusService
    status_notices: StatusNotices
    citizens: CitizenService
    venues: VenueService
    visits: VisitService
    exposure: ExposureService
    disputes: DisputeService
    outbox: Outbox
    importer: RegistryImporter
    labs: LabService
    audit: AuditWriter
    quarantine: QuarantineService
    zones: ZoneService
    permits: PermitService
    applications: PermitApplications
    checkpoints: CheckpointService
    hotline: HotlineService
    indicators: IndicatorService
    rollups: Rollups
    quotas: LookupQuotas
    staff_lookups: StaffLookups
    tickets: Tickets
    panel: PanelService
    model_runs: ModelRuns
    pacer: Pacer
    openings: OpeningLedger
    ambulance: AmbulanceService
    brigades: BrigadeService
    feeds: Feeds
    news: NewsService
