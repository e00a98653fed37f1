"""City news: items written in ru, kk and en by the panel's editors, published to the
city's Telegram channel and to the citizen bot's subscribers through the outbox.

Subscribing is the person's own choice (off by default) and one tap stops it; an urgent
notice may go to one district's subscribers only. Publishing queues one outbox message
per subscriber in one statement, in the same transaction as the item's publication, so
an item is sent to everyone or to no one; the notifier sends them at Telegram's rate, and
the time that takes is said before the editor publishes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.audit import record
from services.languages import LANGUAGES

MAX_TEXT = 1200  # three of them fit one channel post (Telegram: 4,096 characters)
MAX_DISTRICT = 100
# Above this the send takes long enough that the channel (no per-subscriber limit) serves
# the city better; the panel says so.
CHANNEL_RECOMMENDED_AFTER = timedelta(hours=1)
NEWS_KINDS = ("news", "news_urgent", "news_channel")


class NewsError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewsItem:
    id: int
    texts: dict[str, str]
    district: str | None
    urgent: bool
    created_by: str
    created_at: datetime
    published_at: datetime | None
    to_channel: bool
    recipients: int


@dataclass(frozen=True)
class Progress:
    queued: int
    sent: int
    failed: int

    @property
    def waiting(self) -> int:
        return self.queued - self.sent - self.failed


@dataclass(frozen=True)
class Estimate:
    """How long sending to ``recipients`` takes at ``per_second`` messages a second."""

    recipients: int
    per_second: float

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.recipients / self.per_second)

    @property
    def channel_recommended(self) -> bool:
        return self.duration > CHANNEL_RECOMMENDED_AFTER

    def words(self) -> str:
        """``about 18.5 hours``, ``about 3 minutes``, ``under a minute``."""
        seconds = self.duration.total_seconds()
        if seconds < 60:
            return "under a minute"
        if seconds < 3600:
            minutes = round(seconds / 60)
            return f"about {minutes} minute{'s' if minutes != 1 else ''}"
        hours = f"{seconds / 3600:.1f}".removesuffix(".0")
        return f"about {hours} hour{'s' if hours != '1' else ''}"


def check_texts(texts: dict[str, str]) -> dict[str, str]:
    """Each language's text, stripped: all three are needed, each up to MAX_TEXT."""
    checked = {}
    for lang in LANGUAGES:
        value = (texts.get(lang) or "").replace("\r\n", "\n").strip()
        if not value:
            raise NewsError("news.text_missing", f"write the news in every language ({lang})")
        if len(value) > MAX_TEXT:
            raise NewsError("news.text_long", f"the {lang} text is longer than {MAX_TEXT}")
        if "\x00" in value:
            raise NewsError("news.text_nul", f"the {lang} text has a NUL character")
        checked[lang] = value
    return checked


def _item(row: asyncpg.Record) -> NewsItem:
    return NewsItem(
        row["id"],
        {lang: row[f"text_{lang}"] for lang in LANGUAGES},
        row["district"],
        row["urgent"],
        row["created_by"],
        row["created_at"],
        row["published_at"],
        row["to_channel"],
        row["recipients"],
    )


class NewsService:
    def __init__(self, pool: asyncpg.Pool, *, channel: int | None, per_second: float) -> None:
        """``channel``: the city's channel's chat id (CITY_NEWS_CHANNEL), None without one;
        ``per_second``: the citizen bot's sending rate (TELEGRAM_SENDS_PER_SECOND)."""
        self.pool = pool
        self.channel = channel
        self.per_second = per_second
        self._items: OrderedDict[int, NewsItem] = OrderedDict()

    # Subscribers --------------------------------------------------------------------

    async def subscribe(self, chat_id: int) -> bool:
        """True if the chat was not subscribed before."""
        status = await self.pool.execute(
            "INSERT INTO news_subscribers (chat_id) VALUES ($1) ON CONFLICT DO NOTHING", chat_id
        )
        return status.endswith(" 1")

    async def unsubscribe(self, chat_id: int) -> bool:
        """True if the chat was subscribed; its row is deleted."""
        status = await self.pool.execute(
            "DELETE FROM news_subscribers WHERE chat_id = $1", chat_id
        )
        return status.endswith(" 1")

    async def subscribed(self, chat_id: int) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT true FROM news_subscribers WHERE chat_id = $1", chat_id
            )
        )

    async def choose_district(self, chat_id: int, district: str | None) -> bool:
        """The subscriber's district for urgent notices; False if not subscribed."""
        if district is not None and district not in await self.districts():
            raise NewsError("news.district", "no such district")
        status = await self.pool.execute(
            "UPDATE news_subscribers SET district = $2 WHERE chat_id = $1", chat_id, district
        )
        return status.endswith(" 1")

    async def districts(self) -> list[str]:
        """The city's districts (zones of kind district in force)."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT name FROM zones WHERE kind = 'district' AND valid_until IS NULL"
            " ORDER BY name"
        )
        return [r["name"] for r in rows]

    async def audience(self, district: str | None = None) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM news_subscribers WHERE $1::text IS NULL OR district = $1",
            district,
        )
        return int(value)

    def estimate(self, recipients: int) -> Estimate:
        return Estimate(recipients, self.per_second)

    # Items ----------------------------------------------------------------------------

    async def write(
        self, texts: dict[str, str], *, actor: str, district: str | None = None, urgent: bool
    ) -> int:
        """A draft: checked, stored, audited; returns its id."""
        checked = check_texts(texts)
        district = (district or "").strip() or None
        if urgent and district is None:
            raise NewsError("news.urgent_district", "an urgent notice goes to one district")
        if district is not None and district not in await self.districts():
            raise NewsError("news.district", "no such district")
        async with self.pool.acquire() as conn, conn.transaction():
            news_id: int = await conn.fetchval(
                "INSERT INTO news_items (text_ru, text_kk, text_en, district, urgent, created_by)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                checked["ru"],
                checked["kk"],
                checked["en"],
                district,
                urgent,
                actor,
            )
            await record(conn, actor=actor, action="news.write", subject=str(news_id))
        return news_id

    async def get(self, news_id: int) -> NewsItem:
        row = await self.pool.fetchrow("SELECT * FROM news_items WHERE id = $1", news_id)
        if row is None:
            raise NewsError("news.not_found", "no such news item")
        return _item(row)

    async def latest(self, limit: int = 50) -> list[NewsItem]:
        rows = await self.pool.fetch("SELECT * FROM news_items ORDER BY id DESC LIMIT $1", limit)
        return [_item(r) for r in rows]

    async def publish(
        self, news_id: int, *, actor: str, to_channel: bool, to_subscribers: bool
    ) -> int:
        """Queue the item for the channel and/or its subscribers (all of them, or its
        district's), once: a second publish is refused. Returns the subscribers queued."""
        if not (to_channel or to_subscribers):
            raise NewsError("news.nowhere", "choose the channel, the subscribers, or both")
        if to_channel and self.channel is None:
            raise NewsError("news.no_channel", "no channel is set (CITY_NEWS_CHANNEL)")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT district, urgent, published_at FROM news_items WHERE id = $1 FOR UPDATE",
                news_id,
            )
            if row is None:
                raise NewsError("news.not_found", "no such news item")
            if row["published_at"] is not None:
                raise NewsError("news.published", "this item is published already")
            queued = 0
            if to_subscribers:
                status = await conn.execute(
                    "INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key, news_id)"
                    " SELECT 'citizen', chat_id, $2, jsonb_build_object('news', $1::bigint),"
                    " 'news:' || $1 || ':' || chat_id, $1 FROM news_subscribers"
                    " WHERE $3::text IS NULL OR district = $3"
                    " ON CONFLICT (dedupe_key) DO NOTHING",
                    news_id,
                    "news_urgent" if row["urgent"] else "news",
                    row["district"],
                )
                queued = int(status.split()[-1])
            if to_channel:
                await conn.execute(
                    "INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key, news_id)"
                    " VALUES ('citizen', $2, 'news_channel',"
                    " jsonb_build_object('news', $1::bigint),"
                    " 'news:' || $1 || ':channel', $1)",
                    news_id,
                    self.channel,
                )
            await conn.execute(
                "UPDATE news_items SET published_at = now(), published_by = $2, to_channel = $3,"
                " recipients = $4 WHERE id = $1",
                news_id,
                actor,
                to_channel,
                queued,
            )
            await record(
                conn,
                actor=actor,
                action="news.publish",
                subject=str(news_id),
                details={"channel": to_channel, "subscribers": queued},
            )
        return queued

    async def progress(self, news_id: int) -> Progress:
        row = await self.pool.fetchrow(
            "SELECT count(*) AS queued, count(sent_at) AS sent, count(failed_at) AS failed"
            " FROM outbox WHERE news_id = $1",
            news_id,
        )
        assert row is not None
        return Progress(row["queued"], row["sent"], row["failed"])

    async def for_sending(self, news_id: int) -> NewsItem:
        """An item as the notifier renders each of its messages (the last few items are
        kept: a send of millions reads its item once; an item never changes)."""
        cached = self._items.get(news_id)
        if cached is None:
            cached = self._items[news_id] = await self.get(news_id)
            while len(self._items) > 16:
                self._items.popitem(last=False)
        return cached
