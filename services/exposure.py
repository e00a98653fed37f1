"""Exposure: when a positive result arrives, the visitors whose stays overlapped the
positive person's stays at the same venue in the 14 days before are listed and told
(venue and time window, never who).

An overlap counts from ``min_overlap`` (the WHO's close-contact 15 minutes) and the
case's stay is taken to go on for ``after`` once they left (the air of a room stays
infectious a while). A person is told once per exposed stay, whatever the number of
results, corrections or re-runs of the search: the outbox key names the stay. When the
result behind a notice stops counting (corrected to negative, or withdrawn) the notice is
retracted: a message not yet sent is cancelled, and a person already told is told that
the result behind it was corrected (the venue and window again, never who).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.db import Connection, fetch_all, of_row
from services.outbox import Queued, enqueue_many

LOOKBACK_DAYS = 14
MIN_OVERLAP = timedelta(minutes=15)
AFTER_LEAVING = timedelta(minutes=30)

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
    SELECT r.id, other.id, other.iin, other.venue_id, w.window_start, w.window_end
      FROM pcr_results r
      JOIN visits mine ON mine.iin = r.iin AND mine.admitted
                      AND mine.checked_in_at >= r.sampled_at - make_interval(days => $2)
      JOIN visits other ON other.venue_id = mine.venue_id AND other.admitted
                       AND other.iin <> r.iin
                       AND other.stay && tstzrange(lower(mine.stay), upper(mine.stay) + $4)
     CROSS JOIN LATERAL (
           SELECT greatest(lower(other.stay), lower(mine.stay)) AS window_start,
                  least(upper(other.stay), upper(mine.stay) + $4, now()) AS window_end
     ) w
     WHERE r.id = $1 AND r.result = 'positive' AND r.superseded_at IS NULL
       AND r.withdrawn_at IS NULL AND w.window_end - w.window_start >= $3
    ON CONFLICT (positive_result_id, visit_id) DO NOTHING
    RETURNING id, visit_id, exposed_iin, venue_id, window_start, window_end
), queued AS (
    INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key)
    SELECT DISTINCT ON (f.visit_id) 'citizen', c.tg_user_id, 'exposure',
           jsonb_build_object('venue', v.name, 'start', f.window_start, 'end', f.window_end),
           'exposure-stay:' || f.visit_id
      FROM found f
      JOIN citizens c ON c.iin = f.exposed_iin
      JOIN venues v ON v.id = f.venue_id
     ORDER BY f.visit_id
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM found) AS found, (SELECT count(*) FROM queued) AS queued
"""

# The notices of results that stopped counting, and of those the stays no other notice
# still stands for.
_RETRACT = """
WITH retracted AS (
    UPDATE exposure_notices SET retracted_at = now()
     WHERE positive_result_id = ANY($1::bigint[]) AND retracted_at IS NULL
    RETURNING visit_id
)
SELECT DISTINCT r.visit_id FROM retracted r
 WHERE NOT EXISTS (SELECT 1 FROM exposure_notices n
                    WHERE n.visit_id = r.visit_id AND n.retracted_at IS NULL
                      AND n.positive_result_id <> ALL($1::bigint[]))
"""
# A retracted stay's message frees its key (so that a later positive can tell again); one
# nobody has started sending is cancelled, the others are answered by a retraction.
_FREE_KEYS = """
UPDATE outbox SET dedupe_key = dedupe_key || ':retracted:' || id,
       failed_at = CASE WHEN sent_at IS NULL AND failed_at IS NULL
                         AND (claimed_until IS NULL OR claimed_until < now())
                        THEN now() ELSE failed_at END,
       last_error = CASE WHEN sent_at IS NULL AND failed_at IS NULL
                          AND (claimed_until IS NULL OR claimed_until < now())
                         THEN 'retracted: the result behind it stopped counting'
                         ELSE last_error END
 WHERE dedupe_key = ANY($1::text[])
RETURNING id, chat_id, params, dedupe_key, last_error LIKE 'retracted:%' AS cancelled
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
    retracted: bool = False


class ExposureService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        min_overlap: timedelta = MIN_OVERLAP,
        after_leaving: timedelta = AFTER_LEAVING,
    ) -> None:
        self.pool = pool
        self.min_overlap = min_overlap
        self.after_leaving = after_leaving

    async def on_positive_results(self, result_ids: Sequence[int]) -> int:
        """Record and queue notices for each new positive result; returns how many."""
        total = 0
        for result_id in result_ids:
            row = await self.pool.fetchrow(
                _FIND_AND_QUEUE, result_id, LOOKBACK_DAYS, self.min_overlap, self.after_leaving
            )
            assert row is not None
            total += row["found"]
        return total

    async def retract(self, conn: Connection, result_ids: Sequence[int]) -> int:
        """In the transaction that made these positive results stop counting: retract
        their notices; returns how many people already told are now told it was
        corrected."""
        visits = [r["visit_id"] for r in await conn.fetch(_RETRACT, list(result_ids))]
        if not visits:
            return 0
        messages = await conn.fetch(_FREE_KEYS, [f"exposure-stay:{v}" for v in visits])
        told = [
            Queued(
                "citizen",
                m["chat_id"],
                "exposure_retracted",
                dict(m["params"]),
                f"exposure-retracted:{m['id']}",
            )
            for m in messages
            if not m["cancelled"]
        ]
        return await enqueue_many(conn, told)

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
        return await fetch_all(
            self.pool,
            of_row(ExposureNotice),
            """
            SELECT n.id, n.visit_id, n.exposed_iin, n.venue_id, v.name AS venue_name,
                   n.window_start, n.window_end,
                   EXISTS (SELECT 1 FROM outbox o
                            WHERE o.dedupe_key IN ('exposure:' || n.id,
                                                   'exposure-stay:' || n.visit_id)
                              AND o.sent_at IS NOT NULL) AS notified,
                   n.retracted_at IS NOT NULL AS retracted
              FROM exposure_notices n JOIN venues v ON v.id = n.venue_id
             WHERE $1::timestamptz IS NULL OR n.created_at >= $1
             ORDER BY n.created_at, n.id
            """,
            since,
        )
