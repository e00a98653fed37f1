"""The quarantine's vocabulary: the rule constants, the kinds of alerts, closings and
doctors' actions, and the plain values the services take and return. No I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from services.errors import Refusal
from services.validation import Coordinates

SILENCE = timedelta(minutes=15)
REMIND_BEFORE_LIVE_ENDS = timedelta(minutes=10)
DOCTOR_INVITE_TTL = timedelta(days=7)
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read out on the phone


class Row(Protocol):
    """A database row read by column name (an ``asyncpg.Record``), without asyncpg."""

    def __getitem__(self, key: str, /) -> Any: ...


class QuarantineError(Refusal):
    """A refusal with the text key that explains it to the person."""


class AlertKind(StrEnum):
    """Why an episode opened: the doctor's alert and the patient's notice are about it."""

    LEFT_HOME = "left_home"
    SIGNAL_LOST = "signal_lost"
    LIVE_ENDED = "live_ended"
    SHARING_STOPPED = "sharing_stopped"
    NO_FIX = "no_fix"
    INACCURATE = "inaccurate"
    LEFT_CHAT = "left_chat"


class CloseKind(StrEnum):
    """How an episode ended."""

    BACK_HOME = "back_home"
    SIGNAL_BACK = "signal_back"
    RESOLVED = "resolved"
    CASE_CLOSED = "case_closed"
    SUPERSEDED = "superseded"
    """A signal episode replaced by a newer one (vague, then silent; left the chat)."""


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

    @classmethod
    def unanswered(
        cls,
        episode_id: int,
        case_code: str,
        kind: str,
        opened_at: datetime,
        distance_m: float | None,
        phone: str | None,
        *,
        escalated: bool = False,
    ) -> EpisodeView:
        """An open alert nobody has acknowledged yet (as it goes out, or is escalated)."""
        return cls(
            episode_id,
            case_code,
            kind,
            opened_at,
            distance_m,
            phone,
            closed_kind=None,
            acknowledged=False,
            called=False,
            resolved=False,
            escalated=escalated,
        )

    def params(self) -> dict[str, Any]:
        return {
            "episode": self.id,
            "code": self.case_code,
            "kind": self.kind,
            "at": self.opened_at.isoformat(),
            "distance": None if self.distance_m is None else round(self.distance_m),
            "phone": self.phone,
        }


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
