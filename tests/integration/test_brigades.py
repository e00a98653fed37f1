"""Brigades on real PostgreSQL: invites work once, a district is planned longest-untreated
first, a task's coverage comes from its tracks, clean zones fade, a brigade standing still
shows once on the panel, and tracks go after the retention period."""

import random
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from citybots.wiring import Services
from geofence.zones import parse_zones
from services.brigades import BrigadeError, BrigadeService
from services.location_fixes import Fix

M_LAT, M_LON = 1 / 111_050, 1 / 81_300  # degrees per metre in Almaty


def live_fix(
    member: int, at: datetime, latitude: float, longitude: float, *, message_id: int = 1
) -> Fix:
    """A member's live location at ``at``, precise to 5 m."""
    return Fix(member, message_id, at, latitude, longitude, accuracy=5, live_until=None)


def _square(lon: float, lat: float, metres: float) -> list[list[list[float]]]:
    d_lon, d_lat = metres * M_LON, metres * M_LAT
    return [
        [
            [lon, lat],
            [lon + d_lon, lat],
            [lon + d_lon, lat + d_lat],
            [lon, lat + d_lat],
            [lon, lat],
        ]
    ]


async def make_district(services: Services, sectors: int = 3) -> tuple[str, list[int]]:
    """A district of its own with ``sectors`` sectors of 200 x 200 m in a row."""
    name = f"District {secrets.token_hex(3)}"
    lon, lat = 76.8 + random.random() * 0.3, 43.1 + random.random() * 0.2
    features = [
        {
            "type": "Feature",
            "properties": {"name": name, "kind": "district"},
            "geometry": {"type": "Polygon", "coordinates": _square(lon, lat, 250 * sectors)},
        }
    ] + [
        {
            "type": "Feature",
            "properties": {"name": f"{name} sector {i + 1}", "kind": "sector"},
            "geometry": {
                "type": "Polygon",
                "coordinates": _square(lon + (10 + 240 * i) * M_LON, lat + 10 * M_LAT, 200),
            },
        }
        for i in range(sectors)
    ]
    shapes = parse_zones({"type": "FeatureCollection", "features": features})
    await services.zones.import_shapes(
        shapes, valid_from=datetime.now(UTC) - timedelta(minutes=1), actor="test", source="t"
    )
    rows = await services.zones.pool.fetch(
        "SELECT id FROM zones WHERE name LIKE $1 || ' sector %' AND valid_until IS NULL "
        "ORDER BY name",
        name,
    )
    return name, [r["id"] for r in rows]


def _walk(task_area: dict, lanes: int) -> list[tuple[float, float, int]]:
    """Fixes walking ``lanes`` lanes 20 m apart across the area from its south-west."""
    (west, south), *_ = task_area["coordinates"][0]
    fixes = []
    for lane in range(lanes):
        lat = south + (10 + 20 * lane) * M_LAT
        for step in range(0, 201, 25):
            fixes.append((west + step * M_LON, lat, lane * 10 + step // 25))
    return fixes


async def _walked(
    services: Services,
    member: int,
    task_area: dict,
    *,
    lanes: int,
    message_id: int,
    start: datetime,
) -> None:
    """The member's live location walked the lanes (:func:`_walk`), a fix every 10 s from
    ``start``, each precise to 5 m."""
    for lon, lat, i in _walk(task_area, lanes=lanes):
        at = start + timedelta(seconds=10 * i)
        await services.brigades.record_fix(live_fix(member, at, lat, lon, message_id=message_id))


async def test_a_brigade_joins_by_a_one_use_invite_and_plans_a_district_in_one_step(
    services: Services,
) -> None:
    district, sectors = await make_district(services)
    brigade = await services.brigades.create(f"B-{secrets.token_hex(3)}", district, by="ops")
    token = await services.brigades.invite(brigade.id, by="ops")
    member = random.randint(10**9, 2 * 10**9)
    assert (await services.brigades.join(token, member, "Aset")).id == brigade.id
    with pytest.raises(BrigadeError, match=r"brigade\.invite_invalid"):
        await services.brigades.join(token, member + 1, "Someone else")
    today = datetime.now(UTC).date()
    first = await services.brigades.plan_district(brigade.id, today, "surface", count=2, by="ops")
    assert [t.zone_id for t in first] == sectors[:2]
    assert [t.position for t in first] == [1, 2]
    rest = await services.brigades.plan_district(brigade.id, today, "surface", count=5, by="ops")
    assert [t.zone_id for t in rest] == sectors[2:]
    tomorrow = await services.brigades.plan_district(
        brigade.id, today + timedelta(days=1), "indoor", count=1, by="ops"
    )
    assert tomorrow[0].zone_id == sectors[0]  # none treated yet: in name order


async def test_a_done_task_s_coverage_comes_from_its_track_and_its_clean_zone_fades(
    services: Services, pool: asyncpg.Pool
) -> None:
    district, _ = await make_district(services, sectors=2)
    brigade = await services.brigades.create(f"B-{secrets.token_hex(3)}", district, by="ops")
    member = random.randint(10**9, 2 * 10**9)
    await services.brigades.join(await services.brigades.invite(brigade.id, by="o"), member, "A")
    today = datetime.now(UTC).date()
    whole, street = await services.brigades.plan_district(
        brigade.id, today, "surface", count=2, by="ops"
    )
    assert (await services.brigades.tasks_of(member, today))[0].id == whole.id
    with pytest.raises(BrigadeError, match=r"brigade\.not_started"):
        await services.brigades.done(whole.id, member)
    await services.brigades.start(whole.id, member)
    start = datetime.now(UTC) - timedelta(minutes=40)
    await _walked(services, member, whole.area, lanes=10, message_id=7, start=start)
    with pytest.raises(BrigadeError, match=r"brigade\.photo_needed"):
        await services.brigades.done(whole.id, member)
    assert await services.brigades.add_photo(whole.id, member, "photo-1") == 1
    done = await services.brigades.done(whole.id, member)
    assert done.coverage is not None
    assert done.coverage > 0.9

    await services.brigades.start(street.id, member)
    await _walked(services, member, street.area, lanes=1, message_id=8, start=start)
    await services.brigades.add_photo(street.id, member, "photo-2")
    one_street = await services.brigades.done(street.id, member)
    assert one_street.coverage is not None
    assert one_street.coverage < 0.2

    zones = {
        f["properties"]["task"]: f["properties"]
        for f in await services.brigades.clean_zones(datetime.now(UTC) + timedelta(hours=12))
    }
    assert zones[whole.id]["clean"] is True
    assert zones[street.id]["clean"] is False
    assert 0.45 < zones[whole.id]["left"] < 0.55
    later = await services.brigades.clean_zones(datetime.now(UTC) + timedelta(hours=25))
    assert whole.id not in {f["properties"]["task"] for f in later}
    figures = await services.brigades.district_days(today, today)
    mine = [d for d in figures if d.district == district]
    assert mine[0].done == 2


async def test_a_brigade_standing_still_or_outside_shows_as_one_line_and_blocked_is_kept(
    services: Services, pool: asyncpg.Pool
) -> None:
    district, _ = await make_district(services, sectors=1)
    brigade = await services.brigades.create(f"B-{secrets.token_hex(3)}", district, by="ops")
    one, two = random.randint(10**9, 2 * 10**9), random.randint(10**9, 2 * 10**9)
    for member in (one, two):
        token = await services.brigades.invite(brigade.id, by="o")
        await services.brigades.join(token, member, "M")
    today = datetime.now(UTC).date()
    (task,) = await services.brigades.plan_district(brigade.id, today, "surface", count=1, by="o")
    await services.brigades.start(task.id, one)
    await pool.execute(
        "UPDATE brigade_tasks SET started_at = now() - interval '55 minutes' WHERE id = $1",
        task.id,
    )
    (west, south), *_ = task.area["coordinates"][0]
    now = datetime.now(UTC)
    for minutes in (50, 40, 30, 20, 10, 0):
        for member in (one, two):
            at = now - timedelta(minutes=minutes)
            await services.brigades.record_fix(
                live_fix(member, at, south + 50 * M_LAT, west + 50 * M_LON)
            )
    lines = [w for w in await services.brigades.watch(now) if w.task_id == task.id]
    assert [w.kind for w in lines] == ["still"]
    await services.brigades.record_fix(
        live_fix(one, now + timedelta(seconds=1), south + 0.02, west)
    )
    lines = [w for w in await services.brigades.watch(now) if w.task_id == task.id]
    assert [w.kind for w in lines] == ["outside"]
    with pytest.raises(BrigadeError, match=r"brigade\.reason"):
        await services.brigades.block(task.id, two, " ")
    blocked = await services.brigades.block(task.id, two, "Gate closed,  no water")
    assert (blocked.state, blocked.blocked_reason) == ("blocked", "Gate closed, no water")
    stranger = BrigadeService(pool)
    with pytest.raises(BrigadeError, match=r"brigade\.not_yours"):
        await stranger.start(task.id, 42)
    await pool.execute(
        "UPDATE brigade_fixes SET fixed_at = fixed_at - interval '40 days' WHERE task_id = $1",
        task.id,
    )
    assert await services.brigades.purge(timedelta(days=30)) >= 12
