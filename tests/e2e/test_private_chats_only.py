"""Every bot works in private chats only (issue 17 §6): added to a group it says once, in
the language of whoever added it, that it works in private chats and leaves; channel
posts and messages without a sender are dropped before any flow sees them."""

from typing import Any

import pytest
from aiogram.dispatcher.event.bases import UNHANDLED

from bots.sandbox.client import SandboxClient
from citybots.platform import Platform
from citybots.settings import BOT_NAMES
from presentation.i18n import text


def _said(events: list[dict[str, Any]]) -> list[str]:
    return [e.get("text", "<left>") for e in events]


@pytest.mark.parametrize("bot", BOT_NAMES)
async def test_a_bot_added_to_a_group_says_once_it_works_in_private_chats_and_leaves(
    sandbox: SandboxClient, platform: Platform, bot: str
) -> None:
    stranger = await sandbox.create_user("Stranger", "kk")
    group = await sandbox.create_group("supergroup", "Neighbours")
    await sandbox.add_to_group(group, bot, stranger["id"])
    seen = await sandbox.group(group, count=2, wait=30)
    username = platform.bots[bot].username
    assert _said(seen["events"]) == [text("kk", "private_only", bot=username), "<left>"]
    assert seen["bots"] == []


async def test_messages_in_a_group_get_no_answer_but_one_notice_and_the_bot_leaves(
    sandbox: SandboxClient, platform: Platform
) -> None:
    """A bot that is in a group without having been told (added before this rule): the
    FAQ, the fallback and /start answer nobody there."""
    stranger = await sandbox.create_user("Stranger", "en")
    group = await sandbox.create_group("group", "Chatty")
    await sandbox.add_to_group(group, "citizen", stranger["id"], quietly=True)
    for message in ("what is my status?", "/start", "/help", "hello"):
        await sandbox.send_in_group(group, "citizen", message, user_id=stranger["id"])
    seen = await sandbox.group(group, count=2, wait=30)
    # Another private chat afterwards: the bot has handled what came before it.
    chat = await sandbox.chat("citizen", language_code="en")
    await chat.send("/help")
    await chat.reply(wait=30)
    seen = await sandbox.group(group)
    username = platform.bots["citizen"].username
    assert _said(seen["events"]) == [text("en", "private_only", bot=username), "<left>"]


async def test_a_message_without_a_sender_in_a_group_is_not_answered(
    sandbox: SandboxClient, platform: Platform
) -> None:
    someone = await sandbox.create_user("Admin", "ru")
    group = await sandbox.create_group("supergroup", "Anonymous admins")
    await sandbox.add_to_group(group, "agent", someone["id"], quietly=True)
    await sandbox.send_in_group(group, "agent", "вопрос на линию 1308")  # sender_chat only
    seen = await sandbox.group(group, count=2, wait=30)
    username = platform.bots["agent"].username
    notice = text(platform.settings.default_language, "private_only", bot=username)
    assert _said(seen["events"]) == [notice, "<left>"]  # nobody's language: the default


async def test_a_bot_added_to_a_channel_leaves_without_a_word_and_ignores_its_posts(
    sandbox: SandboxClient,
) -> None:
    owner = await sandbox.create_user("Owner", "en")
    channel = await sandbox.create_group("channel", "News")
    await sandbox.add_to_group(channel, "doctor", owner["id"])
    seen = await sandbox.group(channel, count=1, wait=30)
    assert _said(seen["events"]) == ["<left>"]

    quiet = await sandbox.create_group("channel", "Other news")
    await sandbox.add_to_group(quiet, "doctor", owner["id"], quietly=True)
    await sandbox.send_in_group(quiet, "doctor", "/start")
    await sandbox.send_in_group(quiet, "doctor", "hello subscribers")
    chat = await sandbox.chat("doctor", language_code="en")
    await chat.send("/help")
    await chat.reply(wait=30)
    assert (await sandbox.group(quiet))["events"] == []


async def test_a_private_message_without_a_sender_is_dropped_not_an_assertion_error(
    platform: Platform,
) -> None:
    """The Bot API allows a message without ``from``; the quarantine bot's handlers
    asserted one (flows/quarantine/patient.py) and failed on it."""
    running = platform.bots["quarantine"]
    assert running.dispatcher is not None
    for payload in (
        {"text": "/start"},
        {"contact": {"phone_number": "+77011234567", "first_name": "X"}},
        {"location": {"latitude": 43.25, "longitude": 76.95}},
    ):
        raw = {
            "update_id": 900_000_000 + len(payload),
            "message": {
                "message_id": 1,
                "date": 1_700_000_000,
                "chat": {"id": 777_000_001, "type": "private", "first_name": "Nobody"},
                **payload,
            },
        }
        assert await running.dispatcher.feed_raw(running.bot, raw) is UNHANDLED
