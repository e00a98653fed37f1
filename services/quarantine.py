"""Home quarantine: doctors, patients' cases, consent, live-location fixes judged by the
home-radius rule (geofence/home.py), violation episodes with their alerts, the silence
sweep, escalation, closing at isolation end.

PostgreSQL holds every case and episode. Redis holds three sorted sets that only say
where to look (rebuilt from PostgreSQL by :meth:`QuarantineService.rebuild_index`):

- ``q:seen``    case -> time of its last fix of any kind (silence is 15 minutes past it);
- ``q:judged``  case -> time of its last fix precise enough to judge, for cases whose
                fixes arrive but are too vague;
- ``q:live``    case -> end of its live-location period (a reminder goes out before it).

A sweep reads only the due end of each set, so its cost follows the number of cases
that are due, not the number of cases.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
import numpy as np
from redis.asyncio import Redis

from geofence.distance import distance_m, distances_m
from geofence.home import (
    MAX_USABLE_ACCURACY_M,
    Change,
    HomeWatch,
    Verdict,
    judge,
    plausible_move,
)
from services.audit import record
from services.db import Connection
from services.outbox import Queued, enqueue, enqueue_many
from services.validation import Coordinates, InvalidInput, parse_coordinates

log = logging.getLogger(__name__)

SILENCE = timedelta(minutes=15)
REMIND_BEFORE_LIVE_ENDS = timedelta(minutes=10)
DOCTOR_INVITE_TTL = timedelta(days=7)
INDEFINITE_LIVE_PERIOD = 0x7FFFFFFF
MAX_REPORTED_ACCURACY_M = 1500.0
SEEN, JUDGED, LIVE = "q:seen", "q:judged", "q:live"
INDEXED = "q:indexed"  # set while the sorted sets hold every watched case
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read out on the phone
_SWEEP_BATCH = 5_000


class QuarantineError(Exception):
    """A refusal with the text key that explains it to the person."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class AlertKind(StrEnum):
    LEFT_HOME = "left_home"
    SIGNAL_LOST = "signal_lost"
    LIVE_ENDED = "live_ended"
    SHARING_STOPPED = "sharing_stopped"
    NO_FIX = "no_fix"
    INACCURATE = "inaccurate"
    LEFT_CHAT = "left_chat"


class CloseKind(StrEnum):
    BACK_HOME = "back_home"
    SIGNAL_BACK = "signal_back"
    RESOLVED = "resolved"
    CASE_CLOSED = "case_closed"


ZONE_KINDS = frozenset({AlertKind.LEFT_HOME})


class Action(StrEnum):
    ACKNOWLEDGE = "ack"
    CALLED = "called"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Doctor:
    id: int
    tg_user_id: int
    district: str
    on_duty: bool


@dataclass(frozen=True)
class Case:
    id: int
    code: str
    doctor_id: int
    district: str
    isolation_end: date
    invite_token: str
    home: Coordinates | None
    home_confirmed: bool
    patient_tg_user_id: int | None
    phone: str | None
    consented: bool
    live_until: datetime | None
    last_fix_at: datetime | None
    zone_state: str
    open_kinds: tuple[str, ...]
    closed: bool


@dataclass(frozen=True)
class Fix:
    """One location from a patient's chat, as Telegram stamped it."""

    tg_user_id: int
    message_id: int
    at: datetime
    latitude: float
    longitude: float
    accuracy: float | None
    live_until: datetime | None
    """When the live period ends; None for a static location or an ended share."""
    stopped: bool = False
    """An edit that ends the live share (Telegram drops ``live_period`` from it)."""


@dataclass
class IngestReport:
    stored: int = 0
    """New fixes taken in (each moved its case's state or was a late one), stored or not."""
    sampled: int = 0
    """Of those, fixes at home not stored as rows (the sample rule): they moved only the
    case's last-seen state."""
    duplicate: int = 0
    invalid: int = 0
    stranger: int = 0
    stale: int = 0
    implausible: int = 0
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    home_proposed: list[int] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        for name in (
            "stored",
            "sampled",
            "duplicate",
            "invalid",
            "stranger",
            "stale",
            "implausible",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.opened += other.opened
        self.closed += other.closed
        self.home_proposed += other.home_proposed


@dataclass(frozen=True)
class EpisodeView:
    """An alert as the doctor's message shows it."""

    id: int
    case_code: str
    kind: str
    opened_at: datetime
    distance_m: float | None
    phone: str | None
    closed_kind: str | None
    acknowledged: bool
    called: bool
    resolved: bool
    escalated: bool

    def params(self) -> dict[str, Any]:
        return {
            "episode": self.id,
            "code": self.case_code,
            "kind": self.kind,
            "at": self.opened_at.isoformat(),
            "distance": None if self.distance_m is None else round(self.distance_m),
            "phone": self.phone,
        }


def _episode_view(row: asyncpg.Record) -> EpisodeView:
    return EpisodeView(
        row["id"],
        row["code"],
        row["kind"],
        row["opened_at"],
        row["distance_m"],
        row["phone"],
        row["close_kind"],
        row["acknowledged_at"] is not None,
        row["called_at"] is not None,
        row["resolved_at"] is not None,
        row["escalated_at"] is not None,
    )


@dataclass(frozen=True)
class CaseSummary:
    code: str
    state: str
    last_fix_at: datetime | None
    isolation_end: date
    open_kinds: tuple[str, ...]


@dataclass(frozen=True)
class SweepReport:
    due: int = 0
    opened: int = 0
    reminded: int = 0
    seconds_late: tuple[float, ...] = ()


def new_code() -> str:
    return "Q-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(5))


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def validate_fix(fix: Fix) -> bool:
    """Coordinates a phone could report and an accuracy in Telegram's range."""
    try:
        parse_coordinates(fix.latitude, fix.longitude)
    except InvalidInput:
        return False
    return fix.accuracy is None or 0.0 <= fix.accuracy <= MAX_REPORTED_ACCURACY_M


_CASE_COLUMNS = """
    c.id, c.code, c.doctor_id, c.district, c.isolation_end, c.invite_token, c.home_lat,
    c.home_lon, c.home_confirmed_at, c.home_rejected_at, c.patient_tg_user_id, c.phone,
    c.consented_at, c.live_message_id, c.live_until, c.live_reminded_for,
    c.sharing_stopped_at, c.last_fix_at, c.last_judged_at, c.last_lat, c.last_lon,
    c.last_accuracy, c.outside_streak, c.inside_streak, c.zone_state, c.zone_episode_id,
    c.signal_episode_id, c.closed_at, c.last_kept_fix_at, d.tg_user_id AS doctor_tg_user_id,
    ze.kind AS zone_kind, se.kind AS signal_kind
"""
_CASE_FROM = """
    FROM quarantine_cases c
    JOIN doctors d ON d.id = c.doctor_id
    LEFT JOIN quarantine_episodes ze ON ze.id = c.zone_episode_id
    LEFT JOIN quarantine_episodes se ON se.id = c.signal_episode_id
"""


def _case(row: asyncpg.Record) -> Case:
    home = None
    if row["home_lat"] is not None:
        home = Coordinates(row["home_lat"], row["home_lon"])
    return Case(
        id=row["id"],
        code=row["code"],
        doctor_id=row["doctor_id"],
        district=row["district"],
        isolation_end=row["isolation_end"],
        invite_token=row["invite_token"],
        home=home,
        home_confirmed=row["home_confirmed_at"] is not None,
        patient_tg_user_id=row["patient_tg_user_id"],
        phone=row["phone"],
        consented=row["consented_at"] is not None,
        live_until=row["live_until"],
        last_fix_at=row["last_fix_at"],
        zone_state=row["zone_state"],
        open_kinds=tuple(k for k in (row["zone_kind"], row["signal_kind"]) if k),
        closed=row["closed_at"] is not None,
    )


@dataclass
class _State:
    """A case's tracking state while a batch of fixes is applied to it."""

    id: int
    code: str
    district: str
    doctor_chat: int
    patient_chat: int
    phone: str | None
    home_lat: float | None
    home_lon: float | None
    home_confirmed: bool
    home_rejected: bool
    live_message_id: int | None
    live_until: datetime | None
    sharing_stopped_at: datetime | None
    last_fix_at: datetime | None
    last_judged_at: datetime | None
    last_lat: float | None
    last_lon: float | None
    last_accuracy: float | None
    outside_streak: int
    inside_streak: int
    zone_state: str
    zone_episode_id: int | None
    signal_episode_id: int | None
    signal_kind: str | None
    last_kept_fix_at: datetime | None = None
    seen_changed: bool = False
    judged_changed: bool = False
    live_changed: bool = False
    poor_seen: bool = False

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> _State:
        return cls(
            id=row["id"],
            code=row["code"],
            district=row["district"],
            doctor_chat=row["doctor_tg_user_id"],
            patient_chat=row["patient_tg_user_id"],
            phone=row["phone"],
            home_lat=row["home_lat"],
            home_lon=row["home_lon"],
            home_confirmed=row["home_confirmed_at"] is not None,
            home_rejected=row["home_rejected_at"] is not None,
            live_message_id=row["live_message_id"],
            live_until=row["live_until"],
            sharing_stopped_at=row["sharing_stopped_at"],
            last_fix_at=row["last_fix_at"],
            last_judged_at=row["last_judged_at"],
            last_lat=row["last_lat"],
            last_lon=row["last_lon"],
            last_accuracy=row["last_accuracy"],
            outside_streak=row["outside_streak"],
            inside_streak=row["inside_streak"],
            zone_state=row["zone_state"],
            zone_episode_id=row["zone_episode_id"],
            signal_episode_id=row["signal_episode_id"],
            signal_kind=row["signal_kind"],
            last_kept_fix_at=row["last_kept_fix_at"],
        )


@dataclass(frozen=True)
class _Before:
    """What a case's state was before one fix, for deciding whether to store the fix."""

    events: int
    implausible: int
    live_message_id: int | None
    last_fix_at: datetime | None
    away: bool

    @classmethod
    def of(cls, state: _State, events: int, implausible: int) -> _Before:
        return cls(
            events,
            implausible,
            state.live_message_id,
            state.last_fix_at,
            state.zone_state != "home" or state.outside_streak > 0 or state.inside_streak > 0,
        )


@dataclass(frozen=True)
class _Event:
    state: _State
    what: str  # "open", "close", "propose_home", "sharing_stopped"
    kind: str
    at: datetime
    distance: float | None = None


@dataclass(frozen=True)
class _Opening:
    state: _State
    kind: AlertKind
    at: datetime
    distance: float | None = None

    @property
    def family(self) -> str:
        return "zone" if self.kind in ZONE_KINDS else "signal"


def _family_of(event: _Event) -> str:
    if event.what == "open":
        return "zone" if event.kind in ZONE_KINDS else "signal"
    return "zone" if event.kind == CloseKind.BACK_HOME else "signal"


_FORGET_IF_OLD = """
local removed = 0
for i = 1, #ARGV - 1 do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])
    if score and tonumber(score) <= tonumber(ARGV[1]) then
        removed = removed + redis.call('ZREM', KEYS[1], ARGV[i + 1])
    end
end
return removed
"""

_LOCK_BY_PATIENT = f"""
SELECT {_CASE_COLUMNS} {_CASE_FROM}
 WHERE c.patient_tg_user_id = ANY($1::bigint[]) AND c.closed_at IS NULL
   AND c.consented_at IS NOT NULL
 ORDER BY c.id
   FOR UPDATE OF c
"""

_LOCK_BY_ID = f"""
SELECT {_CASE_COLUMNS} {_CASE_FROM}
 WHERE c.id = ANY($1::bigint[]) AND c.closed_at IS NULL AND c.consented_at IS NOT NULL
 ORDER BY c.id
   FOR UPDATE OF c
"""

_INSERT_FIXES = """
INSERT INTO location_fixes
    (case_id, message_id, fixed_at, latitude, longitude, accuracy, verdict, distance_m)
SELECT * FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::float8[],
                     $5::float8[], $6::real[], $7::text[], $8::real[])
ON CONFLICT DO NOTHING
RETURNING case_id, message_id, fixed_at, latitude, longitude
"""

_SAVE_STATES = """
UPDATE quarantine_cases c SET
    live_message_id = s.live_message_id, live_until = s.live_until,
    sharing_stopped_at = s.sharing_stopped_at, last_fix_at = s.last_fix_at,
    last_judged_at = s.last_judged_at, last_lat = s.last_lat, last_lon = s.last_lon,
    last_accuracy = s.last_accuracy, outside_streak = s.outside_streak,
    inside_streak = s.inside_streak, zone_state = s.zone_state,
    zone_episode_id = s.zone_episode_id, signal_episode_id = s.signal_episode_id,
    home_lat = s.home_lat, home_lon = s.home_lon, last_kept_fix_at = s.last_kept_fix_at,
    home_source = CASE WHEN s.home_lat IS NOT NULL AND c.home_source IS NULL
                       THEN 'patient' ELSE c.home_source END
FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::timestamptz[],
            $5::timestamptz[], $6::timestamptz[], $7::float8[], $8::float8[], $9::real[],
            $10::smallint[], $11::smallint[], $12::text[], $13::bigint[], $14::bigint[],
            $15::float8[], $16::float8[], $17::timestamptz[])
  AS s(id, live_message_id, live_until, sharing_stopped_at, last_fix_at, last_judged_at,
       last_lat, last_lon, last_accuracy, outside_streak, inside_streak, zone_state,
       zone_episode_id, signal_episode_id, home_lat, home_lon, last_kept_fix_at)
WHERE c.id = s.id
"""


class QuarantineService:
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
        self.escalate_after = escalate_after
        self.sample_every = sample_every
        """At home, one fix per this period is stored; zero stores every fix."""

    # ------------------------------------------------------------------ doctors

    async def create_doctor_invite(
        self, district: str, *, on_duty: bool = False, created_by: str
    ) -> str:
        district = district.strip()
        if not district:
            raise QuarantineError("doctor.district_required")
        token = "doc_" + secrets.token_urlsafe(16)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO doctor_invites (token, district, on_duty, created_by, expires_at) "
                "VALUES ($1, $2, $3, $4, now() + $5::interval)",
                token,
                district,
                on_duty,
                created_by,
                DOCTOR_INVITE_TTL,
            )
            await record(
                conn, actor=created_by, action="doctor.invite", details={"district": district}
            )
        return token

    async def join_as_doctor(self, token: str, tg_user_id: int, name: str) -> Doctor:
        """Become a doctor by an admin's invite: each works once, for a week."""
        async with self.pool.acquire() as conn, conn.transaction():
            invite = await conn.fetchrow(
                "UPDATE doctor_invites SET used_by = $2, used_at = now() "
                "WHERE token = $1 AND used_by IS NULL AND expires_at > now() "
                "RETURNING district, on_duty",
                token,
                tg_user_id,
            )
            if invite is None:
                raise QuarantineError("doctor.invite_invalid")
            row = await conn.fetchrow(
                "INSERT INTO doctors (tg_user_id, full_name, district, on_duty, joined_at) "
                "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (tg_user_id) DO UPDATE "
                "SET district = EXCLUDED.district, on_duty = EXCLUDED.on_duty "
                "RETURNING id, tg_user_id, district, on_duty",
                tg_user_id,
                name[:100],
                invite["district"],
                invite["on_duty"],
            )
            await record(conn, actor=f"tg:{tg_user_id}", action="doctor.join")
        assert row is not None
        return Doctor(row["id"], row["tg_user_id"], row["district"], row["on_duty"])

    async def doctor(self, tg_user_id: int) -> Doctor | None:
        row = await self.pool.fetchrow(
            "SELECT id, tg_user_id, district, on_duty FROM doctors WHERE tg_user_id = $1",
            tg_user_id,
        )
        if row is None:
            return None
        return Doctor(row["id"], row["tg_user_id"], row["district"], row["on_duty"])

    # -------------------------------------------------------------- enrolment

    async def enrol(
        self,
        doctor_tg_user_id: int,
        *,
        isolation_end: date,
        home: Coordinates | None = None,
        iin: str | None = None,
    ) -> Case:
        """A doctor puts a patient under home quarantine: a case code and a one-use invite."""
        doctor = await self.doctor(doctor_tg_user_id)
        if doctor is None:
            raise QuarantineError("doctor.not_a_doctor")
        for _ in range(10):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    case_id = await conn.fetchval(
                        "INSERT INTO quarantine_cases (code, doctor_id, district, iin, "
                        "isolation_end, invite_token, home_lat, home_lon, home_source, "
                        "home_confirmed_at, zone_state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                        "CASE WHEN $7::float8 IS NULL THEN NULL ELSE 'doctor' END, "
                        "CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() END, 'unknown') "
                        "RETURNING id",
                        new_code(),
                        doctor.id,
                        doctor.district,
                        iin,
                        isolation_end,
                        "q_" + secrets.token_urlsafe(12),
                        home.latitude if home else None,
                        home.longitude if home else None,
                    )
                    await record(
                        conn,
                        actor=f"tg:{doctor_tg_user_id}",
                        action="quarantine.enrol",
                        subject=f"case:{case_id}",
                    )
                break
            except asyncpg.UniqueViolationError:  # a code already taken: draw again
                continue
        else:
            raise RuntimeError("could not draw a free case code")
        return await self._existing(case_id)

    async def _case_after(self, row: asyncpg.Record | None, refusal: str) -> Case:
        """The case a statement returned the id of, or the refusal when it returned none."""
        if row is None:
            raise QuarantineError(refusal)
        return await self._existing(row["id"])

    async def _existing(self, case_id: int) -> Case:
        """A case that was just written, so it exists."""
        case = await self.case(case_id)
        assert case is not None
        return case

    async def case(self, case_id: int) -> Case | None:
        row = await self.pool.fetchrow(
            f"SELECT {_CASE_COLUMNS} {_CASE_FROM} WHERE c.id = $1", case_id
        )
        return _case(row) if row else None

    async def case_by_invite(self, token: str) -> Case:
        row = await self.pool.fetchrow(
            f"SELECT {_CASE_COLUMNS} {_CASE_FROM} WHERE c.invite_token = $1", token
        )
        if row is None:
            raise QuarantineError("quarantine.invite_invalid")
        case = _case(row)
        if case.closed:
            raise QuarantineError("quarantine.case_closed")
        return case

    async def case_of_patient(self, tg_user_id: int) -> Case | None:
        row = await self.pool.fetchrow(
            f"SELECT {_CASE_COLUMNS} {_CASE_FROM} "
            "WHERE c.patient_tg_user_id = $1 AND c.closed_at IS NULL",
            tg_user_id,
        )
        return _case(row) if row else None

    async def consent(self, token: str, tg_user_id: int) -> Case:
        """The patient agrees: the invite becomes theirs (and nobody else's)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE quarantine_cases SET patient_tg_user_id = $2, "
                    "consented_at = coalesce(consented_at, now()), declined_at = NULL "
                    "WHERE invite_token = $1 AND closed_at IS NULL "
                    "AND (patient_tg_user_id IS NULL OR patient_tg_user_id = $2) "
                    "RETURNING id, consented_at",
                    token,
                    tg_user_id,
                )
                if row is None:
                    raise QuarantineError("quarantine.invite_invalid")
                case_id, consented_at = row["id"], row["consented_at"]
                await record(
                    conn,
                    actor=f"tg:{tg_user_id}",
                    action="quarantine.consent",
                    subject=f"case:{case_id}",
                )
        except asyncpg.UniqueViolationError:
            raise QuarantineError("quarantine.already_in_case") from None
        # Silence is counted from consent: no location at all for 15 minutes is an alert.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(SEEN, {str(case_id): _epoch(consented_at)}, nx=True)
            pipe.zadd(JUDGED, {str(case_id): _epoch(consented_at)}, nx=True)
            await pipe.execute()
        return await self._existing(case_id)

    async def decline(self, token: str, tg_user_id: int) -> Case:
        """The patient does not agree; the doctor is told, nothing is tracked."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE quarantine_cases c SET declined_at = now() FROM doctors d "
                "WHERE c.invite_token = $1 AND c.closed_at IS NULL AND c.consented_at IS NULL "
                "AND d.id = c.doctor_id RETURNING c.id, c.code, d.tg_user_id",
                token,
            )
            if row is None:
                raise QuarantineError("quarantine.invite_invalid")
            await enqueue(
                conn,
                bot="doctor",
                chat_id=row["tg_user_id"],
                kind="quarantine_declined",
                params={"code": row["code"]},
                dedupe_key=f"qdecline:{row['id']}:{tg_user_id}",
            )
        return await self._existing(row["id"])

    async def set_phone(self, tg_user_id: int, phone: str) -> None:
        await self.pool.execute(
            "UPDATE quarantine_cases SET phone = $2 "
            "WHERE patient_tg_user_id = $1 AND closed_at IS NULL",
            tg_user_id,
            phone,
        )

    async def confirm_home(self, tg_user_id: int) -> Case:
        """The patient confirms the proposed home point; the 30 m rule applies from now."""
        row = await self.pool.fetchrow(
            "UPDATE quarantine_cases SET home_confirmed_at = now(), zone_state = 'home', "
            "outside_streak = 0, inside_streak = 0 "
            "WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
            "AND home_lat IS NOT NULL AND home_confirmed_at IS NULL RETURNING id",
            tg_user_id,
        )
        if row is None:
            case = await self.case_of_patient(tg_user_id)
            if case is not None and case.home_confirmed:
                return case  # pressed twice: nothing more to do
        return await self._case_after(row, "quarantine.no_home_yet")

    async def reject_home(self, tg_user_id: int) -> None:
        """Not at home now: forget the proposal until the patient says "I'm home"."""
        await self.pool.execute(
            "UPDATE quarantine_cases SET home_lat = NULL, home_lon = NULL, home_source = NULL, "
            "home_rejected_at = now() WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
            "AND home_confirmed_at IS NULL",
            tg_user_id,
        )

    async def home_here(self, tg_user_id: int, *, now: datetime) -> Case:
        """ "I'm home now": the latest precise fix (under 5 minutes old) becomes home."""
        row = await self.pool.fetchrow(
            "UPDATE quarantine_cases SET home_lat = last_lat, home_lon = last_lon, "
            "home_source = 'patient', home_confirmed_at = now(), zone_state = 'home', "
            "outside_streak = 0, inside_streak = 0 "
            "WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
            "AND home_confirmed_at IS NULL AND last_lat IS NOT NULL "
            "AND last_judged_at > $2::timestamptz - interval '5 minutes' RETURNING id",
            tg_user_id,
            now,
        )
        return await self._case_after(row, "quarantine.no_recent_fix")

    # ----------------------------------------------------------------- fixes

    async def ingest(self, fixes: Sequence[Fix]) -> IngestReport:
        """Take in a batch of fixes and apply the new ones to their cases, in one transaction:
        a duplicate adds nothing, an older fix than the case has seen is kept but does not
        move the state, alerts and patients' notices go to the outbox with the change.

        Every new fix moves the case's state; only those that change or could change a
        decision are stored as rows (see :meth:`_worth_keeping`): at home, one per
        ``sample_every``."""
        report = IngestReport()
        good: dict[tuple[int, int, datetime, float, float], Fix] = {}
        for fix in fixes:
            if not validate_fix(fix):
                report.invalid += 1
                continue
            key = (fix.tg_user_id, fix.message_id, fix.at, fix.latitude, fix.longitude)
            if key in good:
                report.duplicate += 1
            good[key] = fix
        if not good:
            return report
        users = sorted({f.tg_user_id for f in good.values()})
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_BY_PATIENT, users)
            states = {r["patient_tg_user_id"]: _State.from_row(r) for r in rows}
            batch = [f for f in good.values() if f.tg_user_id in states]
            report.stranger += len(good) - len(batch)
            if not batch:
                return report
            verdicts, distances = self._judge_all(batch, states)
            # A fix newer than anything the case has seen is new by construction. An older
            # one is new only if it is not stored yet, or, within the stretch whose fixes
            # at home were sampled out, not a fix the case has already seen.
            fresh: set[int] = set()
            older: list[int] = []
            for i, fix in enumerate(batch):
                state = states[fix.tg_user_id]
                if state.last_fix_at is None or fix.at > state.last_fix_at:
                    fresh.add(i)
                elif self._seen_unkept(state, fix, verdicts[i]):
                    report.duplicate += 1
                else:
                    older.append(i)
            new = await self._store(
                conn, [(batch[i], states, verdicts[i], distances[i]) for i in older]
            )
            report.duplicate += len(older) - len(new)
            events: list[_Event] = []
            touched: dict[int, _State] = {}
            keep: list[int] = []
            order = sorted(range(len(batch)), key=lambda i: (batch[i].tg_user_id, batch[i].at))
            for i in order:
                fix = batch[i]
                state = states[fix.tg_user_id]
                if i in fresh:
                    before = _Before.of(state, len(events), report.implausible)
                    self._apply(state, fix, verdicts[i], distances[i], events, report)
                    if self._worth_keeping(before, state, fix, verdicts[i], events, report):
                        keep.append(i)
                        state.last_kept_fix_at = fix.at
                    else:
                        report.sampled += 1
                elif (state.id, fix.message_id, fix.at, fix.latitude, fix.longitude) in new:
                    self._apply(state, fix, verdicts[i], distances[i], events, report)
                else:
                    continue
                report.stored += 1
                touched[state.id] = state
            await self._store(conn, [(batch[i], states, verdicts[i], distances[i]) for i in keep])
            await self._emit(conn, events, report)
            if touched:
                await self._save(conn, touched.values())
        await self._index(touched.values())
        return report

    @staticmethod
    def _seen_unkept(state: _State, fix: Fix, verdict: str) -> bool:
        """Is this fix, not newer than the case's last, one it took in without storing?
        Only fixes at home of the running live message after the last stored fix are
        left unstored, and that message's edits reach the bot in order, so such a fix is
        a repeated delivery."""
        return (
            verdict == Verdict.HOME
            and fix.message_id == state.live_message_id
            and state.last_kept_fix_at is not None
            and fix.at > state.last_kept_fix_at
        )

    def _worth_keeping(
        self,
        before: _Before,
        state: _State,
        fix: Fix,
        verdict: str,
        events: list[_Event],
        report: IngestReport,
    ) -> bool:
        """Store a fix that changes or could change a decision (outside, poor, unjudged,
        a glitch, the first of a live message or after a gap, any alert or notice it
        caused, any fix while away or in a run of fixes outside) and, at home, one per
        sample period; the others only moved the last-seen state."""
        period = self.sample_every
        return (
            period <= timedelta(0)
            or verdict != Verdict.HOME
            or fix.stopped
            or not state.home_confirmed
            or report.implausible != before.implausible
            or len(events) != before.events
            or fix.message_id != before.live_message_id
            or before.away
            or state.zone_state != "home"
            or state.outside_streak > 0
            or state.inside_streak > 0
            or before.last_fix_at is None
            or fix.at - before.last_fix_at >= period
            or state.last_kept_fix_at is None
            or fix.at - state.last_kept_fix_at >= period
        )

    @staticmethod
    async def _store(
        conn: Connection,
        rows: list[tuple[Fix, dict[int, _State], str, float | None]],
    ) -> set[tuple[int, int, datetime, float, float]]:
        """Insert fixes; returns the keys of those not stored before."""
        if not rows:
            return set()
        inserted = await conn.fetch(
            _INSERT_FIXES,
            [states[f.tg_user_id].id for f, states, _, _ in rows],
            [f.message_id for f, _, _, _ in rows],
            [f.at for f, _, _, _ in rows],
            [f.latitude for f, _, _, _ in rows],
            [f.longitude for f, _, _, _ in rows],
            [f.accuracy for f, _, _, _ in rows],
            [verdict for _, _, verdict, _ in rows],
            [distance for _, _, _, distance in rows],
        )
        return {
            (r["case_id"], r["message_id"], r["fixed_at"], r["latitude"], r["longitude"])
            for r in inserted
        }

    @staticmethod
    def _judge_all(
        batch: Sequence[Fix], states: dict[int, _State]
    ) -> tuple[list[str], list[float | None]]:
        """Each fix's verdict against its case's home, the distances in one numpy pass."""
        homes = [states[f.tg_user_id] for f in batch]
        has_home = np.array([s.home_lat is not None for s in homes])
        lat = np.array([f.latitude for f in batch])
        lon = np.array([f.longitude for f in batch])
        home_lat = np.array([s.home_lat if s.home_lat is not None else 0.0 for s in homes])
        home_lon = np.array([s.home_lon if s.home_lon is not None else 0.0 for s in homes])
        metres = distances_m(home_lat, home_lon, lat, lon)
        verdicts: list[str] = []
        distances: list[float | None] = []
        for fix, home_known, metres_away in zip(
            batch, has_home.tolist(), metres.tolist(), strict=True
        ):
            if home_known:
                verdicts.append(judge(metres_away, fix.accuracy).value)
                distances.append(metres_away)
            else:
                poor = fix.accuracy is not None and fix.accuracy > MAX_USABLE_ACCURACY_M
                verdicts.append(Verdict.POOR.value if poor else "unjudged")
                distances.append(None)
        return verdicts, distances

    def _apply(
        self,
        state: _State,
        fix: Fix,
        verdict: str,
        distance: float | None,
        events: list[_Event],
        report: IngestReport,
    ) -> None:
        """One new fix, in time order, through the case's state machine."""
        if state.last_fix_at is not None and fix.at < state.last_fix_at:
            report.stale += 1  # kept in the track; the state has seen later news
            return
        if fix.stopped:
            if state.live_message_id not in (None, fix.message_id):
                return  # the end of an earlier share, not of the one running now
            if state.sharing_stopped_at is None:
                state.sharing_stopped_at = fix.at
                events.append(_Event(state, "sharing_stopped", "", fix.at))
            return
        if fix.live_until is not None and (
            state.live_until != fix.live_until or state.live_message_id != fix.message_id
        ):
            state.live_message_id = fix.message_id
            state.live_until = fix.live_until
            state.live_changed = True
        state.sharing_stopped_at = None
        if state.last_lat is not None and state.last_lon is not None and state.last_judged_at:
            # Measured from the last believed position and its time: a jump stays
            # implausible only until a person could have covered it (100 m/s).
            moved = distance_m(state.last_lat, state.last_lon, fix.latitude, fix.longitude)
            seconds = (fix.at - state.last_judged_at).total_seconds()
            if not plausible_move(moved, seconds, fix.accuracy, state.last_accuracy):
                report.implausible += 1
                state.last_fix_at = fix.at  # the phone is alive, the point is not believed
                state.seen_changed = True
                return
        state.last_fix_at = fix.at
        state.seen_changed = True
        if state.signal_episode_id is not None and state.signal_kind != AlertKind.INACCURATE:
            events.append(_Event(state, "close", CloseKind.SIGNAL_BACK, fix.at))
            state.signal_episode_id = None
            state.signal_kind = None
        if verdict == Verdict.POOR:
            state.poor_seen = True
            return
        state.last_judged_at = fix.at
        state.judged_changed = True
        state.last_lat, state.last_lon, state.last_accuracy = (
            fix.latitude,
            fix.longitude,
            fix.accuracy,
        )
        if state.signal_kind == AlertKind.INACCURATE:
            events.append(_Event(state, "close", CloseKind.SIGNAL_BACK, fix.at))
            state.signal_episode_id = None
            state.signal_kind = None
        if state.home_lat is None:
            if not state.home_rejected:
                state.home_lat, state.home_lon = fix.latitude, fix.longitude
                events.append(_Event(state, "propose_home", "", fix.at, fix.accuracy))
            return
        if not state.home_confirmed:
            return
        if distance is None:
            return
        watch, change = HomeWatch(
            state.zone_state == "outside", state.outside_streak, state.inside_streak
        ).after(distance, fix.accuracy)
        state.zone_state = "outside" if watch.away else "home"
        state.outside_streak, state.inside_streak = watch.outside_run, watch.inside_run
        if change is Change.LEFT:
            events.append(_Event(state, "open", AlertKind.LEFT_HOME, fix.at, distance))
        elif change is Change.BACK:
            events.append(_Event(state, "close", CloseKind.BACK_HOME, fix.at, distance))
            state.zone_episode_id = None

    async def _emit(self, conn: Connection, events: list[_Event], report: IngestReport) -> None:
        """Write what the state changes mean: episodes and the messages about them, a few
        statements per batch whatever its size. Events are taken in rounds in which each
        case's episode family appears once, so that "left, back, left again" within one
        batch still opens, closes and opens in that order."""
        notices: list[Queued] = []
        opens: list[_Opening] = []
        closes: list[_Event] = []
        in_round: set[tuple[int, str]] = set()

        async def flush() -> None:
            closed = await self._close_episodes(conn, closes)
            report.closed += closed
            opened = await self._open_episodes(conn, opens)
            report.opened += [o.kind.value for o in opened]
            closes.clear()
            opens.clear()
            in_round.clear()

        for event in events:
            state = event.state
            if event.what in ("open", "close"):
                family = _family_of(event)
                if (state.id, family) in in_round:
                    await flush()
                in_round.add((state.id, family))
                if event.what == "open":
                    opens.append(_Opening(state, AlertKind(event.kind), event.at, event.distance))
                else:
                    closes.append(event)
            elif event.what == "propose_home":
                report.home_proposed.append(state.id)
                accuracy = None if event.distance is None else round(event.distance)
                notices.append(
                    Queued(
                        "quarantine",
                        state.patient_chat,
                        "quarantine_confirm_home",
                        {"accuracy": accuracy},
                        f"qhome:{state.id}:{event.at.isoformat()}",
                    )
                )
            elif event.what == "sharing_stopped":
                notices.append(
                    Queued(
                        "quarantine",
                        state.patient_chat,
                        "quarantine_patient",
                        {"kind": "sharing_stopped"},
                        f"qstop:{state.id}:{event.at.isoformat()}",
                    )
                )
        await flush()
        await enqueue_many(conn, notices)

    async def _open_episodes(self, conn: Connection, opens: list[_Opening]) -> list[_Opening]:
        """Open episodes (one of each family per case at a time: a family already open
        is left as it is) and queue the doctor's alert and the patient's notice."""
        if not opens:
            return []
        rows = await conn.fetch(
            "INSERT INTO quarantine_episodes (case_id, family, kind, opened_at, distance_m) "
            "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], "
            "$5::real[]) ON CONFLICT (case_id, family) WHERE closed_at IS NULL DO NOTHING "
            "RETURNING id, case_id, family",
            [o.state.id for o in opens],
            [o.family for o in opens],
            [o.kind.value for o in opens],
            [o.at for o in opens],
            [o.distance for o in opens],
        )
        ids = {(r["case_id"], r["family"]): r["id"] for r in rows}
        opened: list[_Opening] = []
        messages: list[Queued] = []
        for opening in opens:
            episode_id = ids.get((opening.state.id, opening.family))
            if episode_id is None:
                continue
            state = opening.state
            if opening.family == "zone":
                state.zone_episode_id = episode_id
            else:
                state.signal_episode_id = episode_id
                state.signal_kind = opening.kind.value
            view = EpisodeView(
                episode_id,
                state.code,
                opening.kind.value,
                opening.at,
                opening.distance,
                state.phone,
                None,
                False,
                False,
                False,
                False,
            )
            params = view.params()
            messages.append(
                Queued(
                    "doctor", state.doctor_chat, "quarantine_alert", params, f"qalert:{episode_id}"
                )
            )
            messages.append(
                Queued(
                    "quarantine",
                    state.patient_chat,
                    "quarantine_patient",
                    {"kind": opening.kind.value, "distance": params["distance"]},
                    f"qpatient:{episode_id}",
                )
            )
            opened.append(opening)
        await enqueue_many(conn, messages)
        return opened

    async def _close_episodes(self, conn: Connection, closes: list[_Event]) -> list[str]:
        """End open episodes (back home, signal back) and tell the doctor and the patient."""
        if not closes:
            return []
        rows = await conn.fetch(
            "UPDATE quarantine_episodes e SET closed_at = s.at, close_kind = s.how "
            "FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) "
            "AS s(case_id, family, at, how) "
            "WHERE e.case_id = s.case_id AND e.family = s.family AND e.closed_at IS NULL "
            "RETURNING e.id, e.case_id, e.kind, s.how, s.at",
            [e.state.id for e in closes],
            [_family_of(e) for e in closes],
            [e.at for e in closes],
            [e.kind for e in closes],
        )
        states = {e.state.id: e.state for e in closes}
        messages: list[Queued] = []
        for row in rows:
            state = states[row["case_id"]]
            if state.zone_episode_id == row["id"]:
                state.zone_episode_id = None
            if state.signal_episode_id == row["id"]:
                state.signal_episode_id = None
                state.signal_kind = None
            messages.append(
                Queued(
                    "doctor",
                    state.doctor_chat,
                    "quarantine_closed",
                    {
                        "code": state.code,
                        "kind": row["how"],
                        "at": row["at"].isoformat(),
                        "opened_kind": row["kind"],
                    },
                    f"qclosed:{row['id']}",
                )
            )
            messages.append(
                Queued(
                    "quarantine",
                    state.patient_chat,
                    "quarantine_patient",
                    {"kind": row["how"]},
                    f"qpatient:{row['id']}:closed",
                )
            )
        await enqueue_many(conn, messages)
        return [row["how"] for row in rows]

    async def _save(self, conn: Connection, states: Iterable[_State]) -> None:
        states = list(states)
        await conn.execute(
            _SAVE_STATES,
            [s.id for s in states],
            [s.live_message_id for s in states],
            [s.live_until for s in states],
            [s.sharing_stopped_at for s in states],
            [s.last_fix_at for s in states],
            [s.last_judged_at for s in states],
            [s.last_lat for s in states],
            [s.last_lon for s in states],
            [s.last_accuracy for s in states],
            [s.outside_streak for s in states],
            [s.inside_streak for s in states],
            [s.zone_state for s in states],
            [s.zone_episode_id for s in states],
            [s.signal_episode_id for s in states],
            [s.home_lat for s in states],
            [s.home_lon for s in states],
            [s.last_kept_fix_at for s in states],
        )

    async def _index(self, states: Iterable[_State]) -> None:
        """After the commit: the sorted sets learn the new times (only ever forward)."""
        seen: dict[str, float] = {}
        judged: dict[str, float] = {}
        poor: dict[str, float] = {}
        live: dict[str, float] = {}
        for s in states:
            member = str(s.id)
            if s.seen_changed and s.last_fix_at is not None:
                seen[member] = _epoch(s.last_fix_at)
            if s.judged_changed and s.last_judged_at is not None:
                judged[member] = _epoch(s.last_judged_at)
            elif s.poor_seen and s.last_fix_at is not None:
                poor[member] = _epoch(s.last_fix_at)
            if s.live_changed and s.live_until is not None:
                live[member] = _epoch(s.live_until)
        if not (seen or judged or poor or live):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            if seen:
                pipe.zadd(SEEN, seen, gt=True)
                pipe.zadd(SEEN, seen, nx=True)
            if judged:
                pipe.zadd(JUDGED, judged, gt=True)
                pipe.zadd(JUDGED, judged, nx=True)
            if poor:
                pipe.zadd(JUDGED, poor, nx=True)
            if live:
                pipe.zadd(LIVE, live)
            await pipe.execute()

    # ---------------------------------------------------------------- the sweep

    async def sweep(self, now: datetime) -> SweepReport:
        """Open signal episodes for cases silent (or only vaguely located) for 15 minutes,
        and remind patients whose live period is about to end. Reads only what is due and
        writes it in a few statements, however many cases are due."""
        cutoff = _epoch(now - SILENCE)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(SEEN, "-inf", cutoff, start=0, num=_SWEEP_BATCH)
            pipe.zrangebyscore(JUDGED, "-inf", cutoff, start=0, num=_SWEEP_BATCH)
            remind_by = _epoch(now + REMIND_BEFORE_LIVE_ENDS)
            pipe.zrangebyscore(LIVE, "-inf", remind_by, start=0, num=_SWEEP_BATCH)
            silent_raw, vague_raw, expiring_raw = await pipe.execute()
        silent = {int(m) for m in silent_raw}
        vague = {int(m) for m in vague_raw}
        expiring = {int(m) for m in expiring_raw}
        due = silent | vague | expiring
        if not due:
            return SweepReport()
        forget_seen: list[str] = []
        forget_judged: list[str] = []
        forget_live: list[str] = []
        correct_seen: dict[str, float] = {}
        opens: list[_Opening] = []
        superseded: list[_State] = []
        reminders: list[tuple[_State, datetime]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_BY_ID, sorted(due))
            gone = [str(i) for i in due - {r["id"] for r in rows}]  # closed: stop watching
            for row in rows:
                state = _State.from_row(row)
                member = str(state.id)
                consented_at: datetime = row["consented_at"]
                reference = state.last_fix_at or consented_at
                if state.id in silent:
                    if reference > now - SILENCE:
                        correct_seen[member] = _epoch(reference)  # the index was behind
                    else:
                        if state.signal_kind == AlertKind.INACCURATE:
                            superseded.append(state)  # vague, and now nothing at all
                        if state.signal_episode_id is None or state.signal_kind == (
                            AlertKind.INACCURATE
                        ):
                            kind = self._silence_kind(state)
                            opens.append(_Opening(state, kind, reference + SILENCE))
                        forget_seen.append(member)
                        forget_judged.append(member)
                elif state.id in vague:
                    judged_ref = state.last_judged_at or consented_at
                    if state.last_fix_at is None or state.last_fix_at <= now - SILENCE:
                        forget_judged.append(member)  # silent, not vague: the other rule
                    elif judged_ref <= now - SILENCE:
                        if state.signal_episode_id is None:
                            opens.append(
                                _Opening(state, AlertKind.INACCURATE, judged_ref + SILENCE)
                            )
                        forget_judged.append(member)
                if state.id in expiring:
                    until = state.live_until
                    if until is None or until <= now:
                        forget_live.append(member)
                    elif row["live_reminded_for"] != until:
                        reminders.append((state, until))
            if superseded:
                await conn.execute(
                    "UPDATE quarantine_episodes SET closed_at = $2, close_kind = 'superseded' "
                    "WHERE id = ANY($1::bigint[])",
                    [state.signal_episode_id for state in superseded],
                    now,
                )
            opened = await self._open_episodes(conn, opens)
            if opened:
                await conn.execute(
                    "UPDATE quarantine_cases c SET signal_episode_id = s.episode "
                    "FROM unnest($1::bigint[], $2::bigint[]) AS s(id, episode) WHERE c.id = s.id",
                    [o.state.id for o in opened],
                    [o.state.signal_episode_id for o in opened],
                )
            await self._remind(conn, reminders)
        # Only what is still as old as the sweep saw it: a fix that arrived since (and
        # closed what this sweep opened) keeps its case watched.
        async with self.redis.pipeline(transaction=False) as pipe:
            if forget_seen:
                pipe.eval(_FORGET_IF_OLD, 1, SEEN, cutoff, *forget_seen)
            if forget_judged:
                pipe.eval(_FORGET_IF_OLD, 1, JUDGED, cutoff, *forget_judged)
            if forget_live:
                pipe.eval(_FORGET_IF_OLD, 1, LIVE, _epoch(now), *forget_live)
            if gone:
                pipe.zrem(SEEN, *gone)
                pipe.zrem(JUDGED, *gone)
                pipe.zrem(LIVE, *gone)
            if correct_seen:
                pipe.zadd(SEEN, correct_seen, gt=True)
            await pipe.execute()
        late = tuple((now - o.at).total_seconds() for o in opened)
        return SweepReport(len(due), len(opened), len(reminders), late)

    async def _remind(self, conn: Connection, reminders: list[tuple[_State, datetime]]) -> None:
        """The live period ends within minutes: ask the patient to share again now."""
        if not reminders:
            return
        await conn.execute(
            "UPDATE quarantine_cases SET live_reminded_for = live_until "
            "WHERE id = ANY($1::bigint[])",
            [state.id for state, _ in reminders],
        )
        await enqueue_many(
            conn,
            [
                Queued(
                    "quarantine",
                    state.patient_chat,
                    "quarantine_live_ending",
                    {"until": until.isoformat()},
                    f"qlive:{state.id}:{until.isoformat()}",
                )
                for state, until in reminders
            ],
        )

    @staticmethod
    def _silence_kind(state: _State) -> AlertKind:
        """Why nothing arrives, as far as Telegram lets us tell."""
        if state.last_fix_at is None:
            return AlertKind.NO_FIX
        if state.sharing_stopped_at is not None:
            return AlertKind.SHARING_STOPPED
        if state.live_until is not None and state.live_until <= state.last_fix_at + SILENCE:
            return AlertKind.LIVE_ENDED
        return AlertKind.SIGNAL_LOST

    async def patient_left_chat(self, tg_user_id: int, at: datetime) -> bool:
        """The patient blocked the bot: no location will come; the doctor must call."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_BY_PATIENT, [tg_user_id])
            if not rows:
                return False
            state = _State.from_row(rows[0])
            if state.signal_episode_id is not None:
                await conn.execute(
                    "UPDATE quarantine_episodes SET closed_at = $2, close_kind = 'superseded' "
                    "WHERE id = $1",
                    state.signal_episode_id,
                    at,
                )
                state.signal_episode_id = None
            opened = await self._open_episodes(conn, [_Opening(state, AlertKind.LEFT_CHAT, at)])
            await self._save(conn, [state])
        await self.redis.zrem(SEEN, str(state.id))
        return bool(opened)

    async def ensure_index(self) -> int | None:
        """Rebuild the sorted sets when Redis has lost them (a restart without its data,
        a flush): the marker goes with them, and is set again only once the sets are
        whole. Returns how many cases were put back, or None when nothing was lost."""
        if await self.redis.exists(INDEXED):
            return None
        watched = await self.rebuild_index()  # twice at once is harmless: the same scores
        await self.redis.set(INDEXED, "1")
        return watched

    async def rebuild_index(self) -> int:
        """Fill the sorted sets from PostgreSQL (after Redis lost them)."""
        rows = await self.pool.fetch(
            "SELECT id, coalesce(last_fix_at, consented_at) AS seen, "
            "coalesce(last_judged_at, consented_at) AS judged, live_until, signal_episode_id "
            "FROM quarantine_cases WHERE closed_at IS NULL AND consented_at IS NOT NULL"
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(rows), 10_000):
                chunk = rows[start : start + 10_000]
                watching = {
                    str(r["id"]): _epoch(r["seen"])
                    for r in chunk
                    if r["signal_episode_id"] is None
                }
                if watching:
                    pipe.zadd(SEEN, watching)
                    pipe.zadd(
                        JUDGED,
                        {
                            str(r["id"]): _epoch(r["judged"])
                            for r in chunk
                            if r["signal_episode_id"] is None
                        },
                    )
                live = {str(r["id"]): _epoch(r["live_until"]) for r in chunk if r["live_until"]}
                if live:
                    pipe.zadd(LIVE, live)
            await pipe.execute()
        return len(rows)

    # ------------------------------------------------------------- escalation

    async def escalate(self, now: datetime) -> int:
        """Alerts nobody acknowledged in time go to the district's duty list."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT e.id, e.kind, e.opened_at, e.distance_m, c.code, c.phone, c.district, "
                "c.doctor_id, d.tg_user_id AS doctor_chat FROM quarantine_episodes e "
                "JOIN quarantine_cases c ON c.id = e.case_id JOIN doctors d ON d.id = c.doctor_id "
                "WHERE e.acknowledged_at IS NULL AND e.escalated_at IS NULL "
                "AND e.closed_at IS NULL "
                "AND e.created_at <= $1::timestamptz - $2::interval "
                "ORDER BY e.created_at LIMIT 1000 FOR UPDATE OF e SKIP LOCKED",
                now,
                self.escalate_after,
            )
            if not rows:
                return 0
            on_duty: dict[str, list[tuple[int, int]]] = {}
            for doctor in await conn.fetch(
                "SELECT id, tg_user_id, district FROM doctors "
                "WHERE on_duty AND district = ANY($1::text[]) AND tg_user_id IS NOT NULL",
                list({r["district"] for r in rows}),
            ):
                on_duty.setdefault(doctor["district"], []).append(
                    (doctor["id"], doctor["tg_user_id"])
                )
            messages: list[Queued] = []
            for row in rows:
                duty = [
                    tg for id_, tg in on_duty.get(row["district"], []) if id_ != row["doctor_id"]
                ]
                if not duty:
                    log.warning(
                        "episode %d: district %r has nobody on duty; reminding the case's doctor",
                        row["id"],
                        row["district"],
                    )
                    duty = [row["doctor_chat"]]
                view = EpisodeView(
                    row["id"],
                    row["code"],
                    row["kind"],
                    row["opened_at"],
                    row["distance_m"],
                    row["phone"],
                    None,
                    False,
                    False,
                    False,
                    True,
                )
                messages += [
                    Queued(
                        "doctor",
                        tg,
                        "quarantine_escalation",
                        view.params(),
                        f"qescalate:{row['id']}:{tg}",
                    )
                    for tg in duty
                ]
            await enqueue_many(conn, messages)
            await conn.execute(
                "UPDATE quarantine_episodes SET escalated_at = $2 WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
                now,
            )
        return len(rows)

    # ------------------------------------------------------------ doctor's side

    async def act(self, episode_id: int, doctor_tg_user_id: int, action: Action) -> EpisodeView:
        """Acknowledge, note a call, or resolve: by the case's doctor or the district's
        duty list. Each is recorded with who and when."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The case row first, then the episode: the order ingest and the sweep lock
            # them in, so a press and a fix never wait for each other in a circle.
            await conn.execute(
                "SELECT 1 FROM quarantine_cases WHERE id = "
                "(SELECT case_id FROM quarantine_episodes WHERE id = $1) FOR UPDATE",
                episode_id,
            )
            row = await conn.fetchrow(
                "SELECT e.id, e.case_id, e.family, c.doctor_id, c.district, d.id AS actor_id, "
                "d.district AS actor_district, d.on_duty FROM quarantine_episodes e "
                "JOIN quarantine_cases c ON c.id = e.case_id "
                "LEFT JOIN doctors d ON d.tg_user_id = $2 WHERE e.id = $1 FOR UPDATE OF e",
                episode_id,
                doctor_tg_user_id,
            )
            if row is None:
                raise QuarantineError("doctor.alert_unknown")
            allowed = row["actor_id"] is not None and (
                row["actor_id"] == row["doctor_id"]
                or (row["on_duty"] and row["actor_district"] == row["district"])
            )
            if not allowed:
                raise QuarantineError("doctor.not_your_case")
            if action is Action.ACKNOWLEDGE:
                await conn.execute(
                    "UPDATE quarantine_episodes SET acknowledged_at = coalesce(acknowledged_at, "
                    "now()), acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
            elif action is Action.CALLED:
                await conn.execute(
                    "UPDATE quarantine_episodes SET called_at = now(), called_by = $2, "
                    "acknowledged_at = coalesce(acknowledged_at, now()), "
                    "acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
            else:
                await conn.execute(
                    "UPDATE quarantine_episodes SET resolved_at = now(), resolved_by = $2, "
                    "acknowledged_at = coalesce(acknowledged_at, now()), "
                    "acknowledged_by = coalesce(acknowledged_by, $2), "
                    "closed_at = coalesce(closed_at, now()), "
                    "close_kind = coalesce(close_kind, 'resolved') WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
                column = "zone_episode_id" if row["family"] == "zone" else "signal_episode_id"
                await conn.execute(
                    f"UPDATE quarantine_cases SET {column} = NULL "  # noqa: S608 - fixed names
                    f"WHERE id = $1 AND {column} = $2",
                    row["case_id"],
                    episode_id,
                )
            await record(
                conn,
                actor=f"tg:{doctor_tg_user_id}",
                action=f"quarantine.{action.value}",
                subject=f"episode:{episode_id}",
            )
        if action is Action.RESOLVE and row["family"] == "signal":
            # Watched again from now: still silent in 15 minutes is a new alert.
            since = {str(row["case_id"]): datetime.now(UTC).timestamp()}
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(SEEN, since, gt=True)
                pipe.zadd(JUDGED, since, gt=True)
                await pipe.execute()
        return await self.episode(episode_id)

    async def open_alerts(self, limit: int = 200) -> list[EpisodeView]:
        """Alerts not closed yet, newest first (the panel's violations list)."""
        rows = await self.pool.fetch(
            "SELECT e.*, c.code, c.phone FROM quarantine_episodes e "
            "JOIN quarantine_cases c ON c.id = e.case_id WHERE e.closed_at IS NULL "
            "ORDER BY e.opened_at DESC LIMIT $1",
            limit,
        )
        return [_episode_view(r) for r in rows]

    async def case_counts(self) -> dict[str, int]:
        """Open cases by whether they are at home, away, silent or not sharing yet."""
        rows = await self.pool.fetch(
            "SELECT CASE WHEN zone_episode_id IS NOT NULL THEN 'away' "
            "WHEN signal_episode_id IS NOT NULL THEN 'silent' "
            "WHEN consented_at IS NULL THEN 'invited' ELSE 'home' END AS state, count(*) AS n "
            "FROM quarantine_cases WHERE closed_at IS NULL GROUP BY 1"
        )
        return {r["state"]: r["n"] for r in rows}

    async def acknowledge_from_panel(self, episode_id: int, *, actor: str) -> None:
        """An epidemiologist acknowledges an alert on the panel (recorded with who)."""
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE quarantine_episodes SET acknowledged_at = coalesce(acknowledged_at, now())"
                " WHERE id = $1 RETURNING id",
                episode_id,
            )
            if done is None:
                raise QuarantineError("doctor.alert_unknown")
            await record(
                conn,
                actor=actor,
                action="quarantine.acknowledge",
                subject=f"episode:{episode_id}",
                details={"from": "panel"},
            )

    async def episode(self, episode_id: int) -> EpisodeView:
        row = await self.pool.fetchrow(
            "SELECT e.*, c.code, c.phone FROM quarantine_episodes e "
            "JOIN quarantine_cases c ON c.id = e.case_id WHERE e.id = $1",
            episode_id,
        )
        if row is None:
            raise QuarantineError("doctor.alert_unknown")
        return _episode_view(row)

    async def open_cases(self, doctor_tg_user_id: int) -> list[CaseSummary]:
        rows = await self.pool.fetch(
            f"SELECT {_CASE_COLUMNS} {_CASE_FROM} WHERE d.tg_user_id = $1 AND c.closed_at IS NULL "
            "ORDER BY (c.zone_episode_id IS NULL AND c.signal_episode_id IS NULL), c.code",
            doctor_tg_user_id,
        )
        return [_summary(r) for r in rows]

    # --------------------------------------------------------------- endings

    async def close_finished(self, today: date) -> int:
        """Close the cases whose isolation ended before ``today``: open episodes end, the
        patient is told they may stop sharing, the last position is forgotten."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE quarantine_cases c SET closed_at = now(), close_reason = 'isolation_end', "
                "last_lat = NULL, last_lon = NULL, zone_episode_id = NULL, "
                "signal_episode_id = NULL FROM doctors d "
                "WHERE d.id = c.doctor_id AND c.id IN (SELECT id FROM quarantine_cases "
                "WHERE closed_at IS NULL AND isolation_end < $1 ORDER BY id FOR UPDATE) "
                "RETURNING c.id, c.code, c.patient_tg_user_id, d.tg_user_id AS doctor",
                today,
            )
            if rows:
                await conn.execute(
                    "UPDATE quarantine_episodes SET closed_at = now(), close_kind = 'case_closed' "
                    "WHERE case_id = ANY($1::bigint[]) AND closed_at IS NULL",
                    [r["id"] for r in rows],
                )
            messages = [
                Queued(
                    "quarantine",
                    row["patient_tg_user_id"],
                    "quarantine_patient",
                    {"kind": "case_closed"},
                    f"qend:{row['id']}",
                )
                for row in rows
                if row["patient_tg_user_id"] is not None
            ]
            messages += [
                Queued(
                    "doctor",
                    row["doctor"],
                    "quarantine_case_closed",
                    {"code": row["code"]},
                    f"qend-doctor:{row['id']}",
                )
                for row in rows
            ]
            await enqueue_many(conn, messages)
        if rows:
            members = [str(r["id"]) for r in rows]
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(SEEN, *members)
                pipe.zrem(JUDGED, *members)
                pipe.zrem(LIVE, *members)
                await pipe.execute()
        return len(rows)


def _summary(row: asyncpg.Record) -> CaseSummary:
    case = _case(row)
    if case.patient_tg_user_id is None or not case.consented:
        state = "waiting"
    elif row["signal_kind"]:
        state = "silent"
    elif case.zone_state == "outside":
        state = "outside"
    elif case.last_fix_at is None:
        state = "no_fix"
    elif not case.home_confirmed:
        state = "home_unconfirmed"
    else:
        state = "home"
    return CaseSummary(case.code, state, case.last_fix_at, case.isolation_end, case.open_kinds)
