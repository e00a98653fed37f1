"""The Redis index of watched cases: three sorted sets that only say where the sweep
should look, rebuilt from PostgreSQL whenever Redis loses them.

- ``q:seen``    case -> time of its last fix of any kind (silence is 15 minutes past it);
- ``q:judged``  case -> time of its last fix precise enough to judge, for cases whose
                fixes arrive but are too vague;
- ``q:live``    case -> end of its live-location period (a reminder goes out before it).

A sweep reads only the due end of each set, so its cost follows the number of cases
that are due, not the number of cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from redis.asyncio import Redis

from services.quarantine.model import REMIND_BEFORE_LIVE_ENDS, SILENCE
from services.quarantine.tracking import TrackState

SEEN, JUDGED, LIVE = "q:seen", "q:judged", "q:live"
INDEXED = "q:indexed"  # set while the sorted sets hold every watched case
_SWEEP_BATCH = 5_000

_FORGET_IF_OLD = """
local removed = 0
for i = 1, #ARGV - 1 do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])
    if score and tonumber(score) <= tonumber(ARGV[1]) then
        removed = removed + redis.call('ZREM', KEYS[1], ARGV[i + 1])
    end
end
return removed
"""


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


@dataclass(frozen=True)
class Due:
    """The cases each set holds as due at one moment of the sweep."""

    silent: set[int]
    vague: set[int]
    expiring: set[int]

    @property
    def all(self) -> set[int]:
        return self.silent | self.vague | self.expiring


@dataclass
class Forget:
    """What the sweep dealt with, to take out of (or correct in) the sets afterwards."""

    seen: list[str]
    judged: list[str]
    live: list[str]
    gone: list[str]
    seen_behind: dict[str, float]


class QuarantineIndex:
    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def watch_from(self, case_id: int, since: datetime) -> None:
        """Silence is counted from consent: no location at all for 15 minutes is an alert."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(SEEN, {str(case_id): _epoch(since)}, nx=True)
            pipe.zadd(JUDGED, {str(case_id): _epoch(since)}, nx=True)
            await pipe.execute()

    async def watch_again(self, case_id: int, since: datetime) -> None:
        """A signal alert was resolved: still silent 15 minutes from ``since`` is a new one."""
        member = {str(case_id): _epoch(since)}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(SEEN, member, gt=True)
            pipe.zadd(JUDGED, member, gt=True)
            await pipe.execute()

    async def advance(self, states: Iterable[TrackState]) -> None:
        """After ingest's commit: the sorted sets learn the new times (only ever forward)."""
        seen: dict[str, float] = {}
        judged: dict[str, float] = {}
        poor: dict[str, float] = {}
        live: dict[str, float] = {}
        for s in states:
            member = str(s.id)
            if s.seen_changed and s.last_fix_at is not None:
                seen[member] = _epoch(s.last_fix_at)
            if s.judged_changed and s.last_judged_at is not None:
                judged[member] = _epoch(s.last_judged_at)
            elif s.poor_seen and s.last_fix_at is not None:
                poor[member] = _epoch(s.last_fix_at)
            if s.live_changed and s.live_until is not None:
                live[member] = _epoch(s.live_until)
        if not (seen or judged or poor or live):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            if seen:
                pipe.zadd(SEEN, seen, gt=True)
                pipe.zadd(SEEN, seen, nx=True)
            if judged:
                pipe.zadd(JUDGED, judged, gt=True)
                pipe.zadd(JUDGED, judged, nx=True)
            if poor:
                pipe.zadd(JUDGED, poor, nx=True)
            if live:
                pipe.zadd(LIVE, live)
            await pipe.execute()

    async def due(self, now: datetime) -> Due:
        """The cases silent or vague for 15 minutes, and those whose live period ends
        within the reminder's lead (at most a sweep batch of each)."""
        cutoff = _epoch(now - SILENCE)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(SEEN, "-inf", cutoff, start=0, num=_SWEEP_BATCH)
            pipe.zrangebyscore(JUDGED, "-inf", cutoff, start=0, num=_SWEEP_BATCH)
            remind_by = _epoch(now + REMIND_BEFORE_LIVE_ENDS)
            pipe.zrangebyscore(LIVE, "-inf", remind_by, start=0, num=_SWEEP_BATCH)
            silent, vague, expiring = await pipe.execute()
        return Due({int(m) for m in silent}, {int(m) for m in vague}, {int(m) for m in expiring})

    async def forget(self, now: datetime, what: Forget) -> None:
        """Only what is still as old as the sweep saw it: a fix that arrived since (and
        closed what this sweep opened) keeps its case watched."""
        cutoff = _epoch(now - SILENCE)
        async with self.redis.pipeline(transaction=False) as pipe:
            if what.seen:
                pipe.eval(_FORGET_IF_OLD, 1, SEEN, cutoff, *what.seen)
            if what.judged:
                pipe.eval(_FORGET_IF_OLD, 1, JUDGED, cutoff, *what.judged)
            if what.live:
                pipe.eval(_FORGET_IF_OLD, 1, LIVE, _epoch(now), *what.live)
            if what.gone:
                pipe.zrem(SEEN, *what.gone)
                pipe.zrem(JUDGED, *what.gone)
                pipe.zrem(LIVE, *what.gone)
            if what.seen_behind:
                pipe.zadd(SEEN, what.seen_behind, gt=True)
            await pipe.execute()

    async def stop_seeing(self, case_id: int) -> None:
        """The patient left the chat: the alert is open, no silence is waited for."""
        await self.redis.zrem(SEEN, str(case_id))

    async def drop(self, case_ids: list[int]) -> None:
        """Closed cases are watched no more."""
        if not case_ids:
            return
        members = [str(i) for i in case_ids]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(SEEN, *members)
            pipe.zrem(JUDGED, *members)
            pipe.zrem(LIVE, *members)
            await pipe.execute()

    async def ensure(self) -> int | None:
        """Rebuild the sorted sets when Redis has lost them (a restart without its data,
        a flush): the marker goes with them, and is set again only once the sets are
        whole. Returns how many cases were put back, or None when nothing was lost."""
        if await self.redis.exists(INDEXED):
            return None
        watched = await self.rebuild()  # twice at once is harmless: the same scores
        await self.redis.set(INDEXED, "1")
        return watched

    async def rebuild(self) -> int:
        """Fill the sorted sets from PostgreSQL (after Redis lost them)."""
        rows = await self.pool.fetch(
            "SELECT id, coalesce(last_fix_at, consented_at) AS seen, "
            "coalesce(last_judged_at, consented_at) AS judged, live_until, signal_episode_id "
            "FROM quarantine_cases WHERE closed_at IS NULL AND consented_at IS NOT NULL"
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(rows), 10_000):
                chunk = rows[start : start + 10_000]
                watching = [r for r in chunk if r["signal_episode_id"] is None]
                if watching:
                    pipe.zadd(SEEN, {str(r["id"]): _epoch(r["seen"]) for r in watching})
                    pipe.zadd(JUDGED, {str(r["id"]): _epoch(r["judged"]) for r in watching})
                live = {str(r["id"]): _epoch(r["live_until"]) for r in chunk if r["live_until"]}
                if live:
                    pipe.zadd(LIVE, live)
            await pipe.execute()
        return len(rows)
