"""The hotline's records: questions the FAQ could not answer, kept without identity and
with personal numbers scrubbed, for the FAQ's next edition."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.db import Connection, fetch_all, of_row, row_or
from services.errors import Refusal
from services.outbox import Queued, enqueue, enqueue_many
from services.privacy import scrub
from services.rollups import Rollups

MAX_TEXT = 500

# An agent takes a waiting ticket, and closes the ticket they took (no row: it is gone).
_TAKE = (
    "UPDATE hotline_tickets SET state = 'taken', agent_chat = $2, taken_at = now()"
    " WHERE id = $1 AND state = 'waiting' RETURNING *"
)
_CLOSE = (
    "UPDATE hotline_tickets SET state = 'closed', closed_at = now()"
    " WHERE id = $1 AND agent_chat = $2 AND state = 'taken' RETURNING citizen_chat"
)


@dataclass(frozen=True)
class Unanswered:
    text: str
    language: str
    top_intent: str | None
    confidence: float | None
    asked_at: datetime


class HotlineService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record_unanswered(
        self, text: str, language: str, top_intent: str | None, confidence: float | None
    ) -> None:
        await self.pool.execute(
            "INSERT INTO hotline_unanswered (text, language, top_intent, confidence)"
            " VALUES ($1, $2, $3, $4)",
            scrub(text.strip())[:MAX_TEXT],
            language,
            top_intent,
            confidence,
        )

    async def unanswered(
        self, *, since: datetime | None = None, limit: int = 1000
    ) -> list[Unanswered]:
        return await fetch_all(
            self.pool,
            of_row(Unanswered),
            "SELECT text, language, top_intent, confidence, asked_at FROM hotline_unanswered"
            " WHERE $1::timestamptz IS NULL OR asked_at >= $1 ORDER BY asked_at DESC LIMIT $2",
            since,
            limit,
        )


class HotlineError(Refusal):
    """A refusal with the text key that explains it."""


@dataclass(frozen=True)
class Ticket:
    id: int
    citizen_chat: int
    language: str
    question: str
    state: str
    agent_chat: int | None
    created_at: datetime


_ticket = of_row(Ticket)


OUTCOMES = ("answered", "callback", "referred", "ambulance")


class Tickets:
    """Hand-off from the citizen bot to the agent bot. Every message that crosses goes
    through the durable outbox, so nothing is lost while a bot or Telegram is down."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def is_agent(self, tg_user_id: int) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM officers WHERE tg_user_id = $1 AND role = 'agent')",
                tg_user_id,
            )
        )

    async def set_shift(self, tg_user_id: int, on_shift: bool) -> list[Ticket]:
        """Start or end a shift; starting returns the tickets waiting meanwhile."""
        await self.pool.execute(
            "UPDATE officers SET on_shift = $2 WHERE tg_user_id = $1 AND role = 'agent'",
            tg_user_id,
            on_shift,
        )
        return await self.waiting() if on_shift else []

    async def waiting(self) -> list[Ticket]:
        rows = await self.pool.fetch(
            "SELECT * FROM hotline_tickets WHERE state = 'waiting' ORDER BY created_at"
        )
        return [_ticket(r) for r in rows]

    async def open(self, citizen_chat: int, language: str, question: str) -> tuple[Ticket, int]:
        """A new ticket (or the citizen's open one) and how many agents are on shift; the
        agents on shift are told at once through the agent bot."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO hotline_tickets (citizen_chat, language, question)"
                " VALUES ($1, $2, $3) ON CONFLICT (citizen_chat) WHERE state <> 'closed'"
                " DO NOTHING RETURNING *",
                citizen_chat,
                language,
                scrub(question.strip())[:MAX_TEXT],
            )
            agents = [
                r["tg_user_id"]
                for r in await conn.fetch(
                    "SELECT tg_user_id FROM officers WHERE role = 'agent' AND on_shift"
                )
            ]
            if row is None:
                existing = await conn.fetchrow(
                    "SELECT * FROM hotline_tickets WHERE citizen_chat = $1 AND state <> 'closed'",
                    citizen_chat,
                )
                assert existing is not None
                return _ticket(existing), len(agents)
            ticket = _ticket(row)
            await enqueue_many(
                conn,
                [
                    Queued(
                        "agent",
                        agent,
                        "hotline_ticket",
                        {"id": ticket.id, "question": ticket.question, "language": language},
                        f"ticket:{ticket.id}:{agent}",
                    )
                    for agent in agents
                ],
            )
        return ticket, len(agents)

    async def take(self, ticket_id: int, agent_chat: int) -> Ticket:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await row_or(
                conn, _TAKE, ticket_id, agent_chat, refusal=HotlineError("agent.ticket_gone")
            )
            busy = await conn.fetchval(
                "SELECT count(*) FROM hotline_tickets WHERE agent_chat = $1 AND state = 'taken'",
                agent_chat,
            )
            if busy > 1:
                raise HotlineError("agent.one_at_a_time")
            await _tell_citizen(conn, row["citizen_chat"], ticket_id, "hotline_taken", "taken")
        return _ticket(row)

    async def current(
        self, *, agent_chat: int | None = None, citizen_chat: int | None = None
    ) -> Ticket | None:
        """The agent's taken ticket, or the citizen's open one."""
        if agent_chat is not None:
            row = await self.pool.fetchrow(
                "SELECT * FROM hotline_tickets WHERE agent_chat = $1 AND state = 'taken'",
                agent_chat,
            )
        else:
            row = await self.pool.fetchrow(
                "SELECT * FROM hotline_tickets WHERE citizen_chat = $1 AND state <> 'closed'",
                citizen_chat,
            )
        return _ticket(row) if row else None

    async def relay(self, ticket: Ticket, *, from_agent: bool, text: str, key: str) -> None:
        """One message across, through the outbox (``key`` makes a retried update once)."""
        if from_agent:
            bot, chat, kind = "citizen", ticket.citizen_chat, "hotline_reply"
        elif ticket.agent_chat is not None:
            bot, chat, kind = "agent", ticket.agent_chat, "hotline_from_citizen"
        else:
            return  # not taken yet: nobody to relay to
        async with self.pool.acquire() as conn:
            await enqueue(
                conn,
                bot=bot,
                chat_id=chat,
                kind=kind,
                params={"id": ticket.id, "text": text[:3000]},
                dedupe_key=f"relay:{key}",
            )

    async def withdraw(self, ticket_id: int, citizen_chat: int) -> bool:
        """The citizen no longer waits for an operator: their waiting ticket is closed (an
        agent pressing it later hears it is gone). False when it was not waiting (taken,
        closed, or another person's)."""
        closed = await self.pool.fetchval(
            "UPDATE hotline_tickets SET state = 'closed', closed_at = now()"
            " WHERE id = $1 AND citizen_chat = $2 AND state = 'waiting' RETURNING id",
            ticket_id,
            citizen_chat,
        )
        return closed is not None

    async def close(self, ticket_id: int, agent_chat: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await row_or(
                conn, _CLOSE, ticket_id, agent_chat, refusal=HotlineError("agent.ticket_gone")
            )
            await _tell_citizen(conn, row["citizen_chat"], ticket_id, "hotline_closed", "closed")

    async def log_call(
        self, agent: int, *, topic: str, outcome: str, district: str, key: str | None = None
    ) -> bool:
        """Log a call; with ``key``, a second press of the same button logs nothing.
        True when this call was logged now."""
        if outcome not in OUTCOMES:
            raise HotlineError("agent.bad_outcome")
        result = await self.pool.execute(
            "INSERT INTO hotline_calls (agent, topic, outcome, district, call_key)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_key) WHERE call_key IS NOT NULL"
            " DO NOTHING",
            agent,
            topic,
            outcome,
            district[:80],
            key,
        )
        return result.endswith(" 1")


async def _tell_citizen(
    conn: Connection, citizen_chat: int, ticket_id: int, kind: str, step: str
) -> None:
    """The citizen hears what became of their ticket (once per ticket and ``step``)."""
    await enqueue(
        conn,
        bot="citizen",
        chat_id=citizen_chat,
        kind=kind,
        params={"id": ticket_id},
        dedupe_key=f"ticket:{ticket_id}:{step}",
    )


@dataclass(frozen=True)
class Call:
    at: datetime
    topic: str
    outcome: str
    district: str


async def recent_calls(pool: asyncpg.Pool, *, limit: int = 50) -> list[Call]:
    """The call log's latest entries (topic, outcome, district, time; never the caller)."""
    rows = await pool.fetch(
        "SELECT at, topic, outcome, district FROM hotline_calls ORDER BY at DESC LIMIT $1", limit
    )
    return [Call(r["at"], r["topic"], r["outcome"], r["district"]) for r in rows]


@dataclass(frozen=True)
class CallCounts:
    """Calls in a period: by topic, and by district x hour of day (city time)."""

    by_topic: list[tuple[str, int]]
    by_district_hour: dict[str, list[int]]  # district -> 24 counts
    outcomes: list[tuple[str, int]]
    total: int


async def call_counts(rollups: Rollups, *, since: datetime, until: datetime) -> CallCounts:
    """Calls from the hourly roll-ups (never the raw call log): by topic, by outcome, and
    by district and hour of day in the city's time."""
    (_, topics), (_, outcomes), (hours, districts) = await asyncio.gather(
        rollups.hourly("calls_topic", since, until),
        rollups.hourly("calls_outcome", since, until),
        rollups.hourly("calls_district", since, until),
    )
    grid: dict[str, list[int]] = {}
    for district, counts in districts.items():
        row = grid.setdefault(district, [0] * 24)
        for hour, calls in zip(hours, counts, strict=True):
            row[hour.astimezone(rollups.tz).hour] += calls
    by_topic = {topic: sum(counts) for topic, counts in topics.items()}
    by_outcome = {outcome: sum(counts) for outcome, counts in outcomes.items()}
    return CallCounts(
        sorted(by_topic.items(), key=lambda kv: -kv[1]),
        dict(sorted(grid.items())),
        sorted(by_outcome.items(), key=lambda kv: -kv[1]),
        sum(by_topic.values()),
    )
