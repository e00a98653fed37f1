"""The agent bot: hotline 1308 agents take citizens' hand-off tickets and walk scripted
answers on calls, logged by topic, outcome and district."""

from flows import hotline
from flows.context import BotProfile

PROFILE = BotProfile(
    name="agent",
    menu=(
        "agent_menu.shift_on",
        "agent_menu.shift_off",
        "agent_menu.script",
        "menu.help",
        "menu.language",
    ),
    commands=("call",),
)
FLOWS = (hotline.build_router,)
