"""Status colours of an IIN, from the health registry.

The rule (DESIGN.md, Ashyq):

- red: a positive PCR result whose isolation is not lifted;
- yellow: a registered contact whose isolation is not lifted;
- green: a negative result, valid 72 hours from the result time;
- blue: nothing known.

Red and yellow are lifted only by both the end of the isolation period and a negative
result taken for it: a sample taken no earlier than 24 hours before the isolation end
(a test on the last day of isolation counts). Red wins over yellow, yellow over green.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from services.db import Connection
from services.localcache import LocalCache, publish

GREEN_VALIDITY = timedelta(hours=72)
LIFTING_TEST_WINDOW = timedelta(hours=24)
_CACHE_TTL = timedelta(hours=1)


class Colour(enum.StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    BLUE = "blue"

    @property
    def may_enter(self) -> bool:
        """Only green and blue may enter a venue."""
        return self in (Colour.GREEN, Colour.BLUE)


@dataclass(frozen=True, slots=True)
class Isolation:
    """A positive result's or a registered contact's isolation period."""

    starts_at: datetime
    ends_at: datetime
    laboratory: str | None = None


@dataclass(frozen=True, slots=True)
class NegativeResult:
    sampled_at: datetime
    result_at: datetime
    laboratory: str


@dataclass(frozen=True, slots=True)
class Records:
    positives: Sequence[Isolation]
    contacts: Sequence[Isolation]
    negatives: Sequence[NegativeResult]


@dataclass(frozen=True, slots=True)
class Status:
    """A colour with why (``reason``) and until when (``until``: for green, when it
    expires; for red and yellow, the earliest the isolation can end)."""

    colour: Colour
    reason: str
    checked_at: datetime
    since: datetime | None = None
    until: datetime | None = None
    laboratory: str | None = None
    needs_negative_test: bool = False
    changes_at: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Status:
        for key in ("checked_at", "since", "until", "changes_at"):
            if data.get(key):
                data[key] = datetime.fromisoformat(data[key])
        data["colour"] = Colour(data["colour"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: str | bytes) -> Status:
        return cls.from_dict(json.loads(raw))


def _lifting_test(
    isolation: Isolation, negatives: Sequence[NegativeResult], at: datetime
) -> NegativeResult | None:
    for negative in negatives:
        if (
            negative.result_at <= at
            and negative.sampled_at >= isolation.ends_at - LIFTING_TEST_WINDOW
        ):
            return negative
    return None


def compute_status(records: Records, at: datetime) -> Status:
    """The status at ``at`` (records not yet known at ``at`` are ignored)."""
    negatives = sorted(
        (n for n in records.negatives if n.result_at <= at), key=lambda n: n.result_at
    )
    for colour, reason, isolations in (
        (Colour.RED, "pcr_positive", records.positives),
        (Colour.YELLOW, "registered_contact", records.contacts),
    ):
        active = []
        next_change: datetime | None = None
        for isolation in isolations:
            if isolation.starts_at > at:
                continue
            test = _lifting_test(isolation, negatives, at)
            if at >= isolation.ends_at and test is not None:
                continue
            active.append(isolation)
            if test is not None:
                next_change = min(next_change or isolation.ends_at, isolation.ends_at)
        if active:
            latest = max(active, key=lambda i: i.ends_at)
            has_test = any(_lifting_test(i, negatives, at) for i in active)
            return Status(
                colour,
                reason,
                at,
                since=min(i.starts_at for i in active),
                until=latest.ends_at,
                laboratory=latest.laboratory,
                needs_negative_test=not has_test,
                changes_at=next_change if len(active) == 1 else None,
            )
    if negatives:
        newest = negatives[-1]
        expires = newest.result_at + GREEN_VALIDITY
        if at < expires:
            return Status(
                Colour.GREEN,
                "pcr_negative",
                at,
                since=newest.result_at,
                until=expires,
                laboratory=newest.laboratory,
                changes_at=expires,
            )
    return Status(Colour.BLUE, "unknown", at)


# Only results that count: not superseded by a correction, not withdrawn as entered in
# error (the partial unique index on current samples serves the look-up by IIN).
_RECORDS = """
SELECT 'positive' AS kind, r.sampled_at, r.result_at, r.laboratory,
       COALESCE(i.starts_at, r.result_at) AS starts_at,
       COALESCE(i.ends_at, r.result_at + make_interval(days => $2)) AS ends_at
  FROM pcr_results r LEFT JOIN case_isolations i ON i.pcr_result_id = r.id
 WHERE r.iin = $1 AND r.result = 'positive' AND r.superseded_at IS NULL
   AND r.withdrawn_at IS NULL
UNION ALL
SELECT 'negative', r.sampled_at, r.result_at, r.laboratory, NULL, NULL
  FROM pcr_results r WHERE r.iin = $1 AND r.result = 'negative' AND r.superseded_at IS NULL
   AND r.withdrawn_at IS NULL
UNION ALL
SELECT 'contact', NULL, NULL, NULL, c.registered_at, c.isolation_end
  FROM registered_contacts c WHERE c.iin = $1 AND c.withdrawn_at IS NULL
"""


_BUMP_GENERATIONS = """
for _, key in ipairs(KEYS) do
    redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[1])
end
return #KEYS
"""


class StatusService:
    """Statuses read from PostgreSQL, cached in Redis.

    A cached status is used until time changes it (``changes_at``), for at most an
    hour, and never after a record for the IIN was written: writers call
    :meth:`invalidate`, which bumps the IIN's generation; a cache entry carries the
    generation it was computed at, so an entry computed from the database just before a
    write (and stored just after it) is not believed.
    """

    def __init__(
        self, pool: asyncpg.Pool, redis: Redis, *, positive_isolation_days: int = 14
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.positive_isolation_days = positive_isolation_days
        self._bump = redis.register_script(_BUMP_GENERATIONS)
        self.local: LocalCache[Status] = LocalCache("status", ttl=30.0)

    async def records(self, iin: str) -> Records:
        rows = await self.pool.fetch(_RECORDS, iin, self.positive_isolation_days)
        positives = [
            Isolation(r["starts_at"], r["ends_at"], r["laboratory"])
            for r in rows
            if r["kind"] == "positive"
        ]
        contacts = [
            Isolation(r["starts_at"], r["ends_at"]) for r in rows if r["kind"] == "contact"
        ]
        negatives = [
            NegativeResult(r["sampled_at"], r["result_at"], r["laboratory"])
            for r in rows
            if r["kind"] == "negative"
        ]
        return Records(positives, contacts, negatives)

    def _from_local(self, iin: str, at: datetime) -> Status | None:
        known = self.local.get(iin)
        if (
            known is not None
            and (known.changes_at is None or at < known.changes_at)
            and known.checked_at <= at
        ):
            return replace(known, checked_at=at)
        return None

    async def statuses(self, iins: Iterable[str]) -> dict[str, Status]:
        """:meth:`status` of several IINs; those in the in-process cache without a task
        each (a batch of check-ins asks for hundreds at once)."""
        at = datetime.now(UTC)
        found: dict[str, Status] = {}
        missing: dict[str, None] = {}
        for iin in iins:
            if iin in found or iin in missing:
                continue
            known = self._from_local(iin, at)
            if known is not None:
                found[iin] = known
            else:
                missing[iin] = None
        if missing:
            looked_up = await asyncio.gather(*(self.status(iin, now=at) for iin in missing))
            found.update(zip(missing, looked_up, strict=True))
        return found

    async def status(self, iin: str, *, now: datetime | None = None) -> Status:
        """The status of ``iin`` now, from the cache when it is still true."""
        at = now or datetime.now(UTC)
        local_generation = self.local.generation(iin)
        known = self._from_local(iin, at)
        if known is not None:
            return known
        cached, raw_generation = await self.redis.mget(f"status:{iin}", f"statusgen:{iin}")
        generation = int(raw_generation or 0)
        if cached is not None:
            entry = json.loads(cached)
            if entry.pop("generation") == generation:
                status = Status.from_dict(entry)
                fresh = status.changes_at is None or at < status.changes_at
                if fresh and status.checked_at <= at:
                    self._keep_locally(iin, status, local_generation, at)
                    return replace(status, checked_at=at)
        status = compute_status(await self.records(iin), at)
        self._keep_locally(iin, status, local_generation, at)
        ttl = _CACHE_TTL
        if status.changes_at is not None:
            ttl = min(ttl, status.changes_at - at)
        if ttl > timedelta(0):
            entry_json = json.dumps({**status.to_dict(), "generation": generation})
            await self.redis.set(
                f"status:{iin}", entry_json, px=max(1, int(ttl.total_seconds() * 1000))
            )
        return status

    def _keep_locally(self, iin: str, status: Status, generation: int, at: datetime) -> None:
        ttl = None
        if status.changes_at is not None:
            ttl = (status.changes_at - at).total_seconds()
            if ttl <= 0:
                return
        self.local.put(iin, status, generation, ttl)

    async def note_change(self, conn: Connection, iins: Sequence[str]) -> int:
        """In a registry writer's transaction: these IINs' records change. Pass the note
        to :meth:`changed` after the commit; if that never happens, :meth:`catch_up`
        invalidates them later."""
        note: int = await conn.fetchval(
            "INSERT INTO status_changes (iins) VALUES ($1::text[]) RETURNING id", list(iins)
        )
        # Linked accounts among them are told what changed (services/status_notices.py).
        await conn.execute(
            "INSERT INTO status_notice_queue (iins) VALUES ($1::text[])", list(iins)
        )
        return note

    async def changed(self, note: int, iins: Iterable[str]) -> None:
        """After the writer's commit: make the cached statuses stale, then drop the note."""
        await self.invalidate(iins)
        await self.pool.execute("DELETE FROM status_changes WHERE id = $1", note)

    async def catch_up(self, *, settled: timedelta = timedelta(seconds=5)) -> int:
        """Invalidate what writers noted but did not invalidate (noted at least
        ``settled`` ago, so as not to race them); how many IINs. Safe at any time: a
        second invalidation only makes a cache entry recomputed once more."""
        rows = await self.pool.fetch(
            "SELECT id, iins FROM status_changes WHERE created_at < now() - $1::interval "
            "ORDER BY id LIMIT 100",
            settled,
        )
        for row in rows:
            await self.changed(row["id"], row["iins"])
        return sum(len(row["iins"]) for row in rows)

    async def invalidate(self, iins: Iterable[str]) -> None:
        """Make cached statuses of these IINs stale; call after every registry write.

        One script call per 2,000 IINs: an import touches hundreds of thousands, and
        per-key commands would cost more than the import itself.
        """
        unique = sorted(set(iins))
        ttl = int(2 * _CACHE_TTL.total_seconds())
        for start in range(0, len(unique), 2000):
            batch = unique[start : start + 2000]
            await self._bump(keys=[f"statusgen:{iin}" for iin in batch], args=[ttl])
            self.local.invalidate_local(batch)
            await publish(self.redis, self.local.namespace, batch)
