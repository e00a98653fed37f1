import asyncio
import secrets
from datetime import timedelta

import asyncpg

from services.updates import Claim, UpdateLedger


async def test_an_update_is_owned_once_and_then_done(pool: asyncpg.Pool) -> None:
    ledger = UpdateLedger(pool)
    bot_id = secrets.randbelow(10**12)
    assert await ledger.claim(bot_id, 1) is Claim.OWNED
    assert await ledger.claim(bot_id, 1) is Claim.IN_FLIGHT
    await ledger.complete(bot_id, 1)
    assert await ledger.claim(bot_id, 1) is Claim.DONE


async def test_five_simultaneous_deliveries_give_one_owner(pool: asyncpg.Pool) -> None:
    ledger = UpdateLedger(pool)
    bot_id = secrets.randbelow(10**12)
    claims = await asyncio.gather(*(ledger.claim(bot_id, 7) for _ in range(5)))
    assert claims.count(Claim.OWNED) == 1


async def test_a_released_or_expired_claim_can_be_taken_again(pool: asyncpg.Pool) -> None:
    bot_id = secrets.randbelow(10**12)
    ledger = UpdateLedger(pool)
    assert await ledger.claim(bot_id, 1) is Claim.OWNED
    await ledger.release(bot_id, 1)
    assert await ledger.claim(bot_id, 1) is Claim.OWNED
    short = UpdateLedger(pool, lease=timedelta(milliseconds=1))
    assert await short.claim(bot_id, 2) is Claim.OWNED
    await asyncio.sleep(0.05)
    assert await short.claim(bot_id, 2) is Claim.OWNED  # the first holder died


async def test_old_entries_are_purged(pool: asyncpg.Pool) -> None:
    bot_id = secrets.randbelow(10**12)
    ledger = UpdateLedger(pool)
    await ledger.claim(bot_id, 1)
    await pool.execute(
        "UPDATE processed_updates SET received_at = now() - interval '3 days' WHERE bot_id = $1",
        bot_id,
    )
    assert await ledger.purge() >= 1
    assert await ledger.claim(bot_id, 1) is Claim.OWNED
