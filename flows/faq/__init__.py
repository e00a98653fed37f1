"""The hotline's FAQ: answers per intent and language (flows/faq/{ru,kk,en}.yml)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from flows.i18n import LANGUAGES

SMALL_TALK = ("greet", "goodbye", "thanks")


@cache
def answers(lang: str) -> dict[str, dict[str, str]]:
    """intent -> {"title", "answer"} in ``lang`` (falling back to Russian)."""
    code = lang if lang in LANGUAGES else "ru"
    raw = resources.files("flows.faq").joinpath(f"{code}.yml").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, str]] = yaml.safe_load(raw)
    return loaded


def topics(lang: str) -> list[str]:
    """The FAQ intents (not small talk), in the file's order."""
    return [intent for intent in answers(lang) if intent.startswith("faq_")]
