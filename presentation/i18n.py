"""Translation catalogues: every text shown to people comes from here.

Each language in :data:`services.languages.LANGUAGES` has a gettext catalogue,
``presentation/locales/<lang>/LC_MESSAGES/messages.po``, read with Babel once at start (no
compiled .mo files to keep in step). A message's id is a dotted key (``venue.closed_all``);
its text fills ``{placeholders}`` with :meth:`str.format`. A message with plural forms is
read with :func:`plural`, which picks the form for a count by the language's own rule
(ru has three: 1 посетитель, 2 посетителя, 5 посетителей)."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from services.languages import LANGUAGES
from services.users import LanguageChoice, LanguagePreferences

LOCALES = Path(__file__).with_name("locales")
DOMAIN = "messages"
FALLBACK = "en"


def catalogue_path(lang: str, root: Path = LOCALES) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(path: Path, lang: str) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=lang, domain=DOMAIN)


@dataclass(frozen=True)
class Book:
    """One language's messages: a key's text, or its plural forms in the language's order."""

    messages: dict[str, str | tuple[str, ...]]
    form_of: Callable[[int], int]


def book_of(catalogue: Catalog) -> Book:
    messages: dict[str, str | tuple[str, ...]] = {}
    for message in catalogue:
        if not message.id:
            continue  # the header
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        value = message.string
        messages[key] = tuple(value) if isinstance(value, tuple | list) else str(value)
    return Book(messages, gettext.c2py(catalogue.plural_expr))


@lru_cache(maxsize=1)
def books() -> dict[str, Book]:
    """Every language's catalogue, loaded once."""
    return {lang: book_of(read_catalogue(catalogue_path(lang), lang)) for lang in LANGUAGES}


def catalogues() -> dict[str, dict[str, str | tuple[str, ...]]]:
    """Every language's messages by key (plural messages as their tuple of forms)."""
    return {lang: book.messages for lang, book in books().items()}


def _template(lang: str, key: str) -> tuple[Book, str | tuple[str, ...]]:
    shelf = books()
    book = shelf.get(lang, shelf[FALLBACK])
    found = book.messages.get(key)
    if not found:
        book = shelf[FALLBACK]
        found = book.messages.get(key)
    if not found:
        raise KeyError(f"no text {key!r} in the catalogues")
    return book, found


def text(lang: str, key: str, **params: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to English), with ``params`` filled."""
    _, template = _template(lang, key)
    if isinstance(template, tuple):
        raise KeyError(f"text {key!r} has plural forms: read it with plural()")
    return template.format(**params) if params else template


def plural(lang: str, key: str, count: int, **params: object) -> str:
    """The form of ``key`` in ``lang`` for ``count`` (given to the text as ``{count}``)."""
    book, forms = _template(lang, key)
    if not isinstance(forms, tuple):
        raise KeyError(f"text {key!r} has no plural forms: read it with text()")
    template = forms[min(book.form_of(count), len(forms) - 1)]
    return template.format(count=count, **params)


def label(lang: str, key: str | None, stored: str) -> str:
    """The catalogue's name for a stored code (a purpose, an intent, a state) whose key a
    mapping gave (``PURPOSE_NAMES.get(code)``); the code itself when the mapping or the
    catalogue has none (a value written by another system)."""
    if key is None:
        return stored
    try:
        return text(lang, key)
    except KeyError:
        return stored


def pick_language(*candidates: str | None, default: str = "ru") -> str:
    """The first candidate we have a catalogue for (Telegram sends e.g. ``ru-RU``)."""
    for candidate in candidates:
        if candidate:
            code = candidate.lower().split("-")[0].split("_")[0]
            if code in LANGUAGES:
                return code
    return default


def language_of(
    choice: LanguageChoice, language_code: str | None, default: str
) -> tuple[str, str | None]:
    """The language to answer in: the person's /language choice, else their Telegram
    app's language, else ``default``; and the app's language when it is one to remember
    (it changed since last noted), else None."""
    app_language = pick_language(language_code, default="")
    to_note = app_language if app_language and app_language != choice.telegram else None
    chosen = choice.chosen if choice.chosen in LANGUAGES else None
    return chosen or app_language or default, to_note


async def language_for(
    preferences: LanguagePreferences, tg_user_id: int, language_code: str | None, default: str
) -> str:
    """The language to answer a person in (:func:`language_of`), remembering their app's
    language when it changed."""
    choice = await preferences.get(tg_user_id)
    lang, to_note = language_of(choice, language_code, default)
    if to_note is not None:
        await preferences.note_telegram_language(tg_user_id, to_note)
    return lang


__all__ = [
    "LANGUAGES",
    "label",
    "language_for",
    "language_of",
    "pick_language",
    "plural",
    "text",
]
