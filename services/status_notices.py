"""A linked citizen is told their own results and every change of their colour.

Every registry write marks the IINs it touches (``StatusService.note_change`` sets
``citizens.status_due_at`` a few seconds ahead, in the writer's transaction); the colour
also changes by itself when an isolation is lifted, so each evaluation sets the mark to
the status's next change. A job looks at the due accounts and compares what they were
last told with what is true now:

- a result of theirs newer than the last one told: "your result: positive / negative,
  sample of DATE; your colour now, until when" (one message for the newest, however many
  arrived since);
- otherwise a colour different from the one told: "your status changed" with the colour,
  why and until when (a contact registered, an isolation lifted, a dispute decided, a
  correction or withdrawal);
- a green that simply ran out is not told: its end was in the message that made it.

Because a mark waits a few seconds and only the state at the end counts, a change and its
undoing within one import (a result corrected back within the file) are told as nothing.
A newly linked account starts from the colour and the results it was shown on linking
(``CitizenService.link``); an account linked before these notices existed is evaluated
silently once, to learn its present.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.outbox import Queued, enqueue_many
from services.status import Colour, Status, StatusService

SETTLE = timedelta(seconds=3)

# Queued writes, settled, made into due accounts (the unlinked IINs among them match
# nothing); a crash before the commit leaves them queued.
_SETTLED = """
WITH taken AS (
    DELETE FROM status_notice_queue
     WHERE id IN (SELECT id FROM status_notice_queue WHERE created_at < now() - $1::interval
                   ORDER BY id LIMIT $2)
    RETURNING iins
)
UPDATE citizens SET status_due_at = now()
 WHERE iin IN (SELECT DISTINCT unnest(iins) FROM taken)
"""

_DUE = """
SELECT tg_user_id, iin, told_colour, told_until, told_result_id, status_due_at
  FROM citizens WHERE status_due_at <= now() ORDER BY status_due_at LIMIT $1
"""
# The newest current result of each IIN.
_NEWEST_RESULTS = """
SELECT DISTINCT ON (iin) iin, id, result, sampled_at
  FROM pcr_results
 WHERE iin = ANY($1::text[]) AND superseded_at IS NULL AND withdrawn_at IS NULL
 ORDER BY iin, id DESC
"""
_RESULTS_BY_ID = "SELECT id, result, sampled_at FROM pcr_results WHERE id = ANY($1::bigint[])"
# A write that marked the account again while it was being evaluated keeps its mark.
_TOLD = """
UPDATE citizens c SET told_colour = t.colour, told_until = t.until,
       told_result_id = t.result_id,
       status_due_at = CASE WHEN c.status_due_at = t.was_due THEN t.next_due
                            ELSE c.status_due_at END
  FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[], $5::timestamptz[],
              $6::timestamptz[]) AS t(tg_user_id, colour, until, result_id, was_due, next_due)
 WHERE c.tg_user_id = t.tg_user_id
"""


@dataclass(frozen=True)
class _Newest:
    id: int
    result: str
    sampled_at: datetime


def _status_params(status: Status) -> dict[str, object]:
    return {
        "colour": status.colour.value,
        "reason": status.reason,
        "laboratory": status.laboratory,
        "until": status.until.isoformat() if status.until else None,
    }


class StatusNotices:
    def __init__(
        self, pool: asyncpg.Pool, statuses: StatusService, *, settle: timedelta = SETTLE
    ) -> None:
        self.pool = pool
        self.statuses = statuses
        self.settle = settle

    async def tell_due(self, *, limit: int = 1000) -> int:
        """Evaluate the accounts that are due; returns how many messages were queued."""
        await self.pool.execute(_SETTLED, self.settle, 50)
        due = await self.pool.fetch(_DUE, limit)
        if not due:
            return 0
        iins = [row["iin"] for row in due]
        statuses = await self.statuses.statuses(iins)
        newest = {
            r["iin"]: _Newest(r["id"], r["result"], r["sampled_at"])
            for r in await self.pool.fetch(_NEWEST_RESULTS, iins)
        }
        told_ids = [row["told_result_id"] for row in due if row["told_result_id"]]
        told_results = {
            r["id"]: _Newest(r["id"], r["result"], r["sampled_at"])
            for r in (await self.pool.fetch(_RESULTS_BY_ID, told_ids) if told_ids else [])
        }
        now = datetime.now(UTC)
        messages: list[Queued] = []
        result_ids: list[int | None] = []
        for row in due:
            status = statuses[row["iin"]]
            result = newest.get(row["iin"])
            told_id = row["told_result_id"] or 0
            fresh = result if result is not None and result.id > told_id else None
            if fresh is not None:
                result_ids.append(fresh.id)
                last = told_results.get(told_id)
                if last is not None and (last.result, last.sampled_at) == (
                    fresh.result,
                    fresh.sampled_at,
                ):
                    fresh = None  # corrected and corrected back: the same answer as told
            else:
                result_ids.append(row["told_result_id"])
            message = self._message(row, status, fresh, now)
            if message is not None:
                messages.append(message)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _TOLD,
                [row["tg_user_id"] for row in due],
                [statuses[row["iin"]].colour.value for row in due],
                [statuses[row["iin"]].until for row in due],
                result_ids,
                [row["status_due_at"] for row in due],
                [statuses[row["iin"]].changes_at for row in due],
            )
            return await enqueue_many(conn, messages)

    @staticmethod
    def _message(
        row: asyncpg.Record, status: Status, fresh: _Newest | None, now: datetime
    ) -> Queued | None:
        """What to tell: ``fresh`` is a result newer than the one last told, if any."""
        told = row["told_colour"]
        if told is None:  # linked before these notices: learn the present silently
            return None
        if fresh is not None:
            params = _status_params(status)
            params.update(result=fresh.result, sampled_at=fresh.sampled_at.isoformat())
            return Queued("citizen", row["tg_user_id"], "own_result", params, _key(row))
        if status.colour.value == told:
            return None
        ran_out = (
            told == Colour.GREEN.value
            and status.colour is Colour.BLUE
            and row["told_until"] is not None
            and row["told_until"] <= now
        )
        if ran_out:
            return None
        return Queued(
            "citizen", row["tg_user_id"], "status_changed", _status_params(status), _key(row)
        )


def _key(row: asyncpg.Record) -> str:
    """One message per evaluation of an account, even if two workers' ticks overlap."""
    return f"status:{row['tg_user_id']}:{row['status_due_at'].timestamp()}"
