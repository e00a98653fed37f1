"""The tracking state machine, free of I/O: how one fix moves a case's state (the home
zone, the signal, the live share) and which episodes open and close because of it, which
fixes are worth storing, and what the silence sweep does with a case that is due.

The services load a :class:`TrackState` per case under a row lock, run fixes through
:func:`apply_fix` in time order and write the resulting :class:`Event` list and states in
a few statements per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from geofence.distance import distance_m, distances_m
from geofence.home import MAX_USABLE_ACCURACY_M, Change, HomeWatch, Verdict, judge, plausible_move
from services.location_fixes import Fix
from services.quarantine.model import (
    SILENCE,
    ZONE_KINDS,
    AlertKind,
    CloseKind,
    IngestReport,
    Row,
)

Family = Literal["zone", "signal"]


@dataclass
class TrackState:
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
    def from_row(cls, row: Row) -> TrackState:
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
class Before:
    """What a case's state was before one fix, for deciding whether to store the fix."""

    events: int
    implausible: int
    live_message_id: int | None
    last_fix_at: datetime | None
    away: bool

    @classmethod
    def of(cls, state: TrackState, events: int, implausible: int) -> Before:
        return cls(
            events,
            implausible,
            state.live_message_id,
            state.last_fix_at,
            state.zone_state != "home" or state.outside_streak > 0 or state.inside_streak > 0,
        )


@dataclass(frozen=True)
class Event:
    """A change a fix caused: an episode to open (``kind`` an :class:`AlertKind`) or to
    close (``kind`` a :class:`CloseKind`), a home point to propose (``distance`` then
    holds the fix's accuracy), or the live share stopped."""

    state: TrackState
    what: Literal["open", "close", "propose_home", "sharing_stopped"]
    kind: str
    at: datetime
    distance: float | None = None


@dataclass(frozen=True)
class Opening:
    state: TrackState
    kind: AlertKind
    at: datetime
    distance: float | None = None

    @property
    def family(self) -> Family:
        return "zone" if self.kind in ZONE_KINDS else "signal"


def family_of(event: Event) -> Family:
    """The episode family an open or close event is about: one of each is open at most."""
    if event.what == "open":
        return "zone" if event.kind in ZONE_KINDS else "signal"
    return "zone" if event.kind == CloseKind.BACK_HOME else "signal"


def judge_all(
    batch: Sequence[Fix], states: dict[int, TrackState]
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


def apply_fix(
    state: TrackState,
    fix: Fix,
    verdict: str,
    distance: float | None,
    events: list[Event],
    report: IngestReport,
) -> None:
    """One new fix, in time order, through the case's state machine: ``state`` moves,
    ``events`` gets what the fix opened, closed or proposed, ``report`` counts a stale or
    implausible fix."""
    if state.last_fix_at is not None and fix.at < state.last_fix_at:
        report.stale += 1  # kept in the track; the state has seen later news
        return
    if fix.stopped:
        if state.live_message_id not in (None, fix.message_id):
            return  # the end of an earlier share, not of the one running now
        if state.sharing_stopped_at is None:
            state.sharing_stopped_at = fix.at
            events.append(Event(state, "sharing_stopped", "", fix.at))
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
        events.append(Event(state, "close", CloseKind.SIGNAL_BACK, fix.at))
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
        events.append(Event(state, "close", CloseKind.SIGNAL_BACK, fix.at))
        state.signal_episode_id = None
        state.signal_kind = None
    if state.home_lat is None:
        if not state.home_rejected:
            state.home_lat, state.home_lon = fix.latitude, fix.longitude
            events.append(Event(state, "propose_home", "", fix.at, fix.accuracy))
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
        events.append(Event(state, "open", AlertKind.LEFT_HOME, fix.at, distance))
    elif change is Change.BACK:
        events.append(Event(state, "close", CloseKind.BACK_HOME, fix.at, distance))
        state.zone_episode_id = None


def seen_unkept(state: TrackState, fix: Fix, verdict: str) -> bool:
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


def worth_keeping(
    period: timedelta,
    before: Before,
    state: TrackState,
    fix: Fix,
    verdict: str,
    events: list[Event],
    report: IngestReport,
) -> bool:
    """Store a fix that changes or could change a decision (outside, poor, unjudged,
    a glitch, the first of a live message or after a gap, any alert or notice it
    caused, any fix while away or in a run of fixes outside) and, at home, one per
    sample ``period``; the others only moved the last-seen state."""
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


def silence_kind(state: TrackState) -> AlertKind:
    """Why nothing arrives, as far as Telegram lets us tell."""
    if state.last_fix_at is None:
        return AlertKind.NO_FIX
    if state.sharing_stopped_at is not None:
        return AlertKind.SHARING_STOPPED
    if state.live_until is not None and state.live_until <= state.last_fix_at + SILENCE:
        return AlertKind.LIVE_ENDED
    return AlertKind.SIGNAL_LOST


@dataclass
class SweepStep:
    """What the silence sweep does with one case that one of its indexes found due."""

    opening: Opening | None = None
    supersede: bool = False
    """Close the open "inaccurate" episode: the case went from vague to silent."""
    forget_seen: bool = False
    forget_judged: bool = False
    seen_behind: datetime | None = None
    """The index was behind PostgreSQL: put this last-seen time back in it."""
    forget_live: bool = False
    remind_until: datetime | None = None
    """Remind the patient that the live share ending at this time runs out soon."""


def sweep_step(
    state: TrackState,
    now: datetime,
    *,
    consented_at: datetime,
    live_reminded_for: datetime | None,
    silent: bool,
    vague: bool,
    expiring: bool,
) -> SweepStep:
    """The silence rule for a case due in the sweep's indexes: ``silent`` (nothing
    arrived), ``vague`` (nothing precise enough to judge arrived) or ``expiring`` (its
    live period ends within minutes)."""
    step = SweepStep()
    reference = state.last_fix_at or consented_at
    if silent:
        if reference > now - SILENCE:
            step.seen_behind = reference
        else:
            step.supersede = state.signal_kind == AlertKind.INACCURATE
            if state.signal_episode_id is None or step.supersede:
                step.opening = Opening(state, silence_kind(state), reference + SILENCE)
            step.forget_seen = step.forget_judged = True
    elif vague:
        judged_ref = state.last_judged_at or consented_at
        if state.last_fix_at is None or state.last_fix_at <= now - SILENCE:
            step.forget_judged = True  # silent, not vague: the other rule
        elif judged_ref <= now - SILENCE:
            if state.signal_episode_id is None:
                step.opening = Opening(state, AlertKind.INACCURATE, judged_ref + SILENCE)
            step.forget_judged = True
    if expiring:
        until = state.live_until
        if until is None or until <= now:
            step.forget_live = True
        elif live_reminded_for != until:
            step.remind_until = until
    return step
