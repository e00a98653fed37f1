"""The agent bot: hotline 1308 agents, scripted answer flows, questions from the FAQ."""

from collections.abc import Callable

from aiogram import Router

from flows.context import BotProfile

PROFILE = BotProfile(name="agent")
FLOWS: tuple[Callable[[], Router], ...] = ()
