"""The doctor bot. District doctors: enrol patients, receive and resolve violation alerts."""

from collections.abc import Callable

from aiogram import Router

from flows.context import BotProfile

PROFILE = BotProfile(name="doctor")
FLOWS: tuple[Callable[[], Router], ...] = ()
