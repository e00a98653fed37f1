"""The citizen bot: status colour, venue check-in, visits, disputes, permits (one's own,
and applying as an organisation's head), checkpoint self-registration, and free-text
questions answered from the hotline's FAQ in ru/kk/en (or handed to an operator)."""

from flows import checkpoints
from flows.checkin import handlers as checkin
from flows.context import BotProfile
from flows.faq import handlers as faq
from flows.news import handlers as news
from flows.permits import apply
from flows.permits import handlers as permits
from flows.status import handlers as status

PROFILE = BotProfile(
    name="citizen",
    menu=(
        "citizen_menu.status",
        "citizen_menu.checkin",
        "citizen_menu.visits",
        "citizen_menu.dispute",
        "citizen_menu.permit",
        "citizen_menu.apply",
        "news.menu",
        "menu.help",
        "menu.language",
    ),
    commands=("status", "permit", "apply", "dispute", "unlink"),
)
FLOWS = (
    checkpoints.build_traveller_router,
    apply.build_entry_router,
    permits.build_citizen_router,
    checkin.build_router,
    status.build_router,
    apply.build_form_router,
    news.build_router,
    faq.build_router,
)
