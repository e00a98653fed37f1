"""/help in each bot says what the bot is for and lists every command it answers."""

from __future__ import annotations

import re

import pytest
from aiogram import Router
from aiogram.filters import Command

from bots.registry import BOT_MODULES
from flows.common import handlers as common
from flows.common.handlers import help_text
from presentation.i18n import LANGUAGES, text
from presentation.keys import HELP_INTROS


def _commands(router: Router) -> set[str]:
    found: set[str] = set()
    for handler in router.message.handlers:
        for f in handler.filters or []:
            if isinstance(f.callback, Command):
                found.update(str(c) for c in f.callback.commands)
    for child in router.sub_routers:
        found |= _commands(child)
    return found


@pytest.mark.parametrize("bot", sorted(BOT_MODULES))
def test_help_lists_every_command_the_bot_answers(bot: str) -> None:
    module = BOT_MODULES[bot]
    answered: set[str] = {"start"}
    for factory in (common.build_router, *module.FLOWS):
        answered |= _commands(factory())
    assert set(module.PROFILE.all_commands) == answered
    for lang in LANGUAGES:
        shown = help_text(lang, module.PROFILE)
        for command in answered:
            assert f"/{command} — {text(lang, f'commands.{command}')}" in shown


@pytest.mark.parametrize("bot", sorted(BOT_MODULES))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_buttons_help_names_are_the_bots_buttons(bot: str, lang: str) -> None:
    profile = BOT_MODULES[bot].PROFILE
    labels = {text(lang, key).split(" ", 1)[1] for key in profile.menu}
    named = set(re.findall(r"«([^»]+)»", text(lang, HELP_INTROS[bot], days="")))
    assert named <= labels
    assert len(named) >= len(profile.menu) - 2  # every button but Help and Language


def test_the_command_line_help_says_what_each_bot_and_command_does() -> None:
    import argparse

    from citybots.cli import build_parser

    parser = build_parser()
    shown = parser.format_help()
    for bot in BOT_MODULES:
        assert re.search(rf"^  {bot} +\w", shown, re.M), bot
    assert "citybots demo-data" in shown
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for choice in subparsers._choices_actions:
        assert choice.help, choice.dest
        assert choice.help in " ".join(subparsers.choices[choice.dest].format_help().split())
