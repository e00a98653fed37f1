"""Staff bot: an owner's venues and what they do with one: codes and posters, staff
invites, occupancy, statistics, capacity, closing time, verification by the head's
phone on the organisations' register."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from flows.common.keyboards import main_menu, share_phone_keyboard
from flows.common.steps import ask, pressed
from flows.contacts import shared_phone
from flows.context import BotLinks, BotProfile
from flows.venues.shared import (
    AtVenue,
    Pick,
    auto_checkout_minutes,
    default_auto_checkout_keyboard,
    duration_text,
    refused_text,
    send_codes,
    set_auto_checkout,
    venue_chooser,
)
from presentation.i18n import plural, text
from presentation.keys import CAPACITY_POLICIES, VENUE_ACTIONS, venue_error
from presentation.rendering import hourly_chart
from services.venues import (
    LookupAccess,
    Venue,
    VenueError,
    VenueService,
)
from services.visits import VisitService


async def my_venues(
    message: Message, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    mine = await venues.venues_of(message.from_user.id)
    if not mine:
        await message.answer(text(lang, "venue.none"), reply_markup=main_menu(lang, profile.menu))
        return
    await message.answer(text(lang, "venue.choose"), reply_markup=venue_chooser(mine, "open"))


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
    message = await pressed(query)
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
            duration=duration_text(lang, venue.auto_checkout_minutes),
        )
        if not venue.verified:
            card += "\n\n" + text(lang, "venue.unverified_note")
        await message.answer(card, reply_markup=_venue_actions(lang, venue, owner))
    elif action == "verify":
        if venue.verified:
            await message.answer(text(lang, "venue.already_verified", venue=venue.name))
            return
        await state.update_data(venue_id=venue.id)
        keyboard = share_phone_keyboard(lang)
        await ask(
            message,
            state,
            AtVenue.head_phone,
            lang,
            "venue.ask_head_phone",
            keyboard,
            venue=venue.name,
            bin=venue.bin,
        )
    elif action == "codes":
        await send_codes(message, venue, await venues.codes(venue.id), lang, links)
    elif action == "rotate":
        codes = await venues.rotate_codes(venue.id)
        await message.answer(text(lang, "venue.rotated", venue=venue.name))
        await send_codes(message, venue, codes, lang, links)
    elif action == "invite":
        code = await venues.create_invite(venue.id, query.from_user.id)
        await message.answer(text(lang, "venue.invite_link", link=links.deep_link("staff", code)))
    elif action == "checkout_one":
        access = await venues.lookup_access(venue.id, query.from_user.id)
        if access is not LookupAccess.ALLOWED:
            await message.answer(refused_text(lang, access, venue, "staff_checkout.not_staff"))
            return
        await state.update_data(venue_id=venue.id)
        await ask(
            message, state, AtVenue.check_out_iin, lang, "staff_checkout.ask_iin", venue=venue.name
        )
    elif action == "close_all":
        count = await visits.check_everyone_out(venue.id)
        await message.answer(plural(lang, "venue.closed_all", count, venue=venue.name))
    elif action == "stats":
        caption, chart = await _stats(lang, venue, visits, city_tz)
        await message.answer_photo(BufferedInputFile(chart, "stats.png"), caption=caption)
    elif action == "capacity":
        await state.update_data(venue_id=venue.id)
        await ask(message, state, AtVenue.capacity, lang, "venue.ask_new_capacity")
    elif action == "auto_checkout":
        await state.update_data(venue_id=venue.id)
        duration = duration_text(lang, venue.auto_checkout_minutes)
        await ask(
            message,
            state,
            AtVenue.auto_checkout,
            lang,
            "venue.ask_new_auto_checkout",
            default_auto_checkout_keyboard(lang),
            venue=venue.name,
            duration=duration,
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
    minutes = await auto_checkout_minutes(message, lang)
    if minutes is None:
        return
    assert message.from_user is not None
    venue_id = (await state.get_data())["venue_id"]
    await set_auto_checkout(message, message.from_user.id, venue_id, minutes, state, lang, venues)


async def got_head_phone(
    message: Message, state: FSMContext, lang: str, venues: VenueService, profile: BotProfile
) -> None:
    """The owner shared the head's phone: the venue is verified when it is the head's
    phone on the register for the venue's BIN (as for permit applications)."""
    assert message.from_user is not None
    venue_id = (await state.get_data())["venue_id"]
    phone = await shared_phone(message, lang, share_phone_keyboard(lang))
    if phone is None:
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
