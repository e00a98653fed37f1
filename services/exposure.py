"""Exposure: when a positive result arrives, the visitors whose stays overlapped the
positive person's stays at the same venue in the 14 days before are listed and told
(venue and time window, never who)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

LOOKBACK_DAYS = 14

# One statement per positive result. The overlap runs on the GiST index visits_overlap
# (venue_id, stay): for each stay of the positive person, an index range search of that
# venue's stays, never a scan. The notices and the outbox messages to linked accounts
# are written by the same statement (the outbox row has the shape outbox.enqueue writes;
# doing it here saves a round trip per exposed visitor).
_FIND_AND_QUEUE = """
WITH searched AS (
    UPDATE pcr_results SET exposure_done_at = now()
     WHERE id = $1 AND exposure_done_at IS NULL
), found AS (
    INSERT INTO exposure_notices
        (positive_result_id, visit_id, exposed_iin, venue_id, window_start, window_end)
    SELECT r.id, other.id, other.iin, other.venue_id,
           greatest(lower(other.stay), lower(mine.stay)),
           least(upper(other.stay), upper(mine.stay), now())
      FROM pcr_results r
      JOIN visits mine ON mine.iin = r.iin AND mine.admitted
                      AND mine.checked_in_at >= r.sampled_at - make_interval(days => $2)
      JOIN visits other ON other.venue_id = mine.venue_id AND other.stay && mine.stay
                       AND other.admitted AND other.iin <> r.iin
     WHERE r.id = $1 AND r.result = 'positive'
    ON CONFLICT (positive_result_id, visit_id) DO NOTHING
    RETURNING id, exposed_iin, venue_id, window_start, window_end
), queued AS (
    INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key)
    SELECT 'citizen', c.tg_user_id, 'exposure',
           jsonb_build_object('venue', v.name, 'start', f.window_start, 'end', f.window_end),
           'exposure:' || f.id
      FROM found f
      JOIN citizens c ON c.iin = f.exposed_iin
      JOIN venues v ON v.id = f.venue_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM found) AS found, (SELECT count(*) FROM queued) AS queued
"""


@dataclass(frozen=True)
class ExposureNotice:
    id: int
    visit_id: int
    exposed_iin: str
    venue_id: int
    venue_name: str
    window_start: datetime
    window_end: datetime
    notified: bool


class ExposureService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def on_positive_results(self, result_ids: Sequence[int]) -> int:
        """Record and queue notices for each new positive result; returns how many."""
        total = 0
        for result_id in result_ids:
            row = await self.pool.fetchrow(_FIND_AND_QUEUE, result_id, LOOKBACK_DAYS)
            assert row is not None
            total += row["found"]
        return total

    async def catch_up(
        self, *, settled: timedelta = timedelta(seconds=10), limit: int = 1000
    ) -> int:
        """Search the positive results stored but never searched (a worker that died, or
        an outage, between an import's commit and its search), stored at least
        ``settled`` ago so as not to race the import; returns the notices recorded.
        Safe at any time: a notice is recorded and queued once per result and visit."""
        rows = await self.pool.fetch(
            "SELECT id FROM pcr_results WHERE result = 'positive' AND exposure_done_at IS NULL"
            " AND created_at < now() - $1::interval ORDER BY id LIMIT $2",
            settled,
            limit,
        )
        return await self.on_positive_results([r["id"] for r in rows])

    async def notices(self, *, since: datetime | None = None) -> list[ExposureNotice]:
        """Notices for epidemiologists: who was exposed where and when."""
        rows = await self.pool.fetch(
            """
            SELECT n.id, n.visit_id, n.exposed_iin, n.venue_id, v.name AS venue_name,
                   n.window_start, n.window_end,
                   EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = 'exposure:' || n.id
                           AND o.sent_at IS NOT NULL) AS notified
              FROM exposure_notices n JOIN venues v ON v.id = n.venue_id
             WHERE $1::timestamptz IS NULL OR n.created_at >= $1
             ORDER BY n.created_at, n.id
            """,
            since,
        )
        return [ExposureNotice(**dict(r)) for r in rows]
