"""A phone's location as Telegram stamped it: what a patient's home rule and a brigade's
field tracking both take from a shared live location. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.validation import InvalidInput, parse_coordinates

INDEFINITE_LIVE_PERIOD = 0x7FFFFFFF
"""The ``live_period`` of a share the person left on until they stop it."""
MAX_REPORTED_ACCURACY_M = 1500.0


@dataclass(frozen=True)
class Fix:
    """One location from a person's chat, as Telegram stamped it."""

    tg_user_id: int
    message_id: int
    at: datetime
    latitude: float
    longitude: float
    accuracy: float | None
    live_until: datetime | None
    """When the live period ends; None for a static location or an ended share."""
    stopped: bool = False
    """An edit that ends the live share (Telegram drops ``live_period`` from it)."""


def validate_fix(fix: Fix) -> bool:
    """Coordinates a phone could report and an accuracy in Telegram's range."""
    try:
        parse_coordinates(fix.latitude, fix.longitude)
    except InvalidInput:
        return False
    return fix.accuracy is None or 0.0 <= fix.accuracy <= MAX_REPORTED_ACCURACY_M
