"""Brigades' work in the field (the staff bot, role ``brigade``): joining by invite, the
day's tasks, starting one, its live-location track, photos, done or blocked."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from geofence.coverage import coverage
from services.audit import record
from services.brigades.model import (
    TASKS,
    Brigade,
    BrigadeError,
    Task,
    brigade_of_row,
    geometry_of,
    task_by_id,
    task_of_row,
)
from services.db import Connection, fetch_all, fetch_one, row_or
from services.invites import use_invite
from services.location_fixes import Fix

_OF_MEMBER = f"{TASKS} JOIN brigade_members m ON m.brigade_id = t.brigade_id"
_BRIGADE_OF = (
    "SELECT b.id, b.name, b.district FROM brigade_members m "
    "JOIN brigades b ON b.id = m.brigade_id WHERE m.tg_user_id = $1"
)
_TASKS_OF = f"{_OF_MEMBER} WHERE m.tg_user_id = $1 AND t.day = $2 ORDER BY t.position"
_STARTED_TASK = (
    f"{_OF_MEMBER} WHERE m.tg_user_id = $1 AND t.state = 'started' "
    "ORDER BY t.started_at DESC LIMIT 1"
)
_JOIN = (
    "INSERT INTO brigade_members (tg_user_id, brigade_id, full_name) "
    "VALUES ($1, $2, $3) ON CONFLICT (tg_user_id) DO UPDATE "
    "SET brigade_id = EXCLUDED.brigade_id, joined_at = now()"
)
_START = (
    "UPDATE brigade_tasks SET state = 'started', started_at = now(), "
    "blocked_reason = NULL WHERE id = $1"
)
_DONE = "UPDATE brigade_tasks SET state = 'done', finished_at = now(), coverage = $2 WHERE id = $1"
_BLOCK = (
    "UPDATE brigade_tasks SET state = 'blocked', finished_at = now(), "
    "blocked_reason = $2 WHERE id = $1"
)
_RECORD_FIX = """
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
"""


class BrigadeField:
    """The staff bot's side of :class:`services.brigades.BrigadeService`."""

    pool: asyncpg.Pool
    spray_width_m: float  # a track covers half this on either side

    async def join(self, token: str, tg_user_id: int, full_name: str) -> Brigade:
        async with self.pool.acquire() as conn, conn.transaction():
            invite = await use_invite(conn, "brigade_invites", token, tg_user_id, "brigade_id")
            if invite is None:
                raise BrigadeError("brigade.invite_invalid")
            brigade_id = invite["brigade_id"]
            await conn.execute(_JOIN, tg_user_id, brigade_id, full_name[:100])
            await record(conn, actor=f"tg:{tg_user_id}", action="brigade.join")
            row = await conn.fetchrow(
                "SELECT id, name, district FROM brigades WHERE id = $1", brigade_id
            )
        assert row is not None
        return brigade_of_row(row)

    async def brigade_of(self, tg_user_id: int) -> Brigade | None:
        return await fetch_one(self.pool, brigade_of_row, _BRIGADE_OF, tg_user_id)

    async def tasks_of(self, tg_user_id: int, day: date) -> list[Task]:
        """The member's brigade's tasks of the day, in order."""
        return await fetch_all(self.pool, task_of_row, _TASKS_OF, tg_user_id, day)

    async def start(self, task_id: int, tg_user_id: int) -> Task:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await _members_task(conn, task_id, tg_user_id)
            if row["state"] == "done":
                raise BrigadeError("brigade.already_done")
            if row["state"] == "started":
                return await task_by_id(conn, task_id)
            return await _move(conn, task_id, tg_user_id, "brigade.start", _START)

    async def record_fix(self, fix: Fix) -> int | None:
        """Add a live-location fix to the track of the member's started task; the task's
        id, or None when the member has no task started (the fix is not kept)."""
        task_id: int | None = await self.pool.fetchval(
            _RECORD_FIX,
            fix.tg_user_id,
            fix.message_id,
            fix.at,
            fix.latitude,
            fix.longitude,
            fix.accuracy,
        )
        return task_id

    async def started_task(self, tg_user_id: int) -> Task | None:
        return await fetch_one(self.pool, task_of_row, _STARTED_TASK, tg_user_id)

    async def add_photo(self, task_id: int, tg_user_id: int, file_id: str) -> int:
        """Keep a photo of the work (Telegram's file id); returns the task's photo count."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await _members_task(conn, task_id, tg_user_id)
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
            row = await _members_task(conn, task_id, tg_user_id)
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
            share = coverage(geometry_of(row["area"]), list(tracks.values()), self.spray_width_m)
            return await _move(
                conn,
                task_id,
                tg_user_id,
                "brigade.done",
                _DONE,
                share,
                details={"coverage": round(share, 3)},
            )

    async def block(self, task_id: int, tg_user_id: int, reason: str) -> Task:
        reason = " ".join(reason.split())
        if not 2 <= len(reason) <= 500:
            raise BrigadeError("brigade.reason")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await _members_task(conn, task_id, tg_user_id)
            if row["state"] == "done":
                raise BrigadeError("brigade.already_done")
            return await _move(conn, task_id, tg_user_id, "brigade.block", _BLOCK, reason)


async def _members_task(conn: Connection, task_id: int, tg_user_id: int) -> asyncpg.Record:
    """The task, locked, if it is one of the member's brigade's; BrigadeError otherwise."""
    return await row_or(
        conn,
        f"{_OF_MEMBER} WHERE t.id = $1 AND m.tg_user_id = $2 FOR UPDATE OF t",
        task_id,
        tg_user_id,
        refusal=BrigadeError("brigade.not_yours"),
    )


async def _move(
    conn: Connection,
    task_id: int,
    tg_user_id: int,
    action: str,
    update: str,
    *args: object,
    details: dict[str, Any] | None = None,
) -> Task:
    """Write the task's new state (``update`` takes the task's id, then ``args``), audit
    it as the member's ``action``, read it back."""
    await conn.execute(update, task_id, *args)
    await record(
        conn, actor=f"tg:{tg_user_id}", action=action, subject=str(task_id), details=details
    )
    return await task_by_id(conn, task_id)
