"""What "My status" costs: CPU per status card, and CPU per status reply against the floor,
a bare aiogram reply with a picture of the same size, both over the real path (HTTP to the
sandbox, aiogram long polling, the reply uploaded back).

    .venv/bin/python bench/status_card.py [--replies 300] [--cards 2000]

The CPU is this process's (bots, sandbox and client share it; both replies pay the same
sandbox and client share). Uses DATABASE_URL / REDIS_URL when set, otherwise embedded
servers in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, Message

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.embedded import free_port
from citybots.logs import setup_logging
from citybots.platform import Platform
from citybots.settings import load_settings
from presentation.i18n import text
from presentation.rendering import status_card
from services.validation import with_check_digit


def _iin() -> str:
    while True:
        iin = with_check_digit(f"9001013{secrets.randbelow(10**4):04d}")
        if iin is not None:
            return iin


def bench_cards(cards: int) -> float:
    """Milliseconds of CPU per card, a new person (masked IIN) each time."""
    now = datetime.now(UTC)
    status_card("ru", "green", now, now, "status.valid_until", "9001****0000")
    began = time.process_time()
    for i in range(cards):
        colour = ("green", "yellow", "red", "blue")[i % 4]
        status_card("ru", colour, now, now, "status.valid_until", f"9001****{i % 10_000:04d}")
    return (time.process_time() - began) / cards * 1000


async def cpu_per_reply(
    chat: SandboxChat, send: Callable[[], Awaitable[object]], replies: int
) -> float:
    for _ in range(10):  # warm-up
        await send()
        await chat.reply()
    began = time.process_time()
    for _ in range(replies):
        await send()
        await chat.reply()
    return (time.process_time() - began) / replies * 1000


async def signed_up(platform: Platform, sandbox: SandboxClient) -> SandboxChat:
    """A citizen linked to an IIN, as the bot's own sign-up makes one."""
    iin, phone = _iin(), f"+7701{secrets.randbelow(10**7):07d}"
    pool = platform.services.citizens.pool
    await pool.execute("INSERT INTO citizen_phones (iin, phone) VALUES ($1, $2)", iin, phone)
    chat = await sandbox.chat("citizen", language_code="en")
    await chat.send(text("en", "citizen_menu.status"))
    await chat.reply()
    await chat.send_contact(phone)
    await chat.reply()
    await chat.send(iin)
    await chat.replies(2)
    return chat


@contextlib.asynccontextmanager
async def bare_bot(platform: Platform, picture: bytes) -> AsyncIterator[None]:
    """A bot with one handler: answer any message with the same picture."""
    assert platform.sandbox is not None
    token = platform.sandbox.register_bot("bare").token
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"{platform.base_url}/sandbox"))
    bot = Bot(token=token, session=session)
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def reply(message: Message) -> None:
        await message.answer_photo(
            BufferedInputFile(picture, filename="card.png"), caption="Green"
        )

    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    try:
        yield
    finally:
        await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await session.close()


async def run(replies: int, cards: int) -> None:
    setup_logging("WARNING")
    card_ms = bench_cards(cards)
    with tempfile.TemporaryDirectory(prefix="citybots-bench-") as data_dir:
        settings = load_settings(data_dir=data_dir, admin_port=free_port())
        async with (
            Platform(settings) as platform,
            SandboxClient(f"{platform.base_url}/sandbox") as sandbox,
        ):
            chat = await signed_up(platform, sandbox)
            status_ms = await cpu_per_reply(chat, lambda: chat.send("/status"), replies)
            help_ms = await cpu_per_reply(chat, lambda: chat.send("/help"), replies)
            now = datetime.now(UTC)
            picture = status_card("en", "green", now, now, "status.valid_until", "9001****0000")
            async with bare_bot(platform, picture):
                bare = await sandbox.chat("bare")
                bare_ms = await cpu_per_reply(bare, lambda: bare.send("hi"), replies)
            where = "DATABASE_URL/REDIS_URL" if settings.database_url else "embedded servers"
    print(f"cores: {os.cpu_count()}; servers: {where}")
    print(f"status card, rendered:               {card_ms:6.2f} ms CPU per card ({cards} cards)")
    print(f"'/status' reply (card + caption):    {status_ms:6.2f} ms CPU per reply ({replies})")
    print(f"bare aiogram reply with a picture:   {bare_ms:6.2f} ms CPU per reply ({replies})")
    print(f"'/help' text reply, for reference:   {help_ms:6.2f} ms CPU per reply ({replies})")
    print(f"status reply / bare picture reply:   {status_ms / bare_ms:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--cards", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.replies, arguments.cards))


if __name__ == "__main__":
    main()
