"""Linking a Telegram account to an IIN. The number alone never binds: the phone the
account shared must be registered for that IIN (the check digit misses most typos in
digit 11, so a second identifier has to match)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from services.coalesce import Coalescer
from services.localcache import LocalCache, publish
from services.outbox import enqueue
from services.ratelimit import count_event, window_of
from services.status import StatusService

FAILED_LINKS_PER_HOUR = 5
FAILED_LINKS_WINDOW = timedelta(hours=1)


class LinkOutcome(enum.Enum):
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"
    NO_MATCH = "no_match"  # says nothing about whether the IIN exists
    TAKEN = "taken"  # linked to another account: moving it needs a confirmation
    OTHER_IIN = "other_iin"  # this account already has a different IIN
    RATE_LIMITED = "rate_limited"  # every attempt, right or wrong, until retry_at


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    iin: str | None = None
    retry_at: datetime | None = None  # RATE_LIMITED: the minute attempts are taken again


def mask_iin(iin: str) -> str:
    """What a person may be shown of an IIN: the last four digits."""
    return "•" * 8 + iin[-4:]


class CitizenService:
    def __init__(
        self, pool: asyncpg.Pool, redis: Redis, statuses: StatusService | None = None
    ) -> None:
        """``statuses``: the colour a newly linked account starts from, so that a change
        right after linking is told (services/status_notices.py)."""
        self.pool = pool
        self.redis = redis
        self.statuses = statuses
        # Accounts' linked IINs, kept true by the invalidations link and unlink publish
        # (services/localcache.py); only linked accounts are kept.
        self.local: LocalCache[str] = LocalCache("citizen", ttl=300.0)
        # Every scan asks (flows/status/handlers.py): one query for those of a moment.
        self._linked = Coalescer(self._linked_list)

    async def iin_of(self, tg_user_id: int) -> str | None:
        return await self._linked(tg_user_id)

    async def _linked_list(self, tg_user_ids: list[int]) -> list[str | None]:
        found = await self.linked_iins(tg_user_ids)
        return [found.get(tg_user_id) for tg_user_id in tg_user_ids]

    async def linked_iins(self, tg_user_ids: Iterable[int]) -> dict[int, str]:
        """The IINs linked to these accounts (accounts with none are left out), from the
        in-process cache when it is listening, the rest in one query."""
        found: dict[int, str] = {}
        missing: dict[int, int] = {}
        for tg_user_id in tg_user_ids:
            key = str(tg_user_id)
            iin = self.local.get(key)
            if iin is not None:
                found[tg_user_id] = iin
            else:
                missing[tg_user_id] = self.local.generation(key)
        if missing:
            rows = await self.pool.fetch(
                "SELECT tg_user_id, iin FROM citizens WHERE tg_user_id = ANY($1::bigint[])",
                list(missing),
            )
            for row in rows:
                tg_user_id, iin = row["tg_user_id"], str(row["iin"])
                found[tg_user_id] = iin
                self.local.put(str(tg_user_id), iin, missing[tg_user_id])
        return found

    async def _forget(self, *tg_user_ids: int) -> None:
        keys = [str(i) for i in tg_user_ids]
        self.local.invalidate_local(keys)
        await publish(self.redis, self.local.namespace, keys)

    async def _blocked_until(self, tg_user_id: int) -> datetime | None:
        """After FAILED_LINKS_PER_HOUR failed attempts, the time (rounded up to the minute)
        the window of those failures ends; None while attempts are allowed."""
        failed, left = await window_of(
            self.redis, f"link-fail:{tg_user_id}", window=FAILED_LINKS_WINDOW
        )
        if failed < FAILED_LINKS_PER_HOUR or left <= timedelta(0):
            return None
        ends = datetime.now(UTC) + left
        whole = ends.replace(second=0, microsecond=0)
        return whole if whole == ends else whole + timedelta(minutes=1)

    async def link(
        self, tg_user_id: int, iin: str, phone: str, *, move: bool = False
    ) -> LinkResult:
        """Link ``iin`` to the account if ``phone`` is registered for it.

        After FAILED_LINKS_PER_HOUR failures in the hour every attempt is refused, the
        right pair too, until that hour is over (``retry_at``): the answer is the same
        whatever the IIN, so it never tells whether the IIN exists. An IIN linked to
        another account moves only with ``move=True`` (the person confirmed), and the
        other account is told: an IIN is never taken silently.
        """
        blocked_until = await self._blocked_until(tg_user_id)
        if blocked_until is not None:
            return LinkResult(LinkOutcome.RATE_LIMITED, retry_at=blocked_until)
        current = await self.iin_of(tg_user_id)
        if current is not None:
            return LinkResult(
                LinkOutcome.ALREADY_LINKED if current == iin else LinkOutcome.OTHER_IIN, current
            )
        matches = await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM citizen_phones WHERE iin = $1 AND phone = $2)",
            iin,
            phone,
        )
        if not matches:
            await count_event(self.redis, f"link-fail:{tg_user_id}", window=FAILED_LINKS_WINDOW)
            return LinkResult(LinkOutcome.NO_MATCH)
        moved_from: int | None = None
        shown = await self.statuses.status(iin) if self.statuses is not None else None
        async with self.pool.acquire() as conn, conn.transaction():
            holder = await conn.fetchval(
                "SELECT tg_user_id FROM citizens WHERE iin = $1 FOR UPDATE", iin
            )
            if holder is not None and holder != tg_user_id:
                if not move:
                    return LinkResult(LinkOutcome.TAKEN, iin)
                moved_from = holder
                await conn.execute("DELETE FROM citizens WHERE tg_user_id = $1", holder)
                await enqueue(
                    conn,
                    bot="citizen",
                    chat_id=holder,
                    kind="account_moved",
                    params={"iin": mask_iin(iin)},
                )
            await conn.execute(
                "INSERT INTO citizens (tg_user_id, iin, phone, told_colour, told_until, "
                "told_result_id) VALUES ($1, $2, $3, $4, $5, (SELECT max(id) FROM pcr_results "
                "WHERE iin = $2 AND superseded_at IS NULL AND withdrawn_at IS NULL)) "
                "ON CONFLICT (tg_user_id) DO NOTHING",
                tg_user_id,
                iin,
                phone,
                shown.colour.value if shown is not None else None,
                shown.until if shown is not None else None,
            )
        await self._forget(tg_user_id, *([moved_from] if moved_from is not None else []))
        return LinkResult(LinkOutcome.LINKED, iin)

    async def unlink(self, tg_user_id: int) -> bool:
        result = await self.pool.execute("DELETE FROM citizens WHERE tg_user_id = $1", tg_user_id)
        await self._forget(tg_user_id)
        return bool(result.endswith(" 1"))
