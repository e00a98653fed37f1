"""The silence rule: cases from which nothing (or nothing precise) arrived for 15 minutes
get a signal episode, patients whose live period is about to end get a reminder, and a
patient who leaves the chat is an alert at once."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.db import Connection
from services.outbox import Queued, enqueue_many
from services.quarantine.episodes import open_episodes, save_states, supersede
from services.quarantine.index import Forget, QuarantineIndex
from services.quarantine.model import AlertKind, SweepReport
from services.quarantine.rows import LOCK_BY_ID, LOCK_BY_PATIENT
from services.quarantine.tracking import Opening, TrackState, sweep_step


class SweepService:
    def __init__(self, pool: asyncpg.Pool, index: QuarantineIndex) -> None:
        self.pool = pool
        self.index = index

    async def sweep(self, now: datetime) -> SweepReport:
        """Open signal episodes for cases silent (or only vaguely located) for 15 minutes,
        and remind patients whose live period is about to end. Reads only what is due and
        writes it in a few statements, however many cases are due."""
        due = await self.index.due(now)
        cases = due.all
        if not cases:
            return SweepReport()
        forget = Forget([], [], [], [], {})
        opens: list[Opening] = []
        superseded: list[TrackState] = []
        reminders: list[tuple[TrackState, datetime]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(LOCK_BY_ID, sorted(cases))
            forget.gone = [str(i) for i in cases - {r["id"] for r in rows}]  # closed
            for row in rows:
                state = TrackState.from_row(row)
                member = str(state.id)
                step = sweep_step(
                    state,
                    now,
                    consented_at=row["consented_at"],
                    live_reminded_for=row["live_reminded_for"],
                    silent=state.id in due.silent,
                    vague=state.id in due.vague,
                    expiring=state.id in due.expiring,
                )
                if step.seen_behind is not None:
                    forget.seen_behind[member] = step.seen_behind.timestamp()
                if step.supersede:
                    superseded.append(state)
                if step.opening is not None:
                    opens.append(step.opening)
                if step.forget_seen:
                    forget.seen.append(member)
                if step.forget_judged:
                    forget.judged.append(member)
                if step.forget_live:
                    forget.live.append(member)
                if step.remind_until is not None:
                    reminders.append((state, step.remind_until))
            if superseded:
                await supersede(conn, [state.signal_episode_id for state in superseded], now)
            opened = await open_episodes(conn, opens)
            if opened:
                await conn.execute(
                    "UPDATE quarantine_cases c SET signal_episode_id = s.episode "
                    "FROM unnest($1::bigint[], $2::bigint[]) AS s(id, episode) WHERE c.id = s.id",
                    [o.state.id for o in opened],
                    [o.state.signal_episode_id for o in opened],
                )
            await _remind(conn, reminders)
        await self.index.forget(now, forget)
        late = tuple((now - o.at).total_seconds() for o in opened)
        return SweepReport(len(cases), len(opened), len(reminders), late)

    async def patient_left_chat(self, tg_user_id: int, at: datetime) -> bool:
        """The patient blocked the bot: no location will come; the doctor must call."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(LOCK_BY_PATIENT, [tg_user_id])
            if not rows:
                return False
            state = TrackState.from_row(rows[0])
            if state.signal_episode_id is not None:
                await supersede(conn, [state.signal_episode_id], at)
                state.signal_episode_id = None
            opened = await open_episodes(conn, [Opening(state, AlertKind.LEFT_CHAT, at)])
            await save_states(conn, [state])
        await self.index.stop_seeing(state.id)
        return bool(opened)


async def _remind(conn: Connection, reminders: list[tuple[TrackState, datetime]]) -> None:
    """The live period ends within minutes: ask the patient to share again now."""
    if not reminders:
        return
    await conn.execute(
        "UPDATE quarantine_cases SET live_reminded_for = live_until WHERE id = ANY($1::bigint[])",
        [state.id for state, _ in reminders],
    )
    await enqueue_many(
        conn,
        [
            Queued(
                "quarantine",
                state.patient_chat,
                "quarantine_live_ending",
                {"until": until.isoformat()},
                f"qlive:{state.id}:{until.isoformat()}",
            )
            for state, until in reminders
        ],
    )
