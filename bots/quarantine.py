"""The quarantine bot. Home-quarantine patients: consent, phone, live location."""

from flows.context import BotContext, BotProfile
from flows.quarantine import patient
from flows.quarantine.live import LiveFastPath

PROFILE = BotProfile(
    name="quarantine",
    menu=("quarantine_menu.status", "quarantine_menu.share", "menu.help", "menu.language"),
)
FLOWS = (patient.build_router,)


def fast_path(context: BotContext) -> LiveFastPath:
    """Live-location moves, stored a batch at a time (flows/quarantine/live.py)."""
    return LiveFastPath(context["live_ingest"])
