"""The doctor bot. District doctors: enrol patients, receive and resolve violation alerts."""

from flows.common import handlers as common
from flows.context import BotProfile

PROFILE = BotProfile(name="doctor")
FLOWS = (common.build_router,)
