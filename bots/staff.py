"""The staff bot: venue owners and staff, police and checkpoint officers (permit checks,
passings at checkpoints), disinfection brigades."""

from flows import checkpoints
from flows.brigades import handlers as brigades
from flows.context import BotProfile
from flows.permits import handlers as permits
from flows.venues import handlers as venues

PROFILE = BotProfile(
    name="staff",
    menu=(
        "staff_menu.venues",
        "staff_menu.register",
        "staff_menu.checkin",
        "staff_menu.permit",
        "staff_menu.passing",
        "brigade.menu",
        "menu.help",
        "menu.language",
    ),
    commands=("check", "passing"),
)
FLOWS = (
    permits.build_officer_router,
    checkpoints.build_officer_router,
    venues.build_router,
    brigades.build_router,
    permits.build_officer_query_router,
    checkpoints.build_officer_form_router,
)
