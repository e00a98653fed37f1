"""Home quarantine: doctors, patients' cases, consent, live-location fixes judged by the
home-radius rule (geofence/home.py), violation episodes with their alerts, the silence
sweep, escalation, closing at isolation end.

PostgreSQL holds every case and episode; Redis holds an index of where to look
(:mod:`.index`). The parts:

- :mod:`.model`       the kinds, rule constants and plain values;
- :mod:`.tracking`    the state machine of fixes, episodes and alert kinds (no I/O);
- :mod:`.cases`       doctors, enrolment, consent, home point, closing finished cases;
- :mod:`.ingest`      batches of fixes through the state machine into PostgreSQL;
- :mod:`.episodes`    episodes and their messages written from the state machine's events;
- :mod:`.sweep`       the silence rule and live-period reminders;
- :mod:`.index`       the Redis sorted sets the sweep reads;
- :mod:`.escalation`  unacknowledged alerts to the duty list; doctors' answers;
- :mod:`.panel`       what the doctor's bot and the panel read.

:class:`QuarantineService` is the one object the rest of the platform holds: each of its
methods is one part's.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from services.quarantine.cases import CaseService
from services.quarantine.escalation import EscalationService
from services.quarantine.index import INDEXED, JUDGED, LIVE, SEEN, QuarantineIndex
from services.quarantine.ingest import IngestService
from services.quarantine.model import (
    SILENCE,
    Action,
    AlertKind,
    Case,
    CaseSummary,
    CloseKind,
    Doctor,
    EpisodeView,
    IngestReport,
    QuarantineError,
    SweepReport,
)
from services.quarantine.panel import PanelQueries
from services.quarantine.sweep import SweepService

__all__ = [
    "INDEXED",
    "JUDGED",
    "LIVE",
    "SEEN",
    "SILENCE",
    "Action",
    "AlertKind",
    "Case",
    "CaseSummary",
    "CloseKind",
    "Doctor",
    "EpisodeView",
    "IngestReport",
    "QuarantineError",
    "QuarantineService",
    "SweepReport",
]


class QuarantineService:
    """The quarantine's parts over one pool and one Redis, under the names callers use."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        *,
        escalate_after: timedelta = timedelta(minutes=10),
        sample_every: timedelta = timedelta(minutes=5),
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.index = QuarantineIndex(pool, redis)
        self.cases = CaseService(pool, self.index)
        self.fixes = IngestService(pool, self.index, sample_every=sample_every)
        self.silence = SweepService(pool, self.index)
        self.panel = PanelQueries(pool)
        self.alerts = EscalationService(
            pool, self.index, self.panel, escalate_after=escalate_after
        )
        # doctors, cases and the patient's side
        self.create_doctor_invite = self.cases.create_doctor_invite
        self.join_as_doctor = self.cases.join_as_doctor
        self.doctor = self.cases.doctor
        self.enrol = self.cases.enrol
        self.case = self.cases.case
        self.case_by_invite = self.cases.case_by_invite
        self.case_of_patient = self.cases.case_of_patient
        self.consent = self.cases.consent
        self.decline = self.cases.decline
        self.set_phone = self.cases.set_phone
        self.confirm_home = self.cases.confirm_home
        self.reject_home = self.cases.reject_home
        self.home_here = self.cases.home_here
        self.close_finished = self.cases.close_finished
        # fixes, silence and the index
        self.ingest = self.fixes.ingest
        self.sweep = self.silence.sweep
        self.patient_left_chat = self.silence.patient_left_chat
        self.ensure_index = self.index.ensure
        self.rebuild_index = self.index.rebuild
        # alerts, and what the doctor's bot and the panel read
        self.escalate = self.alerts.escalate
        self.act = self.alerts.act
        self.acknowledge_from_panel = self.alerts.acknowledge_from_panel
        self.open_alerts = self.panel.open_alerts
        self.case_counts = self.panel.case_counts
        self.episode = self.panel.episode
        self.open_cases = self.panel.open_cases

    @property
    def sample_every(self) -> timedelta:
        """At home, one fix per this period is stored; zero stores every fix."""
        return self.fixes.sample_every
