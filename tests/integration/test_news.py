"""City news: written in three languages, published once to the subscribers (all, or one
district's) and the channel through the outbox, with the send's time said beforehand; the
subscribers queued in batches after the publishing request, a general item only a few
minutes ahead of the notifier."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from services.news import Estimate, NewsError, NewsService

TEXTS = {"ru": "Новость", "kk": "Жаңалық", "en": "News"}


@pytest.fixture(scope="module")
def pool(pool_of_their_own: asyncpg.Pool) -> asyncpg.Pool:
    """A database of this module's own: the session's platform (tests/e2e) would otherwise
    queue these items with its background job and try to send what is queued to chats that
    exist nowhere, counting them as not delivered while a test checks its figures."""
    return pool_of_their_own


@pytest.fixture(autouse=True)
async def _nothing_left_to_send(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Each test takes its messages, its queueing and its subscribers away."""
    yield
    await pool.execute("DELETE FROM outbox WHERE news_id IS NOT NULL AND sent_at IS NULL")
    await pool.execute(
        "UPDATE news_items SET queued_at = now() WHERE published_at IS NOT NULL"
        " AND queued_at IS NULL"
    )
    await pool.execute("DELETE FROM news_subscribers WHERE chat_id >= 1000000000000")


def _chat() -> int:
    return 10**12 + secrets.randbelow(10**11)


async def _district(pool: asyncpg.Pool) -> str:
    name = f"District {secrets.token_hex(3)}"
    await pool.execute(
        "INSERT INTO zones (name, kind, geometry, valid_from) VALUES ($1, 'district',"
        ' \'{"type": "Polygon", "coordinates": []}\', now())',
        name,
    )
    return name


def test_two_million_subscribers_at_thirty_a_second_take_about_18_hours() -> None:
    estimate = Estimate(2_000_000, 30)
    assert estimate.words() == "about 18.5 hours"
    assert estimate.channel_recommended
    assert Estimate(2_000_000, 30).duration == timedelta(seconds=2_000_000 / 30)
    assert Estimate(2_000, 25).words() == "about 1 minute"
    assert Estimate(90_000, 25).words() == "about 1 hour"
    assert Estimate(10, 25).words() == "under a minute"
    assert not Estimate(10_000, 25).channel_recommended


async def test_an_item_needs_every_language_and_an_urgent_one_a_district(
    pool: asyncpg.Pool,
) -> None:
    news = NewsService(pool, channel=None, per_second=25)
    with pytest.raises(NewsError) as missing:
        await news.write({**TEXTS, "kk": "  "}, actor="editor", urgent=False)
    assert missing.value.code == "news.text_missing"
    with pytest.raises(NewsError) as long:
        await news.write({**TEXTS, "en": "x" * 1201}, actor="editor", urgent=False)
    assert long.value.code == "news.text_long"
    with pytest.raises(NewsError) as urgent:
        await news.write(TEXTS, actor="editor", urgent=True)
    assert urgent.value.code == "news.urgent_district"
    with pytest.raises(NewsError) as unknown:
        await news.write(TEXTS, actor="editor", district="Atlantis", urgent=True)
    assert unknown.value.code == "news.district"


async def test_publishing_queues_each_subscriber_once_and_only_once(pool: asyncpg.Pool) -> None:
    news = NewsService(pool, channel=-1001234567890, per_second=25)
    district = await _district(pool)
    here, elsewhere, gone = _chat(), _chat(), _chat()
    for chat in (here, elsewhere, gone):
        assert await news.subscribe(chat)
    assert not await news.subscribe(here)  # already
    assert await news.choose_district(here, district)
    assert await news.unsubscribe(gone)
    assert not await news.subscribed(gone)

    urgent_id = await news.write(TEXTS, actor="editor", district=district, urgent=True)
    assert await news.audience(district) == 1
    assert (
        await news.publish(urgent_id, actor="editor", to_channel=False, to_subscribers=True) == 1
    )
    assert await news.queue_pending(seconds=60) >= 1
    rows = await pool.fetch("SELECT chat_id, kind FROM outbox WHERE news_id = $1", urgent_id)
    assert [(r["chat_id"], r["kind"]) for r in rows] == [(here, "news_urgent")]

    general = await news.write(TEXTS, actor="editor", urgent=False)
    queued = await news.publish(general, actor="editor", to_channel=True, to_subscribers=True)
    await news.queue_pending(seconds=60)
    chats = {
        r["chat_id"]
        for r in await pool.fetch("SELECT chat_id FROM outbox WHERE news_id = $1", general)
    }
    assert {here, elsewhere, -1001234567890} <= chats
    assert gone not in chats
    assert queued == len(chats) - 1
    with pytest.raises(NewsError) as twice:
        await news.publish(general, actor="editor", to_channel=True, to_subscribers=True)
    assert twice.value.code == "news.published"
    progress = await news.progress(general)
    assert (progress.queued, progress.sent, progress.waiting) == (len(chats), 0, len(chats))
    audited = await pool.fetchval(
        "SELECT details FROM audit_log WHERE action = 'news.publish' AND subject = $1",
        str(general),
    )
    assert audited == {"channel": True, "subscribers": queued}


async def test_the_channel_needs_a_setting(pool: asyncpg.Pool) -> None:
    news = NewsService(pool, channel=None, per_second=25)
    item = await news.write(TEXTS, actor="editor", urgent=False)
    with pytest.raises(NewsError) as refused:
        await news.publish(item, actor="editor", to_channel=True, to_subscribers=False)
    assert refused.value.code == "news.no_channel"
    assert (await news.get(item)).published_at is None


async def _subscribers(pool: asyncpg.Pool, count: int, district: str | None = None) -> int:
    """``count`` subscribers with consecutive chat ids; returns the first."""
    first = 2 * 10**12 + secrets.randbelow(10**11) * 10**4
    await pool.execute(
        "INSERT INTO news_subscribers (chat_id, district)"
        " SELECT n, $3 FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS n",
        first,
        count,
        district,
    )
    return first


async def test_publishing_to_thousands_queues_them_in_batches_after_the_request(
    pool: asyncpg.Pool,
) -> None:
    news = NewsService(pool, channel=None, per_second=30)
    first = await _subscribers(pool, 3_000)
    item = await news.write(TEXTS, actor="editor", urgent=False)
    audience = await news.publish(item, actor="editor", to_channel=False, to_subscribers=True)
    assert audience >= 3_000
    published = await news.get(item)
    assert (published.audience, published.recipients, published.queueing) == (audience, 0, True)
    progress = await news.progress(item)
    assert (progress.queued, progress.to_queue) == (0, audience)  # nothing in the request
    assert progress.time_left == Estimate(audience, 30)

    while (await news.get(item)).recipients < 1_000:  # earlier tests' items go first
        assert await news.queue_batch(batch=1_000) is not None
    halfway = await news.get(item)
    assert halfway.queueing
    assert (await news.progress(item)).to_queue == audience - halfway.recipients

    await news.queue_pending(seconds=600)
    done = await news.get(item)
    assert (done.recipients, done.queueing) == (audience, False)
    rows = await pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT chat_id) AS chats,"
        " count(*) FILTER (WHERE chat_id BETWEEN $2 AND $2::bigint + 2999) AS mine"
        " FROM outbox WHERE news_id = $1",
        item,
        first,
    )
    assert (rows["n"], rows["chats"], rows["mine"]) == (audience, audience, 3_000)
    await pool.execute(
        "UPDATE outbox SET sent_at = now() WHERE news_id = $1 AND chat_id < $2::bigint + 1500",
        item,
        first,
    )
    progress = await news.progress(item)
    assert progress.sent >= 1_500
    assert progress.to_queue == 0
    assert progress.time_left == Estimate(audience - progress.sent, 30)
    assert await news.queue_batch() is None  # nothing left to queue


async def test_a_general_item_is_queued_minutes_ahead_and_an_urgent_one_at_once(
    pool: asyncpg.Pool,
) -> None:
    news = NewsService(pool, channel=None, per_second=30)
    await news.queue_pending(seconds=600)  # earlier tests' items out of the way
    district = await _district(pool)
    await _subscribers(pool, 1_200)
    await _subscribers(pool, 700, district)
    general = await news.write(TEXTS, actor="editor", urgent=False)
    await news.publish(general, actor="editor", to_channel=False, to_subscribers=True)
    waiting = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE bot = 'citizen' AND sent_at IS NULL"
        " AND failed_at IS NULL"
    )
    ahead = waiting + 500
    assert await news.queue_batch(batch=400, ahead=ahead) == 400
    assert await news.queue_batch(batch=400, ahead=ahead) == 100  # up to ahead, no more
    assert await news.queue_batch(batch=400, ahead=ahead) is None
    assert (await news.get(general)).queueing

    urgent = await news.write(TEXTS, actor="editor", district=district, urgent=True)
    assert await news.publish(urgent, actor="editor", to_channel=False, to_subscribers=True) == 700
    assert await news.queue_pending(seconds=600, ahead=ahead) == 700
    assert not (await news.get(urgent)).queueing
    assert (await news.get(general)).recipients == 500

    await pool.execute(
        "UPDATE outbox SET sent_at = now() WHERE news_id = ANY($1::bigint[])", [general, urgent]
    )
    assert await news.queue_pending(seconds=600, ahead=ahead) == 500
