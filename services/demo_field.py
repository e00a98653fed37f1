"""The demo city's field systems: two disinfection brigades of a demo district with a
day's tasks (one done with a track that covered its block, one under way, one planned,
one blocked), and a week of synthetic ambulance calls with two clusters of calls (the
platform's cluster job finds them within half a minute)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from geofence.coverage import coverage
from services.db import Connection

PREFIX = "[DEMO] "
DISTRICT = PREFIX + "Almaly district"
SYSTEM = PREFIX + "103 dispatch"
_WEST, _SOUTH = 76.905, 43.245
_BLOCK = 0.004  # degrees: about 320 x 440 m
CLUSTERS = ((43.2495, 76.9235), (43.2610, 76.9410))  # a dormitory, a block of flats
HOSPITALS = (PREFIX + "City Infectious Diseases Hospital", PREFIX + "Hospital No. 7")


def _square(lon: float, lat: float, size: float) -> dict[str, object]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


_ZONES = [("district-almaly", DISTRICT, "district", _square(_WEST - 0.001, _SOUTH - 0.001, 0.02))]
_ZONES += [
    (
        f"block-{letter}",
        f"{PREFIX}Block {letter.upper()}",
        "sector",
        _square(_WEST + (i % 2) * (_BLOCK + 0.001), _SOUTH + (i // 2) * (_BLOCK + 0.001), _BLOCK),
    )
    for i, letter in enumerate("abcd")
]


def _lanes(area: dict[str, object], lanes: int) -> list[tuple[float, float]]:
    """A walk up and down ``lanes`` lanes across a block, as a brigade sprays it."""
    ring = area["coordinates"][0]  # type: ignore[index]
    west, south = ring[0]
    track = []
    for lane in range(lanes):
        lat = south + (lane + 0.5) * _BLOCK / lanes
        ends = [west, west + _BLOCK] if lane % 2 == 0 else [west + _BLOCK, west]
        track += [(ends[0], lat), (ends[1], lat)]
    return track


async def load_field_demo(conn: Connection, now: datetime, tz: ZoneInfo) -> None:
    """Upsert the demo brigades, their tasks of today and the week of ambulance calls."""
    zone_ids = {}
    for key, name, kind, geometry in _ZONES:
        zone_ids[key] = await conn.fetchval(
            "INSERT INTO zones (name, kind, geometry, demo_key) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (demo_key) DO UPDATE SET geometry = EXCLUDED.geometry RETURNING id",
            name,
            kind,
            geometry,
            f"zone:{key}",
        )
    today = now.astimezone(tz).date()
    Step = tuple[str, str, float | None, str | None]  # zone, state, hours ago, reason
    plan: dict[str, list[Step]] = {
        "brigade-1": [
            ("block-a", "done", 3.0, None),
            ("block-b", "started", 0.7, None),
            ("block-c", "planned", None, None),
        ],
        "brigade-2": [("block-d", "blocked", 1.5, "Gate closed, no water at the hydrant")],
    }
    for number, (key, tasks) in enumerate(plan.items(), start=1):
        brigade_id = await conn.fetchval(
            "INSERT INTO brigades (name, district, created_by, demo_key) "
            "VALUES ($1, $2, 'demo-data', $3) "
            "ON CONFLICT (demo_key) DO UPDATE SET district = EXCLUDED.district RETURNING id",
            f"{PREFIX}Brigade {number}",
            DISTRICT,
            f"brigade:{key}",
        )
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM brigade_tasks WHERE brigade_id = $1 AND day = $2)",
            brigade_id,
            today,
        ):
            continue
        for position, (zone_key, state, hours_ago, reason) in enumerate(tasks, start=1):
            area = next(z[3] for z in _ZONES if z[0] == zone_key)
            name = next(z[1] for z in _ZONES if z[0] == zone_key)
            started = now - timedelta(hours=hours_ago) if hours_ago is not None else None
            finished = None
            if started is not None and state in ("done", "blocked"):
                finished = started + timedelta(minutes=50)
            track = _lanes(area, 24 if state == "done" else 4) if state != "planned" else []
            share = coverage(area, [track], 20.0) if state == "done" else None
            task_id = await conn.fetchval(
                "INSERT INTO brigade_tasks (brigade_id, day, position, method, zone_id, "
                "area_name, area, state, started_at, finished_at, blocked_reason, coverage, "
                "created_by) VALUES ($1, $2, $3, 'surface', $4, $5, $6, $7, $8, $9, $10, $11, "
                "'demo-data') RETURNING id",
                brigade_id,
                today,
                position,
                zone_ids[zone_key],
                name,
                json.dumps(area),
                state,
                started,
                finished,
                reason,
                share,
            )
            if started is not None and track:
                step = timedelta(minutes=40) / len(track)
                await conn.executemany(
                    "INSERT INTO brigade_fixes (task_id, tg_user_id, message_id, fixed_at, "
                    "latitude, longitude, accuracy) VALUES ($1, 0, 1, $2, $3, $4, 8) "
                    "ON CONFLICT DO NOTHING",
                    [
                        (task_id, started + i * step, lat, lon)
                        for i, (lon, lat) in enumerate(track)
                    ],
                )
    await _load_calls(conn, now)


async def _load_calls(conn: Connection, now: datetime) -> None:
    """A week of calls: about 40 a day over the city, and two clusters of six."""
    rng = random.Random(103)  # noqa: S311 - made-up calls, the same at every load
    calls = []
    for _ in range(7 * 40):
        at = now - timedelta(days=7 * rng.random())
        calls.append((at, 43.20 + 0.09 * rng.random(), 76.85 + 0.15 * rng.random()))
    for c, (lat, lon) in enumerate(CLUSTERS):
        start = now - timedelta(days=5 - 3 * c)
        for i in range(6):
            calls.append(
                (
                    start + timedelta(hours=7 * i),
                    lat + rng.uniform(-0.0003, 0.0003),
                    lon + rng.uniform(-0.0003, 0.0003),
                )
            )
    rows = []
    for n, (at, lat, lon) in enumerate(calls):
        taken = n % 3 == 0
        placed = at + timedelta(minutes=rng.randint(25, 110)) if taken else None
        rows.append(
            (
                f"DEMO-{n:04d}",
                at,
                lat,
                lon,
                rng.choice(("J06.9", "J18.9", "U07.1", "J20.9")),
                "hospital" if taken else rng.choice(("on_site", "on_site", "refused")),
                HOSPITALS[n % 2] if taken else None,
                placed if placed is None or placed <= now else now,
                f"call:{n}",
            )
        )
    await conn.executemany(
        "INSERT INTO ambulance_calls (call_id, called_at, latitude, longitude, code, outcome, "
        "hospital, placed_at, system, source, demo_key) VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8, $10, 'demo', $9) ON CONFLICT DO NOTHING",
        [(*row, SYSTEM) for row in rows],
    )
