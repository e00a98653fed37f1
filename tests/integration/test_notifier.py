"""The outbox's sender: a notice Telegram took while PostgreSQL blinked is sent once."""

import secrets
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis

from bots.notifier import Notifier
from services.outbox import Outbox, enqueue
from services.pacing import Pacer
from services.users import LanguageChoice


class _Blinking(Outbox):
    """PostgreSQL goes away just as the first marks of "sent" are written."""

    def __init__(self, pool: asyncpg.Pool, failures: int) -> None:
        super().__init__(pool, lease=timedelta(seconds=3))
        self.failures = failures

    async def sent(self, message_id: int) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("PostgreSQL is restarting")
        await super().sent(message_id)


class _Bot:
    id = 4_000_000_001

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
        self.sent.append((chat_id, text))


class _Languages:
    async def get(self, tg_user_id: int) -> LanguageChoice:
        return LanguageChoice(None, "en")


async def test_a_notice_sent_while_postgres_blinks_is_marked_sent_and_not_sent_again(
    pool: asyncpg.Pool, redis: Redis
) -> None:
    bot_name = f"test-{secrets.token_hex(4)}"
    outbox = _Blinking(pool, failures=2)
    bot = _Bot()
    notifier = Notifier(
        outbox,
        {bot_name: bot},  # type: ignore[dict-item]
        _Languages(),  # type: ignore[arg-type]
        default_language="en",
        tz=ZoneInfo("Asia/Almaty"),
        pacer=Pacer(redis, prefix=f"pace-{secrets.token_hex(4)}"),
    )
    async with pool.acquire() as conn:
        await enqueue(
            conn, bot=bot_name, chat_id=42, kind="account_moved", params={"iin": "…1234"}
        )
    assert await notifier.drain_once(bot_name) == 1
    assert await pool.fetchval("SELECT sent_at IS NOT NULL FROM outbox WHERE bot = $1", bot_name)
    outbox.lease = timedelta(0)  # a claim that had lapsed would be taken again now
    assert await notifier.drain_once(bot_name) == 0
    assert len(bot.sent) == 1
