"""City news end to end over the sandbox: a citizen opts in with «📰 News» (off by
default), an editor publishes, the item arrives in the person's language with «Stop
news», one tap stops it, and the city's channel gets the item in every language; an
urgent notice reaches the subscribers of its district and no one else."""

from __future__ import annotations

import secrets

from bots.sandbox.client import SandboxClient, buttons
from citybots.platform import Platform
from presentation.i18n import text
from tests.factories import add_district


async def test_a_citizen_opts_in_gets_the_news_in_their_language_and_stops_with_one_tap(
    platform: Platform, sandbox: SandboxClient
) -> None:
    assert platform.services is not None
    news = platform.services.news
    await news.queue_pending(seconds=60)  # items published before: queued before we subscribe
    reader = await sandbox.chat("citizen", language_code="kk")
    bystander = await sandbox.chat("citizen", language_code="en")
    await reader.send("/start")
    await reader.replies(1, wait=30)
    await bystander.send("/start")
    await bystander.replies(1, wait=30)
    assert not await news.subscribed(reader.user_id)  # off by default

    await reader.send(text("kk", "news.menu"))
    answer = await reader.reply(wait=30)
    assert answer["text"].startswith(text("kk", "news.subscribed"))
    assert text("kk", "news.stop_button") in buttons(answer)
    assert await news.subscribed(reader.user_id)
    assert not await news.subscribed(bystander.user_id)

    channel = await sandbox.create_group("channel", "City news")
    owner = await sandbox.create_user("Editor-in-chief", "en")
    await sandbox.add_to_group(channel, "citizen", owner["id"], quietly=True)
    news.channel = channel  # the setting CITY_NEWS_CHANNEL, for this test's channel
    try:
        item = await news.write(
            {"ru": "Парки открыты.", "kk": "Саябақтар ашық.", "en": "Parks are open."},
            actor="editor",
            urgent=False,
        )
        queued = await news.publish(item, actor="editor", to_channel=True, to_subscribers=True)
    finally:
        news.channel = None
    assert queued >= 1
    delivered = await reader.reply(wait=30)
    assert delivered["text"] == "Саябақтар ашық."
    assert buttons(delivered) == [text("kk", "news.stop_button")]
    posted = await sandbox.group(channel, count=1, wait=30)
    assert (
        posted["events"][0]["text"]
        == "Парки открыты.\n\n— — —\n\nСаябақтар ашық.\n\n— — —\n\nParks are open."
    )
    assert await bystander.updates(wait=1) == []

    await reader.press(text("kk", "news.stop_button"))
    assert (await reader.reply(wait=30))["text"] == text("kk", "news.stopped")
    assert not await news.subscribed(reader.user_id)
    later = await news.write(
        {"ru": "Ещё.", "kk": "Тағы.", "en": "More."}, actor="editor", urgent=False
    )
    await news.publish(later, actor="editor", to_channel=False, to_subscribers=True)
    rows = await news.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE news_id = $1 AND chat_id = $2", later, reader.user_id
    )
    assert rows == 0
    assert (await news.progress(item)).queued == queued + 1  # and the channel


async def test_an_urgent_notice_reaches_its_districts_subscribers_only(
    platform: Platform, sandbox: SandboxClient
) -> None:
    assert platform.services is not None
    news = platform.services.news
    # Items published before reach whoever subscribes while they are queued: done first.
    await news.queue_pending(seconds=60)
    # Named to sort first: the bot offers the first 20 districts by name.
    tag = secrets.token_hex(2)
    inside, _, _ = await add_district(platform.services, name=f"Aa {tag} Inside")
    other, _, _ = await add_district(platform.services, name=f"Aa {tag} Other")
    chats = {}
    for district in (inside, other):
        chat = await sandbox.chat("citizen", language_code="en")
        await chat.send("/start")
        await chat.replies(1, wait=30)
        await chat.send(text("en", "news.menu"))
        offer = await chat.reply(wait=30)
        assert district in buttons(offer)
        await chat.press(district)
        chosen = await chat.reply(wait=30)
        assert chosen["text"] == text("en", "news.district_chosen", district=district)
        chats[district] = chat

    item = await news.write(
        {"ru": "Новая зона карантина.", "kk": "Жаңа карантин аймағы.", "en": "A new zone."},
        actor="editor",
        district=inside,
        urgent=True,
    )
    assert await news.publish(item, actor="editor", to_channel=False, to_subscribers=True) == 1
    delivered = await chats[inside].reply(wait=30)  # queued by the background job
    assert delivered["text"] == text("en", "news.urgent", district=inside) + "\n\nA new zone."
    assert buttons(delivered) == [text("en", "news.stop_button")]
    assert await chats[other].updates(wait=2) == []
    progress = await news.progress(item)
    assert (progress.queued, progress.sent, progress.to_queue) == (1, 1, 0)
