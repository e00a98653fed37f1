"""The agent bot: hotline 1308 agents, scripted answer flows, questions from the FAQ."""

from flows.common import handlers as common
from flows.context import BotProfile

PROFILE = BotProfile(name="agent")
FLOWS = (common.build_router,)
