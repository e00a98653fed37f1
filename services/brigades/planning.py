"""Planning brigades' days (the panel's ``operations`` role): brigades, invites, tasks on
a zone or a drawn area, a whole district in one step."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg
from shapely.geometry import shape

from services.audit import record
from services.brigades.model import (
    INVITE_TTL,
    METHODS,
    TASKS,
    Brigade,
    BrigadeError,
    Task,
    check_area,
    geometry_of,
    task_by_id,
    task_of_row,
)
from services.db import Connection, fetch_all, row_or, value_or
from services.invites import create_invite

_CREATE = "INSERT INTO brigades (name, district, created_by) VALUES ($1, $2, $3) RETURNING id"
_LOCK_BRIGADE = "SELECT id FROM brigades WHERE id = $1 FOR UPDATE"
_BRIGADE_DISTRICT = "SELECT district FROM brigades WHERE id = $1"
_ZONE_IN_FORCE = "SELECT name, geometry FROM zones WHERE id = $1 AND valid_until IS NULL"
_DISTRICT_OUTLINE = (
    "SELECT geometry FROM zones WHERE kind = 'district' AND name = $1 "
    "AND valid_until IS NULL ORDER BY version DESC LIMIT 1"
)
# Sectors in force not planned on the day, the longest untreated first (never first).
_SECTORS_BY_AGE = """
SELECT z.id, z.name, z.geometry FROM zones z
 WHERE z.kind = 'sector' AND z.valid_until IS NULL
   AND NOT EXISTS (SELECT 1 FROM brigade_tasks p WHERE p.zone_id = z.id AND p.day = $1)
 ORDER BY (SELECT max(d.finished_at) FROM brigade_tasks d
            WHERE d.zone_id = z.id AND d.state = 'done') ASC NULLS FIRST, z.name
"""


class BrigadePlanning:
    """The panel's side of :class:`services.brigades.BrigadeService`."""

    pool: asyncpg.Pool

    async def create(self, name: str, district: str, *, by: str) -> Brigade:
        name, district = name.strip(), district.strip()
        if not 1 <= len(name) <= 100 or not 1 <= len(district) <= 100:
            raise BrigadeError("brigade.name")
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                brigade_id = await conn.fetchval(_CREATE, name, district, by)
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
        grants = {"brigade_id": brigade_id, "created_by": by}
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                token = await create_invite(conn, "brigade_invites", "brg_", INVITE_TTL, grants)
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
                zone = await row_or(
                    conn, _ZONE_IN_FORCE, zone_id, refusal=BrigadeError("brigade.zone")
                )
                geometry, name = geometry_of(zone["geometry"]), zone["name"]
            else:
                geometry, name = check_area(area), area_name.strip()[:200] or "drawn area"
            task_id = await _append(conn, brigade_id, day, method, zone_id, name, geometry, by)
            return await task_by_id(conn, task_id)

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
            brigade = await row_or(
                conn, _BRIGADE_DISTRICT, brigade_id, refusal=BrigadeError("brigade.not_found")
            )
            district = await row_or(
                conn,
                _DISTRICT_OUTLINE,
                brigade["district"],
                refusal=BrigadeError("brigade.no_district"),
            )
            outline = shape(geometry_of(district["geometry"]))
            sectors = await conn.fetch(_SECTORS_BY_AGE, day)
            picked = [
                s for s in sectors if outline.contains(shape(geometry_of(s["geometry"])).centroid)
            ][:count]
            ids = []
            for sector in picked:
                geometry = geometry_of(sector["geometry"])
                ids.append(
                    await _append(
                        conn, brigade_id, day, method, sector["id"], sector["name"], geometry, by
                    )
                )
            rows = await conn.fetch(
                f"{TASKS} WHERE t.id = ANY($1::bigint[]) ORDER BY position", ids
            )
        return [task_of_row(r) for r in rows]

    async def zones(self) -> tuple[list[str], list[tuple[int, str]]]:
        """The districts' names and the sectors (id, name) in force, for planning."""
        rows = await self.pool.fetch(
            "SELECT id, name, kind FROM zones WHERE kind IN ('district', 'sector') "
            "AND valid_until IS NULL ORDER BY name"
        )
        districts = sorted({r["name"] for r in rows if r["kind"] == "district"})
        return districts, [(r["id"], r["name"]) for r in rows if r["kind"] == "sector"]

    async def tasks(self, day: date) -> list[Task]:
        sql = f"{TASKS} WHERE t.day = $1 ORDER BY b.name, t.position"
        return await fetch_all(self.pool, task_of_row, sql, day)


async def _append(
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
    await value_or(conn, _LOCK_BRIGADE, brigade_id, refusal=BrigadeError("brigade.not_found"))
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
