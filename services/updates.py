"""The ledger that makes every update take effect once, however often it is delivered."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from services.db import Connection


class Claim(enum.Enum):
    OWNED = "owned"  # this worker handles it now
    DONE = "done"  # handled before: answer OK, do nothing
    IN_FLIGHT = "in_flight"  # another worker is handling it right now


_CLAIM = """
INSERT INTO processed_updates (bot_id, update_id, claimed_until)
VALUES ($1, $2, now() + $3::interval)
ON CONFLICT (bot_id, update_id) DO UPDATE
    SET claimed_until = EXCLUDED.claimed_until,
        attempts = processed_updates.attempts + 1
    WHERE processed_updates.done_at IS NULL
      AND processed_updates.claimed_until < now()
RETURNING attempts
"""


# A claim that is also the completion: made inside the transaction of the work the
# updates carry, so that they take effect with it or not at all.
_CLAIM_DONE = """
INSERT INTO processed_updates (bot_id, update_id, claimed_until, done_at)
SELECT $1, u, now() + $3::interval, now() FROM unnest($2::bigint[]) u
ON CONFLICT (bot_id, update_id) DO UPDATE
    SET claimed_until = EXCLUDED.claimed_until, done_at = EXCLUDED.done_at,
        attempts = processed_updates.attempts + 1
    WHERE processed_updates.done_at IS NULL
      AND processed_updates.claimed_until < now()
RETURNING update_id
"""


class UpdateLedger:
    def __init__(self, pool: asyncpg.Pool, *, lease: timedelta = timedelta(seconds=60)) -> None:
        self.pool = pool
        self.lease = lease

    async def claim(self, bot_id: int, update_id: int) -> Claim:
        """Take the update for handling, unless it is done or another worker holds it."""
        attempts = await self.pool.fetchval(_CLAIM, bot_id, update_id, self.lease)
        if attempts is not None:
            return Claim.OWNED
        done = await self.pool.fetchval(
            "SELECT done_at IS NOT NULL FROM processed_updates "
            "WHERE bot_id = $1 AND update_id = $2",
            bot_id,
            update_id,
        )
        return Claim.DONE if done else Claim.IN_FLIGHT

    async def claim_done_many(
        self, conn: Connection, bot_id: int, update_ids: Sequence[int]
    ) -> dict[int, Claim]:
        """Claim distinct updates and mark them done, in the caller's transaction: OWNED
        ones are this transaction's to handle (done when it commits, never if it rolls
        back); the others are DONE or IN_FLIGHT as :meth:`claim` says."""
        rows = await conn.fetch(_CLAIM_DONE, bot_id, list(update_ids), self.lease)
        claims = {row["update_id"]: Claim.OWNED for row in rows}
        others = [u for u in update_ids if u not in claims]
        if others:
            rows = await conn.fetch(
                "SELECT update_id, done_at IS NOT NULL AS done FROM processed_updates "
                "WHERE bot_id = $1 AND update_id = ANY($2::bigint[])",
                bot_id,
                others,
            )
            for row in rows:
                claims[row["update_id"]] = Claim.DONE if row["done"] else Claim.IN_FLIGHT
        return claims

    async def complete(self, bot_id: int, update_id: int) -> None:
        await self.pool.execute(
            "UPDATE processed_updates SET done_at = now() WHERE bot_id = $1 AND update_id = $2",
            bot_id,
            update_id,
        )

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
