"""Citizen bot: scanning a venue's entry or exit QR code, "Check in", "My visits"."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from flows.checkin.scan import process_scan
from flows.common.keyboards import main_menu
from flows.context import BotProfile
from flows.filters import MenuButton, StartPayload
from flows.status.handlers import linked_iin
from presentation.formatting import local_clock, local_time
from presentation.i18n import plural, text
from services.citizens import CitizenService
from services.venues import TOKEN_PREFIX, VenueService
from services.visits import HISTORY_DAYS, VisitService


async def scanned(
    message: Message,
    payload: str,
    state: FSMContext,
    raw_state: str | None,
    lang: str,
    citizens: CitizenService,
    venues: VenueService,
    visits: VisitService,
    profile: BotProfile,
    city_tz: ZoneInfo,
) -> None:
    assert message.from_user is not None
    if raw_state is not None:  # a scan ends whatever conversation was in progress
        await state.clear()
    iin = await linked_iin(message, state, lang, citizens, pending_token=payload)
    if iin is None:
        return
    await process_scan(
        message,
        payload,
        iin,
        user_id=message.from_user.id,
        lang=lang,
        venues=venues,
        visits=visits,
        profile=profile,
        city_tz=city_tz,
    )


async def howto(message: Message, lang: str, profile: BotProfile) -> None:
    await message.answer(text(lang, "checkin.howto"), reply_markup=main_menu(lang, profile.menu))


# Stays the visitor did not close themselves say who did.
_CHECKOUT_MARKS = {"auto": "visits.auto", "staff": "visits.staff"}


async def my_visits(
    message: Message,
    state: FSMContext,
    lang: str,
    citizens: CitizenService,
    visits: VisitService,
    profile: BotProfile,
    city_tz: ZoneInfo,
) -> None:
    iin = await linked_iin(message, state, lang, citizens)
    if iin is None:
        return
    history = await visits.history(iin)
    menu = main_menu(lang, profile.menu)
    if not history:
        await message.answer(plural(lang, "visits.none", HISTORY_DAYS), reply_markup=menu)
        return
    lines = [plural(lang, "visits.title", HISTORY_DAYS)]
    for visit in history:
        left = (
            local_clock(visit.checked_out_at, city_tz)
            if visit.checked_out_at
            else text(lang, "visits.open")
        )
        mark = _CHECKOUT_MARKS.get(visit.checkout_kind or "")
        how = f" {text(lang, mark)}" if mark else ""
        lines.append(f"• {local_time(visit.checked_in_at, city_tz)}–{left} {visit.venue}{how}")
    await message.answer("\n".join(lines), reply_markup=menu)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(scanned, StartPayload(*TOKEN_PREFIX.values()))
    router.message.register(howto, MenuButton("citizen_menu.checkin"))
    router.message.register(my_visits, MenuButton("citizen_menu.visits"))
    return router
