"""The quarantine bot. Home-quarantine patients: consent, phone, live location."""

from flows.context import BotProfile
from flows.quarantine import patient
from flows.quarantine.live import LiveFastPath

PROFILE = BotProfile(
    name="quarantine",
    menu=("quarantine_menu.status", "quarantine_menu.share", "menu.help", "menu.language"),
)
FLOWS = (patient.build_router,)
FAST_PATH = LiveFastPath
