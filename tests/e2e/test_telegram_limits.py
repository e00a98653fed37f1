"""The sandbox keeps Telegram's limits, and the platform's bots keep within them: every
send of every bot waits its turn in the shared pacer, replies before bulk notices."""

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import ClientSession, CookieJar

from bots.sandbox import Sandbox
from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from presentation.i18n import text
from services.outbox import enqueue
from tests.browser.test_panel import PASSWORD, HttpUser
from tests.sandbox_server import serve_sandbox


@pytest.fixture
async def raw() -> AsyncIterator[tuple[Sandbox, Bot, SandboxClient]]:
    """A sandbox with its limits on, and a bare bot that sends as fast as it is told to."""
    async with serve_sandbox() as (sandbox, base):
        sandbox.limits.credit_own_pauses = False  # these tests count the refusals exactly
        identity = sandbox.register_bot("citizen")
        bot = Bot(identity.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
        async with SandboxClient(base) as client:
            yield sandbox, bot, client
        await bot.session.close()


async def _started(client: SandboxClient, people: int) -> list[SandboxChat]:
    chats = [await client.chat("citizen") for _ in range(people)]
    for chat in chats:
        await chat.send("/start")
    return chats


async def _refusals(bot: Bot, sends: list[tuple[int, dict[str, object]]]) -> list[int]:
    """Send all at once; the retry_after of each refused send."""

    async def one(chat_id: int, extra: dict[str, object]) -> int | None:
        try:
            await bot.send_message(chat_id, "hello", **extra)  # type: ignore[arg-type]
        except TelegramRetryAfter as error:
            return error.retry_after
        return None

    answers = await asyncio.gather(*(one(chat_id, extra) for chat_id, extra in sends))
    return [a for a in answers if a is not None]


@pytest.mark.telegram_limits
async def test_a_bot_beyond_30_messages_a_second_gets_429s_counted_per_chat(
    raw: tuple[Sandbox, Bot, SandboxClient],
) -> None:
    sandbox, bot, client = raw
    chats = await _started(client, 60)
    refused = await _refusals(bot, [(chat.user_id, {}) for chat in chats])
    assert len(refused) >= 20  # 60 at once: at most 30 in any second go through
    assert all(retry_after >= 1 for retry_after in refused)
    report = await client.request("GET", "/limits")
    assert report["enabled"] is True
    assert report["refused_total"] == len(refused)
    assert {r["chat_id"] for r in report["refused"]} <= {chat.user_id for chat in chats}
    assert sandbox.limits.refused_total == len(refused)


async def test_paid_broadcasts_go_up_to_1000_a_second(
    raw: tuple[Sandbox, Bot, SandboxClient],
) -> None:
    _, bot, client = raw
    chats = await _started(client, 60)
    sends = [(chat.user_id, {"allow_paid_broadcast": True}) for chat in chats]
    assert await _refusals(bot, sends) == []


@pytest.mark.telegram_limits
async def test_a_private_chat_takes_a_short_burst_then_about_one_a_second(
    raw: tuple[Sandbox, Bot, SandboxClient],
) -> None:
    _, bot, client = raw
    (chat,) = await _started(client, 1)
    for _ in range(5):
        await bot.send_message(chat.user_id, "in the burst")
    with pytest.raises(TelegramRetryAfter) as refused:
        await bot.send_message(chat.user_id, "one too many")
    assert refused.value.retry_after == 1
    await asyncio.sleep(1.1)
    await bot.send_message(chat.user_id, "a second later")
    assert len(await chat.updates(count=6)) == 6


async def test_limits_can_be_switched_off_for_a_test_about_something_else(
    raw: tuple[Sandbox, Bot, SandboxClient],
) -> None:
    _, bot, client = raw
    (chat,) = await _started(client, 1)
    report = await client.request("POST", "/limits", json={"enabled": False})
    assert report["enabled"] is False
    for _ in range(10):
        await bot.send_message(chat.user_id, "no limits")
    bad = await client.session.post(f"{client.base_url}/api/limits", json={"enabled": "no"})
    assert bad.status == 400


async def test_telegrams_size_rules_get_its_400s(
    raw: tuple[Sandbox, Bot, SandboxClient],
) -> None:
    _, bot, client = raw
    (chat,) = await _started(client, 1)
    await client.request("POST", "/limits", json={"enabled": False})
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(chat.user_id, "😷" * 2049)  # 4,098 UTF-16 code units
    buttons = [
        [InlineKeyboardButton(text=str(i), callback_data=str(i)) for i in range(row, row + 10)]
        for row in range(0, 110, 10)
    ]
    with pytest.raises(TelegramBadRequest, match="REPLY_MARKUP_TOO_LONG"):
        await bot.send_message(
            chat.user_id, "pick", reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
        )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(
            chat.user_id,
            "pick",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="é" * 33)]]
            ),
        )


def _delivered(platform: Platform, people: list[SandboxChat], notice: str) -> int:
    """How many of these people have the notice in their chat now."""
    assert platform.sandbox is not None
    bot = next(b for b in platform.sandbox.bots_by_token.values() if b.name == "citizen")
    chats = [platform.sandbox.chats[(bot.id, person.user_id)] for person in people]
    return sum(any(m.get("text") == notice for m in chat.messages.values()) for chat in chats)


async def test_the_platforms_sends_are_paced_and_a_reply_goes_before_bulk_notices(
    sandbox: SandboxClient, platform: Platform
) -> None:
    """80 notices for 80 people and a person's question at the same time: nothing is
    refused (the suite's guard fails a test on any 429 it did not ask for), the reply
    comes while most notices still wait, every notice arrives once."""
    people = [await sandbox.chat("citizen") for _ in range(80)]
    for person in people:
        await person.send("/start")
        await person.reply()
    asking = await sandbox.chat("citizen")
    notice = text("en", "notices.account_moved", iin="…1234")
    async with platform.services.outbox.pool.acquire() as conn:
        for person in people:
            await enqueue(
                conn,
                bot="citizen",
                chat_id=person.user_id,
                kind="account_moved",
                params={"iin": "…1234"},
            )
    assert (await people[0].reply(wait=30))["text"] == notice  # the notices are going out
    await asking.send("/help")
    await asking.reply(wait=30)
    assert _delivered(platform, people, notice) < len(people)
    for person in people[1:]:
        assert (await person.reply(wait=60))["text"] == notice
    assert await people[-1].updates(count=0, wait=1) == []


async def test_healthz_and_the_panel_show_each_bots_queue(platform: Platform) -> None:
    name = f"admin-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, "admin", PASSWORD, actor="test")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        async with http.get(f"{platform.base_url}/healthz") as answer:
            bots = (await answer.json())["bots"]
        assert set(bots["citizen"]) >= {"notices_waiting", "expected_wait_seconds"}
        user = HttpUser(http, platform.base_url)
        assert await user.log_in(name) == 303
        async with http.get(f"{platform.base_url}/") as home:
            page = await home.text()
    assert "Messages waiting to go out" in page
    assert all(f"<td>{bot}</td>" in page for bot in bots)
