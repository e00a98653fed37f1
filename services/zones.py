"""Zones with versions: importing GeoJSON as new versions, and which zones contained a
point at a given moment (answered through geofence's spatial index)."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geofence.zones import ZoneIndex, ZoneShape
from services.audit import audited_change, record


class ZoneImportError(ValueError):
    pass


@dataclass(frozen=True)
class ZoneImport:
    added: int
    replaced: int
    unchanged: int


@dataclass(frozen=True)
class ZoneHit:
    id: int
    name: str
    kind: str
    version: int


@dataclass
class ZoneSummary:
    name: str
    version: int
    points: dict[str, int]  # kind of point -> how many
    residents: int


@dataclass(frozen=True)
class _InForce:
    index: ZoneIndex
    zones: dict[int, ZoneHit]


class ZoneService:
    def __init__(self, pool: asyncpg.Pool, *, cached_indexes: int = 8) -> None:
        self.pool = pool
        self._indexes: OrderedDict[tuple[int, ...], _InForce] = OrderedDict()
        self._cached = cached_indexes

    async def import_shapes(
        self, shapes: list[ZoneShape], *, valid_from: datetime, actor: str, source: str
    ) -> ZoneImport:
        """Each shape becomes the zone's new version from ``valid_from`` (the version in
        force until then ends there); an unchanged shape adds nothing. All or nothing."""
        added = replaced = unchanged = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for zone in shapes:
                current = await conn.fetchrow(
                    "SELECT id, version, valid_from, geometry FROM zones "
                    "WHERE kind = $1 AND name = $2 AND valid_until IS NULL FOR UPDATE",
                    zone.kind,
                    zone.name,
                )
                version = 1
                if current is not None:
                    if current["geometry"] == zone.geojson:
                        unchanged += 1
                        continue
                    if current["valid_from"] >= valid_from:
                        raise ZoneImportError(
                            f"{zone.kind} {zone.name!r}: the version in force began "
                            f"{current['valid_from']:%Y-%m-%d %H:%M}; a new one must begin later"
                        )
                    await conn.execute(
                        "UPDATE zones SET valid_until = $2 WHERE id = $1",
                        current["id"],
                        valid_from,
                    )
                    version = current["version"] + 1
                    replaced += 1
                else:
                    added += 1
                await conn.execute(
                    "INSERT INTO zones (name, kind, geometry, version, valid_from, source) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    zone.name,
                    zone.kind,
                    zone.geojson,
                    version,
                    valid_from,
                    source,
                )
            await record(
                conn,
                actor=actor,
                action="zones.import",
                subject=source,
                details={"added": added, "replaced": replaced, "unchanged": unchanged},
            )
        return ZoneImport(added, replaced, unchanged)

    async def lift(self, kind: str, name: str, *, at: datetime, actor: str) -> bool:
        """End the version in force from ``at`` (a quarantine zone lifted); False when no
        version of that zone is in force then."""
        return await audited_change(
            self.pool,
            "UPDATE zones SET valid_until = $3 WHERE kind = $1 AND name = $2"
            " AND valid_from < $3 AND (valid_until IS NULL OR valid_until > $3)"
            " RETURNING id",
            kind,
            name,
            at,
            actor=actor,
            action="zones.lift",
            subject=f"{kind}:{name}",
            details={"at": at.isoformat()},
        )

    async def zones_at(self, longitude: float, latitude: float, at: datetime) -> list[ZoneHit]:
        """The zones (in the versions in force at ``at``) that contain the point."""
        in_force = await self._in_force(at)
        return [in_force.zones[i] for i in in_force.index.containing(longitude, latitude)]

    async def points_per_zone(self, kind: str, at: datetime) -> list[ZoneSummary]:
        """Points of interest per zone of ``kind`` (in the versions in force at ``at``),
        located all at once through the spatial index."""
        in_force = await self._in_force(at)
        points = await self.pool.fetch(
            "SELECT kind, longitude, latitude, coalesce(residents, 0) AS residents"
            " FROM points_of_interest"
        )
        summaries = {
            zone_id: ZoneSummary(hit.name, hit.version, {}, 0)
            for zone_id, hit in in_force.zones.items()
            if hit.kind == kind
        }
        if points and summaries:
            point_index, zone_ids = in_force.index.locate(
                (p["longitude"] for p in points), (p["latitude"] for p in points)
            )
            for i, zone_id in zip(point_index.tolist(), zone_ids.tolist(), strict=True):
                summary = summaries.get(zone_id)
                if summary is None:
                    continue
                point = points[i]
                summary.points[point["kind"]] = summary.points.get(point["kind"], 0) + 1
                summary.residents += point["residents"]
        return sorted(summaries.values(), key=lambda s: s.name)

    async def features_in_force(self, at: datetime) -> list[dict[str, object]]:
        """The zone versions in force at ``at`` as GeoJSON features (for the map)."""
        rows = await self.pool.fetch(
            "SELECT id, name, kind, version, geometry FROM zones"
            " WHERE tstzrange(valid_from, valid_until) @> $1::timestamptz ORDER BY kind, name",
            at,
        )
        return [
            {
                "type": "Feature",
                "geometry": json.loads(r["geometry"])
                if isinstance(r["geometry"], str)
                else r["geometry"],
                "properties": {
                    "id": r["id"],
                    "name": r["name"],
                    "kind": r["kind"],
                    "version": r["version"],
                },
            }
            for r in rows
        ]

    async def _in_force(self, at: datetime) -> _InForce:
        ids = await self.pool.fetch(
            "SELECT id FROM zones WHERE tstzrange(valid_from, valid_until) @> $1::timestamptz "
            "ORDER BY id",
            at,
        )
        key = tuple(r["id"] for r in ids)
        cached = self._indexes.get(key)
        if cached is not None:
            self._indexes.move_to_end(key)
            return cached
        rows = await self.pool.fetch(
            "SELECT id, name, kind, version, geometry FROM zones WHERE id = ANY($1::bigint[])",
            list(key),
        )
        shapes: list[tuple[int, BaseGeometry]] = []
        for row in rows:
            geometry = row["geometry"]
            shapes.append(
                (row["id"], shape(json.loads(geometry) if isinstance(geometry, str) else geometry))
            )
        built = _InForce(
            ZoneIndex(shapes),
            {r["id"]: ZoneHit(r["id"], r["name"], r["kind"], r["version"]) for r in rows},
        )
        self._indexes[key] = built
        while len(self._indexes) > self._cached:
            self._indexes.popitem(last=False)
        return built
