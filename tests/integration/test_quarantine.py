"""The quarantine service on real PostgreSQL and Redis: fixes, episodes, the silence
sweep with a controllable clock, escalation, doctors' actions, closing and purging."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest

from citybots.wiring import Services
from services.location_fixes import Fix
from services.quarantine import (
    INDEXED,
    JUDGED,
    LIVE,
    SEEN,
    Action,
    Case,
    QuarantineError,
    QuarantineService,
)
from services.retention import Retention, purge
from services.validation import Coordinates
from tests.factories import make_phone, tg_user_id

HOME = (43.2389, 76.8897)


def point(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    lat, lon = HOME
    return lat + north_m / 111_132.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


async def new_doctor(q: QuarantineService, *, district: str = "Almaly", duty: bool = False) -> int:
    doctor = tg_user_id()
    token = await q.create_doctor_invite(district, on_duty=duty, created_by="test")
    await q.join_as_doctor(token, doctor, "Dr Test")
    return doctor


async def joined_case(
    q: QuarantineService, *, home: bool = True, doctor: int | None = None
) -> tuple[Case, int, int]:
    doctor = doctor or await new_doctor(q)
    case = await q.enrol(
        doctor,
        isolation_end=date.today() + timedelta(days=10),
        home=Coordinates(*HOME) if home else None,
    )
    patient = tg_user_id()
    await q.consent(case.invite_token, patient)
    await q.set_phone(patient, make_phone())
    return case, patient, doctor


async def sharing_case(q: QuarantineService, *, home: bool = True) -> tuple[Case, int, int, Track]:
    """A joined case (see :func:`joined_case`) and the live share its patient starts now."""
    case, patient, doctor = await joined_case(q, home=home)
    return case, patient, doctor, Track(patient, now())


class Track:
    """A patient's live share: fixes at seconds after ``start``."""

    def __init__(self, patient: int, start: datetime, message_id: int = 1) -> None:
        self.patient = patient
        self.start = start
        self.message_id = message_id
        self.live_until = start + timedelta(hours=8)

    def fix(
        self,
        second: float,
        north: float,
        east: float = 0.0,
        accuracy: float | None = 10.0,
        *,
        stopped: bool = False,
    ) -> Fix:
        lat, lon = point(north, east)
        return Fix(
            tg_user_id=self.patient,
            message_id=self.message_id,
            at=self.start + timedelta(seconds=second),
            latitude=lat,
            longitude=lon,
            accuracy=accuracy,
            live_until=None if stopped else self.live_until,
            stopped=stopped,
        )


async def outbox_kinds(services: Services, chat_id: int) -> list[str]:
    rows = await services.outbox.pool.fetch(
        "SELECT kind, params FROM outbox WHERE chat_id = $1 ORDER BY id", chat_id
    )
    kinds = []
    for row in rows:
        params = row["params"]
        kinds.append(f"{row['kind']}:{params.get('kind', '')}".rstrip(":"))
    return kinds


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def test_jitter_at_home_raises_nothing_and_a_walk_out_raises_one_alert(
    services: Services,
) -> None:
    q = services.quarantine
    case, patient, doctor, track = await sharing_case(q)
    rng = secrets.SystemRandom()
    jitter = [
        track.fix(
            i * 10, rng.uniform(-25, 25) / 1.5, rng.uniform(-25, 25) / 1.5, rng.uniform(5, 40)
        )
        for i in range(60)
    ]
    report = await q.ingest(jitter)
    assert report.stored == 60
    assert report.opened == []
    walk = [track.fix(600 + i * 10, d, 0, 8) for i, d in enumerate((20, 40, 55, 60, 62, 60))]
    report = await q.ingest(walk)
    assert report.opened == ["left_home"]
    assert await outbox_kinds(services, doctor) == ["quarantine_alert:left_home"]
    assert "quarantine_patient:left_home" in await outbox_kinds(services, patient)
    back = [track.fix(700 + i * 10, d, 0, 8) for i, d in enumerate((40, 20, 5))]
    report = await q.ingest(back)
    assert report.closed == ["back_home"]
    assert await outbox_kinds(services, doctor) == [
        "quarantine_alert:left_home",
        "quarantine_closed:back_home",
    ]
    summary = {c.code: c for c in await q.open_cases(doctor)}[case.code]
    assert summary.state == "home"


async def test_duplicates_out_of_order_bad_and_foreign_fixes_change_nothing(
    services: Services,
) -> None:
    q = services.quarantine
    _, patient, doctor, track = await sharing_case(q)
    first = [track.fix(0, 0), track.fix(10, 60, 0, 5), track.fix(20, 62, 0, 5)]
    report = await q.ingest(first)
    assert report.opened == ["left_home"]
    again = await q.ingest(first)  # the same updates delivered again
    assert again.stored == 0
    assert again.duplicate == 3
    assert again.opened == []
    # An old fix (home) arriving late must not close the episode.
    late = await q.ingest([track.fix(5, 0, 0, 5)])
    assert late.stored == 1
    assert late.stale == 1
    assert late.closed == []
    bad = Fix(patient, 1, track.start + timedelta(seconds=30), 91.0, 0.0, 5.0, track.live_until)
    null_island = Fix(patient, 1, track.start + timedelta(seconds=31), 0.0, 0.0, 5.0, None)
    stranger = Track(tg_user_id(), track.start).fix(30, 0)
    report = await q.ingest([bad, null_island, stranger])
    assert (report.invalid, report.stranger, report.stored) == (2, 1, 0)
    # A teleport 50 km away 10 s later is a glitch, not a new departure or return.
    teleport = track.fix(40, 50_000, 0, 5)
    report = await q.ingest([teleport])
    assert report.implausible == 1
    assert report.closed == []
    assert await outbox_kinds(services, doctor) == ["quarantine_alert:left_home"]


async def test_poor_fixes_do_not_judge_and_a_single_wild_fix_is_not_a_departure(
    services: Services,
) -> None:
    q = services.quarantine
    _, _, doctor, track = await sharing_case(q)
    report = await q.ingest(
        [track.fix(0, 0), track.fix(10, 70, 0, 120), track.fix(20, 40, 0, 90), track.fix(30, 0)]
    )
    assert report.opened == []
    report = await q.ingest([track.fix(40, 80, 0, 5), track.fix(50, 0, 0, 5)])
    assert report.opened == []  # one fix outside, then home: not confirmed
    assert await outbox_kinds(services, doctor) == []


async def test_first_precise_fix_is_proposed_as_home_and_zone_rules_wait_for_confirmation(
    services: Services,
) -> None:
    q = services.quarantine
    case, patient, _, track = await sharing_case(q, home=False)
    report = await q.ingest([track.fix(0, 500, 0, 200), track.fix(10, 0, 0, 12)])
    assert report.home_proposed == [case.id]
    assert await outbox_kinds(services, patient) == ["quarantine_confirm_home"]
    report = await q.ingest([track.fix(20, 100, 0, 5), track.fix(30, 100, 0, 5)])
    assert report.opened == []  # home not confirmed yet
    await q.reject_home(patient)
    with pytest.raises(QuarantineError):
        await q.home_here(patient, now=track.start + timedelta(minutes=10))  # fix too old
    confirmed = await q.home_here(patient, now=track.start + timedelta(seconds=60))
    assert confirmed.home_confirmed
    assert confirmed.home is not None
    assert abs(confirmed.home.latitude - point(100)[0]) < 1e-9


async def test_silence_kinds_with_a_controllable_clock(services: Services) -> None:
    q = services.quarantine
    start = now()
    _, lost, doctor = await joined_case(q)
    _, stopped, _ = await joined_case(q, doctor=doctor)
    _, expired, _ = await joined_case(q, doctor=doctor)
    await joined_case(q, doctor=doctor)  # joins, never shares
    _, vague, _ = await joined_case(q, doctor=doctor)
    await q.ingest([Track(lost, start).fix(0, 0)])
    stopping = Track(stopped, start)
    await q.ingest([stopping.fix(0, 0), stopping.fix(10, 0, stopped=True)])
    assert "quarantine_patient:sharing_stopped" in await outbox_kinds(services, stopped)
    ending = Track(expired, start)
    ending.live_until = start + timedelta(minutes=12)
    await q.ingest([ending.fix(0, 0)])
    await q.ingest([Track(vague, start).fix(s, 0, 0, 300) for s in range(0, 1200, 60)])

    await q.sweep(start + timedelta(minutes=5))
    assert await _alerted(services, doctor) == []
    assert "quarantine_live_ending" in await outbox_kinds(services, expired)
    await q.sweep(start + timedelta(minutes=15, seconds=30))
    kinds = await outbox_kinds(services, doctor)
    assert sorted(kinds) == sorted(
        [
            "quarantine_alert:signal_lost",
            "quarantine_alert:sharing_stopped",
            "quarantine_alert:live_ended",
            "quarantine_alert:no_fix",
            "quarantine_alert:inaccurate",
        ]
    )
    # The same silence is never alerted twice; the vague case, silent since minute 19,
    # now gets the silence alert in place of "too inaccurate".
    await q.sweep(start + timedelta(minutes=40))
    assert await outbox_kinds(services, doctor) == [*kinds, "quarantine_alert:signal_lost"]
    # The signal comes back: the episode closes and the doctor hears.
    report = await q.ingest([Track(lost, start, message_id=7).fix(2500, 0)])
    assert report.closed == ["signal_back"]
    assert "quarantine_closed:signal_back" in await outbox_kinds(services, doctor)


async def _alerted(services: Services, doctor: int) -> list[str]:
    return [k for k in await outbox_kinds(services, doctor) if k.startswith("quarantine_alert")]


async def test_unacknowledged_alerts_escalate_to_the_duty_list_and_actions_are_checked(
    services: Services,
) -> None:
    q = services.quarantine
    district = f"District-{secrets.token_hex(3)}"
    doctor = await new_doctor(q, district=district)
    duty = await new_doctor(q, district=district, duty=True)
    outsider = await new_doctor(q, district="Elsewhere")
    _, patient, _ = await joined_case(q, doctor=doctor)
    track = Track(patient, now() - timedelta(minutes=20))
    await q.ingest([track.fix(0, 0), track.fix(10, 80, 0, 5), track.fix(20, 80, 0, 5)])
    episode = await services.outbox.pool.fetchval(
        "SELECT (params->>'episode')::bigint FROM outbox WHERE chat_id = $1", doctor
    )
    await q.escalate(now())
    assert await outbox_kinds(services, duty) == []  # raised just now: not yet overdue
    await q.escalate(now() + timedelta(minutes=11))
    assert await outbox_kinds(services, duty) == ["quarantine_escalation:left_home"]
    with pytest.raises(QuarantineError) as refused:
        await q.act(episode, outsider, Action.ACKNOWLEDGE)
    assert refused.value.key == "doctor.not_your_case"
    view = await q.act(episode, duty, Action.ACKNOWLEDGE)
    assert view.acknowledged
    assert view.escalated
    view = await q.act(episode, doctor, Action.CALLED)
    assert view.called
    view = await q.act(episode, doctor, Action.RESOLVE)
    assert view.resolved
    assert view.closed_kind == "resolved"
    audit = await services.outbox.pool.fetch(
        "SELECT action FROM audit_log WHERE subject = $1 ORDER BY id", f"episode:{episode}"
    )
    assert [r["action"] for r in audit] == [
        "quarantine.ack",
        "quarantine.called",
        "quarantine.resolve",
    ]


async def test_invites_work_once_and_an_account_holds_one_open_case(services: Services) -> None:
    q = services.quarantine
    with pytest.raises(QuarantineError):
        await q.join_as_doctor("doc_forged", tg_user_id(), "X")
    token = await q.create_doctor_invite("Almaly", created_by="test")
    await q.join_as_doctor(token, tg_user_id(), "A")
    with pytest.raises(QuarantineError):
        await q.join_as_doctor(token, tg_user_id(), "B")
    case, patient, doctor = await joined_case(q)
    with pytest.raises(QuarantineError):
        await q.consent(case.invite_token, tg_user_id())  # someone else with the same link
    await q.consent(case.invite_token, patient)  # the patient again: fine
    other = await q.enrol(doctor, isolation_end=date.today() + timedelta(days=3))
    with pytest.raises(QuarantineError) as refused:
        await q.consent(other.invite_token, patient)
    assert refused.value.key == "quarantine.already_in_case"


async def test_cases_close_at_isolation_end_and_fixes_are_purged(services: Services) -> None:
    q = services.quarantine
    case, patient, _, track = await sharing_case(q)
    await q.ingest([track.fix(0, 0), track.fix(10, 70, 0, 5), track.fix(20, 70, 0, 5)])
    pool = services.outbox.pool
    assert (
        await pool.fetchval("SELECT count(*) FROM location_fixes WHERE case_id = $1", case.id) == 3
    )
    await q.close_finished(case.isolation_end + timedelta(days=1))
    closed = await q.case(case.id)
    assert closed is not None
    assert closed.closed
    assert "quarantine_patient:case_closed" in await outbox_kinds(services, patient)
    assert await services.quarantine.redis.zscore(SEEN, str(case.id)) is None
    assert await services.quarantine.redis.zscore(JUDGED, str(case.id)) is None
    assert await services.quarantine.redis.zscore(LIVE, str(case.id)) is None
    await pool.execute(
        "UPDATE location_fixes SET fixed_at = fixed_at - interval '15 days', "
        "received_at = received_at - interval '15 days' WHERE case_id = $1",
        case.id,
    )
    await pool.execute(
        "UPDATE quarantine_cases SET closed_at = now() - interval '15 days' WHERE id = $1", case.id
    )
    removed = await purge(pool, Retention(location_fixes=timedelta(days=14)))
    assert removed["location_fixes"] >= 3
    assert (
        await pool.fetchval("SELECT count(*) FROM location_fixes WHERE case_id = $1", case.id) == 0
    )
    row = await pool.fetchrow(
        "SELECT home_lat, last_lat FROM quarantine_cases WHERE id = $1", case.id
    )
    assert row is not None
    assert (row["home_lat"], row["last_lat"]) == (None, None)


async def test_leaving_returning_and_leaving_again_within_one_batch(services: Services) -> None:
    q = services.quarantine
    _, patient, doctor, track = await sharing_case(q)
    distances = (0, 70, 72, 3, 75, 80)
    report = await q.ingest([track.fix(i * 10, d, 0, 5) for i, d in enumerate(distances)])
    assert report.opened == ["left_home", "left_home"]
    assert report.closed == ["back_home"]
    assert await outbox_kinds(services, doctor) == [
        "quarantine_alert:left_home",
        "quarantine_closed:back_home",
        "quarantine_alert:left_home",
    ]
    open_episodes = await services.outbox.pool.fetchval(
        "SELECT count(*) FROM quarantine_episodes e JOIN quarantine_cases c ON c.id = e.case_id "
        "WHERE c.patient_tg_user_id = $1 AND e.closed_at IS NULL",
        patient,
    )
    assert open_episodes == 1


async def test_coming_back_takes_a_fix_surely_inside_or_two_within_30_m_in_a_row(
    services: Services,
) -> None:
    q = services.quarantine
    case, patient, doctor, track = await sharing_case(q)
    report = await q.ingest([track.fix(0, 0), track.fix(10, 70, 0, 5), track.fix(20, 72, 0, 5)])
    assert report.opened == ["left_home"]

    async def state() -> str:
        return {c.code: c for c in await q.open_cases(doctor)}[case.code].state

    # Each fix in a batch of its own: the run within 30 m is kept with the case between them.
    for second, north, accuracy in [
        (30, 75, 46),  # its disc reaches home, but it may well be 75 m away
        (40, 20, 25),  # within 30 m: one is not enough
        (50, 75, 46),  # ambiguous: the run within 30 m starts again
        (60, 20, 25),
        (70, 40, 20),  # neither outside nor within 30 m
        (80, 20, 25),
    ]:
        report = await q.ingest([track.fix(second, north, 0, accuracy)])
        assert (report.stored, report.opened, report.closed) == (1, [], [])
        assert await state() == "outside"
    assert await outbox_kinds(services, doctor) == ["quarantine_alert:left_home"]
    assert "quarantine_patient:back_home" not in await outbox_kinds(services, patient)

    report = await q.ingest([track.fix(90, 25, 0, 30)])  # the second within 30 m in a row
    assert report.closed == ["back_home"]
    assert await state() == "home"
    assert await outbox_kinds(services, doctor) == [
        "quarantine_alert:left_home",
        "quarantine_closed:back_home",
    ]
    assert "quarantine_patient:back_home" in await outbox_kinds(services, patient)
    closed_at = await services.outbox.pool.fetchval(
        "SELECT closed_at FROM quarantine_episodes WHERE case_id = $1", case.id
    )
    assert closed_at == track.start + timedelta(seconds=90)

    # Away again; a single fix whose whole disc is within 30 m brings the patient back.
    report = await q.ingest([track.fix(100, 80, 0, 5), track.fix(110, 80, 0, 5)])
    assert report.opened == ["left_home"]
    report = await q.ingest([track.fix(120, 75, 0, 46), track.fix(130, 10, 0, 18)])
    assert report.closed == ["back_home"]
    assert await state() == "home"


async def test_the_index_comes_back_after_redis_loses_it(services: Services) -> None:
    q = services.quarantine
    case, patient, _ = await joined_case(q)
    await q.ingest([Track(patient, now()).fix(0, 0)])
    await q.redis.delete(SEEN, JUDGED, LIVE, INDEXED)
    watched = await q.ensure_index()
    assert watched is not None
    assert watched >= 1
    assert await q.redis.zscore(SEEN, str(case.id)) is not None
    assert await q.redis.zscore(LIVE, str(case.id)) is not None
    assert await q.ensure_index() is None  # nothing lost: nothing to do


async def test_review_cases_resolve_then_silence_vague_then_silent_old_stop_and_round_trip(
    services: Services,
) -> None:
    q = services.quarantine
    start = now()
    # Resolved while still silent: watched again, a new alert 15 minutes later.
    _, silent, doctor = await joined_case(q)
    await q.ingest([Track(silent, start).fix(0, 0)])
    await q.sweep(start + timedelta(minutes=15, seconds=5))
    first = await services.outbox.pool.fetchval(
        "SELECT (params->>'episode')::bigint FROM outbox WHERE chat_id = $1 "
        "AND kind = 'quarantine_alert'",
        doctor,
    )
    await q.act(first, doctor, Action.RESOLVE)
    await q.sweep(datetime.now(UTC) + timedelta(minutes=15, seconds=5))
    assert (await _alerted(services, doctor)).count("quarantine_alert:signal_lost") == 2

    # Vague, then nothing at all: the silence replaces the "too inaccurate" alert.
    _, vague, doctor2 = await joined_case(q)
    start = now()  # the join's own time: the first part may have taken seconds on a busy machine
    await q.ingest([Track(vague, start).fix(s, 0, 0, 300) for s in range(0, 900, 60)])
    await q.sweep(start + timedelta(minutes=15, seconds=1))  # joined 15 min ago, only vague
    assert await _alerted(services, doctor2) == ["quarantine_alert:inaccurate"]
    await q.sweep(start + timedelta(minutes=30))  # and nothing since minute 14
    assert await _alerted(services, doctor2) == [
        "quarantine_alert:inaccurate",
        "quarantine_alert:signal_lost",
    ]

    # The end of an earlier share arriving late does not mark the running one stopped.
    _, sharing, _ = await joined_case(q)
    old, new = Track(sharing, start, message_id=1), Track(sharing, start, message_id=2)
    await q.ingest([old.fix(0, 0), new.fix(30, 0)])
    await q.ingest([old.fix(40, 0, stopped=True)])
    assert "quarantine_patient:sharing_stopped" not in await outbox_kinds(services, sharing)

    # Out and back within one batch: the case ends at home with no episode open.
    case, walker, doctor3 = await joined_case(q)
    trip = Track(walker, start)
    await q.ingest([trip.fix(i * 10, d, 0, 5) for i, d in enumerate((0, 70, 75, 2))])
    summary = {c.code: c for c in await q.open_cases(doctor3)}[case.code]
    assert summary.state == "home"
    assert summary.open_kinds == ()
