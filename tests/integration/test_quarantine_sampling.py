"""Fix sampling: while a patient is at home only one fix per sample period is stored; every
fix that changes or could change a decision is stored; every new fix moves the state, and a
repeated delivery of a fix that was not stored is still known as one."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from citybots.wiring import Services
from services.quarantine import SEEN, QuarantineService
from tests.integration.test_quarantine import Track, outbox_kinds, sharing_case


async def rows(pool: asyncpg.Pool, case_id: int) -> list[int]:
    """Seconds (from the first) of the case's stored fixes, in order."""
    found = await pool.fetch(
        "SELECT fixed_at FROM location_fixes WHERE case_id = $1 ORDER BY fixed_at", case_id
    )
    if not found:
        return []
    first = found[0]["fixed_at"]
    return [int((r["fixed_at"] - first).total_seconds()) for r in found]


async def test_at_home_one_fix_per_five_minutes_is_stored_and_every_fix_moves_last_seen(
    services: Services,
) -> None:
    q = services.quarantine
    assert q.sample_every == timedelta(minutes=5)
    case, _, _, track = await sharing_case(q)
    report = await q.ingest([track.fix(i * 30, (i % 3) * 3, 0, 8) for i in range(40)])
    assert (report.stored, report.sampled, report.duplicate) == (40, 36, 0)
    assert await rows(q.pool, case.id) == [0, 300, 600, 900]
    state = await q.pool.fetchrow(
        "SELECT last_fix_at, last_kept_fix_at FROM quarantine_cases WHERE id = $1", case.id
    )
    assert state is not None
    assert state["last_fix_at"] == track.start + timedelta(seconds=39 * 30)
    assert state["last_kept_fix_at"] == track.start + timedelta(seconds=900)
    seen = await q.redis.zscore(SEEN, str(case.id))
    assert seen == state["last_fix_at"].timestamp()


async def test_a_repeated_delivery_of_a_fix_not_stored_is_a_duplicate(services: Services) -> None:
    q = services.quarantine
    case, _, _, track = await sharing_case(q)
    first = [track.fix(s, 2, 0, 8) for s in (0, 30, 60, 90)]
    await q.ingest(first)
    assert await rows(q.pool, case.id) == [0]
    again = await q.ingest(first)  # all four delivered again, stored or not
    assert (again.stored, again.sampled, again.duplicate, again.stale) == (0, 0, 4, 0)
    last = await q.ingest([first[-1]])
    assert (last.stored, last.duplicate) == (0, 1)
    assert await rows(q.pool, case.id) == [0]


async def test_every_fix_of_a_walk_out_and_back_is_stored_and_alerts_are_unchanged(
    services: Services,
) -> None:
    q = services.quarantine
    case, _, doctor, track = await sharing_case(q)
    home = [track.fix(s, 0, 0, 8) for s in (0, 30, 60)]
    walk = [track.fix(90 + i * 30, d, 0, 8) for i, d in enumerate((20, 60, 62, 60))]
    back = [track.fix(210 + i * 30, d, 0, 8) for i, d in enumerate((40, 20, 5, 3, 2))]
    reports = [await q.ingest(part) for part in (home, walk, back)]
    assert reports[1].opened == ["left_home"]
    assert reports[2].closed == ["back_home"]
    assert await outbox_kinds(services, doctor) == [
        "quarantine_alert:left_home",
        "quarantine_closed:back_home",
    ]
    # The first; not the next three, at home (the third 20 m away, within the radius);
    # every fix from the first outside to the one that ended the episode (20 m away at
    # ±8 m: surely inside); then none again.
    assert await rows(q.pool, case.id) == [0, 120, 150, 180, 210, 240]
    assert [r.sampled for r in reports] == [2, 1, 3]


async def test_a_fix_after_a_gap_and_the_first_of_a_new_live_message_are_stored(
    services: Services,
) -> None:
    q = services.quarantine
    case, patient, _, track = await sharing_case(q)
    await q.ingest([track.fix(0, 0), track.fix(30, 0)])
    await q.ingest([track.fix(30 + 6 * 60, 0)])  # six minutes of silence
    renewed = Track(patient, track.start, message_id=2)
    await q.ingest([renewed.fix(400, 0)])
    assert await rows(q.pool, case.id) == [0, 390, 400]


async def test_sampling_off_stores_every_fix(services: Services) -> None:
    q = QuarantineService(
        services.quarantine.pool, services.quarantine.redis, sample_every=timedelta(0)
    )
    case, _, _, track = await sharing_case(q)
    report = await q.ingest([track.fix(i * 30, 0, 0, 8) for i in range(10)])
    assert (report.stored, report.sampled) == (10, 0)
    assert len(await rows(q.pool, case.id)) == 10
