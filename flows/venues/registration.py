"""Staff bot: registering a venue step by step (BIN, name, category, address, place,
capacity, closing time, entrances), then its QR codes and posters."""

from __future__ import annotations

from typing import Unpack

from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from flows.common.keyboards import main_menu
from flows.common.steps import ask, pressed, took_bin
from flows.context import BotContext
from flows.venues.shared import (
    AtVenue,
    Pick,
    VenueForm,
    auto_checkout_minutes,
    default_auto_checkout_keyboard,
    send_codes,
    set_auto_checkout,
)
from presentation.i18n import text
from presentation.keys import CATEGORY_NAMES, input_error, venue_error
from services.validation import InvalidInput, parse_coordinates
from services.venues import (
    AUTO_CHECKOUT_DEFAULT_MINUTES,
    CATEGORIES,
    NewVenue,
    VenueError,
)


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


async def _took_line(
    message: Message, state: FSMContext, lang: str, field: str, longest: int, again: str
) -> bool:
    """Keep the line typed as the form's ``field`` when it is 1 to ``longest`` characters
    long; otherwise answer the text ``again`` and keep nothing."""
    line = (message.text or "").strip()
    if not 1 <= len(line) <= longest:
        await message.answer(text(lang, again))
        return False
    await state.update_data({field: line})
    return True


async def start_registration(message: Message, state: FSMContext, lang: str) -> None:
    await state.clear()
    await ask(message, state, VenueForm.bin, lang, "venue.ask_bin")


async def got_bin(message: Message, state: FSMContext, lang: str) -> None:
    if not await took_bin(message, state, lang):
        return
    await ask(message, state, VenueForm.name, lang, "venue.ask_name")


async def got_name(message: Message, state: FSMContext, lang: str) -> None:
    if not await _took_line(message, state, lang, "name", 200, "errors_venue.name"):
        return
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
    keyboard = InlineKeyboardMarkup(inline_keyboard=rows)
    await ask(message, state, VenueForm.category, lang, "venue.ask_category", keyboard)


async def got_category(
    query: CallbackQuery, callback_data: Pick, state: FSMContext, lang: str
) -> None:
    message = await pressed(query)
    if callback_data.value not in CATEGORIES:
        await message.answer(text(lang, "errors_venue.category"))
        return
    await state.update_data(category=callback_data.value)
    await ask(message, state, VenueForm.address, lang, "venue.ask_address")


async def category_expected(message: Message, lang: str) -> None:
    await message.answer(text(lang, "errors_venue.category"))


def _location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    button = KeyboardButton(text=text(lang, "venue.location_button"), request_location=True)
    return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)


async def got_address(message: Message, state: FSMContext, lang: str) -> None:
    if not await _took_line(message, state, lang, "address", 300, "venue.ask_address"):
        return
    await ask(
        message, state, VenueForm.location, lang, "venue.ask_location", _location_keyboard(lang)
    )


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
    # the location button goes away; the next question carries its own (inline) button
    await message.answer(text(lang, "venue.location_saved"), reply_markup=ReplyKeyboardRemove())
    await ask(
        message, state, VenueForm.capacity, lang, "venue.ask_capacity", _skip(lang, "capacity")
    )


async def got_capacity(message: Message, state: FSMContext, lang: str) -> None:
    raw = (message.text or "").strip()
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        await message.answer(text(lang, "venue.capacity_expected"))
        return
    await state.update_data(capacity=int(raw))
    await _ask_auto_checkout(message, state, lang)


async def _ask_auto_checkout(message: Message, state: FSMContext, lang: str) -> None:
    keyboard = default_auto_checkout_keyboard(lang)
    await ask(message, state, VenueForm.auto_checkout, lang, "venue.ask_auto_checkout", keyboard)


async def got_auto_checkout(message: Message, state: FSMContext, lang: str) -> None:
    minutes = await auto_checkout_minutes(message, lang)
    if minutes is None:
        return
    await state.update_data(auto_checkout=minutes)
    await _ask_entrances(message, state, lang)


async def _ask_entrances(message: Message, state: FSMContext, lang: str) -> None:
    await ask(
        message, state, VenueForm.entrances, lang, "venue.ask_entrances", _skip(lang, "entrances")
    )


async def skip_step(
    query: CallbackQuery,
    callback_data: Pick,
    state: FSMContext,
    lang: str,
    **context: Unpack[BotContext],
) -> None:
    message = await pressed(query)
    current = await state.get_state()
    if callback_data.value == "capacity" and current == VenueForm.capacity.state:
        await state.update_data(capacity=None)
        await _ask_auto_checkout(message, state, lang)
    elif callback_data.value == "auto_checkout" and current == VenueForm.auto_checkout.state:
        await state.update_data(auto_checkout=AUTO_CHECKOUT_DEFAULT_MINUTES)
        await _ask_entrances(message, state, lang)
    elif callback_data.value == "auto_checkout" and current == AtVenue.auto_checkout.state:
        venue_id = (await state.get_data())["venue_id"]
        await set_auto_checkout(
            message,
            query.from_user.id,
            venue_id,
            AUTO_CHECKOUT_DEFAULT_MINUTES,
            state,
            lang,
            context["venues"],
        )
    elif callback_data.value == "entrances" and current == VenueForm.entrances.state:
        await _register(message, query.from_user.id, [], state, lang, context)


async def got_entrances(
    message: Message, state: FSMContext, lang: str, **context: Unpack[BotContext]
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
    await _register(message, message.from_user.id, names, state, lang, context)


async def _register(
    message: Message,
    owner: int,
    entrances: list[str],
    state: FSMContext,
    lang: str,
    context: BotContext,
) -> None:
    """Register the venue the form holds and send its codes; the two handlers that end
    the form (the entrances typed, the step skipped) pass the bot's whole context."""
    data = await state.get_data()
    venues = context["venues"]
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
        reply_markup=main_menu(lang, context["profile"].menu),
    )
    await send_codes(message, venue, await venues.codes(venue.id), lang, context["links"])
