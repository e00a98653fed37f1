"""What the panel watches: clean zones fading on the map, brigades standing still or
outside their area, figures per district and day; and the retention of tracks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from geofence.coverage import contains
from geofence.distance import distance_m
from services.brigades.model import (
    MOVED_METRES,
    TASKS,
    DistrictDay,
    Task,
    Watch,
    task_of_row,
)

_DISTRICT_DAYS = """
SELECT b.district, t.day, count(*) FILTER (WHERE t.state = 'done') AS done,
       count(*) FILTER (WHERE t.state = 'blocked') AS blocked,
       avg(t.coverage) FILTER (WHERE t.state = 'done') AS coverage
  FROM brigade_tasks t JOIN brigades b ON b.id = t.brigade_id
 WHERE t.day BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 2 DESC, 1
"""


class BrigadeMonitor:
    """The map's and the watch list's side of :class:`services.brigades.BrigadeService`."""

    pool: asyncpg.Pool
    clean_hours: float  # a done task's area stays clean this long
    still_minutes: float  # no move for this long is standing still
    clean_coverage: float  # a done task's area is clean from this share of coverage
    outside_margin_m: float  # further than this outside the area is outside

    async def clean_zones(self, at: datetime) -> list[dict[str, Any]]:
        """Areas of tasks done within ``clean_hours`` of ``at`` as GeoJSON features: the
        share of the time left (the map fades them) and the coverage; ``clean`` when the
        coverage reaches the set share."""
        since = at - timedelta(hours=self.clean_hours)
        rows = await self.pool.fetch(
            f"{TASKS} WHERE t.state = 'done' AND t.finished_at > $1 AND t.finished_at <= $2 "
            "ORDER BY t.finished_at",
            since,
            at,
        )
        return [self._clean_zone(task_of_row(row), at) for row in rows]

    def _clean_zone(self, task: Task, at: datetime) -> dict[str, Any]:
        assert task.finished_at is not None
        left = 1 - (at - task.finished_at) / timedelta(hours=self.clean_hours)
        share = task.coverage or 0.0
        return {
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
                "until": (task.finished_at + timedelta(hours=self.clean_hours)).isoformat(),
            },
        }

    async def watch(self, at: datetime) -> list[Watch]:
        """One line per brigade at work that stands still or is outside its area."""
        rows = await self.pool.fetch(
            f"{TASKS} WHERE t.state = 'started' ORDER BY t.brigade_id, t.started_at DESC"
        )
        window = at - timedelta(minutes=2 * self.still_minutes)
        lines: list[Watch] = []
        seen: set[int] = set()
        for row in rows:
            task = task_of_row(row)
            if task.brigade_id in seen:
                continue
            seen.add(task.brigade_id)
            fixes = await self.pool.fetch(
                "SELECT fixed_at, latitude, longitude FROM brigade_fixes WHERE task_id = $1 "
                "AND fixed_at > $2 ORDER BY fixed_at DESC",
                task.id,
                min(window, task.started_at or at),
            )
            line = self._watch_line(task, fixes, at)
            if line is not None:
                lines.append(line)
        return lines

    def _watch_line(self, task: Task, fixes: list[asyncpg.Record], at: datetime) -> Watch | None:
        """The task's line from its recent fixes (newest first), if it needs one."""
        still_for = timedelta(minutes=self.still_minutes)
        if not fixes:
            if task.started_at is not None and at - task.started_at > still_for:
                return Watch(task.brigade, task.id, task.area_name, "still", None)
            return None
        last = fixes[0]
        moved_at = task.started_at
        for fix in fixes[1:]:
            if (
                distance_m(last["latitude"], last["longitude"], fix["latitude"], fix["longitude"])
                > MOVED_METRES
            ):
                moved_at = fix["fixed_at"]
                break
        if not contains(task.area, last["longitude"], last["latitude"], self.outside_margin_m):
            return Watch(task.brigade, task.id, task.area_name, "outside", last["fixed_at"])
        if moved_at is not None and at - moved_at > still_for:
            return Watch(task.brigade, task.id, task.area_name, "still", moved_at)
        return None

    async def district_days(self, first: date, last: date) -> list[DistrictDay]:
        rows = await self.pool.fetch(_DISTRICT_DAYS, first, last)
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
