"""The doctor bot. District doctors: enrol patients, receive and resolve violation alerts."""

from flows.context import BotProfile
from flows.quarantine import doctor

PROFILE = BotProfile(
    name="doctor",
    menu=("doctor_menu.enrol", "doctor_menu.cases", "menu.help", "menu.language"),
    commands=("enrol", "cases"),
)
FLOWS = (doctor.build_router,)
