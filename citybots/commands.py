"""What the CLI's commands share: when a command stops, who runs it, city times."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime
from zoneinfo import ZoneInfo

from citybots.settings import Settings


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
