"""Which bots exist and how each one's dispatcher is put together."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from aiogram import Router
from aiogram.fsm.storage.base import BaseStorage

from bots import agent, citizen, doctor, quarantine, staff
from bots.dispatcher import CityDispatcher
from bots.middlewares import LanguageMiddleware
from bots.private import PrivateChatsOnly
from flows.common import handlers as common
from flows.context import BotContext

BOT_MODULES: dict[str, ModuleType] = {
    module.PROFILE.name: module for module in (citizen, staff, quarantine, doctor, agent)
}


def build_dispatcher(name: str, context: BotContext, storage: BaseStorage) -> CityDispatcher:
    """One dispatcher per bot: the common commands (so /cancel and /help work in any
    state), the bot's flows in order, then the catch-all."""
    module = BOT_MODULES[name]
    dispatcher = CityDispatcher(storage=storage, **context)
    dispatcher.update.outer_middleware(
        LanguageMiddleware(context["languages"], context["default_language"])
    )
    channel = context["news"].channel if name == "citizen" else None
    stay_in = frozenset() if channel is None else frozenset({channel})
    dispatcher.update.outer_middleware(PrivateChatsOnly(stay_in))  # before any flow sees a thing
    factories: tuple[Callable[[], Router], ...] = (common.build_router, *module.FLOWS)
    for factory in factories:
        dispatcher.include_router(factory())
    dispatcher.include_router(common.build_fallback_router())
    fast_path = getattr(module, "fast_path", None)
    if fast_path is not None:
        dispatcher.fast_path = fast_path(context)
    return dispatcher
