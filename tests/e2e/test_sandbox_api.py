"""The sandbox answers aiogram's real client as Telegram does, errors included."""

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import qrcode
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from aiohttp import ClientSession

from bots.sandbox import Sandbox
from bots.sandbox.client import SandboxChat, SandboxClient
from tests.sandbox_server import serve_sandbox


@dataclass
class Harness:
    sandbox: Sandbox
    base: str
    bot: Bot
    client: SandboxClient


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with serve_sandbox() as (sandbox, base):
        # These tests are about the Bot API's surface, sent by a bare bot with no pacer;
        # Telegram's flood limits have tests of their own (tests/e2e/test_telegram_limits.py).
        sandbox.limits.enabled = False
        identity = sandbox.register_bot("citizen")
        bot = Bot(identity.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
        async with SandboxClient(base) as client:
            yield Harness(sandbox, base, bot, client)
        await bot.session.close()


async def _chat(h: Harness) -> SandboxChat:
    chat = await h.client.chat("citizen")
    await chat.send("/start")
    return chat


async def test_get_me_and_an_unknown_token(harness: Harness) -> None:
    me = await harness.bot.get_me()
    assert me.username == "citybots_citizen_bot"
    assert me.is_bot
    stranger = Bot(
        "12345:not-a-real-token",
        session=AiohttpSession(api=TelegramAPIServer.from_base(harness.base)),
    )
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_an_unknown_method_is_404_like_telegram(harness: Harness) -> None:
    token = harness.bot.token
    async with ClientSession() as http, http.post(f"{harness.base}/bot{token}/sendTelepathy") as r:
        assert r.status == 404
        body = await r.json()
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


async def test_long_polling_returns_as_soon_as_the_user_writes(harness: Harness) -> None:
    chat = await _chat(harness)
    first = await harness.bot.get_updates(timeout=1)
    assert first[0].message is not None
    assert first[0].message.text == "/start"
    waiting = asyncio.create_task(
        harness.bot.get_updates(offset=first[-1].update_id + 1, timeout=20)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await chat.send("hello")
    updates = await asyncio.wait_for(waiting, 5)
    assert [u.message.text for u in updates if u.message] == ["hello"]
    assert await harness.bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []


async def test_bad_parameters_get_telegrams_400s(harness: Harness) -> None:
    chat = await _chat(harness)
    bot = harness.bot
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(chat.user_id, " ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(chat.user_id, "x" * 4097)
    await bot.send_message(chat.user_id, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(chat.user_id, "a < b", parse_mode="HTML")
    await bot.send_message(chat.user_id, "<b>bold</b> &lt; fine", parse_mode="HTML")
    long_data = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chat.user_id, "hi", reply_markup=long_data)


async def test_a_bot_cannot_write_first(harness: Harness) -> None:
    silent = await harness.client.create_user()
    with pytest.raises(TelegramForbiddenError):
        await harness.bot.send_message(silent["id"], "hello")


async def test_photos_edits_deletes_and_button_presses(harness: Harness) -> None:
    chat = await _chat(harness)
    bot = harness.bot
    image = qrcode.make("https://t.me/citybots_citizen_bot?start=abc")
    png = io.BytesIO()
    image.save(png)
    sent = await bot.send_photo(
        chat.user_id, BufferedInputFile(png.getvalue(), "qr.png"), caption="QR"
    )
    assert sent.photo is not None
    assert sent.photo[0].width > 0
    assert await harness.client.file(sent.photo[0].file_id) == png.getvalue()

    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="y")]]
    )
    asked = await bot.send_message(chat.user_id, "Sure?", reply_markup=markup)
    await chat.updates(count=2)
    await chat.press("Yes")
    updates = await bot.get_updates(timeout=2)
    query = next(u.callback_query for u in updates if u.callback_query)
    assert query.data == "y"
    assert await bot.answer_callback_query(query.id, text="ok")
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query(query.id)

    await bot.edit_message_text(
        "Sure? (answered)", chat_id=chat.user_id, message_id=asked.message_id
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Sure? (answered)", chat_id=chat.user_id, message_id=asked.message_id
        )
    assert await bot.delete_message(chat.user_id, sent.message_id)
    transcript = await chat.updates(count=0, wait=0)
    by_id = {m["message_id"]: m for m in transcript}
    assert by_id[asked.message_id]["text"] == "Sure? (answered)"
    assert by_id[sent.message_id]["deleted"]


async def test_live_location_moves_arrive_as_edited_messages(harness: Harness) -> None:
    chat = await _chat(harness)
    message_id = await chat.send_location(
        43.2389, 76.8897, live_period=900, horizontal_accuracy=12
    )
    await chat.move_location(message_id, 43.2391, 76.8899, horizontal_accuracy=8)
    await chat.stop_location(message_id)
    updates = await harness.bot.get_updates(timeout=1)
    assert updates[-3].message is not None
    assert updates[-3].message.location is not None
    assert updates[-3].message.location.live_period == 900
    moved, stopped = updates[-2].edited_message, updates[-1].edited_message
    assert moved is not None
    assert moved.location is not None
    assert moved.location.latitude == pytest.approx(43.2391)
    assert stopped is not None
    assert stopped.location is not None
    assert stopped.location.live_period is None


async def test_contacts_say_whose_number_they_are(harness: Harness) -> None:
    chat = await _chat(harness)
    await chat.send_contact("+77011234567")
    await chat.send_contact("+77017654321", own=False)
    updates = await harness.bot.get_updates(timeout=1)
    own, other = (u.message.contact for u in updates[-2:] if u.message)
    assert own is not None
    assert own.user_id == chat.user_id
    assert other is not None
    assert other.user_id is None


async def test_flood_limits_answer_429_with_retry_after(harness: Harness) -> None:
    chat = await _chat(harness)
    await harness.client.inject_faults(count=1, status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as error:
        await harness.bot.send_message(chat.user_id, "hi")
    assert error.value.retry_after == 7
    await harness.bot.send_message(chat.user_id, "hi")


async def test_a_fault_rate_fails_that_share_of_sends_for_a_while_and_counts_them(
    harness: Harness,
) -> None:
    chat = await _chat(harness)
    harness.sandbox._fault_dice.seed(9)
    await harness.client.inject_faults(rate=0.25, status=429, retry_after=2, seconds=30)
    await harness.client.inject_faults(rate=0.05, status=502, seconds=30)
    outcomes = {"sent": 0, "429": 0, "502": 0}
    waits = set()
    for _ in range(400):
        try:
            await harness.bot.send_message(chat.user_id, "hi")
            outcomes["sent"] += 1
        except TelegramRetryAfter as error:
            waits.add(error.retry_after)
            outcomes["429"] += 1
        except TelegramServerError:
            outcomes["502"] += 1
    assert waits == {2}
    assert 60 <= outcomes["429"] <= 140  # about 100 of 400
    assert 5 <= outcomes["502"] <= 40  # about 15 of the 300 the first fault let through
    report = await harness.client.faults()
    assert report["injected"] == {"429": outcomes["429"], "502": outcomes["502"]}
    assert report["injected_total"] == outcomes["429"] + outcomes["502"]
    assert len(await chat.updates(count=outcomes["sent"], wait=5)) == outcomes["sent"]
    await harness.client.clear_faults()
    assert (await harness.client.faults())["faults"] == []
    await harness.bot.send_message(chat.user_id, "after")


async def test_a_fault_rate_set_in_process_has_no_limit_of_sends(harness: Harness) -> None:
    harness.sandbox.add_fault(status=429, rate=0.5, seconds=30, methods=["sendMessage"])
    hits = sum(harness.sandbox._take_fault("sendmessage") is not None for _ in range(200))
    assert 60 <= hits <= 140
    assert harness.sandbox._take_fault("getme") is None


async def test_a_fault_rate_ends_by_itself_when_its_time_is_up(harness: Harness) -> None:
    chat = await _chat(harness)
    await harness.client.inject_faults(rate=1.0, status=500, seconds=0.5)
    with pytest.raises(TelegramServerError):
        await harness.bot.send_message(chat.user_id, "hi")
    await asyncio.sleep(0.6)
    await harness.bot.send_message(chat.user_id, "hi")
    assert (await harness.client.faults())["injected"] == {"500": 1}


async def test_a_fault_without_an_end_or_a_sensible_rate_is_refused(harness: Harness) -> None:
    url = f"{harness.base}/api/faults"
    for body in ({"count": 0}, {"rate": 0}, {"rate": 2}, {"status": 200}, {"seconds": "x"}):
        async with ClientSession() as http, http.post(url, json=body) as r:
            assert r.status == 400, body
    assert (await harness.client.faults())["faults"] == []


async def test_get_updates_conflicts_with_a_webhook(harness: Harness) -> None:
    await harness.bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s" * 20)
    with pytest.raises(TelegramConflictError):
        await harness.bot.get_updates()
    await harness.bot.delete_webhook()
    assert await harness.bot.get_updates(timeout=0) == []
