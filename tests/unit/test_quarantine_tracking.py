"""The quarantine's tracking state machine without I/O: each row is a case's state
before, one fix (or one sweep), and the state, episodes and counts expected after."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.location_fixes import Fix
from services.quarantine.model import SILENCE, AlertKind, CloseKind, IngestReport
from services.quarantine.tracking import (
    Before,
    TrackState,
    apply_fix,
    family_of,
    judge_all,
    silence_kind,
    sweep_step,
    worth_keeping,
)

HOME = (43.2389, 76.8897)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PATIENT = 555
LIVE_MESSAGE = 7
LIVE_UNTIL = T0 + timedelta(hours=8)


def point(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    lat, lon = HOME
    return lat + north_m / 111_132.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


def at_home(**changes: Any) -> TrackState:
    """A consented case at its confirmed home, a fix a minute ago, live share running."""
    state = TrackState(
        id=1,
        code="Q-ABCDE",
        district="Almaly",
        doctor_chat=100,
        patient_chat=PATIENT,
        phone=None,
        home_lat=HOME[0],
        home_lon=HOME[1],
        home_confirmed=True,
        home_rejected=False,
        live_message_id=LIVE_MESSAGE,
        live_until=LIVE_UNTIL,
        sharing_stopped_at=None,
        last_fix_at=T0,
        last_judged_at=T0,
        last_lat=HOME[0],
        last_lon=HOME[1],
        last_accuracy=10.0,
        outside_streak=0,
        inside_streak=0,
        zone_state="home",
        zone_episode_id=None,
        signal_episode_id=None,
        signal_kind=None,
        last_kept_fix_at=T0,
    )
    return replace(state, **changes)


def fix_at(
    north_m: float,
    *,
    seconds: float = 30,
    accuracy: float | None = 10.0,
    message_id: int = LIVE_MESSAGE,
    live_until: datetime | None = LIVE_UNTIL,
    stopped: bool = False,
) -> Fix:
    lat, lon = point(north_m)
    return Fix(
        PATIENT,
        message_id,
        T0 + timedelta(seconds=seconds),
        lat,
        lon,
        accuracy,
        live_until,
        stopped,
    )


@dataclass(frozen=True)
class Row:
    name: str
    before: TrackState
    fix: Fix
    after: dict[str, Any] = field(default_factory=dict)
    """The state's fields that must hold after the fix."""
    events: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """IngestReport counters other than zero."""


AWAY = {"zone_state": "outside", "outside_streak": 2, "zone_episode_id": 41}
SILENT = {"signal_episode_id": 42, "signal_kind": AlertKind.SIGNAL_LOST.value}
VAGUE = {"signal_episode_id": 43, "signal_kind": AlertKind.INACCURATE.value}
LATER = T0 + timedelta(seconds=30)

ROWS = [
    Row(
        "a fix older than the last one seen is stale and moves nothing",
        at_home(),
        fix_at(500, seconds=-60),
        {"last_fix_at": T0, "zone_state": "home", "seen_changed": False},
        counts={"stale": 1},
    ),
    Row(
        "a fix at home only moves the last-seen and last-judged times",
        at_home(),
        fix_at(5),
        {"last_fix_at": LATER, "last_judged_at": LATER, "seen_changed": True, "poor_seen": False},
    ),
    Row(
        "the end of the running share marks sharing stopped and tells the patient",
        at_home(),
        fix_at(0, stopped=True, live_until=None),
        {"sharing_stopped_at": LATER, "last_fix_at": T0},
        [("sharing_stopped", "")],
    ),
    Row(
        "the end of an earlier share is not the end of the running one",
        at_home(),
        fix_at(0, stopped=True, live_until=None, message_id=3),
        {"sharing_stopped_at": None},
    ),
    Row(
        "a second stop of the same share tells nobody again",
        at_home(sharing_stopped_at=T0),
        fix_at(0, stopped=True, live_until=None),
        {"sharing_stopped_at": T0},
    ),
    Row(
        "a new live message becomes the running share and clears a stop",
        at_home(sharing_stopped_at=T0),
        fix_at(0, message_id=8, live_until=T0 + timedelta(hours=1)),
        {
            "live_message_id": 8,
            "live_until": T0 + timedelta(hours=1),
            "live_changed": True,
            "sharing_stopped_at": None,
        },
    ),
    Row(
        "a jump no person could make is implausible: the phone is alive, the point ignored",
        at_home(),
        fix_at(20_000, seconds=30),
        {"last_fix_at": LATER, "last_judged_at": T0, "last_lat": HOME[0], "outside_streak": 0},
        counts={"implausible": 1},
    ),
    Row(
        "any fix after silence closes the signal episode",
        at_home(**SILENT),
        fix_at(0),
        {"signal_episode_id": None, "signal_kind": None},
        [("close", CloseKind.SIGNAL_BACK)],
    ),
    Row(
        "a fix after silence closes it even when it is too vague to judge",
        at_home(**SILENT),
        fix_at(0, accuracy=300),
        {"signal_episode_id": None, "poor_seen": True, "last_judged_at": T0},
        [("close", CloseKind.SIGNAL_BACK)],
    ),
    Row(
        "a vague fix leaves the too-inaccurate episode open",
        at_home(**VAGUE),
        fix_at(0, accuracy=300),
        {"signal_episode_id": 43, "poor_seen": True, "last_fix_at": LATER, "last_judged_at": T0},
    ),
    Row(
        "a precise fix closes the too-inaccurate episode",
        at_home(**VAGUE),
        fix_at(0, accuracy=8),
        {"signal_episode_id": None, "signal_kind": None, "last_judged_at": LATER},
        [("close", CloseKind.SIGNAL_BACK)],
    ),
    Row(
        "a vague fix is seen but not judged",
        at_home(),
        fix_at(0, accuracy=300),
        {"poor_seen": True, "judged_changed": False, "last_fix_at": LATER},
    ),
    Row(
        "the first precise fix of a case without a home is proposed as home",
        at_home(home_lat=None, home_lon=None, home_confirmed=False, last_lat=None),
        fix_at(12, accuracy=9),
        {"home_lat": point(12)[0], "zone_state": "home"},
        [("propose_home", "")],
    ),
    Row(
        "after the patient said 'not at home' no fix is proposed",
        at_home(home_lat=None, home_lon=None, home_confirmed=False, home_rejected=True),
        fix_at(12),
        {"home_lat": None},
    ),
    Row(
        "before the home is confirmed the 30 m rule does not apply",
        at_home(home_confirmed=False, last_lat=None),
        fix_at(500),
        {"outside_streak": 0, "zone_state": "home"},
    ),
    Row(
        "one fix outside starts a run but raises nothing",
        at_home(),
        fix_at(80),
        {"outside_streak": 1, "zone_state": "home"},
    ),
    Row(
        "the second fix outside in a row opens 'left home'",
        at_home(outside_streak=1),
        fix_at(80),
        {"outside_streak": 2, "zone_state": "outside"},
        [("open", AlertKind.LEFT_HOME)],
    ),
    Row(
        "a fix confidently inside while away closes 'left home'",
        at_home(**AWAY, last_lat=point(80)[0]),
        fix_at(5, accuracy=5),
        {"zone_state": "home", "outside_streak": 0, "zone_episode_id": None},
        [("close", CloseKind.BACK_HOME)],
    ),
    Row(
        "one fix within the radius but not surely inside leaves the person away",
        at_home(**AWAY, last_lat=point(80)[0]),
        fix_at(25, accuracy=20),
        {"zone_state": "outside", "inside_streak": 1, "zone_episode_id": 41},
    ),
    Row(
        "the second fix within the radius brings the person back",
        at_home(**AWAY, inside_streak=1, last_lat=point(25)[0]),
        fix_at(25, accuracy=20),
        {"zone_state": "home", "inside_streak": 0, "zone_episode_id": None},
        [("close", CloseKind.BACK_HOME)],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_one_fix_moves_the_case_as_the_table_says(row: Row) -> None:
    state = replace(row.before)
    verdicts, distances = judge_all([row.fix], {PATIENT: state})
    events: list[Any] = []
    report = IngestReport()
    apply_fix(state, row.fix, verdicts[0], distances[0], events, report)
    for name, expected in row.after.items():
        assert getattr(state, name) == expected, name
    assert [(e.what, e.kind) for e in events] == row.events
    counters = {"stale", "implausible"}
    assert {c: getattr(report, c) for c in counters if getattr(report, c)} == row.counts
    for event in events:
        assert event.state is state


def test_a_fix_that_opens_left_home_carries_its_distance() -> None:
    state = at_home(outside_streak=1)
    fix = fix_at(80)
    verdicts, distances = judge_all([fix], {PATIENT: state})
    events: list[Any] = []
    apply_fix(state, fix, verdicts[0], distances[0], events, IngestReport())
    assert events[0].distance == pytest.approx(80, abs=1)


def test_open_and_close_events_name_their_episode_family() -> None:
    state = at_home()
    events: list[Any] = []
    for row, fix in (
        (at_home(outside_streak=1), fix_at(80)),
        (at_home(**SILENT), fix_at(0)),
        (at_home(**AWAY, last_lat=point(80)[0]), fix_at(5, accuracy=5)),
    ):
        state = replace(row)
        verdicts, distances = judge_all([fix], {PATIENT: state})
        apply_fix(state, fix, verdicts[0], distances[0], events, IngestReport())
    assert [family_of(e) for e in events] == ["zone", "signal", "zone"]


@dataclass(frozen=True)
class KeepRow:
    name: str
    before: TrackState
    fix: Fix
    keep: bool
    period: timedelta = timedelta(minutes=5)


KEEP_ROWS = [
    KeepRow("a fix at home within the sample period is not stored", at_home(), fix_at(3), False),
    KeepRow("sampling switched off stores every fix", at_home(), fix_at(3), True, timedelta(0)),
    KeepRow(
        "a fix at home a sample period after the last stored one is stored",
        at_home(last_kept_fix_at=T0 - timedelta(minutes=5)),
        fix_at(3),
        True,
    ),
    KeepRow("a fix outside is stored", at_home(), fix_at(80), True),
    KeepRow("a vague fix is stored", at_home(), fix_at(0, accuracy=300), True),
    KeepRow(
        "the first fix of a new live message is stored", at_home(), fix_at(0, message_id=9), True
    ),
    KeepRow("a fix that closes an episode is stored", at_home(**SILENT), fix_at(0), True),
    KeepRow("any fix while away is stored", at_home(**AWAY), fix_at(5, accuracy=5), True),
    KeepRow(
        "a fix before the home is confirmed is stored",
        at_home(home_confirmed=False),
        fix_at(3),
        True,
    ),
]


@pytest.mark.parametrize("row", KEEP_ROWS, ids=[r.name for r in KEEP_ROWS])
def test_only_fixes_that_could_change_a_decision_are_stored(row: KeepRow) -> None:
    state = replace(row.before)
    verdicts, distances = judge_all([row.fix], {PATIENT: state})
    events: list[Any] = []
    report = IngestReport()
    before = Before.of(state, len(events), report.implausible)
    apply_fix(state, row.fix, verdicts[0], distances[0], events, report)
    keep = worth_keeping(row.period, before, state, row.fix, verdicts[0], events, report)
    assert keep is row.keep


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"last_fix_at": None}, AlertKind.NO_FIX),
        ({"sharing_stopped_at": T0}, AlertKind.SHARING_STOPPED),
        ({"live_until": T0 + timedelta(minutes=1)}, AlertKind.LIVE_ENDED),
        ({}, AlertKind.SIGNAL_LOST),
    ],
)
def test_silence_is_named_by_what_telegram_last_told(
    changes: dict[str, Any], kind: AlertKind
) -> None:
    assert silence_kind(at_home(**changes)) is kind


CONSENTED = T0 - timedelta(hours=1)
NOW = T0 + SILENCE + timedelta(minutes=1)


@dataclass(frozen=True)
class SweepRow:
    name: str
    before: TrackState
    due: tuple[bool, bool, bool]
    """Silent, vague, expiring: which of the index's sets found the case due."""
    opens: tuple[AlertKind, datetime] | None = None
    flags: frozenset[str] = frozenset()
    seen_behind: datetime | None = None
    remind_until: datetime | None = None
    live_reminded_for: datetime | None = None


SWEEP_ROWS = [
    SweepRow(
        "silent for 15 minutes opens 'signal lost' at the moment the silence began",
        at_home(),
        (True, False, False),
        (AlertKind.SIGNAL_LOST, T0 + SILENCE),
        frozenset({"forget_seen", "forget_judged"}),
    ),
    SweepRow(
        "never a fix since consent opens 'no location at all'",
        at_home(last_fix_at=None, last_judged_at=None),
        (True, False, False),
        (AlertKind.NO_FIX, CONSENTED + SILENCE),
        frozenset({"forget_seen", "forget_judged"}),
    ),
    SweepRow(
        "silent while already alerted opens nothing more",
        at_home(**SILENT),
        (True, False, False),
        None,
        frozenset({"forget_seen", "forget_judged"}),
    ),
    SweepRow(
        "silent after being vague supersedes 'too inaccurate'",
        at_home(**VAGUE),
        (True, False, False),
        (AlertKind.SIGNAL_LOST, T0 + SILENCE),
        frozenset({"supersede", "forget_seen", "forget_judged"}),
    ),
    SweepRow(
        "an index behind PostgreSQL is corrected, nothing opens",
        at_home(last_fix_at=NOW - timedelta(minutes=1)),
        (True, False, False),
        seen_behind=NOW - timedelta(minutes=1),
    ),
    SweepRow(
        "fixes arrive but none precise for 15 minutes opens 'too inaccurate'",
        at_home(last_fix_at=NOW - timedelta(minutes=1)),
        (False, True, False),
        (AlertKind.INACCURATE, T0 + SILENCE),
        frozenset({"forget_judged"}),
    ),
    SweepRow(
        "vague and silent is left to the silence rule",
        at_home(),
        (False, True, False),
        None,
        frozenset({"forget_judged"}),
    ),
    SweepRow(
        "a live period ending within minutes is reminded once",
        at_home(live_until=NOW + timedelta(minutes=5), last_fix_at=NOW, last_judged_at=NOW),
        (False, False, True),
        remind_until=NOW + timedelta(minutes=5),
    ),
    SweepRow(
        "a live period already reminded is not reminded again",
        at_home(live_until=NOW + timedelta(minutes=5), last_fix_at=NOW, last_judged_at=NOW),
        (False, False, True),
        live_reminded_for=NOW + timedelta(minutes=5),
    ),
    SweepRow(
        "a live period already over leaves the live index",
        at_home(live_until=NOW - timedelta(minutes=1), last_fix_at=NOW, last_judged_at=NOW),
        (False, False, True),
        flags=frozenset({"forget_live"}),
    ),
]


@pytest.mark.parametrize("row", SWEEP_ROWS, ids=[r.name for r in SWEEP_ROWS])
def test_the_sweep_does_with_a_due_case_what_the_table_says(row: SweepRow) -> None:
    silent, vague, expiring = row.due
    step = sweep_step(
        row.before,
        NOW,
        consented_at=CONSENTED,
        live_reminded_for=row.live_reminded_for,
        silent=silent,
        vague=vague,
        expiring=expiring,
    )
    opened = None if step.opening is None else (step.opening.kind, step.opening.at)
    assert opened == row.opens
    flags = {"supersede", "forget_seen", "forget_judged", "forget_live"}
    assert {f for f in flags if getattr(step, f)} == row.flags
    assert step.seen_behind == row.seen_behind
    assert step.remind_until == row.remind_until
