"""Check-in and check-out, occupancy, auto-checkout and statistics without names."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.status import Status, StatusService
from services.venues import Venue

HISTORY_DAYS = 14


class CheckIn(enum.Enum):
    ADMITTED = "admitted"
    ALREADY_INSIDE = "already_inside"
    REFUSED = "refused"  # red or yellow
    FULL = "full"  # at capacity, and the venue refuses entry then


@dataclass(frozen=True)
class CheckInResult:
    outcome: CheckIn
    status: Status
    venue: Venue
    occupancy: int
    over_capacity: bool = False
    moved_from: str | None = None  # the venue whose open stay this entry closed
    visit_id: int | None = None


@dataclass(frozen=True)
class Visit:
    venue: str
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_kind: str | None


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    check_ins: int


class VisitService:
    def __init__(self, pool: asyncpg.Pool, statuses: StatusService) -> None:
        self.pool = pool
        self.statuses = statuses

    async def check_in(
        self,
        iin: str,
        venue: Venue,
        *,
        entrance_id: int | None,
        via: str,
        tg_user_id: int | None = None,
        staff_tg_user_id: int | None = None,
    ) -> CheckInResult:
        """Admit green and blue, refuse red and yellow; the attempt is stored either way.

        One statement (citybots_check_in, migration 0006), serialised per person by an
        advisory lock: a re-scan while inside, a duplicate delivery or two scans in the
        same second find the open stay instead of making a second one; an entry at
        another venue closes the open stay there first. A staff check-in is written to
        the audit log in the same transaction.
        """
        status = await self.statuses.status(iin)
        row = await self.pool.fetchrow(
            "SELECT * FROM citybots_check_in($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            venue.id,
            entrance_id,
            iin,
            tg_user_id,
            via,
            staff_tg_user_id,
            status.colour.value,
            status.colour.may_enter,
            venue.capacity,
            venue.capacity_policy == "refuse",
        )
        assert row is not None
        return CheckInResult(
            CheckIn(row["outcome"]),
            status,
            venue,
            row["occupancy"],
            over_capacity=row["over_capacity"],
            moved_from=row["moved_from"],
            visit_id=row["visit_id"],
        )

    async def check_out(self, iin: str, venue_id: int | None = None) -> str | None:
        """Close the person's open stay (at this venue, if given); the venue's name or None."""
        name = await self.pool.fetchval(
            """
            UPDATE visits s SET checked_out_at = now(), checkout_kind = 'scan'
              FROM venues v
             WHERE v.id = s.venue_id AND s.iin = $1 AND s.admitted
               AND s.checked_out_at IS NULL AND ($2::bigint IS NULL OR s.venue_id = $2)
            RETURNING v.name
            """,
            iin,
            venue_id,
        )
        return str(name) if name is not None else None

    async def occupancy(self, venue_id: int) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM visits WHERE venue_id = $1 AND admitted "
                "AND checked_out_at IS NULL",
                venue_id,
            )
        )

    async def auto_checkout(self, now: datetime | None = None) -> int:
        """Close stays open longer than their venue's auto-checkout time, marked 'auto'.

        The stay ends at check-in plus that time, not at the moment the job ran."""
        result = await self.pool.execute(
            """
            UPDATE visits s
               SET checked_out_at =
                       s.checked_in_at + make_interval(mins => v.auto_checkout_minutes),
                   checkout_kind = 'auto'
              FROM venues v
             WHERE v.id = s.venue_id AND s.admitted AND s.checked_out_at IS NULL
               AND s.checked_in_at + make_interval(mins => v.auto_checkout_minutes) <= $1
            """,
            now or datetime.now(UTC),
        )
        return int(result.split()[-1])

    async def check_everyone_out(self, venue_id: int) -> int:
        """Closing time: close every open stay at the venue."""
        result = await self.pool.execute(
            "UPDATE visits SET checked_out_at = now(), checkout_kind = 'closing' "
            "WHERE venue_id = $1 AND admitted AND checked_out_at IS NULL",
            venue_id,
        )
        return int(result.split()[-1])

    async def history(self, iin: str, days: int = HISTORY_DAYS) -> list[Visit]:
        rows = await self.pool.fetch(
            """
            SELECT v.name AS venue, s.checked_in_at, s.checked_out_at, s.checkout_kind
              FROM visits s JOIN venues v ON v.id = s.venue_id
             WHERE s.iin = $1 AND s.admitted
               AND s.checked_in_at >= now() - make_interval(days => $2)
             ORDER BY s.checked_in_at DESC LIMIT 50
            """,
            iin,
            days,
        )
        return [Visit(**dict(r)) for r in rows]

    async def hourly(self, venue_id: int, since: datetime) -> list[HourCount]:
        """Admitted check-ins per hour since ``since``: counts, no names."""
        rows = await self.pool.fetch(
            """
            SELECT date_trunc('hour', checked_in_at) AS hour, count(*) AS check_ins
              FROM visits WHERE venue_id = $1 AND admitted AND checked_in_at >= $2
             GROUP BY 1 ORDER BY 1
            """,
            venue_id,
            since,
        )
        return [HourCount(r["hour"], r["check_ins"]) for r in rows]

    async def refused_today(self, venue_id: int, since: datetime) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM visits WHERE venue_id = $1 AND NOT admitted "
                "AND checked_in_at >= $2",
                venue_id,
                since,
            )
        )
