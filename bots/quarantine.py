"""The quarantine bot. Home-quarantine patients: consent, phone, live location."""

from flows.common import handlers as common
from flows.context import BotProfile

PROFILE = BotProfile(name="quarantine")
FLOWS = (common.build_router,)
