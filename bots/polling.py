"""Long polling that hands each update over as the Bot API's JSON.

aiogram's own polling parses every update into pydantic models before anything else
sees it; for live-location moves that parsing was half of the quarantine bot's CPU
(py-spy, bench/quarantine.py). Here getUpdates returns plain dicts; the dispatcher
takes its fast path's kind as it is and parses the rest as aiogram would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.methods import Response, TelegramMethod

from bots.dispatcher import CityDispatcher

log = logging.getLogger(__name__)


class RawGetUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates whose result stays JSON (validated only as a list of objects)."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


# Pinned, as bots/session.py pins aiogram's own Response models (pydantic would
# otherwise rebuild it on every call).
_PINNED_RESPONSE_MODEL = Response[list[dict[str, Any]]]


async def poll(
    bot: Bot,
    dispatcher: CityDispatcher,
    *,
    allowed_updates: list[str],
    long_poll_seconds: int = 25,
) -> None:
    """Take updates until cancelled; a failing Bot API is retried with a growing pause."""
    offset: int | None = None
    pause = 1.0
    tasks: set[asyncio.Task[Any]] = set()
    request_timeout = int(bot.session.timeout + long_poll_seconds) if bot.session.timeout else None
    while True:
        try:
            updates = await bot(
                RawGetUpdates(
                    offset=offset, timeout=long_poll_seconds, allowed_updates=allowed_updates
                ),
                request_timeout=request_timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("getUpdates failed (%s); again in %.0f s", type(error).__name__, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)
            continue
        pause = 1.0
        for raw in updates:
            update_id = raw.get("update_id")
            if isinstance(update_id, int):
                offset = update_id + 1
            task = dispatcher.take_raw(bot, raw)
            if task is not None:
                tasks.add(task)
                task.add_done_callback(tasks.discard)
