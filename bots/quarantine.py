"""The quarantine bot. Home-quarantine patients: consent, phone, live location."""

from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.fsm.storage.base import BaseStorage

from flows.context import BotContext, BotProfile
from flows.quarantine import patient
from flows.quarantine.live import LiveFastPath

PROFILE = BotProfile(
    name="quarantine",
    menu=("quarantine_menu.status", "quarantine_menu.share", "menu.help", "menu.language"),
)
FLOWS = (patient.build_router,)


def fast_path(
    context: BotContext, storage: BaseStorage, slow: Callable[[Bot, dict[str, Any]], None]
) -> LiveFastPath:
    """Live-location moves, stored a batch at a time (flows/quarantine/live.py)."""
    return LiveFastPath(context["live_ingest"])
