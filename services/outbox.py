"""The durable outbox: messages to people written in the same transaction as the fact
they report, sent later by the notifier at Telegram's rates, each once (dedupe_key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from services.db import Connection


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    bot: str
    chat_id: int
    kind: str
    params: dict[str, Any]
    attempts: int


async def enqueue(
    conn: Connection,
    *,
    bot: str,
    chat_id: int,
    kind: str,
    params: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Add a message (inside the caller's transaction); False if its dedupe_key exists."""
    result = await conn.execute(
        "INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (dedupe_key) DO NOTHING",
        bot,
        chat_id,
        kind,
        params or {},
        dedupe_key,
    )
    return bool(result.endswith(" 1"))


@dataclass(frozen=True)
class Queued:
    """One message for :func:`enqueue_many`."""

    bot: str
    chat_id: int
    kind: str
    params: dict[str, Any]
    dedupe_key: str | None = None


async def enqueue_many(conn: Connection, messages: list[Queued]) -> int:
    """Add many messages in one statement (inside the caller's transaction); returns how
    many were new (a repeated dedupe_key adds nothing)."""
    if not messages:
        return 0
    result = await conn.execute(
        "INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key) "
        "SELECT b, c, k, p::jsonb, d FROM unnest($1::text[], $2::bigint[], $3::text[], "
        "$4::text[], $5::text[]) AS m(b, c, k, p, d) ON CONFLICT (dedupe_key) DO NOTHING",
        [m.bot for m in messages],
        [m.chat_id for m in messages],
        [m.kind for m in messages],
        [json.dumps(m.params) for m in messages],
        [m.dedupe_key for m in messages],
    )
    return int(result.split()[-1])


_CLAIM = """
UPDATE outbox SET claimed_until = now() + $3::interval, attempts = attempts + 1
 WHERE id IN (
    SELECT id FROM outbox
     WHERE bot = $1 AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
       AND (claimed_until IS NULL OR claimed_until < now())
     ORDER BY next_attempt_at, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED)
RETURNING id, bot, chat_id, kind, params, attempts
"""


class Outbox:
    def __init__(self, pool: asyncpg.Pool, *, lease: timedelta = timedelta(seconds=60)) -> None:
        self.pool = pool
        self.lease = lease

    async def claim(self, bot: str, limit: int) -> list[OutboxMessage]:
        """Take up to ``limit`` due messages for ``bot``; a claim lapses after the lease."""
        rows = await self.pool.fetch(_CLAIM, bot, limit, self.lease)
        return [
            OutboxMessage(
                r["id"],
                r["bot"],
                r["chat_id"],
                r["kind"],
                r["params"] if isinstance(r["params"], dict) else json.loads(r["params"]),
                r["attempts"],
            )
            for r in rows
        ]

    async def waiting(self) -> dict[str, int]:
        """Messages due and not sent yet, per bot (the partial index holds only these)."""
        rows = await self.pool.fetch(
            "SELECT bot, count(*) AS waiting FROM outbox "
            "WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() "
            "GROUP BY bot"
        )
        return {r["bot"]: r["waiting"] for r in rows}

    async def sent(self, message_id: int) -> None:
        await self.pool.execute("UPDATE outbox SET sent_at = now() WHERE id = $1", message_id)

    async def retry_later(self, message_id: int, delay: timedelta, error: str) -> None:
        await self.pool.execute(
            "UPDATE outbox SET next_attempt_at = now() + $2::interval, claimed_until = NULL, "
            "last_error = $3 WHERE id = $1",
            message_id,
            delay,
            error,
        )

    async def failed(self, message_id: int, error: str) -> None:
        """Give up (the person blocked the bot, or the chat is gone)."""
        await self.pool.execute(
            "UPDATE outbox SET failed_at = now(), last_error = $2 WHERE id = $1",
            message_id,
            error,
        )
