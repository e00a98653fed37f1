"""Static catalogue keys for values that code names at run time (a rule an input broke, a
colour, a state): each family maps a value to its key written out in full, so that every key
the code can ask for is in the source, where ``make lint`` checks it against the catalogues."""

from __future__ import annotations

from presentation.i18n import plural, text
from services.permit_applications import MAX_WINDOW_DAYS

# InvalidInput.code (services/validation.py and the services that raise it) -> its text.
INPUT_ERRORS: dict[str, str] = {
    "not_own_contact": "errors.not_own_contact",
    "iin.not_digits": "errors.iin.not_digits",
    "iin.length": "errors.iin.length",
    "iin.check_digit": "errors.iin.check_digit",
    "bin.not_digits": "errors.bin.not_digits",
    "bin.length": "errors.bin.length",
    "bin.check_digit": "errors.bin.check_digit",
    "bin.month": "errors.bin.month",
    "bin.type": "errors.bin.type",
    "bin.kind": "errors.bin.kind",
    "plate.format": "errors.plate.format",
    "plate.region": "errors.plate.region",
    "phone.format": "errors.phone.format",
    "phone.not_kazakhstan": "errors.phone.not_kazakhstan",
    "location.format": "errors.location.format",
    "location.range": "errors.location.range",
    "location.null_island": "errors.location.null_island",
    "apply.line_two_iins": "errors.apply.line_two_iins",
    "apply.line_two_plates": "errors.apply.line_two_plates",
    "apply.line_empty": "errors.apply.line_empty",
    "apply.too_many_lines": "errors.apply.too_many_lines",
    "apply.csv_header": "errors.apply.csv_header",
    "apply.line_too_long": "errors.apply.line_too_long",
    "apply.csv_broken": "errors.apply.csv_broken",
    "apply.window_past": "errors.apply.window_past",
    "apply.window_backwards": "errors.apply.window_backwards",
    "apply.window_too_long": "errors.apply.window_too_long",
    "apply.window_far": "errors.apply.window_far",
    "apply.window_format": "errors.apply.window_format",
}

# VenueError.code (services/venues.py) -> its text.
VENUE_ERRORS: dict[str, str] = {
    "venue.name": "errors_venue.name",
    "venue.category": "errors_venue.category",
    "venue.capacity": "errors_venue.capacity",
    "venue.auto_checkout": "errors_venue.auto_checkout",
    "venue.entrances": "errors_venue.entrances",
    "venue.not_found": "errors_venue.not_found",
    "venue.not_owner": "errors_venue.not_owner",
    "venue.invite_invalid": "errors_venue.invite_invalid",
    "venue.not_head": "errors_venue.not_head",
    "venue.too_many_attempts": "errors_venue.too_many_attempts",
}

# services.status.Colour -> its name.
COLOUR_NAMES: dict[str, str] = {
    "red": "colour.red",
    "yellow": "colour.yellow",
    "green": "colour.green",
    "blue": "colour.blue",
}

# Colour -> what to do next.
COLOUR_NEXT: dict[str, str] = {
    "red": "status.next.red",
    "yellow": "status.next.yellow",
    "green": "status.next.green",
    "blue": "status.next.blue",
}

# Status.reason -> why the status is what it is.
STATUS_REASONS: dict[str, str] = {
    "pcr_positive": "status.reason.pcr_positive",
    "registered_contact": "status.reason.registered_contact",
    "pcr_negative": "status.reason.pcr_negative",
    "unknown": "status.reason.unknown",
}

# A test result told in a notice -> its word.
RESULTS: dict[str, str] = {
    "positive": "notices.result_positive",
    "negative": "notices.result_negative",
}

# BotProfile.name -> its /start greeting.
GREETINGS: dict[str, str] = {
    "citizen": "start.greeting.citizen",
    "staff": "start.greeting.staff",
    "quarantine": "start.greeting.quarantine",
    "doctor": "start.greeting.doctor",
    "agent": "start.greeting.agent",
}

# BotProfile.name -> what the bot is for (/help).
HELP_INTROS: dict[str, str] = {
    "citizen": "help.intro.citizen",
    "staff": "help.intro.staff",
    "quarantine": "help.intro.quarantine",
    "doctor": "help.intro.doctor",
    "agent": "help.intro.agent",
}

# A bot command -> its description in the menu and /help.
COMMANDS: dict[str, str] = {
    "start": "commands.start",
    "help": "commands.help",
    "language": "commands.language",
    "cancel": "commands.cancel",
    "status": "commands.status",
    "permit": "commands.permit",
    "apply": "commands.apply",
    "dispute": "commands.dispute",
    "unlink": "commands.unlink",
    "check": "commands.check",
    "passing": "commands.passing",
    "enrol": "commands.enrol",
    "cases": "commands.cases",
    "call": "commands.call",
}

# services.hotline.OUTCOMES -> the outcome's name.
OUTCOME_NAMES: dict[str, str] = {
    "answered": "agent.outcome.answered",
    "callback": "agent.outcome.callback",
    "referred": "agent.outcome.referred",
    "ambulance": "agent.outcome.ambulance",
}

# A hotline ticket button (take, close) -> its label.
TICKET_ACTIONS: dict[str, str] = {
    "take": "agent.take",
    "close": "agent.close",
}

# A QR code's direction -> its poster's title.
POSTER_TITLES: dict[str, str] = {
    "entry": "venue.poster_title_entry",
    "exit": "venue.poster_title_exit",
}

# A QR code's direction -> its name.
DIRECTION_NAMES: dict[str, str] = {
    "entry": "venue.direction_entry",
    "exit": "venue.direction_exit",
}

# A venue card's button -> its label.
VENUE_ACTIONS: dict[str, str] = {
    "codes": "venue.codes",
    "invite": "venue.invite",
    "rotate": "venue.rotate",
    "close_all": "venue.close_all",
    "checkout_one": "venue.checkout_one",
    "capacity": "venue.capacity",
    "auto_checkout": "venue.auto_checkout",
    "stats": "venue.stats",
    "verify": "venue.verify",
}

# A venue's category -> its name.
CATEGORY_NAMES: dict[str, str] = {
    "shop": "venue.category.shop",
    "food": "venue.category.food",
    "mall": "venue.category.mall",
    "culture": "venue.category.culture",
    "sport": "venue.category.sport",
    "beauty": "venue.category.beauty",
    "office": "venue.category.office",
    "other": "venue.category.other",
}

# Venue.capacity_policy -> its name.
CAPACITY_POLICIES: dict[str, str] = {
    "warn": "venue.policy_warn",
    "refuse": "venue.policy_refuse",
}

# A passing's direction (in, out) -> its name.
CHECKPOINT_DIRECTIONS: dict[str, str] = {
    "in": "checkpoint.direction.in",
    "out": "checkpoint.direction.out",
}

# services.permit_applications.REGISTERS -> the register's name.
REGISTER_NAMES: dict[str, str] = {
    "city": "permit.register.city",
    "roadblock": "permit.register.roadblock",
}

# services.permit_applications.PURPOSES -> the purpose's name.
PURPOSE_NAMES: dict[str, str] = {
    "work": "apply.purpose.work",
    "delivery": "apply.purpose.delivery",
    "medical": "apply.purpose.medical",
    "utilities": "apply.purpose.utilities",
    "security": "apply.purpose.security",
    "volunteer": "apply.purpose.volunteer",
}

# A permit rule that held an item back -> its name.
PERMIT_RULES: dict[str, str] = {
    "quota": "apply.rule.quota",
    "duplicate": "apply.rule.duplicate",
    "quarantine": "apply.rule.quarantine",
}

# PermitState -> its name in the organisation's list.
PERMIT_STATES: dict[str, str] = {
    "valid": "apply.state.valid",
    "suspended": "apply.state.suspended",
    "not_yet": "apply.state.not_yet",
    "pending": "apply.state.pending",
    "expired": "apply.state.expired",
    "revoked": "apply.state.revoked",
    "rejected": "apply.state.rejected",
    "none": "apply.state.none",
}

# services.permits.PermitResult -> what a permit check tells.
PERMIT_RESULTS: dict[str, str] = {
    "valid": "permit.valid",
    "suspended": "permit.suspended",
    "not_yet": "permit.not_yet",
    "pending": "permit.pending",
    "expired": "permit.expired",
    "revoked": "permit.revoked",
    "rejected": "permit.rejected",
}

# An officer's role -> its name.
OFFICER_ROLES: dict[str, str] = {
    "police": "permit.role.police",
    "checkpoint": "permit.role.checkpoint",
}

# A quarantine case's state -> its name.
CASE_STATES: dict[str, str] = {
    "waiting": "doctor.state.waiting",
    "no_fix": "doctor.state.no_fix",
    "home_unconfirmed": "doctor.state.home_unconfirmed",
    "home": "doctor.state.home",
    "outside": "doctor.state.outside",
    "silent": "doctor.state.silent",
}

# A doctor's alert button (Action) -> what it did.
ALERT_DONE: dict[str, str] = {
    "ack": "doctor.alert.done_ack",
    "called": "doctor.alert.done_called",
    "resolve": "doctor.alert.done_resolve",
}

# InvalidInput.code of an isolation end -> its text.
ISOLATION_END_ERRORS: dict[str, str] = {
    "end_invalid": "doctor.end_invalid",
    "end_past": "doctor.end_past",
}

# The mini app's labels and its refusals (forged, stale).
MINIAPP_LABELS: dict[str, str] = {
    "title": "miniapp.title",
    "now": "miniapp.now",
    "live_hint": "miniapp.live_hint",
    "admitted": "miniapp.admitted",
    "refused": "miniapp.refused",
    "checked_out": "miniapp.checked_out",
    "status": "miniapp.status",
    "open_bot": "miniapp.open_bot",
    "open_pass": "miniapp.open_pass",
    "forged": "miniapp.forged",
    "stale": "miniapp.stale",
}

# An NLU intent without an FAQ title -> its title.
INTENTS: dict[str, str] = {
    "human_handoff": "intent.human_handoff",
    "out_of_scope": "intent.out_of_scope",
}

# The rule values that an input error's text names, by its code.
_COUNTS: dict[str, int] = {"apply.window_too_long": MAX_WINDOW_DAYS}


def input_error(lang: str, code: str) -> str:
    """The text that tells a person which rule their input broke (``InvalidInput.code``)."""
    if code in _COUNTS:
        return plural(lang, INPUT_ERRORS[code], _COUNTS[code])
    return text(lang, INPUT_ERRORS[code])


def venue_error(lang: str, code: str) -> str:
    """The text for a refused venue action (``VenueError.code``)."""
    return text(lang, VENUE_ERRORS[code])
