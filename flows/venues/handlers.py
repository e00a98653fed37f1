"""Staff bot: registering a venue, its QR codes and posters, verifying it (the head's
phone on the organisations' register), staff invites, occupancy, statistics, closing
time, checking in a visitor without a smartphone by IIN and checking one visitor out by
IIN (both only at a verified venue, by its verified owner and the staff they invited)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, Router
from aiogram.filters import Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from flows.common.keyboards import main_menu, share_phone_keyboard
from flows.contacts import own_phone
from flows.context import BotLinks, BotProfile
from flows.filters import HasContact, MenuButton, StartPayload
from flows.rendering import hourly_chart, poster_pdf, qr_png, qr_svg
from presentation.i18n import plural, text
from presentation.keys import (
    CAPACITY_POLICIES,
    CATEGORY_NAMES,
    COLOUR_NAMES,
    DIRECTION_NAMES,
    VENUE_ACTIONS,
    input_error,
    venue_error,
)
from services.quotas import LookupQuotas
from services.validation import InvalidInput, parse_bin, parse_coordinates, parse_iin
from services.venues import (
    AUTO_CHECKOUT_DEFAULT_MINUTES,
    CATEGORIES,
    LookupAccess,
    LookupRefused,
    NewVenue,
    Venue,
    VenueCode,
    VenueError,
    VenueService,
    parse_auto_checkout,
)
from services.visits import CheckIn, StaffCheckOut, VisitService


class VenueForm(StatesGroup):
    bin = State()
    name = State()
    category = State()
    address = State()
    location = State()
    capacity = State()
    auto_checkout = State()
    entrances = State()


class StaffCheckIn(StatesGroup):
    iin = State()


class CheckOutForm(StatesGroup):
    iin = State()


class VerifyForm(StatesGroup):
    phone = State()


class CapacityForm(StatesGroup):
    number = State()


class AutoCheckoutForm(StatesGroup):
    time = State()


class Pick(CallbackData, prefix="vn"):
    action: str
    venue_id: int = 0
    value: str = ""


def _skip(lang: str, step: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "dispute.skip"),
                    callback_data=Pick(action="skip", value=step).pack(),
                )
            ]
        ]
    )


def _duration(lang: str, minutes: int) -> str:
    """A length of time as people read it: "4 h", "1 h 30 min", "45 min"."""
    hours, rest = divmod(minutes, 60)
    if not rest:
        return text(lang, "venue.duration_h", h=hours)
    if not hours:
        return text(lang, "venue.duration_m", m=rest)
    return text(lang, "venue.duration_hm", h=hours, m=rest)


def _default_auto_checkout(lang: str) -> InlineKeyboardMarkup:
    label = text(
        lang,
        "venue.auto_checkout_default",
        duration=_duration(lang, AUTO_CHECKOUT_DEFAULT_MINUTES),
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=label, callback_data=Pick(action="skip", value="auto_checkout").pack()
                )
            ]
        ]
    )


async def start_registration(message: Message, state: FSMContext, lang: str) -> None:
    await state.clear()
    await state.set_state(VenueForm.bin)
    await message.answer(text(lang, "venue.ask_bin"), reply_markup=None)


async def got_bin(message: Message, state: FSMContext, lang: str) -> None:
    try:
        bin_ = parse_bin(message.text or "")
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await state.update_data(bin=bin_.value)
    await state.set_state(VenueForm.name)
    await message.answer(text(lang, "venue.ask_name"))


async def got_name(message: Message, state: FSMContext, lang: str) -> None:
    name = (message.text or "").strip()
    if not 1 <= len(name) <= 200:
        await message.answer(text(lang, "errors_venue.name"))
        return
    await state.update_data(name=name)
    await state.set_state(VenueForm.category)
    rows = [
        [
            InlineKeyboardButton(
                text=text(lang, CATEGORY_NAMES[c]),
                callback_data=Pick(action="category", value=c).pack(),
            )
            for c in CATEGORIES[i : i + 2]
        ]
        for i in range(0, len(CATEGORIES), 2)
    ]
    await message.answer(
        text(lang, "venue.ask_category"), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def got_category(
    query: CallbackQuery, callback_data: Pick, state: FSMContext, lang: str
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    if callback_data.value not in CATEGORIES:
        await query.message.answer(text(lang, "errors_venue.category"))
        return
    await state.update_data(category=callback_data.value)
    await state.set_state(VenueForm.address)
    await query.message.answer(text(lang, "venue.ask_address"))


async def category_expected(message: Message, lang: str) -> None:
    await message.answer(text(lang, "errors_venue.category"))


def _location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    button = KeyboardButton(text=text(lang, "venue.location_button"), request_location=True)
    return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)


async def got_address(message: Message, state: FSMContext, lang: str) -> None:
    address = (message.text or "").strip()
    if not 1 <= len(address) <= 300:
        await message.answer(text(lang, "venue.ask_address"))
        return
    await state.update_data(address=address)
    await state.set_state(VenueForm.location)
    await message.answer(text(lang, "venue.ask_location"), reply_markup=_location_keyboard(lang))


async def got_location(message: Message, state: FSMContext, lang: str) -> None:
    if message.location is None:
        await message.answer(
            text(lang, "venue.location_expected"), reply_markup=_location_keyboard(lang)
        )
        return
    try:
        point = parse_coordinates(message.location.latitude, message.location.longitude)
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await state.update_data(latitude=point.latitude, longitude=point.longitude)
    await state.set_state(VenueForm.capacity)
    # the location button goes away; the next question carries its own (inline) button
    await message.answer(text(lang, "venue.location_saved"), reply_markup=ReplyKeyboardRemove())
    await message.answer(text(lang, "venue.ask_capacity"), reply_markup=_skip(lang, "capacity"))


async def got_capacity(message: Message, state: FSMContext, lang: str) -> None:
    raw = (message.text or "").strip()
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        await message.answer(text(lang, "venue.capacity_expected"))
        return
    await state.update_data(capacity=int(raw))
    await _ask_auto_checkout(message, state, lang)


async def _ask_auto_checkout(message: Message, state: FSMContext, lang: str) -> None:
    await state.set_state(VenueForm.auto_checkout)
    await message.answer(
        text(lang, "venue.ask_auto_checkout"), reply_markup=_default_auto_checkout(lang)
    )


async def got_auto_checkout(message: Message, state: FSMContext, lang: str) -> None:
    try:
        minutes = parse_auto_checkout(message.text or "")
    except VenueError as error:
        await message.answer(
            venue_error(lang, error.code), reply_markup=_default_auto_checkout(lang)
        )
        return
    await state.update_data(auto_checkout=minutes)
    await _ask_entrances(message, state, lang)


async def _ask_entrances(message: Message, state: FSMContext, lang: str) -> None:
    await state.set_state(VenueForm.entrances)
    await message.answer(text(lang, "venue.ask_entrances"), reply_markup=_skip(lang, "entrances"))


async def skip_step(
    query: CallbackQuery,
    callback_data: Pick,
    state: FSMContext,
    lang: str,
    bot: Bot,
    venues: VenueService,
    links: BotLinks,
    profile: BotProfile,
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    current = await state.get_state()
    if callback_data.value == "capacity" and current == VenueForm.capacity.state:
        await state.update_data(capacity=None)
        await _ask_auto_checkout(query.message, state, lang)
    elif callback_data.value == "auto_checkout" and current == VenueForm.auto_checkout.state:
        await state.update_data(auto_checkout=AUTO_CHECKOUT_DEFAULT_MINUTES)
        await _ask_entrances(query.message, state, lang)
    elif callback_data.value == "auto_checkout" and current == AutoCheckoutForm.time.state:
        venue_id = (await state.get_data())["venue_id"]
        await _set_auto_checkout(
            query.message,
            query.from_user.id,
            venue_id,
            AUTO_CHECKOUT_DEFAULT_MINUTES,
            state,
            lang,
            venues,
        )
    elif callback_data.value == "entrances" and current == VenueForm.entrances.state:
        await _register(
            query.message, query.from_user.id, [], state, lang, bot, venues, links, profile
        )


async def got_entrances(
    message: Message,
    state: FSMContext,
    lang: str,
    bot: Bot,
    venues: VenueService,
    links: BotLinks,
    profile: BotProfile,
) -> None:
    names = [n.strip() for n in (message.text or "").split(",") if n.strip()]
    if (
        not names
        or len(names) > 10
        or len(set(names)) != len(names)
        or any(len(n) > 60 for n in names)
    ):
        await message.answer(text(lang, "venue.entrances_invalid"))
        return
    assert message.from_user is not None
    await _register(message, message.from_user.id, names, state, lang, bot, venues, links, profile)


async def _register(
    message: Message,
    owner: int,
    entrances: list[str],
    state: FSMContext,
    lang: str,
    bot: Bot,
    venues: VenueService,
    links: BotLinks,
    profile: BotProfile,
) -> None:
    data = await state.get_data()
    try:
        venue = await venues.register(
            NewVenue(
                owner_tg_user_id=owner,
                bin=data["bin"],
                name=data["name"],
                category=data["category"],
                address=data["address"],
                latitude=data["latitude"],
                longitude=data["longitude"],
                capacity=data.get("capacity"),
                entrances=entrances,
                auto_checkout_minutes=data.get("auto_checkout", AUTO_CHECKOUT_DEFAULT_MINUTES),
            )
        )
    except VenueError as error:
        await message.answer(venue_error(lang, error.code))
        return
    await state.clear()
    await message.answer(
        text(lang, "venue.registered", venue=venue.name),
        reply_markup=main_menu(lang, profile.menu),
    )
    await _send_codes(message, venue, await venues.codes(venue.id), lang, links)


async def _send_codes(
    message: Message, venue: Venue, codes: list[VenueCode], lang: str, links: BotLinks
) -> None:
    """Per code: the PNG to look at, an A4 poster (PDF) to print, an SVG for designers."""
    for code in codes:
        link = links.venue_link(code.token)
        caption = text(
            lang,
            "venue.code_caption",
            venue=venue.name,
            entrance=code.entrance,
            direction=text(lang, DIRECTION_NAMES[code.direction]),
        )
        slug = f"{venue.id}-{code.entrance_id}-{code.direction}"
        await message.answer_photo(
            BufferedInputFile(qr_png(link), f"qr-{slug}.png"), caption=f"{caption}\n{link}"
        )
        await message.answer_document(
            BufferedInputFile(
                poster_pdf(link, venue.name, code.entrance, code.direction), f"poster-{slug}.pdf"
            ),
            caption=caption,
        )
        await message.answer_document(BufferedInputFile(qr_svg(link), f"qr-{slug}.svg"))


def _venue_chooser(mine: list[tuple[Venue, str]], action: str) -> InlineKeyboardMarkup:
    """One button per venue, each carrying ``action``."""
    rows = [
        [
            InlineKeyboardButton(
                text=venue.name, callback_data=Pick(action=action, venue_id=venue.id).pack()
            )
        ]
        for venue, _role in mine
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def my_venues(
    message: Message, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    mine = await venues.venues_of(message.from_user.id)
    if not mine:
        await message.answer(text(lang, "venue.none"), reply_markup=main_menu(lang, profile.menu))
        return
    await message.answer(text(lang, "venue.choose"), reply_markup=_venue_chooser(mine, "open"))


def _venue_actions(lang: str, venue: Venue, owner: bool) -> InlineKeyboardMarkup:
    actions = (
        (["verify"] if owner and not venue.verified else [])
        + ["codes", "stats", "checkout_one", "close_all"]
        + (["invite", "rotate", "capacity", "auto_checkout"] if owner else [])
    )
    buttons = [
        InlineKeyboardButton(
            text=text(lang, VENUE_ACTIONS[a]),
            callback_data=Pick(action=a, venue_id=venue.id).pack(),
        )
        for a in actions
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


async def venue_action(
    query: CallbackQuery,
    callback_data: Pick,
    lang: str,
    venues: VenueService,
    visits: VisitService,
    links: BotLinks,
    city_tz: ZoneInfo,
    state: FSMContext,
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    message = query.message
    role = await venues.role(callback_data.venue_id, query.from_user.id)
    if role is None:
        await message.answer(text(lang, "errors_venue.not_found"))
        return
    venue = await venues.venue(callback_data.venue_id)
    owner = role == "owner"
    action = callback_data.action
    owner_only = ("invite", "rotate", "capacity", "policy", "auto_checkout", "verify")
    if action in owner_only and not owner:
        await message.answer(text(lang, "venue.not_owner"))
        return
    if action == "open":
        occupancy = await visits.occupancy(venue.id)
        capacity_text = (
            text(
                lang,
                "venue.capacity_text",
                capacity=venue.capacity,
                policy=text(lang, CAPACITY_POLICIES[venue.capacity_policy]),
            )
            if venue.capacity
            else ""
        )
        card = text(
            lang,
            "venue.card",
            venue=venue.name,
            occupancy=occupancy,
            capacity_text=capacity_text,
            duration=_duration(lang, venue.auto_checkout_minutes),
        )
        if not venue.verified:
            card += "\n\n" + text(lang, "venue.unverified_note")
        await message.answer(card, reply_markup=_venue_actions(lang, venue, owner))
    elif action == "verify":
        if venue.verified:
            await message.answer(text(lang, "venue.already_verified", venue=venue.name))
            return
        await state.set_state(VerifyForm.phone)
        await state.update_data(venue_id=venue.id)
        await message.answer(
            text(lang, "venue.ask_head_phone", venue=venue.name, bin=venue.bin),
            reply_markup=share_phone_keyboard(lang),
        )
    elif action == "codes":
        await _send_codes(message, venue, await venues.codes(venue.id), lang, links)
    elif action == "rotate":
        codes = await venues.rotate_codes(venue.id)
        await message.answer(text(lang, "venue.rotated", venue=venue.name))
        await _send_codes(message, venue, codes, lang, links)
    elif action == "invite":
        code = await venues.create_invite(venue.id, query.from_user.id)
        await message.answer(text(lang, "venue.invite_link", link=links.deep_link("staff", code)))
    elif action == "checkout_one":
        access = await venues.lookup_access(venue.id, query.from_user.id)
        if access is not LookupAccess.ALLOWED:
            await message.answer(_refused(lang, access, venue, "staff_checkout.not_staff"))
            return
        await state.set_state(CheckOutForm.iin)
        await state.update_data(venue_id=venue.id)
        await message.answer(text(lang, "staff_checkout.ask_iin", venue=venue.name))
    elif action == "close_all":
        count = await visits.check_everyone_out(venue.id)
        await message.answer(plural(lang, "venue.closed_all", count, venue=venue.name))
    elif action == "stats":
        caption, chart = await _stats(lang, venue, visits, city_tz)
        await message.answer_photo(BufferedInputFile(chart, "stats.png"), caption=caption)
    elif action == "capacity":
        await state.set_state(CapacityForm.number)
        await state.update_data(venue_id=venue.id)
        await message.answer(text(lang, "venue.ask_new_capacity"))
    elif action == "auto_checkout":
        await state.set_state(AutoCheckoutForm.time)
        await state.update_data(venue_id=venue.id)
        await message.answer(
            text(
                lang,
                "venue.ask_new_auto_checkout",
                venue=venue.name,
                duration=_duration(lang, venue.auto_checkout_minutes),
            ),
            reply_markup=_default_auto_checkout(lang),
        )
    elif action == "policy":
        await venues.set_capacity(venue.id, venue.capacity, callback_data.value)
        await message.answer(
            text(
                lang,
                "venue.capacity_set",
                venue=venue.name,
                capacity=venue.capacity or "—",
                policy=text(lang, CAPACITY_POLICIES[callback_data.value]),
            )
        )


async def _stats(
    lang: str, venue: Venue, visits: VisitService, city_tz: ZoneInfo
) -> tuple[str, bytes]:
    """Today's check-ins per hour as a chart, refusals and occupancy: counts, never names."""
    midnight = datetime.now(city_tz).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = await visits.hourly(venue.id, midnight)
    total = sum(h.check_ins for h in hours)
    header = text(
        lang,
        "venue.stats_title",
        venue=venue.name,
        checkins=plural(lang, "venue.checkins", total),
        refused=await visits.refused_today(venue.id, midnight),
        occupancy=await visits.occupancy(venue.id),
    )
    bars = [(f"{h.hour.astimezone(city_tz):%H}", h.check_ins) for h in hours]
    return header, hourly_chart(header, bars)


async def got_capacity_number(
    message: Message, state: FSMContext, lang: str, venues: VenueService
) -> None:
    """A new capacity (0 for none), then how to treat a full venue."""
    raw = (message.text or "").strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) > 100_000:
        await message.answer(text(lang, "venue.capacity_expected"))
        return
    assert message.from_user is not None
    venue_id = (await state.get_data())["venue_id"]
    await state.clear()
    if await venues.role(venue_id, message.from_user.id) != "owner":
        await message.answer(text(lang, "venue.not_owner"))
        return
    venue = await venues.venue(venue_id)
    capacity = int(raw) or None
    await venues.set_capacity(venue_id, capacity, venue.capacity_policy)
    choices = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, CAPACITY_POLICIES[policy]),
                    callback_data=Pick(action="policy", venue_id=venue_id, value=policy).pack(),
                )
                for policy in ("warn", "refuse")
            ]
        ]
    )
    await message.answer(
        text(
            lang,
            "venue.capacity_set",
            venue=venue.name,
            capacity=capacity or "—",
            policy=text(lang, CAPACITY_POLICIES[venue.capacity_policy]),
        ),
        reply_markup=choices,
    )


async def got_new_auto_checkout(
    message: Message, state: FSMContext, lang: str, venues: VenueService
) -> None:
    try:
        minutes = parse_auto_checkout(message.text or "")
    except VenueError as error:
        await message.answer(
            venue_error(lang, error.code), reply_markup=_default_auto_checkout(lang)
        )
        return
    assert message.from_user is not None
    venue_id = (await state.get_data())["venue_id"]
    await _set_auto_checkout(message, message.from_user.id, venue_id, minutes, state, lang, venues)


async def _set_auto_checkout(
    message: Message,
    user_id: int,
    venue_id: int,
    minutes: int,
    state: FSMContext,
    lang: str,
    venues: VenueService,
) -> None:
    await state.clear()
    if await venues.role(venue_id, user_id) != "owner":
        await message.answer(text(lang, "venue.not_owner"))
        return
    await venues.set_auto_checkout(venue_id, minutes)
    venue = await venues.venue(venue_id)
    await message.answer(
        text(
            lang,
            "venue.auto_checkout_set",
            venue=venue.name,
            duration=_duration(lang, minutes),
        )
    )


def _refused(lang: str, access: LookupAccess, venue: Venue, not_staff_key: str) -> str:
    """Why the person may not look anyone up by IIN at the venue, and what to do."""
    if access is LookupAccess.UNVERIFIED:
        return text(lang, "staff_lookup.unverified", venue=venue.name)
    if access is LookupAccess.NOT_INVITED:
        return text(lang, "staff_lookup.not_invited", venue=venue.name)
    return text(lang, not_staff_key, venue=venue.name)


async def got_head_phone(
    message: Message, state: FSMContext, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    """The owner shared the head's phone: the venue is verified when it is the head's
    phone on the register for the venue's BIN (as for permit applications)."""
    assert message.from_user is not None
    venue_id = (await state.get_data())["venue_id"]
    try:
        phone = own_phone(message)
    except InvalidInput as error:
        await message.answer(
            input_error(lang, error.code), reply_markup=share_phone_keyboard(lang)
        )
        return
    await state.clear()
    menu = main_menu(lang, profile.menu)
    try:
        venue = await venues.verify_by_head(venue_id, message.from_user.id, phone)
    except VenueError as error:
        await message.answer(venue_error(lang, error.code), reply_markup=menu)
        return
    await message.answer(text(lang, "venue.verified", venue=venue.name), reply_markup=menu)


async def head_phone_expected(message: Message, lang: str) -> None:
    await message.answer(
        text(lang, "venue.head_phone_expected"), reply_markup=share_phone_keyboard(lang)
    )


async def join_by_invite(
    message: Message, payload: str, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    menu = main_menu(lang, profile.menu)
    try:
        venue = await venues.accept_invite(payload, message.from_user.id)
    except VenueError:
        await message.answer(text(lang, "venue.invite_invalid"), reply_markup=menu)
        return
    await message.answer(text(lang, "venue.joined", venue=venue.name), reply_markup=menu)


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
    await message.answer(text(lang, "venue.choose"), reply_markup=_venue_chooser(mine, "checkin"))


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
        await message.answer(_refused(lang, access, venue, "staff_checkin.not_staff"))
        return
    await state.set_state(StaffCheckIn.iin)
    await state.update_data(venue_id=venue.id)
    await message.answer(text(lang, "staff_checkin.ask_iin"), reply_markup=None)


async def staff_checkin_venue(
    query: CallbackQuery, callback_data: Pick, state: FSMContext, lang: str, venues: VenueService
) -> None:
    await query.answer()
    assert isinstance(query.message, Message)
    if await venues.role(callback_data.venue_id, query.from_user.id) is None:
        await query.message.answer(text(lang, "staff_checkin.not_staff"))
        return
    venue = await venues.venue(callback_data.venue_id)
    await _ask_checkin_iin(query.message, query.from_user.id, venue, state, lang, venues)


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
        await message.answer(_refused(lang, access, venue, not_staff_key))
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
    try:
        iin = parse_iin(message.text or "")
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return None
    staff = message.from_user.id
    venue_id = (await state.get_data())["venue_id"]
    venue = await _may_look_up(
        message, staff, venue_id, state, lang, venues, quotas, not_staff_key
    )
    return None if venue is None else (iin.value, venue, staff)


async def staff_checkin_iin(
    message: Message,
    state: FSMContext,
    lang: str,
    venues: VenueService,
    visits: VisitService,
    quotas: LookupQuotas,
) -> None:
    """The staff member sees the colour and the decision, never a name; for a person
    checked in at another venue, only that (not where, nor the colour)."""
    key = "staff_checkin.not_staff"
    asked = await _staff_look_up(message, state, lang, venues, quotas, key)
    if asked is None:
        return
    iin, venue, staff = asked
    try:
        result = await visits.staff_check_in(iin, venue, staff_tg_user_id=staff)
    except LookupRefused as refused:  # changed since the look above
        await state.clear()
        await message.answer(_refused(lang, refused.access, venue, key))
        return
    if result.outcome is CheckIn.ELSEWHERE:
        await message.answer(text(lang, "staff_checkin.elsewhere"))
        return
    colour = text(lang, COLOUR_NAMES[result.status.colour])
    outcome_key = {
        CheckIn.ADMITTED: "staff_checkin.admit",
        CheckIn.REFUSED: "staff_checkin.refuse",
        CheckIn.ALREADY_INSIDE: "staff_checkin.already",
        CheckIn.FULL: "staff_checkin.full",
    }[result.outcome]
    marker = {"red": "🔴", "yellow": "🟡", "green": "🟢", "blue": "🔵"}[result.status.colour.value]
    await message.answer(f"{marker} {text(lang, outcome_key, colour=colour)}")


async def staff_checkout_iin(
    message: Message,
    state: FSMContext,
    lang: str,
    venues: VenueService,
    visits: VisitService,
    quotas: LookupQuotas,
) -> None:
    """Close one visitor's stay at the chosen venue. Whether a person is inside is a
    look-up of them: allowed, limited and audited as a check-in by IIN is."""
    key = "staff_checkout.not_staff"
    asked = await _staff_look_up(message, state, lang, venues, quotas, key)
    if asked is None:
        return
    iin, venue, staff = asked
    try:
        outcome = await visits.staff_check_out(venue.id, iin, staff_tg_user_id=staff)
    except LookupRefused as refused:
        await state.clear()
        await message.answer(_refused(lang, refused.access, venue, key))
        return
    done = outcome is StaffCheckOut.CHECKED_OUT
    await message.answer(
        text(
            lang, "staff_checkout.done" if done else "staff_checkout.not_inside", venue=venue.name
        )
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(join_by_invite, StartPayload("staff_"))
    router.message.register(start_registration, MenuButton("staff_menu.register"))
    router.message.register(my_venues, MenuButton("staff_menu.venues"))
    router.message.register(start_staff_checkin, MenuButton("staff_menu.checkin"))
    router.message.register(got_bin, StateFilter(VenueForm.bin))
    router.message.register(got_name, StateFilter(VenueForm.name))
    router.callback_query.register(
        got_category, StateFilter(VenueForm.category), Pick.filter(), _Action("category")
    )
    router.message.register(category_expected, StateFilter(VenueForm.category))
    router.message.register(got_address, StateFilter(VenueForm.address))
    router.message.register(got_location, StateFilter(VenueForm.location))
    router.message.register(got_capacity, StateFilter(VenueForm.capacity))
    router.message.register(got_auto_checkout, StateFilter(VenueForm.auto_checkout))
    router.message.register(got_entrances, StateFilter(VenueForm.entrances))
    router.callback_query.register(skip_step, Pick.filter(), _Action("skip"))
    router.callback_query.register(staff_checkin_venue, Pick.filter(), _Action("checkin"))
    router.callback_query.register(venue_action, Pick.filter())
    router.message.register(staff_checkin_iin, StateFilter(StaffCheckIn.iin))
    router.message.register(staff_checkout_iin, StateFilter(CheckOutForm.iin))
    router.message.register(got_head_phone, StateFilter(VerifyForm.phone), HasContact())
    router.message.register(head_phone_expected, StateFilter(VerifyForm.phone))
    router.message.register(got_capacity_number, StateFilter(CapacityForm.number))
    router.message.register(got_new_auto_checkout, StateFilter(AutoCheckoutForm.time))
    return router


class _Action(Filter):
    """Matches a Pick callback by action, asynchronously (aiogram runs sync filters, magic
    ones included, in a thread)."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(self, query: CallbackQuery, callback_data: Pick) -> bool:
        return callback_data.action == self.action
