"""City news: items written in ru, kk and en by the panel's editors, published to the
city's Telegram channel and to the citizen bot's subscribers through the outbox.

Subscribing is the person's own choice (off by default) and one tap stops it; an urgent
notice may go to one district's subscribers only. Publishing marks the item published
and counts whom it goes to; a background job (queue_pending) then queues one outbox
message per subscriber in batches of QUEUE_BATCH, each batch its own transaction that
also moves the item's cursor (the last chat id queued), so a send to millions is never
one long insert and resumes where it stopped after a restart. A general item is queued
only a few minutes' sending ahead of the notifier, so that the outbox, sent oldest
first, never holds hours of news before a later exposure notice or alert; an urgent one
is queued whole at once. The notifier sends at Telegram's rate; the time that takes is
said before the editor publishes, and the time left while it sends.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.audit import record
from services.errors import Refusal
from services.languages import LANGUAGES

MAX_TEXT = 1200  # three of them fit one channel post (Telegram: 4,096 characters)
MAX_DISTRICT = 100
# Above this the send takes long enough that the channel (no per-subscriber limit) serves
# the city better; the panel says so.
CHANNEL_RECOMMENDED_AFTER = timedelta(hours=1)
NEWS_KINDS = ("news", "news_urgent", "news_channel")
QUEUE_BATCH = 5_000  # subscribers queued per transaction
# How much sending a general item keeps queued ahead of the notifier.
QUEUED_AHEAD = timedelta(minutes=5)
_FIRST_CHAT = -(2**63)  # below every chat id: the cursor before the first subscriber


class NewsError(Refusal, ValueError):
    """A news item the service refuses; its text says why in words."""


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
    recipients: int  # subscribers queued so far
    to_subscribers: bool
    audience: int  # subscribers it goes to, counted when published
    queueing: bool  # published, and subscribers still being queued


@dataclass(frozen=True)
class Progress:
    """A published item's send: outbox messages queued (the channel's among them), sent
    and refused, and what is still to be queued."""

    queued: int
    sent: int
    failed: int
    to_queue: int = 0  # subscribers not queued yet (0 once every one is)
    per_second: float = 1.0

    @property
    def waiting(self) -> int:
        """Queued and not sent yet."""
        return self.queued - self.sent - self.failed

    @property
    def time_left(self) -> Estimate:
        return Estimate(self.waiting + self.to_queue, self.per_second)


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
        row["to_subscribers"],
        row["audience"],
        row["published_at"] is not None and row["queued_at"] is None,
    )


# The next subscribers after the cursor ($3), in chat id order (the primary key's), each
# queued once (a batch run again after a crash adds nothing twice).
_QUEUE = """
WITH next AS (
    SELECT chat_id FROM news_subscribers
     WHERE chat_id > $3 AND ($2::text IS NULL OR district = $2)
     ORDER BY chat_id LIMIT $4
), queued AS (
    INSERT INTO outbox (bot, chat_id, kind, params, dedupe_key, news_id)
    SELECT 'citizen', chat_id, $5, jsonb_build_object('news', $1::bigint),
           'news:' || $1 || ':' || chat_id, $1
      FROM next
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM next) AS found, (SELECT max(chat_id) FROM next) AS last,
       (SELECT count(*) FROM queued) AS queued
"""


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
        """Publish the item to the channel (queued now) and/or its subscribers (all of
        them, or its district's: queued by queue_pending), once: a second publish is
        refused. Returns how many subscribers it goes to."""
        if not (to_channel or to_subscribers):
            raise NewsError("news.nowhere", "choose the channel, the subscribers, or both")
        if to_channel and self.channel is None:
            raise NewsError("news.no_channel", "no channel is set (CITY_NEWS_CHANNEL)")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT district, published_at FROM news_items WHERE id = $1 FOR UPDATE",
                news_id,
            )
            if row is None:
                raise NewsError("news.not_found", "no such news item")
            if row["published_at"] is not None:
                raise NewsError("news.published", "this item is published already")
            audience = 0
            if to_subscribers:
                audience = await conn.fetchval(
                    "SELECT count(*) FROM news_subscribers WHERE $1::text IS NULL"
                    " OR district = $1",
                    row["district"],
                )
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
                " to_subscribers = $4, audience = $5,"
                " queued_at = CASE WHEN $4 THEN NULL ELSE now() END WHERE id = $1",
                news_id,
                actor,
                to_channel,
                to_subscribers,
                audience,
            )
            await record(
                conn,
                actor=actor,
                action="news.publish",
                subject=str(news_id),
                details={"channel": to_channel, "subscribers": audience},
            )
        return int(audience)

    async def queue_batch(
        self, *, batch: int = QUEUE_BATCH, ahead: int | None = None
    ) -> int | None:
        """Queue the next ``batch`` subscribers of the first item still queueing (urgent
        ones first), in one transaction with the item's cursor; returns how many were
        queued, None when there is nothing to queue now. ``ahead``: a general item is
        queued only while fewer of the citizen bot's messages wait in the outbox (None:
        no limit)."""
        async with self.pool.acquire() as conn, conn.transaction():
            item = await conn.fetchrow(
                "SELECT id, district, urgent, queued_through FROM news_items"
                " WHERE published_at IS NOT NULL AND queued_at IS NULL"
                " ORDER BY urgent DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            if item is None:
                return None
            limit = batch
            if ahead is not None and not item["urgent"]:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE bot = 'citizen'"
                    " AND sent_at IS NULL AND failed_at IS NULL"
                )
                limit = min(batch, ahead - waiting)
                if limit <= 0:
                    return None
            done = await conn.fetchrow(
                _QUEUE,
                item["id"],
                item["district"],
                item["queued_through"] if item["queued_through"] is not None else _FIRST_CHAT,
                limit,
                "news_urgent" if item["urgent"] else "news",
            )
            assert done is not None
            await conn.execute(
                "UPDATE news_items SET recipients = recipients + $2,"
                " queued_through = coalesce($3, queued_through),"
                " queued_at = CASE WHEN $4 THEN now() END WHERE id = $1",
                item["id"],
                done["queued"],
                done["last"],
                done["found"] < limit,
            )
        return int(done["queued"])

    async def queue_pending(self, *, seconds: float, ahead: int | None = None) -> int:
        """Queue batches for up to about ``seconds`` (the background job's tick) or until
        nothing is left to queue now; returns the subscribers queued."""
        deadline = time.monotonic() + seconds
        queued = 0
        while time.monotonic() < deadline:
            added = await self.queue_batch(ahead=ahead)
            if added is None:
                break
            queued += added
        return queued

    @property
    def ahead(self) -> int:
        """How many messages a general item keeps queued ahead of the notifier."""
        return max(QUEUE_BATCH, round(QUEUED_AHEAD.total_seconds() * self.per_second))

    async def progress(self, news_id: int) -> Progress:
        row = await self.pool.fetchrow(
            "SELECT count(*) AS queued, count(sent_at) AS sent, count(failed_at) AS failed,"
            " (SELECT CASE WHEN queued_at IS NULL THEN greatest(audience - recipients, 0)"
            "  ELSE 0 END FROM news_items WHERE id = $1) AS to_queue"
            " FROM outbox WHERE news_id = $1",
            news_id,
        )
        assert row is not None
        return Progress(
            row["queued"], row["sent"], row["failed"], row["to_queue"] or 0, self.per_second
        )

    async def for_sending(self, news_id: int) -> NewsItem:
        """An item as the notifier renders each of its messages (the last few items are
        kept: a send of millions reads its item once; an item never changes)."""
        cached = self._items.get(news_id)
        if cached is None:
            cached = self._items[news_id] = await self.get(news_id)
            while len(self._items) > 16:
                self._items.popitem(last=False)
        return cached
