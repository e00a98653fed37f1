"""Telegram's flood limits, as the sandbox keeps them (on unless switched off); its size
rules are checked with the rest of a message's form (bots/sandbox/markup.py).

A bot sends at most 30 messages in any second across all its chats (1,000
with ``allow_paid_broadcast``), a private chat takes about one a second after a short
burst (5 here), a group 20 a minute; beyond that the answer is ``429 Too Many Requests``
with ``retry_after``, as Telegram's. Refusals are counted per bot and chat, so that a test can tell
that nothing was refused that it did not ask for.

Telegram judges a send when it arrives; the sandbox judges it when its event loop gets to
it. The loop shares a process with the tests that drive it, and a pause there (a garbage
collection in a long test session, a busy load generator) lets sends that arrived one a
second pile up and be judged all at once. So the sandbox's loop beats a heartbeat
(:meth:`FloodLimits.beat`, every ``HEARTBEAT`` seconds), and a beat overdue by more than
``PAUSE_NOTICED`` is a pause of the loop's own, noticed by the beat itself or by a send
judged before it. A send judged within ``PAUSE_GRACE`` seconds of a pause may have arrived
up to that pause's length earlier, so a second of judgements can hold that much more than a
second of arrivals: the bot's window and a chat's burst allow the longest recent pause's
worth of sends on top, at their rates. Sends the bot spaced properly are not refused for the
sandbox's own stall; a bot that sends too fast still is.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

PER_BOT_PER_SECOND = 30
PAID_PER_BOT_PER_SECOND = 1000
CHAT_BURST = 5
CHAT_PER_SECOND = 1.0
GROUP_PER_MINUTE = 20
HEARTBEAT = 0.02  # seconds between the loop's beats
PAUSE_NOTICED = 0.03  # seconds a beat may be overdue before the pause is the sandbox's own
PAUSE_GRACE = 2.0  # seconds after a pause during which its credit holds


@dataclass
class _Bucket:
    tokens: float = CHAT_BURST
    at: float = field(default_factory=time.monotonic)


@dataclass
class FloodLimits:
    enabled: bool = True
    _bot_sends: dict[tuple[int, Any], deque[float]] = field(default_factory=dict)
    _chats: dict[tuple[int, int], _Bucket] = field(default_factory=dict)
    _groups: dict[tuple[int, Any], deque[float]] = field(default_factory=dict)
    refused: Counter[tuple[str, int]] = field(default_factory=Counter)
    refused_by_limit: Counter[str] = field(default_factory=Counter)  # per_bot, chat, group
    credit_own_pauses: bool = True  # off for a test that measures the limits themselves
    own_pauses: int = 0
    own_paused_seconds: float = 0.0
    _heartbeat: float | None = None  # None: no loop beats, no pause is ever credited
    _pauses: deque[tuple[float, float]] = field(default_factory=deque)  # (noticed, seconds)

    def beat(self) -> None:
        """The sandbox's loop is running now (its watcher calls this every HEARTBEAT)."""
        now = time.monotonic()
        self._notice_pause(now)
        self._heartbeat = now

    def _notice_pause(self, now: float) -> None:
        """A beat overdue means the loop stood still: sends that arrived meanwhile are
        judged only now. Whichever comes first, the beat or a send, counts the pause once."""
        if self._heartbeat is None or not self.credit_own_pauses:
            return
        overdue = now - self._heartbeat - HEARTBEAT
        if overdue > PAUSE_NOTICED:
            self.own_pauses += 1
            self.own_paused_seconds += overdue
            # a send that arrived just after the last beat waited the beat's period too
            self._pauses.append((now, overdue + HEARTBEAT))
            self._heartbeat = now

    def _credit(self, now: float) -> float:
        """The longest of the loop's own pauses in the last PAUSE_GRACE seconds: how much
        earlier than its judgement a send judged now may have arrived."""
        self._notice_pause(now)
        while self._pauses and self._pauses[0][0] <= now - PAUSE_GRACE:
            self._pauses.popleft()
        return max((seconds for _, seconds in self._pauses), default=0.0)

    def wait(self, bot_id: int, bot_name: str, chat_id: int, *, paid: bool) -> int | None:
        """None when a send may go now, else the seconds to retry after (a refusal,
        counted). A send that goes is then :meth:`record`-ed: a refused or malformed one
        does not count against the limits."""
        if not self.enabled:
            return None
        now = time.monotonic()
        sends = self._window(self._bot_sends, (bot_id, paid), now, 1.0)
        wait: float | None = None
        per_second = PAID_PER_BOT_PER_SECOND if paid else PER_BOT_PER_SECOND
        if len(sends) >= per_second + int(per_second * self._credit(now)):
            wait, limit = sends[0] + 1.0 - now, "per_bot"
        elif chat_id < 0:
            group = self._window(self._groups, (bot_id, chat_id), now, 60.0)
            if len(group) >= GROUP_PER_MINUTE:
                wait, limit = group[0] + 60.0 - now, "group"
        else:
            bucket = self._bucket(bot_id, chat_id, now)
            if bucket.tokens < 1.0:
                wait, limit = (1.0 - bucket.tokens) / CHAT_PER_SECOND, "chat"
        if wait is None:
            return None
        self.refused[(bot_name, chat_id)] += 1
        self.refused_by_limit[limit] += 1
        return max(1, math.ceil(wait))

    def record(self, bot_id: int, chat_id: int, *, paid: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self._bot_sends.setdefault((bot_id, paid), deque()).append(now)
        if chat_id < 0:
            self._groups.setdefault((bot_id, chat_id), deque()).append(now)
        else:
            self._bucket(bot_id, chat_id, now).tokens -= 1.0

    @staticmethod
    def _window(
        windows: dict[tuple[int, Any], deque[float]], key: tuple[int, Any], now: float, span: float
    ) -> deque[float]:
        times = windows.setdefault(key, deque())
        while times and times[0] <= now - span:
            times.popleft()
        return times

    def _bucket(self, bot_id: int, chat_id: int, now: float) -> _Bucket:
        bucket = self._chats.setdefault((bot_id, chat_id), _Bucket())
        most = CHAT_BURST + self._credit(now) * CHAT_PER_SECOND
        bucket.tokens = min(most, bucket.tokens + (now - bucket.at) * CHAT_PER_SECOND)
        bucket.at = now
        return bucket

    def report(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "limits": {
                "per_bot_per_second": PER_BOT_PER_SECOND,
                "paid_per_bot_per_second": PAID_PER_BOT_PER_SECOND,
                "private_chat_burst": CHAT_BURST,
                "private_chat_per_second": CHAT_PER_SECOND,
                "group_per_minute": GROUP_PER_MINUTE,
            },
            "refused_total": self.refused_total,
            "own_pauses": {"count": self.own_pauses, "seconds": round(self.own_paused_seconds, 3)},
            "refused_by_limit": dict(self.refused_by_limit),
            "refused": [
                {"bot": bot, "chat_id": chat, "count": count}
                for (bot, chat), count in sorted(self.refused.items())
            ],
        }

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())
