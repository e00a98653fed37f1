"""Disinfection brigades: planning (the panel's `operations` role), work in the field (the
staff bot, role `brigade`), clean zones and monitoring.

A brigade's day is a list of tasks in order, each an area (a zone that exists, or a line
or polygon drawn on the map) and a method. A member starts a task, shares live location
while working (the fixes are the task's track), marks it done with at least one photo,
or blocked with a reason. A done task's area is *clean* for ``clean_hours``; its coverage
is the share of the area within half the spraying width of the tracks
(geofence/coverage.py), so walking one street of a large sector is not a clean sector.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from shapely.geometry import shape

from geofence.coverage import contains, coverage
from geofence.distance import distance_m
from services.audit import record
from services.db import Connection

METHODS = ("surface", "indoor", "vehicle")
INVITE_TTL = timedelta(days=7)
MOVED_METRES = 25.0  # closer than this to the last fix is standing still (GPS jitter)


class BrigadeError(Exception):
    """A refusal; ``code`` is the text key (``brigade.*``) that explains it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


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


def _geometry(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    assert isinstance(value, dict)
    return value


def _task(row: asyncpg.Record) -> Task:
    return Task(
        row["id"],
        row["brigade_id"],
        row["brigade"],
        row["district"],
        row["day"],
        row["position"],
        row["method"],
        row["zone_id"],
        row["area_name"],
        _geometry(row["area"]),
        row["state"],
        row["started_at"],
        row["finished_at"],
        row["blocked_reason"],
        row["coverage"],
    )


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


class BrigadeService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clean_hours: float = 24,
        spray_width_m: float = 20,
        still_minutes: float = 30,
        clean_coverage: float = 0.6,
        outside_margin_m: float = 100,
    ) -> None:
        self.pool = pool
        self.clean_hours = clean_hours
        self.spray_width_m = spray_width_m
        self.still_minutes = still_minutes
        self.clean_coverage = clean_coverage
        self.outside_margin_m = outside_margin_m

    # Planning (the panel)

    async def create(self, name: str, district: str, *, by: str) -> Brigade:
        name, district = name.strip(), district.strip()
        if not 1 <= len(name) <= 100 or not 1 <= len(district) <= 100:
            raise BrigadeError("brigade.name")
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                brigade_id = await conn.fetchval(
                    "INSERT INTO brigades (name, district, created_by) VALUES ($1, $2, $3) "
                    "RETURNING id",
                    name,
                    district,
                    by,
                )
            except asyncpg.UniqueViolationError:
                raise BrigadeError("brigade.exists") from None
            await record(conn, actor=by, action="brigade.create", subject=str(brigade_id))
        return Brigade(brigade_id, name, district)

    async def brigades(self) -> list[Brigade]:
        rows = await self.pool.fetch(
            "SELECT b.id, b.name, b.district, count(m.tg_user_id) AS members FROM brigades b "
            "LEFT JOIN brigade_members m ON m.brigade_id = b.id GROUP BY b.id ORDER BY b.name"
        )
        return [Brigade(r["id"], r["name"], r["district"], r["members"]) for r in rows]

    async def invite(self, brigade_id: int, *, by: str) -> str:
        """A one-use invite (7 days) to join the brigade in the staff bot."""
        token = "brg_" + secrets.token_urlsafe(16)
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO brigade_invites (token, brigade_id, created_by, expires_at) "
                    "VALUES ($1, $2, $3, now() + $4::interval)",
                    token,
                    brigade_id,
                    by,
                    INVITE_TTL,
                )
            except asyncpg.ForeignKeyViolationError:
                raise BrigadeError("brigade.not_found") from None
            await record(conn, actor=by, action="brigade.invite", subject=str(brigade_id))
        return token

    async def add_task(
        self,
        brigade_id: int,
        day: date,
        method: str,
        *,
        by: str,
        zone_id: int | None = None,
        area: Any = None,
        area_name: str = "",
    ) -> Task:
        """Append a task to the brigade's day: a zone in force, or a drawn area."""
        if method not in METHODS:
            raise BrigadeError("brigade.method")
        async with self.pool.acquire() as conn, conn.transaction():
            if zone_id is not None:
                zone = await conn.fetchrow(
                    "SELECT name, geometry FROM zones WHERE id = $1 AND valid_until IS NULL",
                    zone_id,
                )
                if zone is None:
                    raise BrigadeError("brigade.zone")
                geometry, name = _geometry(zone["geometry"]), zone["name"]
            else:
                geometry, name = check_area(area), area_name.strip()[:200] or "drawn area"
            task_id = await self._append(
                conn, brigade_id, day, method, zone_id, name, geometry, by
            )
            return await _task_by_id(conn, task_id)

    async def _append(
        self,
        conn: Connection,
        brigade_id: int,
        day: date,
        method: str,
        zone_id: int | None,
        name: str,
        geometry: dict[str, Any],
        by: str,
    ) -> int:
        # Locked: two planners appending to one brigade's day take positions in turn.
        locked = await conn.fetchval(
            "SELECT id FROM brigades WHERE id = $1 FOR UPDATE", brigade_id
        )
        if locked is None:
            raise BrigadeError("brigade.not_found")
        task_id: int = await conn.fetchval(
            "INSERT INTO brigade_tasks (brigade_id, day, position, method, zone_id, area_name, "
            "area, created_by) SELECT $1, $2, coalesce(max(position), 0) + 1, $3, $4, $5, $6, "
            "$7 FROM brigade_tasks WHERE brigade_id = $1 AND day = $2 RETURNING id",
            brigade_id,
            day,
            method,
            zone_id,
            name,
            json.dumps(geometry),
            by,
        )
        await record(conn, actor=by, action="brigade.task", subject=str(task_id))
        return task_id

    async def plan_district(
        self, brigade_id: int, day: date, method: str, *, count: int, by: str
    ) -> list[Task]:
        """The brigade's district in one step: its sectors in force not planned that day,
        those not treated for the longest first (never treated before all), ``count``
        of them appended to the day in that order."""
        if method not in METHODS:
            raise BrigadeError("brigade.method")
        count = max(1, min(count, 100))
        async with self.pool.acquire() as conn, conn.transaction():
            brigade = await conn.fetchrow(
                "SELECT district FROM brigades WHERE id = $1", brigade_id
            )
            if brigade is None:
                raise BrigadeError("brigade.not_found")
            district = await conn.fetchrow(
                "SELECT geometry FROM zones WHERE kind = 'district' AND name = $1 "
                "AND valid_until IS NULL ORDER BY version DESC LIMIT 1",
                brigade["district"],
            )
            if district is None:
                raise BrigadeError("brigade.no_district")
            outline = shape(_geometry(district["geometry"]))
            sectors = await conn.fetch(_SECTORS_BY_AGE, day)
            picked = [
                s for s in sectors if outline.contains(shape(_geometry(s["geometry"])).centroid)
            ][:count]
            ids = []
            for sector in picked:
                ids.append(
                    await self._append(
                        conn,
                        brigade_id,
                        day,
                        method,
                        sector["id"],
                        sector["name"],
                        _geometry(sector["geometry"]),
                        by,
                    )
                )
            rows = await conn.fetch(
                f"{_TASKS} WHERE t.id = ANY($1::bigint[]) ORDER BY position", ids
            )
        return [_task(r) for r in rows]

    async def zones(self) -> tuple[list[str], list[tuple[int, str]]]:
        """The districts' names and the sectors (id, name) in force, for planning."""
        rows = await self.pool.fetch(
            "SELECT id, name, kind FROM zones WHERE kind IN ('district', 'sector') "
            "AND valid_until IS NULL ORDER BY name"
        )
        districts = sorted({r["name"] for r in rows if r["kind"] == "district"})
        return districts, [(r["id"], r["name"]) for r in rows if r["kind"] == "sector"]

    async def tasks(self, day: date) -> list[Task]:
        rows = await self.pool.fetch(f"{_TASKS} WHERE t.day = $1 ORDER BY b.name, t.position", day)
        return [_task(r) for r in rows]

    # The field (the staff bot)

    async def join(self, token: str, tg_user_id: int, full_name: str) -> Brigade:
        async with self.pool.acquire() as conn, conn.transaction():
            brigade_id = await conn.fetchval(
                "UPDATE brigade_invites SET used_by = $2, used_at = now() WHERE token = $1 "
                "AND used_by IS NULL AND expires_at > now() RETURNING brigade_id",
                token,
                tg_user_id,
            )
            if brigade_id is None:
                raise BrigadeError("brigade.invite_invalid")
            await conn.execute(
                "INSERT INTO brigade_members (tg_user_id, brigade_id, full_name) "
                "VALUES ($1, $2, $3) ON CONFLICT (tg_user_id) DO UPDATE "
                "SET brigade_id = EXCLUDED.brigade_id, joined_at = now()",
                tg_user_id,
                brigade_id,
                full_name[:100],
            )
            await record(conn, actor=f"tg:{tg_user_id}", action="brigade.join")
            row = await conn.fetchrow(
                "SELECT id, name, district FROM brigades WHERE id = $1", brigade_id
            )
        assert row is not None
        return Brigade(row["id"], row["name"], row["district"])

    async def brigade_of(self, tg_user_id: int) -> Brigade | None:
        row = await self.pool.fetchrow(
            "SELECT b.id, b.name, b.district FROM brigade_members m "
            "JOIN brigades b ON b.id = m.brigade_id WHERE m.tg_user_id = $1",
            tg_user_id,
        )
        return Brigade(row["id"], row["name"], row["district"]) if row else None

    async def tasks_of(self, tg_user_id: int, day: date) -> list[Task]:
        """The member's brigade's tasks of the day, in order."""
        rows = await self.pool.fetch(
            f"{_TASKS} JOIN brigade_members m ON m.brigade_id = t.brigade_id "
            "WHERE m.tg_user_id = $1 AND t.day = $2 ORDER BY t.position",
            tg_user_id,
            day,
        )
        return [_task(r) for r in rows]

    async def _members_task(
        self, conn: Connection, task_id: int, tg_user_id: int
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"{_TASKS} JOIN brigade_members m ON m.brigade_id = t.brigade_id "
            "WHERE t.id = $1 AND m.tg_user_id = $2 FOR UPDATE OF t",
            task_id,
            tg_user_id,
        )
        if row is None:
            raise BrigadeError("brigade.not_yours")
        return row

    async def start(self, task_id: int, tg_user_id: int) -> Task:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._members_task(conn, task_id, tg_user_id)
            if row["state"] == "done":
                raise BrigadeError("brigade.already_done")
            if row["state"] != "started":
                await conn.execute(
                    "UPDATE brigade_tasks SET state = 'started', started_at = now(), "
                    "blocked_reason = NULL WHERE id = $1",
                    task_id,
                )
                await record(
                    conn, actor=f"tg:{tg_user_id}", action="brigade.start", subject=str(task_id)
                )
            return await _task_by_id(conn, task_id)

    async def record_fix(
        self,
        tg_user_id: int,
        *,
        message_id: int,
        at: datetime,
        latitude: float,
        longitude: float,
        accuracy: float | None,
    ) -> int | None:
        """Add a live-location fix to the track of the member's started task; the task's
        id, or None when the member has no task started (the fix is not kept)."""
        task_id: int | None = await self.pool.fetchval(
            """
            WITH task AS (
                SELECT t.id FROM brigade_tasks t
                  JOIN brigade_members m ON m.brigade_id = t.brigade_id
                 WHERE m.tg_user_id = $1 AND t.state = 'started'
                 ORDER BY t.started_at DESC LIMIT 1
            ), added AS (
                INSERT INTO brigade_fixes (task_id, tg_user_id, message_id, fixed_at,
                                           latitude, longitude, accuracy)
                SELECT id, $1, $2, $3, $4, $5, $6 FROM task
                ON CONFLICT DO NOTHING
            )
            SELECT id FROM task
            """,
            tg_user_id,
            message_id,
            at,
            latitude,
            longitude,
            accuracy,
        )
        return task_id

    async def started_task(self, tg_user_id: int) -> Task | None:
        row = await self.pool.fetchrow(
            f"{_TASKS} JOIN brigade_members m ON m.brigade_id = t.brigade_id "
            "WHERE m.tg_user_id = $1 AND t.state = 'started' ORDER BY t.started_at DESC LIMIT 1",
            tg_user_id,
        )
        return _task(row) if row else None

    async def add_photo(self, task_id: int, tg_user_id: int, file_id: str) -> int:
        """Keep a photo of the work (Telegram's file id); returns the task's photo count."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._members_task(conn, task_id, tg_user_id)
            if row["state"] != "started":
                raise BrigadeError("brigade.not_started")
            await conn.execute(
                "INSERT INTO brigade_photos (task_id, tg_user_id, file_id) VALUES ($1, $2, $3)",
                task_id,
                tg_user_id,
                file_id[:300],
            )
            count: int = await conn.fetchval(
                "SELECT count(*) FROM brigade_photos WHERE task_id = $1", task_id
            )
        return count

    async def done(self, task_id: int, tg_user_id: int) -> Task:
        """Mark the task done: at least one photo first; its coverage from the tracks."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._members_task(conn, task_id, tg_user_id)
            if row["state"] != "started":
                raise BrigadeError("brigade.not_started")
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM brigade_photos WHERE task_id = $1)", task_id
            ):
                raise BrigadeError("brigade.photo_needed")
            fixes = await conn.fetch(
                "SELECT tg_user_id, longitude, latitude FROM brigade_fixes WHERE task_id = $1 "
                "ORDER BY tg_user_id, fixed_at",
                task_id,
            )
            tracks: dict[int, list[tuple[float, float]]] = {}
            for fix in fixes:
                tracks.setdefault(fix["tg_user_id"], []).append(
                    (fix["longitude"], fix["latitude"])
                )
            share = coverage(_geometry(row["area"]), list(tracks.values()), self.spray_width_m)
            await conn.execute(
                "UPDATE brigade_tasks SET state = 'done', finished_at = now(), coverage = $2 "
                "WHERE id = $1",
                task_id,
                share,
            )
            await record(
                conn,
                actor=f"tg:{tg_user_id}",
                action="brigade.done",
                subject=str(task_id),
                details={"coverage": round(share, 3)},
            )
            return await _task_by_id(conn, task_id)

    async def block(self, task_id: int, tg_user_id: int, reason: str) -> Task:
        reason = " ".join(reason.split())
        if not 2 <= len(reason) <= 500:
            raise BrigadeError("brigade.reason")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._members_task(conn, task_id, tg_user_id)
            if row["state"] == "done":
                raise BrigadeError("brigade.already_done")
            await conn.execute(
                "UPDATE brigade_tasks SET state = 'blocked', finished_at = now(), "
                "blocked_reason = $2 WHERE id = $1",
                task_id,
                reason,
            )
            await record(
                conn, actor=f"tg:{tg_user_id}", action="brigade.block", subject=str(task_id)
            )
            return await _task_by_id(conn, task_id)

    # Clean zones, monitoring, figures

    async def clean_zones(self, at: datetime) -> list[dict[str, Any]]:
        """Areas of tasks done within ``clean_hours`` of ``at`` as GeoJSON features: the
        share of the time left (the map fades them) and the coverage; ``clean`` when the
        coverage reaches the set share."""
        since = at - timedelta(hours=self.clean_hours)
        rows = await self.pool.fetch(
            f"{_TASKS} WHERE t.state = 'done' AND t.finished_at > $1 AND t.finished_at <= $2 "
            "ORDER BY t.finished_at",
            since,
            at,
        )
        features = []
        for row in rows:
            task = _task(row)
            assert task.finished_at is not None
            left = 1 - (at - task.finished_at) / timedelta(hours=self.clean_hours)
            share = task.coverage or 0.0
            features.append(
                {
                    "type": "Feature",
                    "geometry": task.area,
                    "properties": {
                        "task": task.id,
                        "name": task.area_name,
                        "brigade": task.brigade,
                        "method": task.method,
                        "coverage": round(share, 3),
                        "clean": share >= self.clean_coverage,
                        "left": round(max(0.0, left), 3),
                        "until": (
                            task.finished_at + timedelta(hours=self.clean_hours)
                        ).isoformat(),
                    },
                }
            )
        return features

    async def watch(self, at: datetime) -> list[Watch]:
        """One line per brigade at work that stands still or is outside its area."""
        rows = await self.pool.fetch(
            f"{_TASKS} WHERE t.state = 'started' ORDER BY t.brigade_id, t.started_at DESC"
        )
        window = at - timedelta(minutes=2 * self.still_minutes)
        lines: list[Watch] = []
        seen: set[int] = set()
        for row in rows:
            task = _task(row)
            if task.brigade_id in seen:
                continue
            seen.add(task.brigade_id)
            fixes = await self.pool.fetch(
                "SELECT fixed_at, latitude, longitude FROM brigade_fixes WHERE task_id = $1 "
                "AND fixed_at > $2 ORDER BY fixed_at DESC",
                task.id,
                min(window, task.started_at or at),
            )
            still_for = timedelta(minutes=self.still_minutes)
            if not fixes:
                if task.started_at is not None and at - task.started_at > still_for:
                    lines.append(Watch(task.brigade, task.id, task.area_name, "still", None))
                continue
            last = fixes[0]
            moved_at = task.started_at
            for fix in fixes[1:]:
                if (
                    distance_m(
                        last["latitude"], last["longitude"], fix["latitude"], fix["longitude"]
                    )
                    > MOVED_METRES
                ):
                    moved_at = fix["fixed_at"]
                    break
            if not contains(task.area, last["longitude"], last["latitude"], self.outside_margin_m):
                lines.append(
                    Watch(task.brigade, task.id, task.area_name, "outside", last["fixed_at"])
                )
            elif moved_at is not None and at - moved_at > still_for:
                lines.append(Watch(task.brigade, task.id, task.area_name, "still", moved_at))
        return lines

    async def district_days(self, first: date, last: date) -> list[DistrictDay]:
        rows = await self.pool.fetch(
            "SELECT b.district, t.day, count(*) FILTER (WHERE t.state = 'done') AS done, "
            "count(*) FILTER (WHERE t.state = 'blocked') AS blocked, "
            "avg(t.coverage) FILTER (WHERE t.state = 'done') AS coverage "
            "FROM brigade_tasks t JOIN brigades b ON b.id = t.brigade_id "
            "WHERE t.day BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 2 DESC, 1",
            first,
            last,
        )
        return [
            DistrictDay(r["district"], r["day"], r["done"], r["blocked"], r["coverage"])
            for r in rows
        ]

    async def purge(self, older_than: timedelta) -> int:
        """Tracks and photos past the retention period (the tasks and coverage stay)."""
        cutoff = datetime.now(UTC) - older_than
        async with self.pool.acquire() as conn, conn.transaction():
            fixes = await conn.execute("DELETE FROM brigade_fixes WHERE fixed_at < $1", cutoff)
            photos = await conn.execute("DELETE FROM brigade_photos WHERE sent_at < $1", cutoff)
        return int(fixes.split()[-1]) + int(photos.split()[-1])


async def _task_by_id(conn: Connection, task_id: int) -> Task:
    row = await conn.fetchrow(_TASK_BY_ID, task_id)
    assert row is not None
    return _task(row)


_TASKS = """
SELECT t.id, t.brigade_id, b.name AS brigade, b.district, t.day, t.position, t.method,
       t.zone_id, t.area_name, t.area, t.state, t.started_at, t.finished_at, t.blocked_reason,
       t.coverage
  FROM brigade_tasks t JOIN brigades b ON b.id = t.brigade_id"""
_TASK_BY_ID = f"{_TASKS} WHERE t.id = $1"
# Sectors in force not planned on the day, the longest untreated first (never first).
_SECTORS_BY_AGE = """
SELECT z.id, z.name, z.geometry FROM zones z
 WHERE z.kind = 'sector' AND z.valid_until IS NULL
   AND NOT EXISTS (SELECT 1 FROM brigade_tasks p WHERE p.zone_id = z.id AND p.day = $1)
 ORDER BY (SELECT max(d.finished_at) FROM brigade_tasks d
            WHERE d.zone_id = z.id AND d.state = 'done') ASC NULLS FIRST, z.name
"""
