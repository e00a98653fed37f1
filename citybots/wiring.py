"""The domain services, built once from the pools and settings."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import asyncpg
from redis.asyncio import Redis

from citybots.settings import Settings
from geofence.clusters import ClusterRule
from services.ambulance import AmbulanceService
from services.ambulance_rows import CodeSet
from services.audit import record
from services.brigades import BrigadeService
from services.checkpoints import CheckpointService
from services.citizens import CitizenService
from services.container import Services
from services.disputes import DisputeService
from services.exposure import ExposureService
from services.feeds.store import Feeds
from services.hotline import HotlineService, Tickets
from services.indicators import IndicatorService
from services.labs import LabService
from services.metrics import Metrics
from services.miniapp import OpeningLedger
from services.model.runs import ModelRuns
from services.model.scenarios import load_spec
from services.news import NewsService
from services.outbox import Outbox
from services.pacing import Limits, Pacer
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


def build_services(
    pool: asyncpg.Pool, redis: Redis, settings: Settings, metrics: Metrics | None = None
) -> Services:
    statuses = StatusService(pool, redis, positive_isolation_days=settings.positive_isolation_days)
    exposure = ExposureService(
        pool,
        min_overlap=timedelta(minutes=settings.exposure_min_overlap_minutes),
        after_leaving=timedelta(minutes=settings.exposure_after_minutes),
    )
    permits = PermitService(pool, statuses)
    importer = RegistryImporter(
        pool,
        statuses,
        timezone=settings.city_timezone,
        positive_isolation_days=settings.positive_isolation_days,
        on_positives=exposure.on_positive_results,
        on_positives_withdrawn=exposure.retract,
        ambulance_codes=CodeSet(settings.ambulance_codes),
    )
    return Services(
        languages=LanguagePreferences(pool, redis),
        ledger=UpdateLedger(pool, lease=timedelta(seconds=settings.update_lease_seconds)),
        statuses=statuses,
        status_notices=StatusNotices(pool, statuses),
        citizens=CitizenService(pool, redis, statuses),
        venues=VenueService(pool, redis),
        visits=VisitService(pool, statuses, metrics),
        exposure=exposure,
        disputes=DisputeService(pool, statuses, on_positives_withdrawn=exposure.retract),
        outbox=Outbox(pool),
        importer=importer,
        labs=LabService(pool),
        audit=partial(record, pool),
        quarantine=QuarantineService(
            pool,
            redis,
            escalate_after=timedelta(minutes=settings.quarantine_escalate_minutes),
            sample_every=timedelta(minutes=settings.quarantine_fix_sample_minutes),
        ),
        zones=ZoneService(pool),
        permits=permits,
        applications=PermitApplications(pool, redis, statuses),
        checkpoints=CheckpointService(pool, permits),
        hotline=HotlineService(pool),
        indicators=IndicatorService(pool),
        rollups=Rollups(
            pool,
            settings.city_timezone,
            retention={
                "checkins": timedelta(days=settings.visit_retention_days),
                "passings": timedelta(days=settings.visit_retention_days),
            },
        ),
        quotas=LookupQuotas(
            pool,
            redis,
            per_hour=settings.staff_lookups_per_hour,
            per_venue_day=settings.venue_lookups_per_day,
        ),
        staff_lookups=StaffLookups(pool),
        tickets=Tickets(pool),
        panel=PanelService(pool, session_hours=settings.panel_session_hours),
        model_runs=ModelRuns(pool, load_spec(settings.model_scenarios)),
        openings=OpeningLedger(pool),
        feeds=Feeds(pool, timezone=settings.city_timezone),
        news=NewsService(
            pool,
            channel=settings.city_news_channel,
            per_second=settings.telegram_sends_per_second,
        ),
        pacer=Pacer(redis, Limits(per_bot=settings.telegram_sends_per_second)),
        brigades=BrigadeService(
            pool,
            clean_hours=settings.clean_zone_hours,
            spray_width_m=settings.brigade_spray_width_m,
            still_minutes=settings.brigade_still_minutes,
            clean_coverage=settings.clean_zone_min_coverage,
        ),
        ambulance=AmbulanceService(
            pool,
            importer,
            rule=ClusterRule(
                meters=settings.ambulance_cluster_meters,
                seconds=settings.ambulance_cluster_days * 86400,
                minimum=settings.ambulance_cluster_min,
            ),
            alert_chat_id=settings.ambulance_alert_chat_id,
        ),
    )
