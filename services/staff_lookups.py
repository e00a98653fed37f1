"""Staff look-ups by IIN, counted per staff account and venue, and the watch that flags an
account whose look-ups far exceed its venue's own visitors.

A look-up is a check-in by IIN (``status.lookup``) or a check-out by IIN
(``visit.staff_checkout``): both are in the audit log with the staff account as actor
and the venue in their details. A venue's visitors are the people who checked in there
with its QR code themselves: staff who type many more IINs than the venue has visitors
are reading other people's colours rather than letting people in, so the account is
flagged for an administrator (an audit row and a warning in the log, without any IIN).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.audit import record
from services.db import of_row

log = logging.getLogger(__name__)

WATCH_WINDOW = timedelta(days=1)
# Flagged from this many look-ups in the window ...
FLAG_MIN_LOOKUPS = 20
# ... when they are more than this many times the venue's visitors by QR code.
FLAG_RATIO = 3
FLAG_ACTION = "venue.lookups_flagged"
WATCH_ACTOR = "system:lookup-watch"

_COUNTS = """
WITH lookups AS (
    SELECT a.actor AS staff, (a.details->>'venue_id')::bigint AS venue_id,
           count(*) FILTER (WHERE a.action = 'status.lookup') AS check_ins,
           count(*) FILTER (WHERE a.action = 'visit.staff_checkout') AS check_outs
      FROM audit_log a
     WHERE a.at >= $1 AND a.at < $2
       AND a.action IN ('status.lookup', 'visit.staff_checkout') AND a.actor LIKE 'staff:%'
     GROUP BY 1, 2
)
SELECT l.staff, l.venue_id, v.name AS venue, l.check_ins, l.check_outs,
       (SELECT count(DISTINCT s.iin) FROM visits s
         WHERE s.venue_id = l.venue_id AND s.via = 'qr'
           AND s.checked_in_at >= $1 AND s.checked_in_at < $2) AS visitors
  FROM lookups l JOIN venues v ON v.id = l.venue_id
"""


@dataclass(frozen=True)
class LookupCount:
    staff: str  # the account, "staff:<Telegram id>"
    venue_id: int
    venue: str
    check_ins: int
    check_outs: int
    visitors: int  # people who checked in at the venue by QR code in the same time

    @property
    def lookups(self) -> int:
        return self.check_ins + self.check_outs


@dataclass(frozen=True)
class FlaggedAccount:
    at: datetime
    staff: str
    venue_id: int
    venue: str
    lookups: int
    visitors: int


_count = of_row(LookupCount)


def unusual(count: LookupCount) -> bool:
    """Look-ups far beyond the venue's own visitors (FLAG_MIN_LOOKUPS, FLAG_RATIO)."""
    return count.lookups >= FLAG_MIN_LOOKUPS and count.lookups > FLAG_RATIO * count.visitors


class StaffLookups:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def counts(
        self, *, since: datetime, until: datetime, staff: str = "", limit: int = 200
    ) -> list[LookupCount]:
        """Look-ups per staff account and venue in [since, until), most first; ``staff``
        keeps the accounts whose name starts with it."""
        rows = await self.pool.fetch(
            f"SELECT * FROM ({_COUNTS}) c WHERE c.staff LIKE $3 || '%'"  # noqa: S608 - fixed
            " ORDER BY c.check_ins + c.check_outs DESC, c.staff, c.venue_id LIMIT $4",
            since,
            until,
            staff.replace("%", "").replace("_", r"\_"),
            limit,
        )
        return [_count(r) for r in rows]

    async def flag_unusual(self, now: datetime | None = None) -> list[FlaggedAccount]:
        """Flag each staff account whose look-ups at a venue in the WATCH_WINDOW before
        ``now`` are unusual for that venue, once per window: an audit row (FLAG_ACTION,
        the account as subject) and a warning in the log, neither with any IIN."""
        now = now or datetime.now(UTC)
        since = now - WATCH_WINDOW
        flagged: list[FlaggedAccount] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT * FROM ({_COUNTS}) c"  # noqa: S608 - fixed
                " WHERE c.check_ins + c.check_outs >= $3"
                " AND c.check_ins + c.check_outs > $4 * c.visitors"
                " AND NOT EXISTS (SELECT 1 FROM audit_log f WHERE f.action = $5"
                " AND f.subject = c.staff AND f.details->>'venue_id' = c.venue_id::text"
                " AND f.at >= $1)"
                " ORDER BY c.staff, c.venue_id",
                since,
                now,
                FLAG_MIN_LOOKUPS,
                FLAG_RATIO,
                FLAG_ACTION,
            )
            for count in map(_count, rows):
                await record(
                    conn,
                    actor=WATCH_ACTOR,
                    action=FLAG_ACTION,
                    subject=count.staff,
                    details={
                        "venue_id": count.venue_id,
                        "lookups": count.lookups,
                        "visitors": count.visitors,
                        "hours": int(WATCH_WINDOW.total_seconds() // 3600),
                    },
                )
                log.warning(
                    "staff look-ups: %s made %d look-ups by IIN at venue #%d in %d h,"
                    " against %d visitors by QR code there: flagged",
                    count.staff,
                    count.lookups,
                    count.venue_id,
                    int(WATCH_WINDOW.total_seconds() // 3600),
                    count.visitors,
                )
                flagged.append(
                    FlaggedAccount(
                        now,
                        count.staff,
                        count.venue_id,
                        count.venue,
                        count.lookups,
                        count.visitors,
                    )
                )
        return flagged

    async def flagged(self, *, since: datetime, limit: int = 100) -> list[FlaggedAccount]:
        """The accounts flagged since ``since``, newest first."""
        rows = await self.pool.fetch(
            "SELECT f.at, f.subject AS staff, (f.details->>'venue_id')::bigint AS venue_id,"
            " coalesce(v.name, '') AS venue, (f.details->>'lookups')::int AS lookups,"
            " (f.details->>'visitors')::int AS visitors"
            " FROM audit_log f LEFT JOIN venues v ON v.id = (f.details->>'venue_id')::bigint"
            " WHERE f.action = $1 AND f.actor = $2 AND f.at >= $3"
            " ORDER BY f.at DESC, f.id DESC LIMIT $4",
            FLAG_ACTION,
            WATCH_ACTOR,
            since,
            limit,
        )
        return [
            FlaggedAccount(
                r["at"], r["staff"], r["venue_id"], r["venue"], r["lookups"], r["visitors"]
            )
            for r in rows
        ]
