"""Applying for permits in the citizen bot, as an organisation's head: prove who you are
(BIN + the head's phone from the tax register), then choose the register, the purpose
and the days, and send the people and vehicles (typed lines or a CSV file). The answer
says at once what was approved, what waits for an officer and what was refused."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from flows.common.keyboards import (
    choice_keyboard,
    inline_keyboard,
    main_menu,
    share_phone_keyboard,
)
from flows.common.steps import ask, pressed, took_bin
from flows.contacts import shared_phone
from flows.context import BotProfile
from flows.filters import HasContact, HasDocument, register_entry
from presentation.formatting import local_time
from presentation.i18n import plural, text
from presentation.keys import (
    PERMIT_RULES,
    PERMIT_STATES,
    PURPOSE_NAMES,
    REGISTER_NAMES,
    input_error,
)
from services.citizens import mask_iin
from services.permit_applications import (
    MAX_WINDOW_DAYS,
    PURPOSES,
    REGISTERS,
    BadLine,
    Item,
    Organisation,
    Outcome,
    PermitApplications,
    parse_csv,
    parse_lines,
    window_of,
)
from services.permits import PermitError
from services.validation import InvalidInput

MAX_CSV_BYTES = 1_000_000
SHOWN_BAD_LINES = 10


class ApplyForm(StatesGroup):
    bin = State()
    phone = State()
    window = State()
    items = State()


class ApplyStep(CallbackData, prefix="ap"):
    step: str
    value: str = ""


def _choices(
    lang: str, step: str, names: dict[str, str], values: tuple[str, ...]
) -> InlineKeyboardMarkup:
    return choice_keyboard(lang, names, values, lambda v: ApplyStep(step=step, value=v))


def _head_menu(lang: str) -> InlineKeyboardMarkup:
    return inline_keyboard(
        [
            [(text(lang, "apply.new"), ApplyStep(step="new"))],
            [(text(lang, "apply.list"), ApplyStep(step="list"))],
            [(text(lang, "apply.other_org"), ApplyStep(step="reverify"))],
        ]
    )


def _item_text(item: Item) -> str:
    return " ".join(v for v in (mask_iin(item.iin) if item.iin else "", item.plate or "") if v)


def _bad_lines(lang: str, bad: list[BadLine]) -> str:
    shown = [
        text(lang, "apply.bad_line", line=b.line, reason=input_error(lang, b.code))
        for b in bad[:SHOWN_BAD_LINES]
    ]
    if len(bad) > SHOWN_BAD_LINES:
        shown.append(text(lang, "apply.more_bad_lines", count=len(bad) - SHOWN_BAD_LINES))
    return "\n".join(shown)


async def _show_head(message: Message, lang: str, organisation: Organisation) -> None:
    body = text(lang, "apply.head", organisation=organisation.name)
    if not organisation.permitted:
        body += "\n\n" + text(lang, "apply.org_not_allowed_note", code=organisation.activity_code)
    await message.answer(body, reply_markup=_head_menu(lang))


async def start(
    message: Message, state: FSMContext, lang: str, applications: PermitApplications
) -> None:
    assert message.from_user is not None
    await state.clear()
    organisation = await applications.head_of(message.from_user.id)
    if organisation is None:
        await ask(message, state, ApplyForm.bin, lang, "apply.ask_bin")
        return
    await _show_head(message, lang, organisation)


async def got_bin(message: Message, state: FSMContext, lang: str) -> None:
    if not await took_bin(message, state, lang):
        return
    await ask(message, state, ApplyForm.phone, lang, "apply.ask_phone", share_phone_keyboard(lang))


async def got_phone(
    message: Message,
    state: FSMContext,
    lang: str,
    applications: PermitApplications,
    profile: BotProfile,
) -> None:
    phone = await shared_phone(message, lang)
    if phone is None:
        return
    assert message.from_user is not None
    data = await state.get_data()
    try:
        organisation = await applications.verify_head(message.from_user.id, data["bin"], phone)
    except InvalidInput as error:  # the BIN kept in the form, read again
        await message.answer(input_error(lang, error.code))
        return
    except PermitError as error:
        await state.clear()
        await message.answer(text(lang, error.key), reply_markup=main_menu(lang, profile.menu))
        return
    await state.clear()
    # the phone button gives way to the main menu; the head's choices are inline buttons
    await message.answer(
        text(lang, "apply.phone_confirmed"), reply_markup=main_menu(lang, profile.menu)
    )
    await _show_head(message, lang, organisation)


async def step_pressed(
    query: CallbackQuery,
    callback_data: ApplyStep,
    state: FSMContext,
    lang: str,
    applications: PermitApplications,
    city_tz: ZoneInfo,
) -> None:
    message = await pressed(query)
    organisation = await applications.head_of(query.from_user.id)
    step = callback_data.step
    if step == "reverify" or organisation is None:
        await state.clear()
        await ask(message, state, ApplyForm.bin, lang, "apply.ask_bin")
        return
    if step == "list":
        await _list(message, lang, applications, organisation, city_tz)
        return
    if step == "new":
        if not organisation.permitted:
            await message.answer(
                text(lang, "apply.org_not_allowed_note", code=organisation.activity_code)
            )
            return
        await state.clear()
        await message.answer(
            text(lang, "apply.ask_register"),
            reply_markup=_choices(lang, "register", REGISTER_NAMES, REGISTERS),
        )
    elif step == "register" and callback_data.value in REGISTERS:
        await state.update_data(register=callback_data.value)
        await message.answer(
            text(lang, "apply.ask_purpose"),
            reply_markup=_choices(lang, "purpose", PURPOSE_NAMES, PURPOSES),
        )
    elif step == "purpose" and callback_data.value in PURPOSES:
        await state.update_data(purpose=callback_data.value)
        await state.set_state(ApplyForm.window)
        await message.answer(
            plural(lang, "apply.ask_window", MAX_WINDOW_DAYS),
            reply_markup=inline_keyboard(
                [
                    [
                        (text(lang, "apply.days", days=d), ApplyStep(step="days", value=str(d)))
                        for d in (1, 7, 14, 30)
                    ]
                ]
            ),
        )
    elif step == "days" and callback_data.value.isdigit():
        today = datetime.now(city_tz).date()
        last = today + timedelta(days=int(callback_data.value) - 1)
        await _set_window(message, state, lang, today, last, city_tz)
    elif step == "submit":
        await _submit(
            message, query.from_user.id, state, lang, applications, organisation, city_tz
        )
    elif step == "cancel":
        await state.clear()
        await message.answer(text(lang, "apply.cancelled"), reply_markup=_head_menu(lang))


def _parse_day(raw: str) -> date:
    for layout in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw.strip(), layout).date()
        except ValueError:
            continue
    raise InvalidInput("apply.window_format")


async def got_window(message: Message, state: FSMContext, lang: str, city_tz: ZoneInfo) -> None:
    raw = (message.text or "").replace("—", "-").replace("–", "-")
    parts = raw.split(" - ") if " - " in raw else raw.split()
    try:
        if len(parts) != 2:
            raise InvalidInput("apply.window_format")
        first, last = _parse_day(parts[0]), _parse_day(parts[1])
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await _set_window(message, state, lang, first, last, city_tz)


async def _set_window(
    message: Message, state: FSMContext, lang: str, first: date, last: date, city_tz: ZoneInfo
) -> None:
    try:
        window_of(first, last, today=datetime.now(city_tz).date(), tz=city_tz)
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await state.update_data(first=first.isoformat(), last=last.isoformat())
    await ask(message, state, ApplyForm.items, lang, "apply.ask_items")


async def _take_items(
    message: Message,
    state: FSMContext,
    lang: str,
    items: list[Item],
    bad: list[BadLine],
    source: str,
) -> None:
    if bad:
        await message.answer(text(lang, "apply.bad_lines_title") + "\n" + _bad_lines(lang, bad))
    if not items:
        await message.answer(text(lang, "apply.no_good_lines"))
        return
    await state.update_data(
        items=[[i.line, i.iin, i.plate] for i in items], source=source, bad=len(bad)
    )
    people = sum(1 for i in items if i.iin)
    vehicles = sum(1 for i in items if i.plate)
    await message.answer(
        text(
            lang,
            "apply.confirm",
            lines=plural(lang, "apply.lines", len(items)),
            people=plural(lang, "apply.people", people),
            vehicles=plural(lang, "apply.vehicles", vehicles),
        ),
        reply_markup=inline_keyboard(
            [
                [
                    (text(lang, "apply.submit"), ApplyStep(step="submit")),
                    (text(lang, "apply.cancel"), ApplyStep(step="cancel")),
                ]
            ]
        ),
    )


async def got_lines(message: Message, state: FSMContext, lang: str) -> None:
    items, bad = parse_lines((message.text or "").splitlines())
    await _take_items(message, state, lang, items, bad, "bot")


async def got_file(message: Message, state: FSMContext, lang: str, bot: Bot) -> None:
    document = message.document
    assert document is not None
    if (document.file_size or 0) > MAX_CSV_BYTES:
        await message.answer(text(lang, "apply.file_too_big"))
        return
    buffer = io.BytesIO()
    await bot.download(document, destination=buffer)
    items, bad = parse_csv(buffer.getvalue())
    await _take_items(message, state, lang, items, bad, "csv")


async def _submit(
    message: Message,
    tg_user_id: int,
    state: FSMContext,
    lang: str,
    applications: PermitApplications,
    organisation: Organisation,
    city_tz: ZoneInfo,
) -> None:
    data = await state.get_data()
    if not {"register", "purpose", "first", "last", "items"} <= set(data):
        await message.answer(text(lang, "apply.expired"), reply_markup=_head_menu(lang))
        return
    await state.clear()
    items = [Item(line, iin, plate) for line, iin, plate in data["items"]]
    try:
        valid_from, valid_until = window_of(
            date.fromisoformat(data["first"]),
            date.fromisoformat(data["last"]),
            today=datetime.now(city_tz).date(),
            tz=city_tz,
        )
        outcome = await applications.submit(
            bin_=organisation.bin,
            applicant=f"tg:{tg_user_id}",
            register=data["register"],
            purpose=data["purpose"],
            valid_from=valid_from,
            valid_until=valid_until,
            items=items,
            source=data.get("source", "bot"),
            now=datetime.now(city_tz),
        )
    except InvalidInput as error:  # the window passed while the form was open
        await message.answer(input_error(lang, error.code), reply_markup=_head_menu(lang))
        return
    except PermitError as error:
        await message.answer(text(lang, error.key), reply_markup=_head_menu(lang))
        return
    await message.answer(outcome_text(lang, outcome), reply_markup=_head_menu(lang))


def outcome_text(lang: str, outcome: Outcome) -> str:
    lines = [
        text(lang, "apply.outcome", number=outcome.application_id),
        text(lang, "apply.outcome_approved", count=len(outcome.approved)),
    ]
    if outcome.waiting:
        lines.append(text(lang, "apply.outcome_waiting", count=len(outcome.waiting)))
        lines += [
            f"  • {_item_text(item)}: "
            + ", ".join(text(lang, PERMIT_RULES[rule]) for rule in rules)
            for item, rules in outcome.waiting[:SHOWN_BAD_LINES]
        ]
    if outcome.rejected:
        lines.append(text(lang, "apply.outcome_rejected", count=len(outcome.rejected)))
        lines += [
            f"  • {_item_text(item)}: {text(lang, PERMIT_RULES[reason])}"
            for item, reason in outcome.rejected[:SHOWN_BAD_LINES]
        ]
    return "\n".join(lines)


async def _list(
    message: Message,
    lang: str,
    applications: PermitApplications,
    organisation: Organisation,
    city_tz: ZoneInfo,
) -> None:
    rows = await applications.permits_of(organisation.bin, now=datetime.now(city_tz))
    if not rows:
        await message.answer(text(lang, "apply.list_empty"), reply_markup=_head_menu(lang))
        return
    lines = [text(lang, "apply.list_title", organisation=organisation.name)]
    for row in rows:
        who = " ".join(v for v in (mask_iin(row.iin) if row.iin else "", row.plate or "") if v)
        line = text(
            lang,
            "apply.list_row",
            state=text(lang, PERMIT_STATES[row.state]),
            who=who,
            register=text(lang, REGISTER_NAMES[row.register]),
            until=local_time(row.valid_until, city_tz),
        )
        if row.reason:
            line += f" — {row.reason}"
        elif row.failed_rules and row.state.value == "pending":
            line += " — " + ", ".join(text(lang, PERMIT_RULES[r]) for r in row.failed_rules)
        lines.append(line)
    await message.answer("\n".join(lines), reply_markup=_head_menu(lang))


def build_entry_router() -> Router:
    """The button, the command and the form's buttons: before the other flows, so they
    work in the middle of another flow's question."""
    router = Router(name=__name__ + ".entry")
    register_entry(router, start, button="citizen_menu.apply", command="apply")
    router.callback_query.register(step_pressed, ApplyStep.filter())
    return router


def build_form_router() -> Router:
    """What the head types or sends while applying: after the other flows, so that
    their menu buttons still work."""
    router = Router(name=__name__ + ".form")
    router.message.register(got_bin, StateFilter(ApplyForm.bin))
    router.message.register(got_phone, StateFilter(ApplyForm.phone), HasContact())
    router.message.register(got_window, StateFilter(ApplyForm.window))
    router.message.register(got_file, StateFilter(ApplyForm.items), HasDocument())
    router.message.register(got_lines, StateFilter(ApplyForm.items))
    return router
