"""Location fixes partitioned by day: the migration keeps the rows it finds, the retention
job makes the coming days and drops whole days past the retention period, deleting rows
only from the DEFAULT partition."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from citybots.wiring import Services
from services.migrations import MIGRATIONS_DIR, migrate
from services.retention import DAYS_AHEAD, purge_location_fixes
from tests.conftest import _with_database
from tests.integration.test_quarantine import Track, joined_case, now


@pytest.fixture
async def empty_db(server_urls: tuple[str, str]) -> AsyncIterator[asyncpg.Connection]:
    name = f"citybots_part_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_with_database(server_urls[0], "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_database(server_urls[0], name))
    yield conn
    await conn.close()
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def partitions(
    conn: asyncpg.Connection | asyncpg.Pool, parent: str = "location_fixes"
) -> dict[str, int]:
    """Each partition of ``parent`` with its rows."""
    names = [
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = $1::regclass",
            parent,
        )
    ]
    return {n: await conn.fetchval(f'SELECT count(*) FROM "{n}"') for n in names}  # noqa: S608 - catalog names


def day_name(day: date) -> str:
    return f"location_fixes_{day:%Y%m%d}"


async def test_the_migration_moves_existing_fixes_into_day_partitions(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < "0045":
            (tmp_path / path.name).write_text(path.read_text())
    await migrate(empty_db, tmp_path)
    doctor = await empty_db.fetchval(
        "INSERT INTO doctors (tg_user_id, full_name, district) VALUES (1, 'D', 'Almaly') "
        "RETURNING id"
    )
    case = await empty_db.fetchval(
        "INSERT INTO quarantine_cases (code, doctor_id, district, isolation_end, invite_token) "
        "VALUES ('ABC234', $1, 'Almaly', current_date + 7, 'tok') RETURNING id",
        doctor,
    )
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    times = [today - timedelta(days=d) for d in (0, 0, 1, 5, 400)]
    await empty_db.executemany(
        "INSERT INTO location_fixes (case_id, message_id, fixed_at, latitude, longitude, "
        "verdict) VALUES ($1, 1, $2, 43.2, 76.9, 'home')",
        [(case, at + timedelta(seconds=i)) for i, at in enumerate(times)],
    )
    await migrate(empty_db)
    found = await partitions(empty_db)
    assert found[day_name(today.date())] == 2
    assert found[day_name(today.date() - timedelta(days=1))] == 1
    assert found[day_name(today.date() - timedelta(days=5))] == 1
    assert found["location_fixes_default"] == 1  # more than a month back
    for ahead in range(1, DAYS_AHEAD + 1):
        assert found[day_name(today.date() + timedelta(days=ahead))] == 0
    assert await empty_db.fetchval("SELECT count(*) FROM location_fixes") == 5
    assert await empty_db.fetchval("SELECT to_regclass('location_fixes_unpartitioned')") is None


async def test_retention_drops_whole_days_and_deletes_only_from_the_default_partition(
    services: Services,
) -> None:
    q = services.quarantine
    pool = q.pool
    case, patient, _ = await joined_case(q)
    start = now()
    old_day = (start - timedelta(days=20)).date()
    recent_day = (start - timedelta(days=13)).date()
    await q.ingest([Track(patient, start).fix(0, 0)])
    await pool.execute(
        "INSERT INTO location_fixes (case_id, message_id, fixed_at, latitude, longitude, "
        "verdict) SELECT $1, 9, $2::timestamptz + s * interval '1 minute', 43.2, 76.9, 'home' "
        "FROM generate_series(0, 9) s",
        case.id,
        datetime.combine(old_day, datetime.min.time(), UTC) + timedelta(hours=3),
    )
    await pool.execute(
        "INSERT INTO location_fixes (case_id, message_id, fixed_at, latitude, longitude, "
        "verdict) VALUES ($1, 9, $2, 43.2, 76.9, 'home'), ($1, 9, $3, 43.2, 76.9, 'home')",
        case.id,
        datetime.combine(old_day, datetime.min.time(), UTC) - timedelta(days=1),
        datetime.combine(recent_day, datetime.min.time(), UTC) + timedelta(hours=12),
    )
    assert (await partitions(pool))["location_fixes_default"] >= 12  # no partition yet
    await pool.execute("SELECT location_fixes_add_days($1, $1)", old_day)
    assert (await partitions(pool))[day_name(old_day)] == 10  # moved out of the default

    removed = await purge_location_fixes(pool, timedelta(days=14))
    assert removed["location_fix_days"] >= 1
    assert removed["location_fixes"] >= 10 + 1
    after = await partitions(pool)
    assert day_name(old_day) not in after
    today = datetime.now(UTC).date()
    for ahead in range(DAYS_AHEAD + 1):
        assert day_name(today + timedelta(days=ahead)) in after
    kept = await pool.fetch(
        "SELECT fixed_at FROM location_fixes WHERE case_id = $1 ORDER BY fixed_at", case.id
    )
    assert [r["fixed_at"].date() for r in kept] == [recent_day, start.date()]
    again = await purge_location_fixes(pool, timedelta(days=14))
    assert (again["location_fixes"], again["location_fix_days_made"]) == (0, 0)
