"""Visits partitioned by day with open_stays holding "one open stay per person": the
migration keeps every visit and open stay it finds, the rule still holds whoever writes,
and the retention job drops whole days past the retention period."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.migrations import MIGRATIONS_DIR, migrate
from services.retention import DAYS_AHEAD, purge_visits
from tests.conftest import _with_database, drop_database
from tests.integration.test_fix_partitions import partitions as partitions_of


@pytest.fixture
async def empty_url(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    name = f"citybots_visits_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_with_database(server_urls[0], "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(server_urls[0], name)
    await drop_database(admin, name)
    await admin.close()


@pytest.fixture
async def empty_db(empty_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_url)
    yield conn
    await conn.close()


async def partitions(conn: asyncpg.Connection) -> dict[str, int]:
    """Each partition of visits with its rows."""
    return await partitions_of(conn, "visits")


def day_name(day: date) -> str:
    return f"visits_{day:%Y%m%d}"


async def open_stays(conn: asyncpg.Connection) -> set[tuple[str, int, int]]:
    rows = await conn.fetch("SELECT iin, visit_id, venue_id FROM open_stays")
    return {(r["iin"], r["visit_id"], r["venue_id"]) for r in rows}


async def visit(
    conn: asyncpg.Connection,
    venue: int,
    iin: str,
    at: datetime,
    *,
    out: datetime | None = None,
    admitted: bool = True,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, "
            "checked_out_at, checkout_kind) VALUES ($1, $2, 'qr', $3, $4, $5, $6, $7) "
            "RETURNING id",
            venue,
            iin,
            "green" if admitted else "red",
            admitted,
            at,
            out,
            None if out is None else ("scan" if admitted else "refused"),
        )
    )


async def exposure_notice(
    conn: asyncpg.Connection, visit_id: int, venue: int, *, tested: datetime, at: datetime
) -> None:
    """A positive result (of 900000000009, tested then) and the exposure notice it sent to
    900000000001 for the visit, its window the moment ``at``."""
    case = await conn.fetchval(
        "INSERT INTO pcr_results (iin, result, sampled_at, result_at, laboratory) "
        "VALUES ('900000000009', 'positive', $1, $1, 'Lab') RETURNING id",
        tested,
    )
    await conn.execute(
        "INSERT INTO exposure_notices (positive_result_id, visit_id, exposed_iin, venue_id, "
        "window_start, window_end) VALUES ($1, $2, '900000000001', $3, $4, $4)",
        case,
        visit_id,
        venue,
        at,
    )


async def test_the_migration_keeps_visits_and_open_stays_and_the_one_open_stay_rule(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    conn = empty_db
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < "0048":
            (tmp_path / path.name).write_text(path.read_text())
    await migrate(conn, tmp_path)
    cafe, shop = [
        r["id"]
        for r in await conn.fetch(
            "INSERT INTO venues (bin, name) VALUES ('971240001315', 'Cafe'), "
            "('971240001315', 'Shop') RETURNING id"
        )
    ]
    now = datetime.now(UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    today = noon.date()
    midnight = noon.replace(hour=0)
    earlier_today = midnight + (now - midnight) / 2  # today, and before the move below
    day, minute = timedelta(days=1), timedelta(minutes=1)
    stays = {  # name: the venue, who, in, out (None: still inside), admitted
        "old": (cafe, "900000000001", noon - 40 * day, noon - 40 * day + 30 * minute, True),
        "week": (cafe, "900000000001", noon - 5 * day, noon - 5 * day + 45 * minute, True),
        "refused": (shop, "900000000003", noon - day, noon - day, False),
        "open_yesterday": (shop, "900000000002", noon - day, None, True),
        "open_today": (cafe, "900000000001", earlier_today, None, True),
    }  # fmt: skip
    ids = {
        name: await visit(conn, venue, iin, at, out=out, admitted=admitted)
        for name, (venue, iin, at, out, admitted) in stays.items()
    }
    await exposure_notice(
        conn, ids["week"], cafe, tested=noon - timedelta(days=2), at=noon - timedelta(days=5)
    )

    await migrate(conn)

    found = await partitions(conn)
    assert found[day_name(today)] == 1
    assert found[day_name(today - timedelta(days=1))] == 2
    assert found[day_name(today - timedelta(days=5))] == 1
    assert found["visits_default"] == 1  # more than a month back
    for ahead in range(1, 4):
        assert found[day_name(today + timedelta(days=ahead))] == 0
    assert sorted(r["id"] for r in await conn.fetch("SELECT id FROM visits")) == sorted(
        ids.values()
    )
    assert await open_stays(conn) == {
        ("900000000002", ids["open_yesterday"], shop),
        ("900000000001", ids["open_today"], cafe),
    }
    assert await conn.fetchval("SELECT count(*) FROM exposure_notices") == 1
    assert await conn.fetchval("SELECT to_regclass('visits_unpartitioned')") is None

    with pytest.raises(asyncpg.UniqueViolationError):
        await visit(conn, shop, "900000000001", noon)
    # The check-in function moves the person: the stay at the cafe closes, one at the shop
    # opens, with a new id after the old ones.
    moved = await conn.fetchrow(
        "SELECT * FROM citybots_check_in($1, NULL, '900000000001', 1, 'qr', NULL, 'green', "
        "true, NULL, false)",
        shop,
    )
    assert (moved["outcome"], moved["moved_from"]) == ("admitted", "Cafe")
    assert moved["visit_id"] > max(ids.values())
    assert (
        await conn.fetchval("SELECT checkout_kind FROM visits WHERE id = $1", ids["open_today"])
        == "moved"
    )
    assert await open_stays(conn) == {
        ("900000000002", ids["open_yesterday"], shop),
        ("900000000001", moved["visit_id"], shop),
    }
    again = await conn.fetchrow(
        "SELECT * FROM citybots_check_in($1, NULL, '900000000001', 1, 'qr', NULL, 'green', "
        "true, NULL, false)",
        shop,
    )
    assert (again["outcome"], again["visit_id"], again["occupancy"]) == (
        "already_inside",
        moved["visit_id"],
        2,
    )
    await conn.execute(
        "UPDATE visits SET checked_out_at = now(), checkout_kind = 'scan' WHERE iin = $1 "
        "AND checked_out_at IS NULL",
        "900000000002",
    )
    await conn.execute("DELETE FROM visits WHERE id = $1", moved["visit_id"])
    assert await open_stays(conn) == set()


async def test_a_day_moves_out_of_the_default_partition_with_its_open_stays(
    empty_db: asyncpg.Connection,
) -> None:
    conn = empty_db
    await migrate(conn)
    venue = await conn.fetchval(
        "INSERT INTO venues (bin, name) VALUES ('971240001315', 'Cafe') RETURNING id"
    )
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    stay = await visit(conn, venue, "900000000001", far)
    await visit(conn, venue, "900000000002", far, out=far + timedelta(hours=1))
    assert (await partitions(conn))["visits_default"] == 2
    made = await conn.fetchval(
        "SELECT day_partitions_add('visits', 'checked_in_at', $1, $1)", far.date()
    )
    assert made == 1
    found = await partitions(conn)
    assert (found["visits_default"], found[day_name(far.date())]) == (0, 2)
    assert await open_stays(conn) == {("900000000001", stay, venue)}


async def test_retention_drops_whole_days_of_visits_and_keeps_days_with_open_stays(
    empty_db: asyncpg.Connection, empty_url: str
) -> None:
    conn = empty_db
    await migrate(conn)
    venue = await conn.fetchval(
        "INSERT INTO venues (bin, name) VALUES ('971240001315', 'Cafe') RETURNING id"
    )
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old_day = (noon - timedelta(days=29)).date()
    stuck_day = (noon - timedelta(days=30)).date()
    recent_day = (noon - timedelta(days=27)).date()
    await conn.execute(
        "SELECT day_partitions_add('visits', 'checked_in_at', $1, $2)", stuck_day, recent_day
    )
    day, stay = timedelta(days=1), timedelta(minutes=20)
    closed_old = await visit(
        conn, venue, "900000000001", noon - 29 * day, out=noon - 29 * day + stay
    )
    await visit(conn, venue, "900000000002", noon - 30 * day)  # never closed
    await visit(conn, venue, "900000000003", noon - 27 * day, out=noon - 27 * day + stay)
    # in the DEFAULT partition
    await visit(conn, venue, "900000000004", noon - 90 * day, out=noon - 90 * day + stay)
    await exposure_notice(
        conn, closed_old, venue, tested=noon - timedelta(days=30), at=noon - timedelta(days=29)
    )

    async with asyncpg.create_pool(empty_url, min_size=1, max_size=1) as pool:
        removed = await purge_visits(pool, timedelta(days=28))

    after = await partitions(conn)
    assert day_name(old_day) not in after
    assert after[day_name(stuck_day)] == 1  # an open stay holds its day
    assert after[day_name(recent_day)] == 1
    assert after["visits_default"] == 0
    today = datetime.now(UTC).date()
    for ahead in range(DAYS_AHEAD + 1):
        assert day_name(today + timedelta(days=ahead)) in after
    assert removed["visits"] == 2
    assert removed["visit_days"] >= 1
    assert removed["exposure_notices"] == 1
    assert await conn.fetchval("SELECT count(*) FROM open_stays") == 1
