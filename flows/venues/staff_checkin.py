"""Staff bot: checking in a visitor without a smartphone by IIN and checking one visitor
out by IIN, both only at a verified venue, by its verified owner and the staff they
invited (rate-limited and audited)."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    Message,
)

from flows.common.keyboards import main_menu
from flows.common.steps import ask, parsed_text, pressed
from flows.context import BotProfile
from flows.venues.shared import (
    AtVenue,
    Pick,
    refused_text,
    venue_chooser,
)
from presentation.i18n import text
from presentation.keys import COLOUR_NAMES
from services.quotas import LookupQuotas
from services.validation import parse_iin
from services.venues import (
    LookupAccess,
    LookupRefused,
    Venue,
    VenueService,
)
from services.visits import CheckIn, StaffCheckOut, VisitService


async def start_staff_checkin(
    message: Message, state: FSMContext, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    mine = await venues.venues_of(message.from_user.id)
    if not mine:
        await message.answer(
            text(lang, "staff_checkin.not_staff"), reply_markup=main_menu(lang, profile.menu)
        )
        return
    if len(mine) == 1:
        await _ask_checkin_iin(message, message.from_user.id, mine[0][0], state, lang, venues)
        return
    await message.answer(text(lang, "venue.choose"), reply_markup=venue_chooser(mine, "checkin"))


async def _ask_checkin_iin(
    message: Message,
    staff: int,
    venue: Venue,
    state: FSMContext,
    lang: str,
    venues: VenueService,
) -> None:
    access = await venues.lookup_access(venue.id, staff)
    if access is not LookupAccess.ALLOWED:
        await message.answer(refused_text(lang, access, venue, "staff_checkin.not_staff"))
        return
    await state.update_data(venue_id=venue.id)
    await ask(message, state, AtVenue.check_in_iin, lang, "staff_checkin.ask_iin")


async def staff_checkin_venue(
    query: CallbackQuery, callback_data: Pick, state: FSMContext, lang: str, venues: VenueService
) -> None:
    message = await pressed(query)
    if await venues.role(callback_data.venue_id, query.from_user.id) is None:
        await message.answer(text(lang, "staff_checkin.not_staff"))
        return
    venue = await venues.venue(callback_data.venue_id)
    await _ask_checkin_iin(message, query.from_user.id, venue, state, lang, venues)


async def _may_look_up(
    message: Message,
    staff: int,
    venue_id: int,
    state: FSMContext,
    lang: str,
    venues: VenueService,
    quotas: LookupQuotas,
    not_staff_key: str,
) -> Venue | None:
    """The venue when the staff member may look one more person up there now: allowed
    there (a verified venue, its verified owner or their invitee), within their hourly
    quota and the venue's daily one; else None, having said why."""
    venue = await venues.venue(venue_id)
    access = await venues.lookup_access(venue_id, staff)
    if access is not LookupAccess.ALLOWED:
        await state.clear()
        await message.answer(refused_text(lang, access, venue, not_staff_key))
        return None
    if not await quotas.allow("staff-lookup", f"staff:{staff}"):
        await message.answer(text(lang, "staff_checkin.rate_limited"))
        return None
    if not await quotas.allow_venue(venue_id):
        await message.answer(
            text(
                lang,
                "staff_checkin.venue_rate_limited",
                venue=venue.name,
                limit=quotas.per_venue_day,
            )
        )
        return None
    return venue


async def _staff_look_up(
    message: Message,
    state: FSMContext,
    lang: str,
    venues: VenueService,
    quotas: LookupQuotas,
    not_staff_key: str,
) -> tuple[str, Venue, int] | None:
    """What a staff check-in or check-out by IIN starts with: a well-formed IIN, and a
    look-up this staff member may make at the chosen venue now. (IIN, venue, staff) or
    None, the person told why."""
    assert message.from_user is not None
    iin = await parsed_text(message, lang, parse_iin)
    if iin is None:
        return None
    staff = message.from_user.id
    venue_id = (await state.get_data())["venue_id"]
    venue = await _may_look_up(
        message, staff, venue_id, state, lang, venues, quotas, not_staff_key
    )
    return None if venue is None else (iin.value, venue, staff)


async def visitor_iin(
    message: Message,
    state: FSMContext,
    raw_state: str | None,
    lang: str,
    venues: VenueService,
    visits: VisitService,
    quotas: LookupQuotas,
) -> None:
    """A staff member typed a visitor's IIN: check them in (AtVenue.check_in_iin) or out
    (AtVenue.check_out_iin) at the chosen venue. Either is a look-up of the person: allowed,
    limited and audited alike."""
    checking_in = raw_state == AtVenue.check_in_iin.state
    key = "staff_checkin.not_staff" if checking_in else "staff_checkout.not_staff"
    asked = await _staff_look_up(message, state, lang, venues, quotas, key)
    if asked is None:
        return
    iin, venue, staff = asked
    try:
        if checking_in:
            reply = await _check_in(lang, visits, iin, venue, staff)
        else:
            reply = await _check_out(lang, visits, iin, venue, staff)
    except LookupRefused as refused:  # changed since the look above
        await state.clear()
        await message.answer(refused_text(lang, refused.access, venue, key))
        return
    await message.answer(reply)


async def _check_in(lang: str, visits: VisitService, iin: str, venue: Venue, staff: int) -> str:
    """The staff member sees the colour and the decision, never a name; for a person
    checked in at another venue, only that (not where, nor the colour)."""
    result = await visits.staff_check_in(iin, venue, staff_tg_user_id=staff)
    if result.outcome is CheckIn.ELSEWHERE:
        return text(lang, "staff_checkin.elsewhere")
    colour = text(lang, COLOUR_NAMES[result.status.colour])
    outcome_key = {
        CheckIn.ADMITTED: "staff_checkin.admit",
        CheckIn.REFUSED: "staff_checkin.refuse",
        CheckIn.ALREADY_INSIDE: "staff_checkin.already",
        CheckIn.FULL: "staff_checkin.full",
    }[result.outcome]
    marker = {"red": "🔴", "yellow": "🟡", "green": "🟢", "blue": "🔵"}[result.status.colour.value]
    return f"{marker} {text(lang, outcome_key, colour=colour)}"


async def _check_out(lang: str, visits: VisitService, iin: str, venue: Venue, staff: int) -> str:
    """Close one visitor's stay at the venue, or say they are not inside."""
    outcome = await visits.staff_check_out(venue.id, iin, staff_tg_user_id=staff)
    key = (
        "staff_checkout.done"
        if outcome is StaffCheckOut.CHECKED_OUT
        else "staff_checkout.not_inside"
    )
    return text(lang, key, venue=venue.name)
