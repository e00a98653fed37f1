"""Roll-ups: every committed event is counted once in its hour and its city day, counts
outlive the raw rows, and a refresh never drops a mark it could not see."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, date, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from citybots.wiring import Services
from services.hotline import call_counts
from services.retention import Retention, purge
from services.rollups import RefreshReport, Rollups
from tests.factories import add_pcr, make_iin, make_venue
from tests.integration.test_quarantine import joined_case

# A quiet stretch of the past that no other test writes to.
BASE = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # Almaty: UTC+5 since March 2024


async def refreshed(rollups: Rollups, *, rebuild: bool = False) -> RefreshReport:
    """Refresh, waiting if the platform's own job holds the lock at this moment."""
    for _ in range(100):
        report = await rollups.refresh(rebuild=rebuild)
        if report is not None:
            return report
        await asyncio.sleep(0.1)
    raise AssertionError("the roll-up lock was never free")


async def add_visits(
    pool: asyncpg.Pool, venue_id: int, times: list[datetime], *, admitted: bool = True
) -> None:
    await pool.executemany(
        "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, checked_out_at,"
        " checkout_kind) VALUES ($1, $2, 'qr', $3, $4, $5::timestamptz,"
        " $5::timestamptz + interval '30 minutes', $6)",
        [
            (
                venue_id,
                make_iin(),
                "green" if admitted else "red",
                admitted,
                at,
                "scan" if admitted else "refused",
            )
            for at in times
        ],
    )


async def hourly_value(pool: asyncpg.Pool, metric: str, hour: datetime, key: str) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT value FROM rollup_hourly WHERE metric = $1 AND hour = $2 AND key = $3",
        metric,
        hour,
        key,
    )
    return value


async def test_check_ins_are_counted_by_hour_and_city_day(
    services: Services, pool: asyncpg.Pool
) -> None:
    venue = await make_venue(services)
    # 19:10 and 19:50 UTC are 00:10 and 00:50 the next day in Almaty (UTC+5).
    times = [BASE + timedelta(hours=19, minutes=10), BASE + timedelta(hours=19, minutes=50)]
    await add_visits(pool, venue.id, times)
    await add_visits(pool, venue.id, [BASE + timedelta(hours=3)], admitted=False)
    await refreshed(services.rollups)
    assert await hourly_value(pool, "checkins", BASE + timedelta(hours=19), "admitted") == 2
    assert await hourly_value(pool, "checkins", BASE + timedelta(hours=3), "refused") == 1
    series = await services.rollups.daily(["checkins"], date(2025, 3, 3), date(2025, 3, 4))
    assert series["checkins"].by_key["admitted"] == [0, 2]
    assert series["checkins"].by_key["refused"] == [1, 0]

    # A later check-in in the same hour: the hour and the day are recomputed, not doubled.
    await add_visits(pool, venue.id, [BASE + timedelta(hours=19, minutes=55)])
    await refreshed(services.rollups)
    assert await hourly_value(pool, "checkins", BASE + timedelta(hours=19), "admitted") == 3
    series = await services.rollups.daily(["checkins"], date(2025, 3, 4), date(2025, 3, 4))
    assert series["checkins"].by_key["admitted"] == [3]

    # Retention deletes the raw visits; the counts stay, and a rebuild keeps them too.
    removed = await purge(pool, Retention(visits=timedelta(days=365)))
    assert removed["visits"] >= 4
    await refreshed(services.rollups, rebuild=True)
    assert await hourly_value(pool, "checkins", BASE + timedelta(hours=19), "admitted") == 3


async def test_a_mark_committed_during_a_refresh_is_rolled_up_by_the_next(
    services: Services, pool: asyncpg.Pool, database_url: str
) -> None:
    venue = await make_venue(services)
    hour = BASE + timedelta(days=1, hours=8)
    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(
            "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at,"
            " checked_out_at, checkout_kind) VALUES ($1, $2, 'qr', 'green', true, $3, $3, 'scan')",
            venue.id,
            make_iin(),
            hour,
        )
        await refreshed(services.rollups)  # cannot see the uncommitted visit nor its mark
        await transaction.commit()
    finally:
        await conn.close()
    assert await hourly_value(pool, "checkins", hour, "admitted") is None
    await refreshed(services.rollups)
    assert await hourly_value(pool, "checkins", hour, "admitted") == 1


async def test_new_cases_count_a_person_again_only_after_90_days(
    services: Services, pool: asyncpg.Pool
) -> None:
    lab = f"Rollup lab {secrets.token_hex(3)}"
    person, other = make_iin(), make_iin()
    first = BASE + timedelta(days=10, hours=5)
    await add_pcr(services, person, "positive", result_at=first, laboratory=lab)
    await add_pcr(
        services, person, "positive", result_at=first + timedelta(days=3), laboratory=lab
    )
    await add_pcr(
        services, person, "positive", result_at=first + timedelta(days=100), laboratory=lab
    )
    await add_pcr(services, other, "negative", result_at=first, laboratory=lab)
    await refreshed(services.rollups)
    day = first.date()
    series = await services.rollups.daily(
        ["new_cases", "pcr_tests"], day, day + timedelta(days=100)
    )
    cases = series["new_cases"].total()
    assert (cases[0], cases[3], cases[100]) == (1, 0, 1)
    assert series["pcr_tests"].by_key[lab][0] == 2

    # An earlier positive arriving late takes the "new" from the one after it.
    await add_pcr(
        services, person, "positive", result_at=first - timedelta(days=1), laboratory=lab
    )
    await refreshed(services.rollups)
    series = await services.rollups.daily(["new_cases"], day - timedelta(days=1), day)
    assert series["new_cases"].total() == [1, 0]


async def test_hotline_counts_come_from_the_roll_ups(
    services: Services, pool: asyncpg.Pool
) -> None:
    at = BASE + timedelta(days=20, hours=4, minutes=30)  # 09:30 in Almaty
    await pool.executemany(
        "INSERT INTO hotline_calls (agent, topic, outcome, district, at)"
        " VALUES (1, $1, $2, $3, $4)",
        [
            ("faq_symptoms", "ambulance", "Medeu", at),
            ("faq_symptoms", "answered", "Medeu", at + timedelta(minutes=5)),
            ("faq_permit_howto", "answered", "Bostandyk", at + timedelta(hours=1)),
        ],
    )
    await refreshed(services.rollups)
    counts = await call_counts(
        services.rollups, since=at - timedelta(hours=1), until=at + timedelta(hours=3)
    )
    assert counts.total == 3
    assert counts.by_topic == [("faq_symptoms", 2), ("faq_permit_howto", 1)]
    assert counts.by_district_hour["Medeu"][9] == 2
    assert counts.by_district_hour["Bostandyk"][10] == 1
    assert dict(counts.outcomes) == {"answered": 2, "ambulance": 1}


async def test_another_time_zone_recuts_the_days(
    services: Services, pool: asyncpg.Pool, redis: Redis
) -> None:
    job_lock = redis.lock("job:rollups", timeout=60)  # keep the platform's job out meanwhile
    assert await job_lock.acquire(blocking_timeout=70)
    try:
        await _recut(services, pool)
    finally:
        await job_lock.release()


async def _recut(services: Services, pool: asyncpg.Pool) -> None:
    venue = await make_venue(services)
    at = BASE + timedelta(days=30, hours=21)  # 02:00 next day in Almaty, 21:00 in UTC
    await add_visits(pool, venue.id, [at])
    await refreshed(services.rollups)
    almaty = await services.rollups.daily(["checkins"], at.date(), at.date() + timedelta(days=1))
    assert almaty["checkins"].by_key["admitted"] == [0, 1]
    utc = Rollups(pool, "UTC")
    report = await refreshed(utc)
    assert report.rebuilt
    in_utc = await utc.daily(["checkins"], at.date(), at.date() + timedelta(days=1))
    assert in_utc["checkins"].by_key["admitted"] == [1, 0]
    await refreshed(services.rollups)  # back to the city's zone for the other tests


async def test_an_earlier_positive_committed_late_takes_the_new_case_from_a_later_one(
    services: Services, pool: asyncpg.Pool, database_url: str
) -> None:
    lab = f"Race lab {secrets.token_hex(3)}"
    person = make_iin()
    later = BASE + timedelta(days=40, hours=6)
    earlier = later - timedelta(days=90)  # exactly 90 days before: still the same case
    insert = (
        "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory)"
        " VALUES ($1, $2::timestamptz - interval '6 hours', $2, 'positive', $3)"
    )
    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(insert, person, earlier, lab)  # cannot see the later one
        await pool.execute(insert, person, later, lab)
        await refreshed(services.rollups)  # the later one counts as new for now
        await transaction.commit()
    finally:
        await conn.close()
    await refreshed(services.rollups)
    series = await services.rollups.daily(["new_cases"], earlier.date(), later.date())
    cases = series["new_cases"].total()
    assert (cases[0], cases[-1]) == (1, 0)


async def test_a_superseded_alert_is_one_violation_not_two(
    services: Services, pool: asyncpg.Pool
) -> None:
    case, _, _ = await joined_case(services.quarantine)
    hour = BASE + timedelta(days=3, hours=7)
    first = await pool.fetchval(
        "INSERT INTO quarantine_episodes (case_id, family, kind, opened_at) "
        "VALUES ($1, 'signal', 'inaccurate', $2) RETURNING id",
        case.id,
        hour + timedelta(minutes=5),
    )
    await refreshed(services.rollups)
    assert await hourly_value(pool, "violations", hour, "inaccurate") == 1
    async with pool.acquire() as conn, conn.transaction():  # as the sweep replaces it
        await conn.execute(
            "UPDATE quarantine_episodes SET closed_at = $2, close_kind = 'superseded' "
            "WHERE id = $1",
            first,
            hour + timedelta(minutes=40),
        )
        await conn.execute(
            "INSERT INTO quarantine_episodes (case_id, family, kind, opened_at) "
            "VALUES ($1, 'signal', 'signal_lost', $2)",
            case.id,
            hour + timedelta(minutes=40),
        )
    await refreshed(services.rollups)
    assert await hourly_value(pool, "violations", hour, "inaccurate") in (None, 0)
    assert await hourly_value(pool, "violations", hour, "signal_lost") == 1
    await refreshed(services.rollups, rebuild=True)
    assert await hourly_value(pool, "violations", hour, "inaccurate") in (None, 0)
    assert await hourly_value(pool, "violations", hour, "signal_lost") == 1
