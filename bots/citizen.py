"""The citizen bot. Residents: status colour, venue check-in, permits, FAQ in ru/kk/en."""

from flows.common import handlers as common
from flows.context import BotProfile

PROFILE = BotProfile(name="citizen")
FLOWS = (common.build_router,)
