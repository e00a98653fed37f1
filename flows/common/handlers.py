from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from flows.common.keyboards import LanguageChoice, language_keyboard, main_menu
from flows.context import BotProfile
from flows.filters import PlainStart, register_entry
from presentation.i18n import LANGUAGES, text
from presentation.keys import COMMANDS, GREETINGS, HELP_INTROS
from presentation.rules import visit_history
from services.users import LanguagePreferences


async def start(message: Message, state: FSMContext, lang: str, profile: BotProfile) -> None:
    await state.clear()
    name = message.from_user.first_name if message.from_user else ""
    greeting = text(lang, GREETINGS[profile.name], name=name)
    await message.answer(
        f"{greeting}\n\n{text(lang, 'start.menu_hint')}",
        reply_markup=main_menu(lang, profile.menu),
    )


def help_text(lang: str, profile: BotProfile) -> str:
    """What the bot is for, its buttons, then each of its commands and what it does."""
    commands = "\n".join(f"/{c} — {text(lang, COMMANDS[c])}" for c in profile.all_commands)
    return "\n\n".join(
        (
            text(lang, HELP_INTROS[profile.name], days=visit_history(lang)),
            f"{text(lang, 'help.title')}\n{commands}",
            text(lang, "help.footer"),
        )
    )


async def show_help(message: Message, lang: str, profile: BotProfile) -> None:
    await message.answer(help_text(lang, profile))


async def ask_language(message: Message, lang: str) -> None:
    await message.answer(text(lang, "language.prompt"), reply_markup=language_keyboard())


async def choose_language(
    query: CallbackQuery,
    callback_data: LanguageChoice,
    languages: LanguagePreferences,
    profile: BotProfile,
) -> None:
    code = callback_data.code if callback_data.code in LANGUAGES else "en"
    await languages.set(query.from_user.id, code)
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            text(code, "language.changed"), reply_markup=main_menu(code, profile.menu)
        )


async def cancel(message: Message, state: FSMContext, lang: str, profile: BotProfile) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    key = "cancel.done" if had_state else "cancel.nothing"
    await message.answer(text(lang, key), reply_markup=main_menu(lang, profile.menu))


async def fallback(message: Message, lang: str, profile: BotProfile) -> None:
    await message.answer(text(lang, "fallback"), reply_markup=main_menu(lang, profile.menu))


async def stale_button(query: CallbackQuery) -> None:
    await query.answer()


def build_router() -> Router:
    """Commands every bot understands. A new Router each call: each bot has its own
    dispatcher, and aiogram lets a router belong to one parent only."""
    router = Router(name=__name__)
    router.message.register(start, PlainStart())
    register_entry(router, show_help, button="menu.help", command="help")
    register_entry(router, ask_language, button="menu.language", command="language")
    register_entry(router, cancel, command="cancel")
    router.callback_query.register(choose_language, LanguageChoice.filter())
    return router


def build_fallback_router() -> Router:
    """The catch-all, included last: what no flow took gets a hint and the menu."""
    router = Router(name=__name__ + ".fallback")
    router.message.register(start, CommandStart())  # a deep link no flow claimed
    router.message.register(fallback)
    router.callback_query.register(stale_button)
    return router
