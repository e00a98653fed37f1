"""What the CLI's commands share: when a command stops, who runs it, city times, how a
command says why it failed and how it hands out a new API key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from citybots.settings import Settings

if TYPE_CHECKING:
    from services.container import Services


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, `docker stop`) stops the command as Ctrl-C does, through its
    clean-up: a half-written backup removed, a restore's transaction rolled back."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def cli_actor(named: str | None) -> str:
    """Who runs a command, for the audit log: the operating-system user (from the process's
    user id, not from $USER, which the caller sets) and the name given with --actor."""
    import pwd

    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return f"cli:{user}" + (f" as {named[:100]}" if named else "")


def city_time(raw: str, settings: Settings) -> datetime:
    """A time given on the command line (ISO 8601), in the city's time zone unless it
    carries an offset; ValueError when it is not a time."""
    moment = datetime.fromisoformat(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.city_timezone))


def print_each(lines: Iterable[str], none: str) -> None:
    """A command's list: a line (or a block) an item, or ``none`` when there is none."""
    printed = False
    for line in lines:
        print(line)
        printed = True
    if not printed:
        print(none)


def command_error(message: str, status: int = 1) -> int:
    """Says on stderr why the command stops (``citybots: <message>``) and gives the exit
    status to return: 1 refused, 2 a usage error, 143 stopped by a signal."""
    print(f"citybots: {message}", file=sys.stderr)
    return status


# The systems that push data over the API, by the word the CLI calls them: what they push, where.
API_CLIENTS = {
    "laboratory": "results with: POST /api/v1/pcr-results",
    "dispatch system": "calls with: POST /api/v1/ambulance-calls",
    "source": "rows with: POST /api/v1/feeds/<feed>",
}


async def add_api_client(
    settings: Settings,
    kind: str,
    name: str,
    add: Callable[[Services], Awaitable[str]],
    refused: type[Exception],
) -> int:
    """Adds a system of a kind in API_CLIENTS (``add`` stores it and gives its key) and
    prints the key, which only this once is seen in the clear (it is stored hashed), with
    how to push; an error of type ``refused`` is the command's error."""
    from citybots.infrastructure import command_services

    async with command_services(settings) as services:
        try:
            key = await add(services)
        except refused as error:
            return command_error(str(error))
    print(f"{kind} {name!r} added. Its API key (shown once, stored hashed):\n{key}")
    print(f"Push {API_CLIENTS[kind]}, header 'Authorization: Bearer <key>'")
    return 0
