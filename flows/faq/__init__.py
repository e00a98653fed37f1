"""The hotline's FAQ: answers per intent and language (flows/faq/{ru,kk,en}.yml)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from presentation.i18n import LANGUAGES, label
from presentation.keys import INTENTS
from presentation.rules import days, green_validity, visit_history

if TYPE_CHECKING:  # flows.context imports this module's parser
    from flows.context import Limits

SMALL_TALK = ("greet", "goodbye", "thanks")


@cache
def answers(lang: str) -> dict[str, dict[str, str]]:
    """intent -> {"title", "answer"} in ``lang`` (falling back to Russian)."""
    code = lang if lang in LANGUAGES else "ru"
    raw = resources.files("flows.faq").joinpath(f"{code}.yml").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, str]] = yaml.safe_load(raw)
    return loaded


def answer_text(lang: str, intent: str, limits: Limits) -> str:
    """An FAQ intent's answer, naming the rules' values as the code and settings set them."""
    rules = {
        "green_validity": green_validity(lang),
        "isolation": days(lang, limits.positive_isolation_days),
        "visit_history": visit_history(lang),
        "visits_kept": days(lang, limits.visit_retention_days),
        "fixes_kept": days(lang, limits.fix_retention_days),
    }
    return answers(lang)[intent]["answer"].format(**rules)


def topics(lang: str) -> list[str]:
    """The FAQ intents (not small talk), in the file's order."""
    return [intent for intent in answers(lang) if intent.startswith("faq_")]


def intent_title(lang: str, intent: str | None) -> str:
    """The human name of an NLU intent: the FAQ's topic title, else the catalogue's
    (``intent.*``: the hand-off, out of scope), else the raw name."""
    if not intent:
        return ""
    entry = answers(lang).get(intent)
    if entry is not None:
        return entry["title"]
    return label(lang, INTENTS.get(intent), intent)
