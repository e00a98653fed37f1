"""What the doctor's bot and the panel read: open alerts, one alert, cases by state."""

from __future__ import annotations

import asyncpg

from services.db import row_or
from services.quarantine.model import CaseSummary, EpisodeView, QuarantineError
from services.quarantine.rows import (
    CASE_COLUMNS,
    CASE_FROM,
    EPISODE_SELECT,
    episode_of_row,
    summary_of_row,
)


class PanelQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def open_alerts(self, limit: int = 200) -> list[EpisodeView]:
        """Alerts not closed yet, newest first (the panel's violations list)."""
        rows = await self.pool.fetch(
            EPISODE_SELECT + "WHERE e.closed_at IS NULL ORDER BY e.opened_at DESC LIMIT $1",
            limit,
        )
        return [episode_of_row(r) for r in rows]

    async def case_counts(self) -> dict[str, int]:
        """Open cases by whether they are at home, away, silent or not sharing yet."""
        rows = await self.pool.fetch(
            "SELECT CASE WHEN zone_episode_id IS NOT NULL THEN 'away' "
            "WHEN signal_episode_id IS NOT NULL THEN 'silent' "
            "WHEN consented_at IS NULL THEN 'invited' ELSE 'home' END AS state, count(*) AS n "
            "FROM quarantine_cases WHERE closed_at IS NULL GROUP BY 1"
        )
        return {r["state"]: r["n"] for r in rows}

    async def episode(self, episode_id: int) -> EpisodeView:
        row = await row_or(
            self.pool,
            EPISODE_SELECT + "WHERE e.id = $1",
            episode_id,
            refusal=QuarantineError("doctor.alert_unknown"),
        )
        return episode_of_row(row)

    async def open_cases(self, doctor_tg_user_id: int) -> list[CaseSummary]:
        rows = await self.pool.fetch(
            f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE d.tg_user_id = $1 AND c.closed_at IS NULL "
            "ORDER BY (c.zone_episode_id IS NULL AND c.signal_episode_id IS NULL), c.code",
            doctor_tg_user_id,
        )
        return [summary_of_row(r) for r in rows]
