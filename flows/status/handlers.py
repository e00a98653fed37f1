"""Citizen bot: linking an IIN (phone first, then the IIN), "My status", disputes."""

from __future__ import annotations

from typing import Unpack
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)

from flows.checkin.scan import process_scan
from flows.common.keyboards import main_menu, share_phone_keyboard
from flows.common.steps import ask, parsed_text, pressed
from flows.contacts import shared_phone
from flows.context import BotContext, BotLinks, BotProfile
from flows.filters import HasContact, register_entry
from flows.status.describe import pass_button, send_status
from presentation.formatting import local_clock
from presentation.i18n import text
from services.citizens import CitizenService, LinkOutcome, mask_iin
from services.disputes import DisputeError
from services.status import StatusService
from services.validation import parse_iin


class SignUp(StatesGroup):
    phone = State()
    iin = State()
    confirm_date = State()
    confirm_move = State()


class DisputeForm(StatesGroup):
    claim = State()
    reference = State()


class Answer(CallbackData, prefix="su"):
    step: str
    yes: bool


def _yes_no(lang: str, step: str, yes_key: str, no_key: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, yes_key), callback_data=Answer(step=step, yes=True).pack()
                ),
                InlineKeyboardButton(
                    text=text(lang, no_key), callback_data=Answer(step=step, yes=False).pack()
                ),
            ]
        ]
    )


async def begin_signup(
    message: Message, state: FSMContext, lang: str, *, pending_token: str | None = None
) -> None:
    """Start linking: ask for the phone. A scan that had to wait is kept and resumed."""
    await state.set_state(SignUp.phone)
    await state.update_data(pending_token=pending_token)
    intro = text(lang, "checkin.link_first" if pending_token else "status.not_linked")
    await message.answer(
        f"{intro}\n\n{text(lang, 'signup.ask_phone')}", reply_markup=share_phone_keyboard(lang)
    )


async def linked_iin(
    message: Message,
    state: FSMContext,
    lang: str,
    citizens: CitizenService,
    *,
    pending_token: str | None = None,
) -> str | None:
    """The sender's linked IIN; when there is none, sign-up begins and None is returned."""
    assert message.from_user is not None
    iin = await citizens.iin_of(message.from_user.id)
    if iin is None:
        await begin_signup(message, state, lang, pending_token=pending_token)
    return iin


async def my_status(
    message: Message,
    state: FSMContext,
    lang: str,
    citizens: CitizenService,
    statuses: StatusService,
    profile: BotProfile,
    city_tz: ZoneInfo,
    links: BotLinks,
) -> None:
    iin = await linked_iin(message, state, lang, citizens)
    if iin is None:
        return
    status = await statuses.status(iin)
    # the reply keyboard stays shown under a message with an inline button
    menu = pass_button(lang, links.pass_url) or main_menu(lang, profile.menu)
    await send_status(message, status, iin, lang=lang, city_tz=city_tz, menu=menu)


async def got_contact(message: Message, state: FSMContext, lang: str) -> None:
    not_own = text(lang, "signup.not_own_contact")
    phone = await shared_phone(message, lang, share_phone_keyboard(lang), not_own)
    if phone is None:
        return
    await state.update_data(phone=phone)
    await ask(message, state, SignUp.iin, lang, "signup.ask_iin", ReplyKeyboardRemove())


async def phone_expected(message: Message, lang: str) -> None:
    await message.answer(
        text(lang, "signup.phone_expected"), reply_markup=share_phone_keyboard(lang)
    )


async def got_iin(
    message: Message, state: FSMContext, lang: str, **context: Unpack[BotContext]
) -> None:
    iin = await parsed_text(message, lang, parse_iin)
    if iin is None:
        return
    await state.update_data(iin=iin.value)
    if iin.needs_confirmation:
        yes_no = _yes_no(lang, "date", "signup.confirm_yes", "signup.confirm_no")
        await ask(
            message, state, SignUp.confirm_date, lang, "signup.confirm_date", yes_no, iin=iin.value
        )
        return
    assert message.from_user is not None
    await _link(message, state, lang, context, move=False, user_id=message.from_user.id)


async def answered(
    query: CallbackQuery,
    callback_data: Answer,
    state: FSMContext,
    lang: str,
    **context: Unpack[BotContext],
) -> None:
    """Yes or no to "is the IIN right?" (step "date") or "move the IIN here?" ("move")."""
    message = await pressed(query)
    if not callback_data.yes and callback_data.step == "date":
        await ask(message, state, SignUp.iin, lang, "signup.ask_iin")
        return
    if not callback_data.yes:
        await state.clear()
        await message.answer(
            text(lang, "cancel.done"), reply_markup=main_menu(lang, context["profile"].menu)
        )
        return
    move = callback_data.step == "move"
    await _link(message, state, lang, context, move=move, user_id=query.from_user.id)


async def _link(
    message: Message,
    state: FSMContext,
    lang: str,
    context: BotContext,
    *,
    move: bool,
    user_id: int,
) -> None:
    """Link the IIN and phone the form holds to the Telegram account; once linked, resume
    the scan that waited, else show the status. The handlers that finish the form (an IIN
    typed, a yes pressed) take the bot's whole context (``**context``) to pass it here."""
    data = await state.get_data()
    result = await context["citizens"].link(user_id, data["iin"], data["phone"], move=move)
    menu = main_menu(lang, context["profile"].menu)
    if result.outcome is LinkOutcome.TAKEN:
        yes_no = _yes_no(lang, "move", "signup.move", "signup.keep")
        await ask(message, state, SignUp.confirm_move, lang, "signup.taken", yes_no)
        return
    if result.outcome is LinkOutcome.NO_MATCH:
        await ask(message, state, SignUp.iin, lang, "signup.no_match")
        return
    if result.outcome is LinkOutcome.RATE_LIMITED:
        await state.clear()
        assert result.retry_at is not None
        until = local_clock(result.retry_at, context["city_tz"])
        await message.answer(text(lang, "signup.rate_limited", time=until), reply_markup=menu)
        return
    if result.outcome is LinkOutcome.OTHER_IIN:
        await state.clear()
        await message.answer(
            text(lang, "signup.other_iin", iin=mask_iin(result.iin or "")), reply_markup=menu
        )
        return
    await state.clear()
    assert result.iin is not None
    await message.answer(text(lang, "signup.linked"), reply_markup=menu)
    token = data.get("pending_token")
    if token:
        await process_scan(
            message,
            token,
            result.iin,
            user_id=user_id,
            lang=lang,
            venues=context["venues"],
            visits=context["visits"],
            profile=context["profile"],
            city_tz=context["city_tz"],
        )
        return
    await send_status(
        message,
        await context["statuses"].status(result.iin),
        result.iin,
        lang=lang,
        city_tz=context["city_tz"],
        menu=menu,
    )


async def unlink(
    message: Message, lang: str, citizens: CitizenService, profile: BotProfile
) -> None:
    assert message.from_user is not None
    done = await citizens.unlink(message.from_user.id)
    key = "signup.unlinked" if done else "signup.not_linked_unlink"
    await message.answer(text(lang, key), reply_markup=main_menu(lang, profile.menu))


async def start_dispute(
    message: Message, state: FSMContext, lang: str, citizens: CitizenService
) -> None:
    if await linked_iin(message, state, lang, citizens) is None:
        return
    await ask(message, state, DisputeForm.claim, lang, "dispute.ask_claim")


async def got_claim(message: Message, state: FSMContext, lang: str) -> None:
    claim = (message.text or "").strip()
    if not 1 <= len(claim) <= 2000:
        await message.answer(text(lang, "dispute.bad_claim"))
        return
    await state.update_data(claim=claim)
    skip = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "dispute.skip"),
                    callback_data=Answer(step="ref", yes=False).pack(),
                )
            ]
        ]
    )
    await ask(message, state, DisputeForm.reference, lang, "dispute.ask_reference", skip)


async def _open_dispute(
    message: Message,
    user_id: int,
    reference: str | None,
    state: FSMContext,
    lang: str,
    context: BotContext,
) -> None:
    """Open the dispute the form holds; the handlers that end the form (a reference
    typed, "skip" pressed) pass the bot's whole context (``**context``)."""
    data = await state.get_data()
    await state.clear()
    menu = main_menu(lang, context["profile"].menu)
    iin = await context["citizens"].iin_of(user_id)
    if iin is None:
        await message.answer(text(lang, "status.not_linked"), reply_markup=menu)
        return
    shown = (await context["statuses"].status(iin)).colour.value
    claim = data.get("claim", "")
    try:
        dispute_id = await context["disputes"].open(user_id, iin, shown, claim, reference)
    except DisputeError as error:
        key = "dispute.too_many" if error.code == "dispute.too_many" else "dispute.bad_claim"
        await message.answer(text(lang, key), reply_markup=menu)
        return
    await message.answer(text(lang, "dispute.opened", id=dispute_id), reply_markup=menu)


async def got_reference(
    message: Message, state: FSMContext, lang: str, **context: Unpack[BotContext]
) -> None:
    assert message.from_user is not None
    reference = (message.text or "")[:100]
    await _open_dispute(message, message.from_user.id, reference, state, lang, context)


async def skip_reference(
    query: CallbackQuery, state: FSMContext, lang: str, **context: Unpack[BotContext]
) -> None:
    message = await pressed(query)
    await _open_dispute(message, query.from_user.id, None, state, lang, context)


def build_router() -> Router:
    router = Router(name=__name__)
    register_entry(router, my_status, button="citizen_menu.status", command="status")
    register_entry(router, unlink, command="unlink")
    register_entry(router, start_dispute, button="citizen_menu.dispute", command="dispute")
    router.message.register(got_contact, StateFilter(SignUp.phone), HasContact())
    router.message.register(phone_expected, StateFilter(SignUp.phone))
    router.message.register(got_iin, StateFilter(SignUp.iin))
    router.callback_query.register(
        answered, StateFilter(SignUp.confirm_date, SignUp.confirm_move), Answer.filter()
    )
    router.message.register(got_claim, StateFilter(DisputeForm.claim))
    router.message.register(got_reference, StateFilter(DisputeForm.reference))
    router.callback_query.register(
        skip_reference, StateFilter(DisputeForm.reference), Answer.filter()
    )
    return router
