"""Quarantine bot: the patient joins by the doctor's invite, agrees, shares the phone
number and live location, confirms home; the bot reminds and explains from then on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, ReplyKeyboardRemove

from flows.common.keyboards import main_menu
from flows.common.location import fix_from, live_share_start
from flows.common.steps import ask, sender_lookup
from flows.contacts import shared_phone
from flows.context import BotProfile, Limits
from flows.filters import HasContact, HasLocation, StartPayload, register_entry
from flows.quarantine.keyboards import (
    Consent,
    HomeChoice,
    consent_keyboard,
    home_here_keyboard,
    phone_keyboard,
)
from flows.quarantine.live import LiveIngest
from presentation.formatting import local_time
from presentation.i18n import text
from presentation.rules import HOME_RADIUS, days, silence
from services.quarantine import Case, QuarantineError, QuarantineService

log = logging.getLogger(__name__)


class Joining(StatesGroup):
    consent = State()
    phone = State()


async def open_invite(
    message: Message,
    state: FSMContext,
    payload: str,
    lang: str,
    quarantine: QuarantineService,
    limits: Limits,
) -> None:
    assert message.from_user is not None
    try:
        case = await quarantine.case_by_invite(payload)
    except QuarantineError as error:
        await message.answer(text(lang, error.key))
        return
    if case.patient_tg_user_id not in (None, message.from_user.id):
        await message.answer(text(lang, "quarantine.invite_invalid"))
        return
    if case.consented:
        await _next_step(message, state, case, lang)
        return
    await state.update_data(invite=payload)
    await ask(
        message,
        state,
        Joining.consent,
        lang,
        "quarantine.consent",
        consent_keyboard(lang),
        code=case.code,
        end=f"{case.isolation_end:%d.%m.%Y}",
        days=days(lang, limits.fix_retention_days),
        radius=HOME_RADIUS,
        silence=silence(lang),
    )


async def consent_answer(
    query: CallbackQuery,
    callback_data: Consent,
    state: FSMContext,
    lang: str,
    quarantine: QuarantineService,
    profile: BotProfile,
) -> None:
    await query.answer()
    invite = (await state.get_data()).get("invite")
    message = query.message
    if not isinstance(message, Message) or not invite:
        return
    try:
        if callback_data.answer == "agree":
            case = await quarantine.consent(invite, query.from_user.id)
        else:
            await quarantine.decline(invite, query.from_user.id)
            await state.clear()
            await message.answer(
                text(lang, "quarantine.declined"), reply_markup=main_menu(lang, profile.menu)
            )
            return
    except QuarantineError as error:
        await state.clear()
        await message.answer(text(lang, error.key))
        return
    await message.edit_reply_markup(reply_markup=None)
    await _next_step(message, state, case, lang)


async def _next_step(message: Message, state: FSMContext, case: Case, lang: str) -> None:
    """Resume joining where the patient is: phone, then live location."""
    if case.phone is None:
        await ask(
            message, state, Joining.phone, lang, "quarantine.ask_phone", phone_keyboard(lang)
        )
        return
    await state.clear()
    await message.answer(
        text(lang, "quarantine.share_live", end=f"{case.isolation_end:%d.%m.%Y}"),
        reply_markup=ReplyKeyboardRemove(),
    )


async def got_phone(
    message: Message, state: FSMContext, lang: str, quarantine: QuarantineService
) -> None:
    assert message.from_user is not None
    not_own = text(lang, "quarantine.not_own_contact")
    phone = await shared_phone(message, lang, phone_keyboard(lang), not_own)
    if phone is None:
        return
    await quarantine.set_phone(message.from_user.id, phone)
    case = await quarantine.case_of_patient(message.from_user.id)
    if case is None:
        await state.clear()
        await message.answer(text(lang, "quarantine.not_enrolled"))
        return
    await _next_step(message, state, case, lang)


async def phone_expected(message: Message, lang: str) -> None:
    await message.answer(
        text(lang, "quarantine.phone_expected"), reply_markup=phone_keyboard(lang)
    )


async def got_location(
    message: Message,
    lang: str,
    quarantine: QuarantineService,
    live_ingest: LiveIngest,
    city_tz: ZoneInfo,
) -> None:
    """A new location message: live ones are tracked, one-off ones are explained."""
    assert message.from_user is not None
    if message.forward_origin is not None:
        await message.answer(text(lang, "quarantine.forwarded"))
        return
    case = await quarantine.case_of_patient(message.from_user.id)
    if case is None or not case.consented:
        await message.answer(text(lang, "quarantine.not_enrolled"))
        return
    one_off = text(lang, "quarantine.static_location")
    started = await live_share_start(message, lang, one_off)
    if started is None:
        return
    fix, until = started
    await live_ingest.submit(fix)
    await message.answer(
        text(lang, "quarantine.live_received", until=local_time(until, city_tz)),
        reply_markup=ReplyKeyboardRemove(),
    )


async def live_edit(message: Message, live_ingest: LiveIngest) -> None:
    """Moves of a live location (the dispatcher's short path takes them first; this is
    the same thing through aiogram's routing, e.g. when the short path is off)."""
    fix = fix_from(message, edited=True)
    if fix is not None:
        await live_ingest.submit(fix)


async def home_choice(
    query: CallbackQuery, callback_data: HomeChoice, lang: str, quarantine: QuarantineService
) -> None:
    await query.answer()
    message = query.message
    if not isinstance(message, Message):
        return
    user = query.from_user.id
    try:
        if callback_data.answer == "yes":
            await quarantine.confirm_home(user)
            await message.edit_reply_markup(reply_markup=None)
            await message.answer(text(lang, "quarantine.home_confirmed", radius=HOME_RADIUS))
        elif callback_data.answer == "no":
            await quarantine.reject_home(user)
            await message.edit_reply_markup(reply_markup=None)
            await message.answer(
                text(lang, "quarantine.home_rejected"), reply_markup=home_here_keyboard(lang)
            )
        else:
            await quarantine.home_here(user, now=datetime.now(UTC))
            await message.edit_reply_markup(reply_markup=None)
            await message.answer(text(lang, "quarantine.home_confirmed", radius=HOME_RADIUS))
    except QuarantineError as error:
        await message.answer(text(lang, error.key))


async def my_quarantine(
    message: Message, lang: str, quarantine: QuarantineService, city_tz: ZoneInfo
) -> None:
    refusal = text(lang, "quarantine.not_enrolled")
    case = await sender_lookup(message, quarantine.case_of_patient, refusal)
    if case is None:
        return
    never = text(lang, "quarantine.never")
    await message.answer(
        text(
            lang,
            "quarantine.status",
            code=case.code,
            end=f"{case.isolation_end:%d.%m.%Y}",
            home=text(
                lang, "quarantine.home_set" if case.home_confirmed else "quarantine.home_unset"
            ),
            last=local_time(case.last_fix_at, city_tz) if case.last_fix_at else never,
            until=local_time(case.live_until, city_tz) if case.live_until else never,
        )
    )


async def how_to_share(message: Message, lang: str, quarantine: QuarantineService) -> None:
    assert message.from_user is not None
    case = await quarantine.case_of_patient(message.from_user.id)
    if case is None:
        await message.answer(text(lang, "quarantine.not_enrolled"))
        return
    await message.answer(text(lang, "quarantine.share_live", end=f"{case.isolation_end:%d.%m.%Y}"))


async def membership(event: ChatMemberUpdated, quarantine: QuarantineService) -> None:
    """The patient blocked the bot: no more locations will come, so the doctor hears."""
    if event.new_chat_member.status == "kicked":
        await quarantine.patient_left_chat(event.from_user.id, event.date)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(open_invite, StartPayload("q_"))
    router.callback_query.register(consent_answer, Consent.filter())
    router.message.register(got_location, HasLocation())
    router.message.register(got_phone, StateFilter(Joining.phone), HasContact())
    router.message.register(phone_expected, StateFilter(Joining.phone))
    router.edited_message.register(live_edit, HasLocation())
    router.callback_query.register(home_choice, HomeChoice.filter())
    register_entry(router, my_quarantine, button="quarantine_menu.status")
    register_entry(router, how_to_share, button="quarantine_menu.share")
    router.my_chat_member.register(membership)
    return router
