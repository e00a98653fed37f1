"""Check-in and check-out, occupancy, auto-checkout and statistics without names.

At a busy city's doors, venue code scans are most of the citizen bot's traffic. Check-ins
and check-outs made at the same time are stored together: one transaction per batch
rather than per scan, by the same check-in function, each person's scans in the order
they were made (see :meth:`VisitService.check_in`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.audit import record
from services.db import Connection, fetch_all, is_unavailable, of_row, recover
from services.metrics import Metrics
from services.outbox import enqueue
from services.status import Status, StatusService
from services.venues import LookupAccess, LookupRefused, Venue, access_of

log = logging.getLogger(__name__)

HISTORY_DAYS = 14
MAX_BATCH = 500
BATCHES_AT_ONCE = 3
"""Batches stored at the same time, each in its own transaction: while one waits on
PostgreSQL the next is taken. A person's scans are never in two of them, so their order
holds and the batches' locks (taken per person) never meet."""
RETRY_FOR = 5.0
"""How long a batch is retried while PostgreSQL is unreachable (or lost a race with
another transaction) before its callers get the error."""


class CheckIn(enum.Enum):
    ADMITTED = "admitted"
    ALREADY_INSIDE = "already_inside"
    REFUSED = "refused"  # red or yellow
    FULL = "full"  # at capacity, and the venue refuses entry then
    ELSEWHERE = "elsewhere"  # staff only: checked in at another venue, left open there


class StaffCheckOut(enum.Enum):
    CHECKED_OUT = "checked_out"
    NOT_INSIDE = "not_inside"  # no open stay of this person at this venue


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


@dataclass(frozen=True)
class CheckInRequest:
    """One check-in attempt: by QR (``tg_user_id``) or by staff (``staff_tg_user_id``)."""

    iin: str
    venue: Venue
    entrance_id: int | None
    via: str
    tg_user_id: int | None = None
    staff_tg_user_id: int | None = None


# The rules are in citybots_check_in (services/migrations/functions/citybots_check_in.sql);
# this calls it once per request, in order, so that each call sees what the ones before it
# wrote.
_CHECK_IN = """
SELECT r.* FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
                       $6::bigint[], $7::text[], $8::boolean[], $9::integer[], $10::boolean[])
       WITH ORDINALITY AS a(venue_id, entrance_id, iin, tg_user_id, via, staff_tg_user_id,
                            status, may_enter, capacity, refuse_when_full, i)
 CROSS JOIN LATERAL citybots_check_in(a.venue_id, a.entrance_id, a.iin, a.tg_user_id, a.via,
                                      a.staff_tg_user_id, a.status, a.may_enter, a.capacity,
                                      a.refuse_when_full) r
 ORDER BY a.i
"""
# Open stays are found in open_stays (migration 0048) and closed by id and check-in time,
# so in their day's partition of visits only; a trigger removes the open_stays row.
_CHECK_OUT = """
UPDATE visits s SET checked_out_at = now(), checkout_kind = 'scan'
  FROM open_stays o, venues v,
       unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS a(iin, venue_id, i)
 WHERE o.iin = a.iin AND (a.venue_id IS NULL OR o.venue_id = a.venue_id)
   AND s.id = o.visit_id AND s.checked_in_at = o.checked_in_at AND v.id = o.venue_id
RETURNING a.i, v.name
"""


@dataclass(eq=False)
class _Queued:
    """A check-in (``request``) or a check-out (at ``venue_id``, any venue when None)
    waiting for its batch."""

    iin: str
    request: CheckInRequest | None
    venue_id: int | None
    future: asyncio.Future[Any]


class VisitService:
    def __init__(
        self, pool: asyncpg.Pool, statuses: StatusService, metrics: Metrics | None = None
    ) -> None:
        self.pool = pool
        self.statuses = statuses
        self.metrics = metrics
        self.retry_for = RETRY_FOR
        self._queued: list[_Queued] = []
        self._storing: set[str] = set()  # people with a scan in a batch being stored
        self._batches: set[asyncio.Task[None]] = set()
        self._scheduled = False

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

        One statement (citybots_check_in, in migrations/functions/), serialised per person
        by an advisory lock: a re-scan while inside, a duplicate delivery or two scans in the
        same second find the open stay instead of making a second one; an entry at
        another venue closes the open stay there first. Staff check in by IIN with
        :meth:`staff_check_in`, which checks who may.

        Stored in a batch with the check-ins and check-outs made at the same time, in one
        transaction: a person's scans in the order they were made, each person at most
        once per statement and people in IIN order within one (the same lock order in
        every worker). A batch is retried for :data:`RETRY_FOR` seconds while PostgreSQL
        is unreachable, then the error is raised to each caller; on any other error each
        of its scans is stored on its own, so one bad scan fails only its own caller.
        """
        request = CheckInRequest(iin, venue, entrance_id, via, tg_user_id, staff_tg_user_id)
        result: CheckInResult = await self._queue(_Queued(iin, request, None, _future()))
        return result

    async def check_in_many(
        self,
        requests: Sequence[CheckInRequest],
        conn: Connection | None = None,
        *,
        known: Mapping[str, Status] | None = None,
    ) -> list[CheckInResult]:
        """:meth:`check_in` for many scans in one statement (on ``conn``, inside the
        caller's transaction, when given), each by the same rules, in the given order.

        ``known``: the people's statuses, looked up by the caller before it took ``conn``
        (a caller holding one pooled connection per request must not wait for a second
        one to look them up: under load every connection would wait for another)."""
        if not requests:
            return []
        if known is None or any(r.iin not in known for r in requests):
            known = await self.statuses.statuses(r.iin for r in requests)
        statuses = [known[r.iin] for r in requests]
        rows = await (conn or self.pool).fetch(
            _CHECK_IN,
            [r.venue.id for r in requests],
            [r.entrance_id for r in requests],
            [r.iin for r in requests],
            [r.tg_user_id for r in requests],
            [r.via for r in requests],
            [r.staff_tg_user_id for r in requests],
            [s.colour.value for s in statuses],
            [s.colour.may_enter for s in statuses],
            [r.venue.capacity for r in requests],
            [r.venue.capacity_policy == "refuse" for r in requests],
        )
        assert len(rows) == len(requests)
        if self.metrics is not None:
            for row in rows:
                self.metrics.check_ins.labels(row["outcome"]).inc()
        return [
            CheckInResult(
                CheckIn(row["outcome"]),
                status,
                request.venue,
                row["occupancy"],
                over_capacity=row["over_capacity"],
                moved_from=row["moved_from"],
                visit_id=row["visit_id"],
            )
            for request, status, row in zip(requests, statuses, rows, strict=True)
        ]

    async def check_out(self, iin: str, venue_id: int | None = None) -> str | None:
        """Close the person's open stay (at this venue, if given); the venue's name or None.
        Stored in a batch, as :meth:`check_in` is."""
        left: str | None = await self._queue(_Queued(iin, None, venue_id, _future()))
        return left

    async def _queue(self, queued: _Queued) -> Any:
        self._queued.append(queued)
        if not self._scheduled:
            # After the tasks ready now have run: scans that arrived together go together.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start_batches)
        return await queued.future

    def _start_batches(self) -> None:
        self._scheduled = False
        while self._queued and len(self._batches) < BATCHES_AT_ONCE:
            batch = self._take_batch()
            if not batch:
                break
            task = asyncio.create_task(self._store_batch(batch), name="visits-batch")
            self._batches.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        if self._queued and not self._scheduled:
            self._start_batches()

    def _take_batch(self) -> list[_Queued]:
        """Up to MAX_BATCH waiting scans, in arrival order; a person with a scan in a
        batch being stored keeps this and every later scan of theirs waiting, in order.
        A scan whose caller gave up (cancelled) is dropped."""
        batch: list[_Queued] = []
        waiting: list[_Queued] = []
        held = set(self._storing)
        for queued in self._queued:
            if queued.future.done():
                continue
            if queued.iin in held or len(batch) >= MAX_BATCH:
                held.add(queued.iin)
                waiting.append(queued)
            else:
                batch.append(queued)
        self._queued = waiting
        self._storing.update(queued.iin for queued in batch)
        return batch

    async def _store_batch(self, batch: list[_Queued]) -> None:
        try:
            try:
                await self._store_retrying(batch)
            except Exception as error:
                if len(batch) == 1 or _retryable(error):
                    raise
                log.exception("check-ins: a batch of %d failed; each is stored alone", len(batch))
                for queued in batch:
                    try:
                        await self._store_retrying([queued])
                    except Exception as own:
                        _fail(queued, own)
        except Exception as error:
            for queued in batch:
                _fail(queued, error)
        finally:
            self._storing.difference_update(queued.iin for queued in batch)
            for queued in batch:
                queued.future.cancel()  # only those still waiting: cancelled with the task

    async def _store_retrying(self, batch: list[_Queued]) -> None:
        deadline = time.monotonic() + self.retry_for
        delay = 0.2
        while True:
            try:
                await self._store(batch)
                return
            except Exception as error:
                if not _retryable(error) or time.monotonic() >= deadline:
                    raise
                log.warning(
                    "check-ins: a batch of %d waits for storage (%s)",
                    len(batch),
                    type(error).__name__,
                )
                if is_unavailable(error):
                    with contextlib.suppress(Exception):
                        await recover(self.pool, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _store(self, batch: list[_Queued]) -> None:
        """One transaction: each person at most once per round, rounds in arrival order."""
        rounds: list[list[_Queued]] = []
        depth: dict[str, int] = {}
        for queued in batch:
            at = depth.get(queued.iin, 0)
            depth[queued.iin] = at + 1
            if at == len(rounds):
                rounds.append([])
            rounds[at].append(queued)
        entries = [q.request for q in batch if q.request is not None]
        known = await self.statuses.statuses(r.iin for r in entries) if entries else {}
        results: list[tuple[_Queued, Any]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for one_round in rounds:
                one_round.sort(key=lambda q: q.iin)
                ins = [q for q in one_round if q.request is not None]
                outs = [q for q in one_round if q.request is None]
                checked_in = await self.check_in_many(
                    [q.request for q in ins if q.request is not None], conn, known=known
                )
                left = await self.check_out_many([(q.iin, q.venue_id) for q in outs], conn)
                results += zip(ins, checked_in, strict=True)
                results += zip(outs, left, strict=True)
        for queued, result in results:
            if not queued.future.done():
                queued.future.set_result(result)

    async def close(self) -> None:
        """Stop storing: batches under way are cancelled (rolled back), and so are their
        callers and those still waiting."""
        tasks = list(self._batches)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queued in self._queued:
            queued.future.cancel()
        self._queued.clear()

    async def check_out_many(
        self, stays: Sequence[tuple[str, int | None]], conn: Connection | None = None
    ) -> list[str | None]:
        """:meth:`check_out` for many (IIN, venue) pairs in one statement, each person at
        most once (on ``conn``, inside the caller's transaction, when given)."""
        if not stays:
            return []
        rows = await (conn or self.pool).fetch(
            _CHECK_OUT, [iin for iin, _ in stays], [venue for _, venue in stays]
        )
        names: list[str | None] = [None] * len(stays)
        for row in rows:
            names[row["i"] - 1] = str(row["name"])
        return names

    async def staff_check_in(
        self, iin: str, venue: Venue, *, staff_tg_user_id: int
    ) -> CheckInResult:
        """A member of a verified venue's staff checks a visitor in by IIN (a look-up of
        that person): LookupRefused unless they may (services/venues.py).

        By the rules of :meth:`check_in`, except that an open stay at another venue is
        never closed: the answer is ELSEWHERE, nothing is stored but the audit row, and
        the staff member is not told where. One transaction: the check-in, its audit row
        (written by citybots_check_in), and a message to the visitor's linked account,
        if any, through the outbox ("you were checked in at VENUE by its staff", or that
        its staff looked them up), so that misuse is seen by the person it concerns.
        """
        request = CheckInRequest(iin, venue, None, "staff", None, staff_tg_user_id)
        async with self.pool.acquire() as conn, conn.transaction():
            access = await access_of(conn, venue.id, staff_tg_user_id)
            if access is not LookupAccess.ALLOWED:
                raise LookupRefused(access)
            [result] = await self.check_in_many([request], conn)
            visitor = await conn.fetchval("SELECT tg_user_id FROM citizens WHERE iin = $1", iin)
            if visitor is not None:
                admitted = result.outcome is CheckIn.ADMITTED
                hour = datetime.now(UTC).strftime("%Y%m%d%H")
                await enqueue(
                    conn,
                    bot="citizen",
                    chat_id=visitor,
                    kind="staff_checkin",
                    params={"venue": venue.name, "admitted": admitted},
                    # one message per stay; a look-up that admitted nobody, once an hour
                    # per venue (the staff member's quota bounds them anyway)
                    dedupe_key=f"staff_checkin:{result.visit_id}"
                    if admitted
                    else f"staff_lookup:{venue.id}:{visitor}:{hour}",
                )
        return result

    async def staff_check_out(
        self, venue_id: int, iin: str, *, staff_tg_user_id: int
    ) -> StaffCheckOut:
        """A member of a verified venue's staff closes one visitor's open stay there, at
        now, marked 'staff'; a stay at another venue is never touched. LookupRefused
        unless they may look people up there (services/venues.py).

        One transaction: the attempt is written to the audit log whether or not the person
        was inside (the answer tells that), and the visitor's linked account, if any, is
        told through the outbox.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            access = await access_of(conn, venue_id, staff_tg_user_id)
            if access is not LookupAccess.ALLOWED:
                raise LookupRefused(access)
            closed = await conn.fetchrow(
                """
                UPDATE visits s SET checked_out_at = now(), checkout_kind = 'staff'
                  FROM open_stays o, venues v
                 WHERE o.iin = $2 AND o.venue_id = $1 AND v.id = o.venue_id
                   AND s.id = o.visit_id AND s.checked_in_at = o.checked_in_at
                RETURNING s.id, v.name
                """,
                venue_id,
                iin,
            )
            await record(
                conn,
                actor=f"staff:{staff_tg_user_id}",
                action="visit.staff_checkout",
                subject=iin,
                details={"venue_id": venue_id, "inside": closed is not None},
            )
            if closed is None:
                return StaffCheckOut.NOT_INSIDE
            visitor = await conn.fetchval("SELECT tg_user_id FROM citizens WHERE iin = $1", iin)
            if visitor is not None:
                await enqueue(
                    conn,
                    bot="citizen",
                    chat_id=visitor,
                    kind="staff_checkout",
                    params={"venue": closed["name"]},
                    dedupe_key=f"staff_checkout:{closed['id']}",
                )
        return StaffCheckOut.CHECKED_OUT

    async def occupancy(self, venue_id: int) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM open_stays WHERE venue_id = $1",
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
        return await fetch_all(
            self.pool,
            of_row(Visit),
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


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _fail(queued: _Queued, error: BaseException) -> None:
    if not queued.future.done():
        queued.future.set_exception(error)


def _retryable(error: BaseException) -> bool:
    """PostgreSQL unreachable, or a transaction that lost a race: the same batch will go
    through when tried again."""
    return is_unavailable(error) or isinstance(
        error, asyncpg.DeadlockDetectedError | asyncpg.SerializationError
    )
