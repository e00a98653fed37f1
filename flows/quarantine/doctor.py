"""Doctor bot: join by invite, enrol patients (invite link and QR), see open cases, and
acknowledge, note calls to and resolve alerts."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from flows.common.keyboards import main_menu
from flows.common.steps import ask, parsed_text
from flows.context import BotLinks, BotProfile
from flows.filters import StartPayload, register_entry
from flows.quarantine.alerts import KIND_NAMES, AlertAction, alert_keyboard, alert_text
from flows.quarantine.keyboards import EnrolSkip, skip_keyboard
from presentation.formatting import local_time
from presentation.i18n import text
from presentation.keys import ALERT_DONE, CASE_STATES, ISOLATION_END_ERRORS, input_error
from presentation.rendering import qr_png
from services.quarantine import Action, AlertKind, QuarantineError, QuarantineService
from services.validation import Coordinates, InvalidInput, parse_coordinates, parse_iin

MAX_ISOLATION_DAYS = 60
_ICONS = {
    "waiting": "⏳",
    "no_fix": "❔",
    "home_unconfirmed": "📍",
    "home": "🏠",
    "outside": "🚨",
    "silent": "📵",
}


class Enrol(StatesGroup):
    end = State()
    home = State()
    iin = State()


async def join(
    message: Message, payload: str, lang: str, quarantine: QuarantineService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    try:
        doctor = await quarantine.join_as_doctor(
            payload, message.from_user.id, message.from_user.full_name
        )
    except QuarantineError as error:
        await message.answer(text(lang, error.key))
        return
    duty = text(lang, "doctor.duty_suffix") if doctor.on_duty else ""
    await message.answer(
        text(lang, "doctor.joined", district=doctor.district, duty=duty),
        reply_markup=main_menu(lang, profile.menu),
    )


async def _is_doctor(message: Message, lang: str, quarantine: QuarantineService) -> bool:
    """Whether the sender joined as a doctor; others are told how to join."""
    assert message.from_user is not None
    if await quarantine.doctor(message.from_user.id) is None:
        await message.answer(text(lang, "doctor.not_a_doctor"))
        return False
    return True


async def start_enrolment(
    message: Message, state: FSMContext, lang: str, quarantine: QuarantineService
) -> None:
    if not await _is_doctor(message, lang, quarantine):
        return
    await ask(message, state, Enrol.end, lang, "doctor.ask_end")


def parse_isolation_end(raw: str, today: date) -> date:
    """``DD.MM.YYYY`` or a number of days from today (1-60)."""
    raw = raw.strip()
    if re.fullmatch(r"[0-9]{1,2}", raw):
        days = int(raw)
        if not 1 <= days <= MAX_ISOLATION_DAYS:
            raise InvalidInput("end_invalid")
        return today + timedelta(days=days)
    match = re.fullmatch(r"([0-9]{1,2})[./-]([0-9]{1,2})[./-]([0-9]{4})", raw)
    if match is None:
        raise InvalidInput("end_invalid")
    try:
        end = date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        raise InvalidInput("end_invalid") from None
    if end < today:
        raise InvalidInput("end_past")
    if end > today + timedelta(days=MAX_ISOLATION_DAYS):
        raise InvalidInput("end_invalid")
    return end


async def got_end(message: Message, state: FSMContext, lang: str, city_tz: ZoneInfo) -> None:
    try:
        end = parse_isolation_end(message.text or "", datetime.now(city_tz).date())
    except InvalidInput as error:
        await message.answer(text(lang, ISOLATION_END_ERRORS[error.code]))
        return
    await state.update_data(end=end.isoformat())
    await ask(message, state, Enrol.home, lang, "doctor.ask_home", skip_keyboard(lang, "home"))


def _home_from(message: Message) -> Coordinates:
    if message.location is not None:
        return parse_coordinates(message.location.latitude, message.location.longitude)
    parts = re.split(r"[,;\s]+", (message.text or "").strip())
    if len(parts) != 2:
        raise InvalidInput("location.format")
    try:
        latitude, longitude = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidInput("location.format") from None
    return parse_coordinates(latitude, longitude)


async def got_home(message: Message, state: FSMContext, lang: str) -> None:
    try:
        home = _home_from(message)
    except InvalidInput as error:
        await message.answer(
            input_error(lang, error.code), reply_markup=skip_keyboard(lang, "home")
        )
        return
    await state.update_data(home=[home.latitude, home.longitude])
    await ask(message, state, Enrol.iin, lang, "doctor.ask_iin", skip_keyboard(lang, "iin"))


async def got_iin(
    message: Message,
    state: FSMContext,
    lang: str,
    quarantine: QuarantineService,
    links: BotLinks,
) -> None:
    iin = await parsed_text(message, lang, parse_iin, skip_keyboard(lang, "iin"))
    if iin is None:
        return
    await message.delete()  # the IIN should not stay in the chat history
    await _finish(message, state, lang, quarantine, links, iin.value)


async def skip(
    query: CallbackQuery,
    callback_data: EnrolSkip,
    state: FSMContext,
    lang: str,
    quarantine: QuarantineService,
    links: BotLinks,
) -> None:
    await query.answer()
    message = query.message
    if not isinstance(message, Message):
        return
    await message.edit_reply_markup(reply_markup=None)
    if callback_data.step == "home":
        await ask(message, state, Enrol.iin, lang, "doctor.ask_iin", skip_keyboard(lang, "iin"))
    else:
        await _finish(message, state, lang, quarantine, links, None, query.from_user.id)


async def _finish(
    message: Message,
    state: FSMContext,
    lang: str,
    quarantine: QuarantineService,
    links: BotLinks,
    iin: str | None,
    doctor_id: int | None = None,
) -> None:
    data = await state.get_data()
    await state.clear()
    if "end" not in data:
        return
    home = Coordinates(*data["home"]) if data.get("home") else None
    doctor = doctor_id or (message.from_user.id if message.from_user else 0)
    try:
        case = await quarantine.enrol(
            doctor, isolation_end=date.fromisoformat(data["end"]), home=home, iin=iin
        )
    except QuarantineError as error:
        await message.answer(text(lang, error.key))
        return
    link = links.deep_link("quarantine", case.invite_token)
    end = f"{case.isolation_end:%d.%m.%Y}"
    await message.answer(text(lang, "doctor.created", code=case.code, end=end, link=link))
    await message.answer_photo(
        BufferedInputFile(qr_png(link), filename=f"{case.code}.png"),
        caption=text(lang, "doctor.qr_caption", code=case.code),
    )


async def my_cases(
    message: Message, lang: str, quarantine: QuarantineService, city_tz: ZoneInfo
) -> None:
    if not await _is_doctor(message, lang, quarantine):
        return
    assert message.from_user is not None
    cases = await quarantine.open_cases(message.from_user.id)
    if not cases:
        await message.answer(text(lang, "doctor.cases_empty"))
        return
    never = text(lang, "quarantine.never")
    lines = [text(lang, "doctor.cases_header", count=len(cases))]
    for case in cases[:50]:
        state = text(lang, CASE_STATES[case.state])
        if case.open_kinds:
            state += " — " + ", ".join(
                text(lang, KIND_NAMES[AlertKind(k)]) for k in case.open_kinds
            )
        lines.append(
            text(
                lang,
                "doctor.case_line",
                icon=_ICONS.get(case.state, "•"),
                code=case.code,
                state=state,
                last=local_time(case.last_fix_at, city_tz) if case.last_fix_at else never,
                end=f"{case.isolation_end:%d.%m.%Y}",
            )
        )
    if len(cases) > 50:
        lines.append(text(lang, "doctor.cases_more", count=len(cases) - 50))
    await message.answer("\n".join(lines))


async def alert_pressed(
    query: CallbackQuery,
    callback_data: AlertAction,
    lang: str,
    quarantine: QuarantineService,
    city_tz: ZoneInfo,
) -> None:
    try:
        action = Action(callback_data.action)
        view = await quarantine.act(callback_data.episode, query.from_user.id, action)
    except (QuarantineError, ValueError) as error:
        key = error.key if isinstance(error, QuarantineError) else "doctor.alert_unknown"
        await query.answer(text(lang, key), show_alert=True)
        return
    await query.answer(text(lang, ALERT_DONE[action]))
    if isinstance(query.message, Message):
        await query.message.edit_text(
            alert_text(view.params(), lang, city_tz, view=view),
            reply_markup=alert_keyboard(view.id, lang, view),
        )


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(join, StartPayload("doc_"))
    register_entry(router, start_enrolment, button="doctor_menu.enrol", command="enrol")
    register_entry(router, my_cases, button="doctor_menu.cases", command="cases")
    router.message.register(got_end, StateFilter(Enrol.end))
    router.message.register(got_home, StateFilter(Enrol.home))
    router.message.register(got_iin, StateFilter(Enrol.iin))
    router.callback_query.register(skip, StateFilter(Enrol.home, Enrol.iin), EnrolSkip.filter())
    router.callback_query.register(alert_pressed, AlertAction.filter())
    return router
