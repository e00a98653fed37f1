"""One pacer per bot, shared by every worker: Telegram's rates, kept before each send.

Telegram takes about 30 messages a second from a bot across all chats (up to 1,000 for
paid broadcasts), about one a second per private chat with a short burst, and 20 a minute
per group; beyond that it answers 429. Every worker process of a deployment reserves each
send's slot in Redis with the generic cell rate algorithm (GCRA): a bot's, a chat's and a
paid broadcast's schedule is one "theoretical arrival time" each, moved on atomically by a
script, so two workers never take the same slot.

Priorities: a reply to a person who just acted always takes the next slot; a doctor's
alert only while the bot's queue is under ``ALERT_MAX_BACKLOG`` seconds long; a bulk
notice only while it is under ``BULK_MAX_BACKLOG``; they wait otherwise, so replies go
first, alerts next, bulk notices last.

While Redis is unreachable each process keeps the same schedule in memory (a worker's share
of the rate then is the whole rate: with two workers, bursts may meet a 429, which the
client waits out), and says so in the log once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class Priority(IntEnum):
    REPLY = 0
    ALERT = 1
    BULK = 2


# (priority, paced): ``paced`` when the sender waited for the turn itself.
_sending: ContextVar[tuple[Priority, bool]] = ContextVar(
    "sending", default=(Priority.REPLY, False)
)


@contextlib.contextmanager
def sending_as(priority: Priority, *, paced: bool = False) -> Iterator[None]:
    """Sends made inside take this priority (anything else is a reply); ``paced`` when the
    caller has already waited for the turn (the outbox does, to give up on a long wait
    before its claim lapses, rather than in the middle of a request)."""
    token = _sending.set((priority, paced))
    try:
        yield
    finally:
        _sending.reset(token)


def current_sending() -> tuple[Priority, bool]:
    """(priority, already paced) of a send made now."""
    return _sending.get()


ALERT_MAX_BACKLOG = 2.0
BULK_MAX_BACKLOG = 0.5
_NO_LIMIT = -1.0
_RETRY_GRANULARITY = 0.25  # how long a deferred alert or notice waits before asking again
_LATE_TURNS = 3  # turns a send may miss (its process too busy to wake in time) and retake


@dataclass(frozen=True)
class Limits:
    """The rates the pacer keeps, a little under Telegram's, so that the jitter between a
    slot and the request reaching Telegram does not cross the line."""

    per_bot: float = 25.0  # sends a second across all chats
    paid_per_bot: float = 900.0  # sends a second with allow_paid_broadcast
    chat_interval: float = 1.0  # seconds between sends to one private chat...
    chat_burst: int = 4  # ...after a burst of this many
    group_interval: float = 3.2  # seconds between sends to a group (20 a minute)

    def chat(self, chat_id: int) -> tuple[float, float]:
        """(interval, tolerance) of a chat's schedule: groups have negative ids."""
        if chat_id < 0:
            return self.group_interval, 0.0
        return self.chat_interval, (self.chat_burst - 1) * self.chat_interval


# KEYS: the bot's schedule, the chat's schedule.
# ARGV: bot interval, chat interval, chat tolerance, longest bot backlog allowed (-1: any),
#       "chat" when the chat's slot is still to be taken, "bot" when it was taken already.
# Answers {"go", wait} (both slots reserved: send after wait seconds), {"chat", wait} (the
# chat's slot reserved for after wait seconds: ask again then for the bot's), or
# {"later", wait} (the bot's queue is too long for this priority: ask again after wait).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bot_interval = tonumber(ARGV[1])
local chat_interval = tonumber(ARGV[2])
local chat_tolerance = tonumber(ARGV[3])
local max_backlog = tonumber(ARGV[4])
local chat_tat = now
if ARGV[5] == 'chat' then
  chat_tat = math.max(tonumber(redis.call('GET', KEYS[2]) or now), now)
  local chat_start = chat_tat - chat_tolerance
  if chat_start > now then
    local until_ms = math.ceil((chat_tat + chat_interval - now) * 1000) + 1000
    redis.call('SET', KEYS[2], tostring(chat_tat + chat_interval), 'PX', until_ms)
    return {'chat', tostring(chat_start - now)}
  end
end
local bot_tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local backlog = bot_tat - now
if max_backlog >= 0 and backlog > max_backlog then
  return {'later', tostring(backlog - max_backlog)}
end
redis.call('SET', KEYS[1], tostring(bot_tat + bot_interval),
           'PX', math.ceil((backlog + bot_interval) * 1000) + 1000)
if ARGV[5] == 'chat' then
  local until_ms = math.ceil((chat_tat + chat_interval - now) * 1000) + 1000
  redis.call('SET', KEYS[2], tostring(chat_tat + chat_interval), 'PX', until_ms)
end
return {'go', tostring(backlog)}
"""

_BACKLOG = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
return tostring(math.max(tonumber(redis.call('GET', KEYS[1]) or now) - now, 0))
"""


@dataclass
class _LocalSchedules:
    """The same reservations in this process's memory, while Redis is unreachable."""

    tats: dict[str, float] = field(default_factory=dict)

    def reserve(
        self, keys: tuple[str, str], args: tuple[float, float, float, float, str]
    ) -> tuple[str, float]:
        bot_key, chat_key = keys
        bot_interval, chat_interval, chat_tolerance, max_backlog, phase = args
        now = time.monotonic()
        chat_tat = now
        if phase == "chat":
            chat_tat = max(self.tats.get(chat_key, now), now)
            if chat_tat - chat_tolerance > now:
                self.tats[chat_key] = chat_tat + chat_interval
                return "chat", chat_tat - chat_tolerance - now
        bot_tat = max(self.tats.get(bot_key, now), now)
        backlog = bot_tat - now
        if max_backlog >= 0 and backlog > max_backlog:
            return "later", backlog - max_backlog
        self.tats[bot_key] = bot_tat + bot_interval
        if phase == "chat":
            self.tats[chat_key] = chat_tat + chat_interval
        if len(self.tats) > 100_000:
            self.tats = {k: v for k, v in self.tats.items() if v > now}
        return "go", backlog

    def backlog(self, key: str) -> float:
        return max(self.tats.get(key, 0.0) - time.monotonic(), 0.0)


class Pacer:
    """Waits for a send's turn: ``await pacer.turn(bot_id, chat_id, priority)`` right
    before the request. Shared by every bot of a process; the schedules are in Redis, by
    the bot's Telegram id."""

    def __init__(
        self, redis: Redis, limits: Limits | None = None, *, prefix: str = "pace"
    ) -> None:
        self.redis = redis
        self.limits = limits or Limits()
        self.prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._backlog = redis.register_script(_BACKLOG)
        self._local = _LocalSchedules()
        self._warned_at = 0.0
        self.waited = 0.0  # seconds spent waiting for turns, for the metrics

    def _bot_key(self, bot: int, paid: bool) -> str:
        return f"{self.prefix}:{bot}:paid" if paid else f"{self.prefix}:{bot}"

    async def turn(
        self, bot: int, chat_id: int, priority: Priority = Priority.REPLY, *, paid: bool = False
    ) -> float:
        """Wait until this send may go; answers how long it waited."""
        limits = self.limits
        chat_interval, chat_tolerance = limits.chat(chat_id)
        bot_interval = 1 / (limits.paid_per_bot if paid else limits.per_bot)
        max_backlog = {
            Priority.REPLY: _NO_LIMIT,
            Priority.ALERT: ALERT_MAX_BACKLOG,
            Priority.BULK: BULK_MAX_BACKLOG,
        }[priority]
        keys = (self._bot_key(bot, paid), f"{self.prefix}:{bot}:chat:{chat_id}")
        phase = "chat"
        began = time.monotonic()
        late_turns = 0
        while True:
            answer, wait = await self._ask(
                keys, (bot_interval, chat_interval, chat_tolerance, max_backlog, phase)
            )
            if answer == "later":
                wait = min(max(wait, 0.01), _RETRY_GRANULARITY)
            elif answer == "chat":
                phase = "bot"
            due = time.monotonic() + wait
            if wait > 0:
                await asyncio.sleep(wait)
            if answer != "go":
                continue
            # A busy process wakes late, and many late sends at once would cross
            # Telegram's per-second line together: one that missed its turn by more than
            # a turn's length takes the next free one instead.
            if time.monotonic() - due > bot_interval and late_turns < _LATE_TURNS:
                late_turns += 1
                phase = "bot"
                continue
            waited = time.monotonic() - began
            self.waited += waited
            return waited

    async def backlog(self, bot: int) -> float:
        """Seconds of sends already reserved ahead of a new reply for this bot."""
        try:
            return float(await self._backlog(keys=[self._bot_key(bot, False)]))
        except (RedisError, OSError):
            return self._local.backlog(self._bot_key(bot, False))

    async def _ask(
        self, keys: tuple[str, str], args: tuple[float, float, float, float, str]
    ) -> tuple[str, float]:
        try:
            answer, wait = await self._reserve(keys=list(keys), args=list(args))
        except (RedisError, OSError) as error:
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning("send pacing kept in this process: Redis %s", type(error).__name__)
            return self._local.reserve(keys, args)
        return (answer.decode() if isinstance(answer, bytes) else answer), float(wait)


@dataclass(frozen=True)
class SendQueue:
    """What a bot has waiting to go out, for the panel and /healthz."""

    bot: str
    notices_waiting: int  # in the outbox, due
    reserved_seconds: float  # sends already given a turn, ahead of a new reply
    expected_wait: float  # for a new bulk notice: the reserved turns and the notices ahead
    sends_per_second: float


async def send_queues(
    pacer: Pacer, waiting: dict[str, int], bot_ids: dict[str, int]
) -> list[SendQueue]:
    queues = []
    for name, bot_id in bot_ids.items():
        reserved = await pacer.backlog(bot_id)
        notices = waiting.get(name, 0)
        queues.append(
            SendQueue(
                name,
                notices,
                reserved,
                reserved + notices / pacer.limits.per_bot,
                pacer.limits.per_bot,
            )
        )
    return queues
