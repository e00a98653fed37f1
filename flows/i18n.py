"""Translation catalogues (ru, kk, en): every text shown to people comes from here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from services.languages import LANGUAGES
from services.users import LanguageChoice, LanguagePreferences

_LOCALES = Path(__file__).with_name("locales")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if not isinstance(key, str):  # YAML 1.1 reads yes/no/on/off keys as booleans
            raise ValueError(f"catalogue key {prefix}{key!r} is not a string: quote it")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


@lru_cache(maxsize=1)
def catalogues() -> dict[str, dict[str, str]]:
    """Every language's catalogue as flat dotted keys, loaded once."""
    return {
        lang: _flatten(yaml.safe_load((_LOCALES / f"{lang}.yml").read_text(encoding="utf-8")))
        for lang in LANGUAGES
    }


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
    return choice.chosen or app_language or default, to_note


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


def text(lang: str, key: str, **params: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to English), with ``params`` filled."""
    books = catalogues()
    template = books.get(lang, books["en"]).get(key) or books["en"].get(key)
    if template is None:
        raise KeyError(f"no text {key!r} in the catalogues")
    return template.format(**params) if params else template


def label(lang: str, key: str, stored: str) -> str:
    """The catalogue's name for a stored code (a purpose, an intent, a state); the code
    itself when the catalogue has none (a value written by another system)."""
    try:
        return text(lang, key)
    except KeyError:
        return stored
