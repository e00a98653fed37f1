"""The Map page's feed layers (issue 22 §2, §3): the mobile operators' subscribers away
at night per sector and the three lines' calls per district, over a range of city days,
as choropleths over the sectors and districts in force. From the daily roll-ups."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from services.feeds.calls import METRIC as CALLS_METRIC
from services.feeds.operators import METRIC as AWAY_METRIC
from services.feeds.specs import LINES
from services.map import feature_collection
from services.rollups import Rollups


async def _shapes(rollups: Rollups, kind: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await rollups.pool.fetch(
        "SELECT name, geometry FROM zones WHERE kind = $1 AND valid_until IS NULL ORDER BY name",
        kind,
    )
    return [
        (r["name"], json.loads(r["geometry"]) if isinstance(r["geometry"], str) else r["geometry"])
        for r in rows
    ]


def _choropleth(
    shapes: list[tuple[str, dict[str, Any]]], values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return feature_collection(
        [
            {"type": "Feature", "geometry": geometry, "properties": {"name": name, **values[name]}}
            for name, geometry in shapes
            if name in values
        ]
    )


async def feed_layers(rollups: Rollups, first: date, last: date) -> dict[str, Any]:
    """Both layers from ``first`` to ``last`` (city days, both included): each sector's
    subscriber-hours away (``away``) and each district's calls, in all and per line
    (``calls``, ``lines``). Counts whose sector or district has no shape in force are
    summed as ``unmapped``, so the map never hides them silently."""
    daily = await rollups.daily([AWAY_METRIC, CALLS_METRIC], first, last)
    away = {sector: {"away": sum(values)} for sector, values in daily[AWAY_METRIC].by_key.items()}
    calls: dict[str, dict[str, Any]] = {}
    for key, values in daily[CALLS_METRIC].by_key.items():
        line, _, district = key.partition("|")
        mine = calls.setdefault(district, {"calls": 0, "lines": dict.fromkeys(LINES, 0)})
        mine["calls"] += sum(values)
        mine["lines"][line] = mine["lines"].get(line, 0) + sum(values)
    sectors, districts = await _shapes(rollups, "sector"), await _shapes(rollups, "district")
    mapped_sectors = {name for name, _ in sectors}
    mapped_districts = {name for name, _ in districts}
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "lines": list(LINES),
        "operators": _choropleth(sectors, away),
        "calls": _choropleth(districts, calls),
        "unmapped": {
            "away": sum(v["away"] for k, v in away.items() if k not in mapped_sectors),
            "calls": sum(v["calls"] for k, v in calls.items() if k not in mapped_districts),
        },
    }
