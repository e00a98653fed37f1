"""The quarantine bot. Home-quarantine patients: consent, phone, live location."""

from collections.abc import Callable

from aiogram import Router

from flows.context import BotProfile

PROFILE = BotProfile(name="quarantine")
FLOWS: tuple[Callable[[], Router], ...] = ()
