"""What the panel's Map shows, as GeoJSON: zones and sectors in force, checkpoints,
venues with how many people are inside now, and open quarantine violations by case code.
A violation is placed at the centre of the grid cell (about 300 m) holding the patient's
last believed position, or home before any fix: enough to see where violations gather,
never a household's door. Never a name or an IIN; the violations layer is only for roles
that may see it."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

import asyncpg

from services.zones import ZoneService

Feature = dict[str, Any]
CELL_DEGREES = 0.003  # about 330 m north-south, 240 m east-west in Almaty


def coarse(degrees: float) -> float:
    """The centre of the grid cell holding a coordinate."""
    return round((math.floor(degrees / CELL_DEGREES) + 0.5) * CELL_DEGREES, 5)


def point_feature(longitude: float, latitude: float, properties: dict[str, Any]) -> Feature:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [longitude, latitude]},
        "properties": properties,
    }


def feature_collection(features: list[Feature]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


class MapLayers:
    def __init__(self, pool: asyncpg.Pool, zones: ZoneService) -> None:
        self.pool = pool
        self.zones = zones

    async def layers(self, at: datetime, *, violations: bool, tz: tzinfo) -> dict[str, Any]:
        venues = await self.pool.fetch(
            "SELECT v.id, v.name, v.address, v.latitude, v.longitude, v.capacity,"
            " (SELECT count(*) FROM open_stays o WHERE o.venue_id = v.id) AS inside"
            " FROM venues v WHERE v.latitude IS NOT NULL AND v.longitude IS NOT NULL"
        )
        checkpoints = await self.pool.fetch(
            "SELECT id, name, latitude, longitude, zone_kind, zone_name, register"
            " FROM checkpoints ORDER BY name"
        )
        result: dict[str, Any] = {
            "zones": feature_collection(await self.zones.features_in_force(at)),
            "checkpoints": feature_collection(
                [
                    point_feature(
                        c["longitude"],
                        c["latitude"],
                        {
                            "name": c["name"],
                            "zone": f"{c['zone_kind']} {c['zone_name']}",
                            "register": c["register"],
                        },
                    )
                    for c in checkpoints
                ]
            ),
            "venues": feature_collection(
                [
                    point_feature(
                        v["longitude"],
                        v["latitude"],
                        {
                            "name": v["name"],
                            "address": v["address"],
                            "capacity": v["capacity"],
                            "inside": v["inside"],
                        },
                    )
                    for v in venues
                ]
            ),
        }
        if violations:
            rows = await self.pool.fetch(
                "SELECT e.id, e.kind, e.opened_at, e.acknowledged_at IS NOT NULL AS acknowledged,"
                " c.code, c.district,"
                " coalesce(c.last_lat, c.home_lat) AS latitude,"
                " coalesce(c.last_lon, c.home_lon) AS longitude"
                " FROM quarantine_episodes e JOIN quarantine_cases c ON c.id = e.case_id"
                " WHERE e.closed_at IS NULL ORDER BY e.opened_at"
            )
            result["violations"] = feature_collection(
                [
                    point_feature(
                        coarse(r["longitude"]),
                        coarse(r["latitude"]),
                        {
                            "alert": r["id"],
                            "case": r["code"],
                            "district": r["district"],
                            "kind": r["kind"].replace("_", " "),
                            "since": r["opened_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                            "acknowledged": r["acknowledged"],
                        },
                    )
                    for r in rows
                    if r["latitude"] is not None
                ]
            )
        return result
