"""The staff bot: venue staff, checkpoint officers and police."""

from flows.common import handlers as common
from flows.context import BotProfile

PROFILE = BotProfile(name="staff")
FLOWS = (common.build_router,)
