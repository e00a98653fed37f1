"""The ledger that makes every update take effect once, however often it is delivered.

Claims and completions made at the same moment share one statement (services/coalesce.py):
every update still claims itself, and a crowd of them costs PostgreSQL one round trip.
"""

from __future__ import annotations

import enum
from datetime import timedelta

import asyncpg

from services.coalesce import Coalescer


class Claim(enum.Enum):
    OWNED = "owned"  # this worker handles it now
    DONE = "done"  # handled before: answer OK, do nothing
    IN_FLIGHT = "in_flight"  # another worker is handling it right now


_CLAIM = """
INSERT INTO processed_updates (bot_id, update_id, claimed_until)
SELECT $1, u, now() + $3::interval FROM unnest($2::bigint[]) u
ON CONFLICT (bot_id, update_id) DO UPDATE
    SET claimed_until = EXCLUDED.claimed_until,
        attempts = processed_updates.attempts + 1
    WHERE processed_updates.done_at IS NULL
      AND processed_updates.claimed_until < now()
RETURNING update_id
"""


class UpdateLedger:
    def __init__(self, pool: asyncpg.Pool, *, lease: timedelta = timedelta(seconds=60)) -> None:
        self.pool = pool
        self.lease = lease
        self._claims = Coalescer(self._claim_many)
        self._completions = Coalescer(self._complete_many)

    async def claim(self, bot_id: int, update_id: int) -> Claim:
        """Take the update for handling, unless it is done or another worker holds it."""
        return await self._claims((bot_id, update_id))

    async def complete(self, bot_id: int, update_id: int) -> None:
        await self._completions((bot_id, update_id))

    async def _claim_many(self, keys: list[tuple[int, int]]) -> list[Claim]:
        """Claims of one moment: one statement per bot. An update asked for twice is
        OWNED (at most) once, IN_FLIGHT for the other asker."""
        claims: dict[tuple[int, int], Claim] = {}
        by_bot: dict[int, list[int]] = {}
        for bot_id, update_id in dict.fromkeys(keys):
            by_bot.setdefault(bot_id, []).append(update_id)
        for bot_id, update_ids in by_bot.items():
            rows = await self.pool.fetch(_CLAIM, bot_id, update_ids, self.lease)
            owned = {row["update_id"] for row in rows}
            others = [u for u in update_ids if u not in owned]
            done: set[int] = set()
            if others:
                rows = await self.pool.fetch(
                    "SELECT update_id FROM processed_updates WHERE bot_id = $1 "
                    "AND update_id = ANY($2::bigint[]) AND done_at IS NOT NULL",
                    bot_id,
                    others,
                )
                done = {row["update_id"] for row in rows}
            for update_id in update_ids:
                claims[bot_id, update_id] = (
                    Claim.OWNED
                    if update_id in owned
                    else Claim.DONE
                    if update_id in done
                    else Claim.IN_FLIGHT
                )
        answers: list[Claim] = []
        for key in keys:
            answers.append(claims[key])
            if claims[key] is Claim.OWNED:
                claims[key] = Claim.IN_FLIGHT  # the same update asked for again
        return answers

    async def _complete_many(self, keys: list[tuple[int, int]]) -> list[None]:
        by_bot: dict[int, list[int]] = {}
        for bot_id, update_id in keys:
            by_bot.setdefault(bot_id, []).append(update_id)
        for bot_id, update_ids in by_bot.items():
            await self.pool.execute(
                "UPDATE processed_updates SET done_at = now() "
                "WHERE bot_id = $1 AND update_id = ANY($2::bigint[])",
                bot_id,
                update_ids,
            )
        return [None] * len(keys)

    async def release(self, bot_id: int, update_id: int) -> None:
        """Give the update back so that a redelivery is handled (after a failure)."""
        await self.pool.execute(
            "UPDATE processed_updates SET claimed_until = now() - interval '1 second' "
            "WHERE bot_id = $1 AND update_id = $2 AND done_at IS NULL",
            bot_id,
            update_id,
        )

    async def purge(self, older_than: timedelta = timedelta(days=2)) -> int:
        """Forget old entries: Telegram stops redelivering an update after 24 hours."""
        result = await self.pool.execute(
            "DELETE FROM processed_updates WHERE received_at < now() - $1::interval", older_than
        )
        return int(result.split()[-1])
