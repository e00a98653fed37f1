"""What every handler may ask for by name (aiogram workflow data), typed in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from services.metrics import Metrics
from services.updates import UpdateLedger
from services.users import LanguagePreferences


@dataclass(frozen=True)
class BotProfile:
    """A bot: its name and the text keys of its main-menu buttons, in order."""

    name: str
    menu: tuple[str, ...] = field(default=("menu.help", "menu.language"))


class BotContext(TypedDict):
    profile: BotProfile
    languages: LanguagePreferences
    ledger: UpdateLedger
    metrics: Metrics
    default_language: str
