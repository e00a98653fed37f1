"""The mobile operators' aggregates (issue 22 §2) as the panel shows them: subscribers
away from their usual night location per sector, by day and by hour of day (the peak
hours), and per sector over the sectors' shapes for the choropleth. From the roll-ups."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.feeds.specs import FEEDS
from services.rollups import Rollups

METRIC = FEEDS["operators"].metric("away")


@dataclass(frozen=True)
class SectorShape:
    name: str
    rings: list[list[tuple[float, float]]]  # (longitude, latitude) rings of its polygons


@dataclass(frozen=True)
class OperatorPicture:
    days: list[date]
    by_day_hour: dict[str, list[int]]  # "24 Apr" -> 24 counts (city time)
    by_sector: list[tuple[str, int]]  # the window's total per sector, most first
    sectors: list[SectorShape]
    peak_hours: list[int]  # hours of day, busiest first

    @property
    def total(self) -> int:
        return sum(n for _, n in self.by_sector)


def _rings(geometry: dict[str, Any]) -> list[list[tuple[float, float]]]:
    coordinates = geometry.get("coordinates") or []
    polygons = coordinates if geometry.get("type") == "MultiPolygon" else [coordinates]
    rings = []
    for polygon in polygons:
        for ring in polygon[:1]:  # the outer ring; holes are not drawn
            rings.append([(float(x), float(y)) for x, y, *_ in ring])
    return rings


async def zone_shapes(rollups: Rollups, kind: str) -> list[SectorShape]:
    """The outlines of the zones of a kind in force (sectors, districts), for a map."""
    rows = await rollups.pool.fetch(
        "SELECT name, geometry FROM zones WHERE kind = $1 AND valid_until IS NULL ORDER BY name",
        kind,
    )
    shapes = []
    for row in rows:
        geometry = row["geometry"]
        if isinstance(geometry, str):
            geometry = json.loads(geometry)
        shapes.append(SectorShape(row["name"], _rings(geometry)))
    return shapes


def hour_grid(
    tz: ZoneInfo, hours: list[datetime], by_key: dict[str, list[int]]
) -> dict[str, list[int]]:
    """Hourly counts by key as key -> 24 counts by hour of day in the city's time."""
    grid: dict[str, list[int]] = {}
    for key, values in by_key.items():
        row = grid.setdefault(key, [0] * 24)
        for hour, value in zip(hours, values, strict=True):
            row[hour.astimezone(tz).hour] += value
    return grid


async def operator_picture(rollups: Rollups, today: date, days: int = 14) -> OperatorPicture:
    """The last ``days`` city days up to ``today``."""
    tz = rollups.tz
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=tz)
    until = since + timedelta(days=days)
    hours, by_sector_hourly = await rollups.hourly(METRIC, since, until)
    day_list = [first + timedelta(days=i) for i in range(days)]
    grid = {d.strftime("%d %b"): [0] * 24 for d in day_list}
    by_hour = [0] * 24
    for values in by_sector_hourly.values():
        for hour, value in zip(hours, values, strict=True):
            local = hour.astimezone(tz)
            grid[local.strftime("%d %b")][local.hour] += value
            by_hour[local.hour] += value
    totals = sorted(
        ((sector, sum(values)) for sector, values in by_sector_hourly.items()),
        key=lambda kv: -kv[1],
    )
    shapes = await zone_shapes(rollups, "sector")
    peaks = sorted((h for h in range(24) if by_hour[h]), key=lambda h: -by_hour[h])
    return OperatorPicture(day_list, grid, [kv for kv in totals if kv[1]], shapes, peaks[:3])
