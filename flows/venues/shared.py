"""What the venue flows share: their forms (FSM states), the callback data of their
inline buttons, the venue chooser, closing-time texts and the codes message."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from flows.context import BotLinks
from presentation.i18n import text
from presentation.keys import DIRECTION_NAMES, venue_error
from presentation.rendering import poster_pdf, qr_png, qr_svg
from services.venues import (
    AUTO_CHECKOUT_DEFAULT_MINUTES,
    LookupAccess,
    Venue,
    VenueCode,
    VenueError,
    VenueService,
    parse_auto_checkout,
)


class VenueForm(StatesGroup):
    bin = State()
    name = State()
    category = State()
    address = State()
    location = State()
    capacity = State()
    auto_checkout = State()
    entrances = State()


class AtVenue(StatesGroup):
    """One question about a venue chosen from the list (its id kept as ``venue_id``): a
    visitor's IIN to check in or out, the head's phone, a new capacity or closing time."""

    check_in_iin = State()
    check_out_iin = State()
    head_phone = State()
    capacity = State()
    auto_checkout = State()


class Pick(CallbackData, prefix="vn"):
    """A venue button pressed: what to do, to which venue, with which value (a category,
    a capacity policy, the registration step skipped)."""

    action: str
    venue_id: int = 0
    value: str = ""


class PickAction(Filter):
    """Matches a Pick callback by action, asynchronously (aiogram runs sync filters, magic
    ones included, in a thread)."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(self, query: CallbackQuery, callback_data: Pick) -> bool:
        return callback_data.action == self.action


def duration_text(lang: str, minutes: int) -> str:
    """A length of time as people read it: "4 h", "1 h 30 min", "45 min"."""
    hours, rest = divmod(minutes, 60)
    if not rest:
        return text(lang, "venue.duration_h", h=hours)
    if not hours:
        return text(lang, "venue.duration_m", m=rest)
    return text(lang, "venue.duration_hm", h=hours, m=rest)


def default_auto_checkout_keyboard(lang: str) -> InlineKeyboardMarkup:
    label = text(
        lang,
        "venue.auto_checkout_default",
        duration=duration_text(lang, AUTO_CHECKOUT_DEFAULT_MINUTES),
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


async def send_codes(
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


def venue_chooser(mine: list[tuple[Venue, str]], action: str) -> InlineKeyboardMarkup:
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


async def set_auto_checkout(
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
            duration=duration_text(lang, minutes),
        )
    )


def refused_text(lang: str, access: LookupAccess, venue: Venue, not_staff_key: str) -> str:
    """Why the person may not look anyone up by IIN at the venue, and what to do."""
    if access is LookupAccess.UNVERIFIED:
        return text(lang, "staff_lookup.unverified", venue=venue.name)
    if access is LookupAccess.NOT_INVITED:
        return text(lang, "staff_lookup.not_invited", venue=venue.name)
    return text(lang, not_staff_key, venue=venue.name)


async def auto_checkout_minutes(message: Message, lang: str) -> int | None:
    """The closing time typed (e.g. 3h, 90m), or None once the person is told what is wrong."""
    try:
        return parse_auto_checkout(message.text or "")
    except VenueError as error:
        await message.answer(
            venue_error(lang, error.code), reply_markup=default_auto_checkout_keyboard(lang)
        )
        return None
