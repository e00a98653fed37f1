"""Brigades' plain values, refusals, the drawn-area check and the task query every part
reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from shapely.geometry import shape

from geofence.distance import distance_m
from services.db import Connection, from_row
from services.errors import Refusal

METHODS = ("surface", "indoor", "vehicle")
INVITE_TTL = timedelta(days=7)
MOVED_METRES = 25.0  # closer than this to the last fix is standing still (GPS jitter)


class BrigadeError(Refusal):
    """A refusal; ``code`` is the text key (``brigade.*``) that explains it."""


@dataclass(frozen=True)
class Brigade:
    id: int
    name: str
    district: str
    members: int = 0


@dataclass(frozen=True)
class Task:
    id: int
    brigade_id: int
    brigade: str
    district: str
    day: date
    position: int
    method: str
    zone_id: int | None
    area_name: str
    area: dict[str, Any]
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    blocked_reason: str | None
    coverage: float | None


@dataclass(frozen=True)
class Watch:
    """A panel line about a brigade at work: ``still`` (no move for the set minutes) or
    ``outside`` (last seen outside its task's area)."""

    brigade: str
    task_id: int
    area_name: str
    kind: str
    since: datetime | None


@dataclass(frozen=True)
class DistrictDay:
    district: str
    day: date
    done: int
    blocked: int
    coverage: float | None  # mean coverage of the tasks done that day


def geometry_of(raw: Any) -> dict[str, Any]:
    """A GeoJSON geometry as stored (jsonb comes as text or as a decoded value)."""
    value = json.loads(raw) if isinstance(raw, str) else raw
    assert isinstance(value, dict)
    return value


def brigade_of_row(row: asyncpg.Record) -> Brigade:
    return Brigade(row["id"], row["name"], row["district"])


def task_of_row(row: asyncpg.Record) -> Task:
    return from_row(Task, row, area=geometry_of(row["area"]))


def check_area(area: Any) -> dict[str, Any]:
    """A drawn area: a GeoJSON LineString or Polygon in longitude/latitude, valid, of at
    most 500 points and within 20 km; BrigadeError("brigade.area") otherwise."""
    try:
        if not isinstance(area, dict) or area.get("type") not in ("LineString", "Polygon"):
            raise ValueError
        geometry = shape(area)
        if geometry.is_empty or not geometry.is_valid:
            raise ValueError
        points = len(geometry.coords) if area["type"] == "LineString" else len(
            geometry.exterior.coords
        )  # fmt: skip
        west, south, east, north = geometry.bounds
        if points > 500 or not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ValueError
        if distance_m(south, west, north, east) > 20_000:
            raise ValueError
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BrigadeError("brigade.area") from None
    return {"type": area["type"], "coordinates": area["coordinates"]}


async def task_by_id(conn: Connection, task_id: int) -> Task:
    row = await conn.fetchrow(TASK_BY_ID, task_id)
    assert row is not None
    return task_of_row(row)


TASKS = """
SELECT t.id, t.brigade_id, b.name AS brigade, b.district, t.day, t.position, t.method,
       t.zone_id, t.area_name, t.area, t.state, t.started_at, t.finished_at, t.blocked_reason,
       t.coverage
  FROM brigade_tasks t JOIN brigades b ON b.id = t.brigade_id"""
TASK_BY_ID = f"{TASKS} WHERE t.id = $1"
