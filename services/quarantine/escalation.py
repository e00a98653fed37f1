"""What happens to an alert after it is sent: escalation to the district's duty list when
nobody acknowledges it in time, and the doctors' (and the panel's) answers to it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from services.audit import audited_change, record
from services.db import row_or
from services.outbox import Queued, enqueue_many
from services.quarantine.index import QuarantineIndex
from services.quarantine.model import Action, EpisodeView, QuarantineError
from services.quarantine.panel import PanelQueries
from services.quarantine.rows import episode_head

log = logging.getLogger(__name__)

# An episode, locked, with its case's doctor and district, and who the pressing doctor is
# (NULLs when they are not a doctor).
_EPISODE_AND_ACTOR = (
    "SELECT e.id, e.case_id, e.family, c.doctor_id, c.district, d.id AS actor_id, "
    "d.district AS actor_district, d.on_duty FROM quarantine_episodes e "
    "JOIN quarantine_cases c ON c.id = e.case_id "
    "LEFT JOIN doctors d ON d.tg_user_id = $2 WHERE e.id = $1 FOR UPDATE OF e"
)
_ACKNOWLEDGE = (
    "UPDATE quarantine_episodes SET acknowledged_at = coalesce(acknowledged_at, now())"
    " WHERE id = $1 RETURNING id"
)


class EscalationService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        index: QuarantineIndex,
        panel: PanelQueries,
        *,
        escalate_after: timedelta,
    ) -> None:
        self.pool = pool
        self.index = index
        self.panel = panel
        self.escalate_after = escalate_after

    async def escalate(self, now: datetime) -> int:
        """Alerts nobody acknowledged in time go to the district's duty list."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT e.id, e.kind, e.opened_at, e.distance_m, c.code, c.phone, c.district, "
                "c.doctor_id, d.tg_user_id AS doctor_chat FROM quarantine_episodes e "
                "JOIN quarantine_cases c ON c.id = e.case_id JOIN doctors d ON d.id = c.doctor_id "
                "WHERE e.acknowledged_at IS NULL AND e.escalated_at IS NULL "
                "AND e.closed_at IS NULL "
                "AND e.created_at <= $1::timestamptz - $2::interval "
                "ORDER BY e.created_at LIMIT 1000 FOR UPDATE OF e SKIP LOCKED",
                now,
                self.escalate_after,
            )
            if not rows:
                return 0
            on_duty: dict[str, list[tuple[int, int]]] = {}
            for doctor in await conn.fetch(
                "SELECT id, tg_user_id, district FROM doctors "
                "WHERE on_duty AND district = ANY($1::text[]) AND tg_user_id IS NOT NULL",
                list({r["district"] for r in rows}),
            ):
                on_duty.setdefault(doctor["district"], []).append(
                    (doctor["id"], doctor["tg_user_id"])
                )
            messages: list[Queued] = []
            for row in rows:
                duty = [
                    tg for id_, tg in on_duty.get(row["district"], []) if id_ != row["doctor_id"]
                ]
                if not duty:
                    log.warning(
                        "episode %d: district %r has nobody on duty; reminding the case's doctor",
                        row["id"],
                        row["district"],
                    )
                    duty = [row["doctor_chat"]]
                view = EpisodeView.unanswered(*episode_head(row), escalated=True)
                messages += [
                    Queued(
                        "doctor",
                        tg,
                        "quarantine_escalation",
                        view.params(),
                        f"qescalate:{row['id']}:{tg}",
                    )
                    for tg in duty
                ]
            await enqueue_many(conn, messages)
            await conn.execute(
                "UPDATE quarantine_episodes SET escalated_at = $2 WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
                now,
            )
        return len(rows)

    async def act(self, episode_id: int, doctor_tg_user_id: int, action: Action) -> EpisodeView:
        """Acknowledge, note a call, or resolve: by the case's doctor or the district's
        duty list. Each is recorded with who and when."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The case row first, then the episode: the order ingest and the sweep lock
            # them in, so a press and a fix never wait for each other in a circle.
            await conn.execute(
                "SELECT 1 FROM quarantine_cases WHERE id = "
                "(SELECT case_id FROM quarantine_episodes WHERE id = $1) FOR UPDATE",
                episode_id,
            )
            row = await row_or(
                conn,
                _EPISODE_AND_ACTOR,
                episode_id,
                doctor_tg_user_id,
                refusal=QuarantineError("doctor.alert_unknown"),
            )
            allowed = row["actor_id"] is not None and (
                row["actor_id"] == row["doctor_id"]
                or (row["on_duty"] and row["actor_district"] == row["district"])
            )
            if not allowed:
                raise QuarantineError("doctor.not_your_case")
            if action is Action.ACKNOWLEDGE:
                await conn.execute(
                    "UPDATE quarantine_episodes SET acknowledged_at = coalesce(acknowledged_at, "
                    "now()), acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
            elif action is Action.CALLED:
                await conn.execute(
                    "UPDATE quarantine_episodes SET called_at = now(), called_by = $2, "
                    "acknowledged_at = coalesce(acknowledged_at, now()), "
                    "acknowledged_by = coalesce(acknowledged_by, $2) WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
            else:
                await conn.execute(
                    "UPDATE quarantine_episodes SET resolved_at = now(), resolved_by = $2, "
                    "acknowledged_at = coalesce(acknowledged_at, now()), "
                    "acknowledged_by = coalesce(acknowledged_by, $2), "
                    "closed_at = coalesce(closed_at, now()), "
                    "close_kind = coalesce(close_kind, 'resolved') WHERE id = $1",
                    episode_id,
                    doctor_tg_user_id,
                )
                column = "zone_episode_id" if row["family"] == "zone" else "signal_episode_id"
                await conn.execute(
                    f"UPDATE quarantine_cases SET {column} = NULL "  # noqa: S608 - fixed names
                    f"WHERE id = $1 AND {column} = $2",
                    row["case_id"],
                    episode_id,
                )
            await record(
                conn,
                actor=f"tg:{doctor_tg_user_id}",
                action=f"quarantine.{action.value}",
                subject=f"episode:{episode_id}",
            )
        if action is Action.RESOLVE and row["family"] == "signal":
            await self.index.watch_again(row["case_id"], datetime.now(UTC))
        return await self.panel.episode(episode_id)

    async def acknowledge_from_panel(self, episode_id: int, *, actor: str) -> None:
        """An epidemiologist acknowledges an alert on the panel (recorded with who)."""
        acknowledged = await audited_change(
            self.pool,
            _ACKNOWLEDGE,
            episode_id,
            actor=actor,
            action="quarantine.acknowledge",
            subject=f"episode:{episode_id}",
            details={"from": "panel"},
        )
        if not acknowledged:
            raise QuarantineError("doctor.alert_unknown")
