"""The rule values that texts name, read from the code that enforces each rule, so that a
text never says "72 hours" while the rule says otherwise. Values that are settings (the
isolation days, how long location points are kept) are passed by the caller from the
settings; these are the rules written as constants."""

from __future__ import annotations

from datetime import timedelta

from geofence.home import HOME_RADIUS_M
from presentation.i18n import plural
from services.quarantine import SILENCE
from services.status import GREEN_VALIDITY
from services.visits import HISTORY_DAYS

GREEN_HOURS = int(GREEN_VALIDITY / timedelta(hours=1))
SILENCE_MINUTES = int(SILENCE / timedelta(minutes=1))
HOME_RADIUS = f"{HOME_RADIUS_M:g}"


def days(lang: str, count: int) -> str:
    """A number of days as a text says it ("14 days", "14 дней", "1 день")."""
    return plural(lang, "units.days", count)


def green_validity(lang: str) -> str:
    """How long a negative result keeps a person green (services.status.GREEN_VALIDITY)."""
    return plural(lang, "units.hours", GREEN_HOURS)


def silence(lang: str) -> str:
    """After how long without a location a patient's signal counts as lost."""
    return plural(lang, "units.minutes", SILENCE_MINUTES)


def visit_history(lang: str) -> str:
    """How far back "My visits" looks (services.visits.HISTORY_DAYS)."""
    return days(lang, HISTORY_DAYS)
