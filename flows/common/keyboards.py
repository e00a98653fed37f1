from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from presentation.i18n import LANGUAGES, text


class LanguageChoice(CallbackData, prefix="lang"):
    code: str


def main_menu(lang: str, items: Sequence[str]) -> ReplyKeyboardMarkup:
    """The bot's main menu: ``items`` are text keys, two buttons to a row. Made once per
    language and menu (most replies carry it; building it cost more than the reply's
    text), so callers must not change it."""
    return _main_menu(lang, tuple(items))


@functools.cache
def _main_menu(lang: str, items: tuple[str, ...]) -> ReplyKeyboardMarkup:
    labels = [KeyboardButton(text=text(lang, key)) for key in items]
    rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, is_persistent=True)


def share_phone_keyboard(lang: str) -> ReplyKeyboardMarkup:
    """One button that shares the account's own phone number (Telegram's contact button)."""
    button = KeyboardButton(text=text(lang, "signup.share_phone_button"), request_contact=True)
    return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)


def inline_keyboard(rows: Sequence[Sequence[tuple[str, CallbackData]]]) -> InlineKeyboardMarkup:
    """Inline buttons from rows of (label, callback data), the labels already in the
    person's language."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data.pack()) for label, data in row]
            for row in rows
        ]
    )


def choice_keyboard(
    lang: str,
    names: Mapping[str, str],
    values: Iterable[str],
    data: Callable[[str], CallbackData],
) -> InlineKeyboardMarkup:
    """One button a row for each of ``values``, labelled with the text its name keys
    (``names``), carrying ``data(value)``."""
    return inline_keyboard([[(text(lang, names[value]), data(value))] for value in values])


def language_keyboard() -> InlineKeyboardMarkup:
    return inline_keyboard(
        [[(text(code, "language_name"), LanguageChoice(code=code)) for code in LANGUAGES]]
    )
