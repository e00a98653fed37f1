"""The organisations' register (the tax register, imported with `citybots import orgs`)
and proving that one is an organisation's head.

A person proves to be the head by the organisation's BIN and the head's phone number on
the register, shared from their own Telegram account (this stands in for the digital
signature of the original permit portal). Permit applications (to act for the
organisation) and venue verification (to let a venue's staff check people in by IIN)
both ask it, here.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from services.audit import record
from services.errors import Refusal
from services.ratelimit import allow

HEAD_ATTEMPTS_PER_HOUR = 5


class NotHead(Refusal):
    """``code`` is ``too_many_attempts`` or ``not_head`` (the same for an unknown BIN)."""


async def prove_head(
    pool: asyncpg.Pool,
    redis: Redis,
    *,
    tg_user_id: int,
    bin_: str,
    phone: str,
    purpose: str,
) -> None:
    """Pass when ``phone`` (the account's own, normalised) is the head's phone of the
    organisation ``bin_`` on the register; raise :class:`NotHead` otherwise, with the same
    refusal for an unknown BIN and a wrong phone. HEAD_ATTEMPTS_PER_HOUR tries an hour per
    account, whatever the purpose. A refusal is written to the audit log
    (``<purpose>.head_refused``); the caller records what a success lets it do."""
    if not await allow(
        redis,
        f"org-head:{tg_user_id}",
        limit=HEAD_ATTEMPTS_PER_HOUR,
        window=timedelta(hours=1),
    ):
        raise NotHead("too_many_attempts")
    head_phone = await pool.fetchval("SELECT head_phone FROM organisations WHERE bin = $1", bin_)
    if head_phone is None or head_phone != phone:
        await record(
            pool,
            actor=f"tg:{tg_user_id}",
            action=f"{purpose}.head_refused",
            subject=f"bin:{bin_}",
        )
        raise NotHead("not_head")
