"""Ambulance (103) calls for respiratory infection: the dispatch systems that push them
(a key each, as laboratories), their import (the register importer's validation, report
and duplicate rules), clusters of calls close in space and time (geofence/clusters.py),
found incrementally after each import and by a job, the hospitals' figures and the map.

A new cluster is an alert: it shows on the panel until an epidemiologist acknowledges it,
and, when ``alert_chat_id`` is set, goes to that chat through the outbox (the doctor bot,
at Telegram's rates). Calls carry no name, only the dispatch system's call id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import asyncpg
import numpy as np

from geofence.clusters import Assignment, ClusterRule, assign, project
from services.api_keys import add_key_holder, key_holder
from services.audit import record
from services.db import Connection
from services.map import coarse, feature_collection, point_feature
from services.outbox import enqueue
from services.registry import RegistryImporter
from services.registry_rows import ImportReport, Rejected

log = logging.getLogger(__name__)
_LOCK = 0x61_6D_62_75  # "ambu": one cluster computation at a time, whichever worker
ALERT_BOT = "doctor"
ALERT_KIND = "ambulance_cluster"


class AmbulanceError(Exception):
    pass


@dataclass(frozen=True)
class DispatchSystem:
    id: int
    name: str


@dataclass(frozen=True)
class Cluster:
    id: int
    created_at: datetime
    latitude: float
    longitude: float
    calls: int
    first_call_at: datetime
    last_call_at: datetime
    acknowledged_by: str | None
    per_day: list[tuple[date, int]]
    addresses: list[str]


@dataclass(frozen=True)
class HospitalDay:
    hospital: str
    day: date
    calls: int


@dataclass(frozen=True)
class Placement:
    """Minutes from the call to the placement in hospital, over a period."""

    calls: int
    median_minutes: float | None
    p90_minutes: float | None


@dataclass(frozen=True)
class ClusterRun:
    fresh: int
    new: list[int]
    merged: int
    seconds: float


class AmbulanceService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        importer: RegistryImporter,
        *,
        rule: ClusterRule | None = None,
        alert_chat_id: int | None = None,
    ) -> None:
        self.pool = pool
        self.importer = importer
        self.rule = rule or ClusterRule()
        self.alert_chat_id = alert_chat_id

    async def add_system(self, name: str) -> str:
        """Register a dispatch system; returns its API key (the only time it is seen)."""
        return await add_key_holder(
            self.pool,
            "ambulance_systems",
            "amb_",
            name,
            noun="dispatch system",
            error=AmbulanceError,
        )

    async def authenticate(self, key: str) -> DispatchSystem | None:
        row = await key_holder(self.pool, "ambulance_systems", key)
        return DispatchSystem(row["id"], row["name"]) if row else None

    async def import_calls(
        self,
        rows: Iterable[tuple[int, list[str] | None]],
        *,
        source: str,
        actor: str,
        about: dict[str, Any] | None = None,
        refused: Iterable[Rejected] = (),
    ) -> ImportReport:
        """Validate and store calls (the register importer's rules), then cluster them."""
        report = await self.importer.import_rows(
            "ambulance", rows, source=source, actor=actor, about=about, refused=refused
        )
        if report.accepted:
            await self.update_clusters()
        return report

    async def update_clusters(self) -> ClusterRun:
        """Cluster the calls not looked at yet, against the calls near them in time; one
        transaction, one computation at a time (an advisory lock)."""
        started = asyncio.get_running_loop().time()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            span = await conn.fetchrow(
                "SELECT min(called_at) AS first, max(called_at) AS last, count(*) AS fresh "
                "FROM ambulance_calls WHERE clustered_at IS NULL"
            )
            assert span is not None
            if not span["fresh"]:
                return ClusterRun(0, [], 0, 0.0)
            reach = timedelta(seconds=2 * self.rule.seconds)
            rows = await conn.fetch(
                "SELECT id, latitude, longitude, extract(epoch FROM called_at) AS t, "
                "coalesce(cluster_id, 0) AS cluster, clustered_at IS NULL AS fresh "
                "FROM ambulance_calls WHERE called_at BETWEEN $1 AND $2",
                span["first"] - reach,
                span["last"] + reach,
            )
            ids = np.fromiter((r["id"] for r in rows), np.int64, len(rows))
            known = np.fromiter((r["cluster"] for r in rows), np.int64, len(rows))
            fresh = np.fromiter((r["fresh"] for r in rows), np.bool_, len(rows))
            lat = np.fromiter((r["latitude"] for r in rows), np.float64, len(rows))
            lon = np.fromiter((r["longitude"] for r in rows), np.float64, len(rows))
            t = np.fromiter((float(r["t"]) for r in rows), np.float64, len(rows))
            result = await asyncio.to_thread(_assign, lat, lon, t, known, fresh, self.rule)
            new_ids = await self._store(conn, ids, known, fresh, result)
        run = ClusterRun(
            int(fresh.sum()),
            new_ids,
            len(result.merged),
            asyncio.get_running_loop().time() - started,
        )
        if new_ids:
            log.info("ambulance: %d new cluster(s) of calls", len(new_ids))
        return run

    async def _store(
        self,
        conn: Connection,
        ids: np.ndarray,
        known: np.ndarray,
        fresh: np.ndarray,
        result: Assignment,
    ) -> list[int]:
        labels: dict[int, int] = {}
        if result.new:
            made = await conn.fetch(
                "INSERT INTO ambulance_clusters (latitude, longitude, calls, first_call_at, "
                "last_call_at) SELECT 0, 0, 0, now(), now() FROM generate_series(1, $1) "
                "RETURNING id",
                len(result.new),
            )
            labels = {label: row["id"] for label, row in zip(result.new, made, strict=True)}
        cluster = np.array([labels.get(int(c), int(c)) for c in result.cluster], dtype=np.int64)
        changed = np.flatnonzero(cluster != known)
        if changed.size:
            await conn.execute(
                "UPDATE ambulance_calls a SET cluster_id = c.cluster FROM unnest($1::bigint[], "
                "$2::bigint[]) AS c(id, cluster) WHERE a.id = c.id",
                ids[changed].tolist(),
                cluster[changed].tolist(),
            )
        for old, kept in result.merged.items():
            await conn.execute(
                "UPDATE ambulance_clusters SET merged_into = $2, calls = 0 WHERE id = $1",
                old,
                kept,
            )
        await conn.execute(
            "UPDATE ambulance_calls SET clustered_at = now() WHERE id = ANY($1::bigint[])",
            ids[fresh].tolist(),
        )
        touched = sorted({int(c) for c in cluster[changed] if c > 0})
        await conn.execute(
            """
            UPDATE ambulance_clusters c SET latitude = s.latitude, longitude = s.longitude,
                   calls = s.calls, first_call_at = s.first, last_call_at = s.last
              FROM (SELECT cluster_id, avg(latitude) AS latitude, avg(longitude) AS longitude,
                           count(*) AS calls, min(called_at) AS first, max(called_at) AS last
                      FROM ambulance_calls WHERE cluster_id = ANY($1::bigint[])
                     GROUP BY cluster_id) s
             WHERE c.id = s.cluster_id
            """,
            touched,
        )
        new_ids = sorted(labels.values())
        for cluster_id in new_ids:
            await record(
                conn, actor="ambulance", action="ambulance.cluster", subject=str(cluster_id)
            )
            if self.alert_chat_id is not None:
                await self._alert(conn, cluster_id, self.alert_chat_id)
        return new_ids

    async def _alert(self, conn: Connection, cluster_id: int, chat_id: int) -> None:
        row = await conn.fetchrow(
            "SELECT calls, first_call_at, last_call_at, latitude, longitude "
            "FROM ambulance_clusters WHERE id = $1",
            cluster_id,
        )
        assert row is not None
        await enqueue(
            conn,
            bot=ALERT_BOT,
            chat_id=chat_id,
            kind=ALERT_KIND,
            params={
                "cluster": cluster_id,
                "calls": row["calls"],
                "first": row["first_call_at"].isoformat(),
                "last": row["last_call_at"].isoformat(),
                # the block, not the door: the cell's centre, as the map's violations
                "latitude": coarse(row["latitude"]),
                "longitude": coarse(row["longitude"]),
            },
            dedupe_key=f"ambulance-cluster:{cluster_id}",
        )

    async def clusters(self, tz: tzinfo, *, limit: int = 100) -> list[Cluster]:
        """Clusters in force (not merged), newest first, with their calls per day."""
        rows = await self.pool.fetch(
            "SELECT c.*, (SELECT array_agg(DISTINCT a.address) FILTER (WHERE a.address IS "
            "NOT NULL) FROM ambulance_calls a WHERE a.cluster_id = c.id) AS addresses "
            "FROM ambulance_clusters c WHERE merged_into IS NULL AND calls > 0 "
            "ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
        )
        days = await self.pool.fetch(
            "SELECT cluster_id, (called_at AT TIME ZONE $2)::date AS day, count(*) AS calls "
            "FROM ambulance_calls WHERE cluster_id = ANY($1::bigint[]) GROUP BY 1, 2 "
            "ORDER BY 1, 2",
            [r["id"] for r in rows],
            str(tz),
        )
        per_day: dict[int, list[tuple[date, int]]] = {}
        for d in days:
            per_day.setdefault(d["cluster_id"], []).append((d["day"], d["calls"]))
        return [
            Cluster(
                r["id"],
                r["created_at"],
                r["latitude"],
                r["longitude"],
                r["calls"],
                r["first_call_at"],
                r["last_call_at"],
                r["acknowledged_by"],
                per_day.get(r["id"], []),
                sorted(r["addresses"] or [])[:5],
            )
            for r in rows
        ]

    async def unacknowledged(self) -> int:
        count = await self.pool.fetchval(
            "SELECT count(*) FROM ambulance_clusters WHERE merged_into IS NULL AND calls > 0 "
            "AND acknowledged_at IS NULL"
        )
        return int(count)

    async def acknowledge(self, cluster_id: int, by: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE ambulance_clusters SET acknowledged_at = now(), acknowledged_by = $2 "
                "WHERE id = $1 AND acknowledged_at IS NULL RETURNING id",
                cluster_id,
                by,
            )
            if done:
                await record(
                    conn, actor=by, action="ambulance.acknowledge", subject=str(cluster_id)
                )
        return bool(done)

    async def hospital_days(self, first: date, last: date, tz: tzinfo) -> list[HospitalDay]:
        """Calls taken to each hospital, per day of placement (the city's days)."""
        rows = await self.pool.fetch(
            "SELECT hospital, (placed_at AT TIME ZONE $3)::date AS day, count(*) AS calls "
            "FROM ambulance_calls WHERE outcome = 'hospital' "
            "AND (placed_at AT TIME ZONE $3)::date BETWEEN $1 AND $2 "
            "GROUP BY 1, 2 ORDER BY 2 DESC, 3 DESC, 1",
            first,
            last,
            str(tz),
        )
        return [HospitalDay(r["hospital"], r["day"], r["calls"]) for r in rows]

    async def placement(self, first: date, last: date, tz: tzinfo) -> Placement:
        row = await self.pool.fetchrow(
            "SELECT count(*) AS calls, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM placed_at - "
            "called_at) / 60) AS median, "
            "percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM placed_at - "
            "called_at) / 60) AS p90 "
            "FROM ambulance_calls WHERE outcome = 'hospital' "
            "AND (called_at AT TIME ZONE $3)::date BETWEEN $1 AND $2",
            first,
            last,
            str(tz),
        )
        assert row is not None
        return Placement(row["calls"], row["median"], row["p90"])

    async def layer(self, first: date, last: date, tz: tzinfo) -> dict[str, Any]:
        """The map's ambulance layer for the city's days ``first`` to ``last``: the calls
        (points), their counts per grid cell (the heat layer) and the clusters."""
        calls = await self.pool.fetch(
            "SELECT latitude, longitude, called_at, code, outcome, cluster_id "
            "FROM ambulance_calls WHERE (called_at AT TIME ZONE $3)::date BETWEEN $1 AND $2 "
            "ORDER BY called_at LIMIT 20000",
            first,
            last,
            str(tz),
        )
        clusters = await self.pool.fetch(
            "SELECT id, latitude, longitude, calls, first_call_at, last_call_at, "
            "acknowledged_at IS NOT NULL AS acknowledged FROM ambulance_clusters "
            "WHERE merged_into IS NULL AND calls > 0 "
            "AND (last_call_at AT TIME ZONE $3)::date >= $1 "
            "AND (first_call_at AT TIME ZONE $3)::date <= $2",
            first,
            last,
            str(tz),
        )
        heat: dict[tuple[float, float], int] = {}
        for c in calls:
            cell = (coarse(c["latitude"]), coarse(c["longitude"]))
            heat[cell] = heat.get(cell, 0) + 1
        return {
            "calls": feature_collection(
                [
                    point_feature(
                        c["longitude"],
                        c["latitude"],
                        {
                            "time": c["called_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                            "code": c["code"],
                            "outcome": c["outcome"].replace("_", " "),
                            "cluster": c["cluster_id"],
                        },
                    )
                    for c in calls
                ]
            ),
            "heat": feature_collection(
                [point_feature(lon, lat, {"calls": n}) for (lat, lon), n in sorted(heat.items())]
            ),
            "clusters": feature_collection(
                [
                    point_feature(
                        c["longitude"],
                        c["latitude"],
                        {
                            "cluster": c["id"],
                            "calls": c["calls"],
                            "from": c["first_call_at"].astimezone(tz).strftime("%Y-%m-%d"),
                            "to": c["last_call_at"].astimezone(tz).strftime("%Y-%m-%d"),
                            "acknowledged": c["acknowledged"],
                        },
                    )
                    for c in clusters
                ]
            ),
        }

    async def purge(self, older_than: timedelta) -> int:
        """Delete calls older than the retention period, and clusters left empty."""
        async with self.pool.acquire() as conn, conn.transaction():
            result = await conn.execute(
                "DELETE FROM ambulance_calls WHERE called_at < $1", datetime.now(UTC) - older_than
            )
            await conn.execute(
                "DELETE FROM ambulance_clusters c WHERE NOT EXISTS (SELECT 1 FROM "
                "ambulance_calls a WHERE a.cluster_id = c.id)"
            )
        return int(result.split()[-1])


def _assign(
    lat: np.ndarray,
    lon: np.ndarray,
    t: np.ndarray,
    known: np.ndarray,
    fresh: np.ndarray,
    rule: ClusterRule,
) -> Assignment:
    x, y = project(lat, lon)
    return assign(x, y, t, known, fresh, rule)
