"""The citizen bot: status colour, venue check-in, visits, disputes, permits (one's own,
and applying as an organisation's head), checkpoint self-registration, and free-text
questions answered from the hotline's FAQ in ru/kk/en (or handed to an operator)."""

from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.redis import RedisStorage

from flows import checkpoints
from flows.checkin import handlers as checkin
from flows.checkin.fast import ScanFastPath
from flows.context import BotContext, BotProfile
from flows.faq import handlers as faq
from flows.news import handlers as news
from flows.permits import apply
from flows.permits import handlers as permits
from flows.status import handlers as status

PROFILE = BotProfile(
    name="citizen",
    menu=(
        "citizen_menu.status",
        "citizen_menu.checkin",
        "citizen_menu.visits",
        "citizen_menu.dispute",
        "citizen_menu.permit",
        "citizen_menu.apply",
        "news.menu",
        "menu.help",
        "menu.language",
    ),
    commands=("status", "permit", "apply", "dispute", "unlink"),
)
FLOWS = (
    checkpoints.build_traveller_router,
    apply.build_entry_router,
    permits.build_citizen_router,
    checkin.build_router,
    status.build_router,
    apply.build_form_router,
    news.build_router,
    faq.build_router,
)


def fast_path(
    context: BotContext, storage: BaseStorage, slow: Callable[[Bot, dict[str, Any]], None]
) -> ScanFastPath | None:
    """Venue code scans from linked citizens, a batch at a time (flows/checkin/fast.py);
    it reads the FSM from Redis itself, so only with the Redis storage."""
    if not isinstance(storage, RedisStorage):
        return None
    return ScanFastPath(context, storage, slow)
