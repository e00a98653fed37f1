"""Permit checks: an officer checks anyone by IIN or plate (staff bot); a citizen checks
their own linked IIN (citizen bot)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message

from flows.common.steps import ask, sender_lookup
from flows.filters import StartPayload, register_entry
from presentation.formatting import local_time
from presentation.i18n import label, text
from presentation.keys import (
    OFFICER_ROLES,
    PERMIT_RESULTS,
    PURPOSE_NAMES,
    REGISTER_NAMES,
    input_error,
)
from services.citizens import CitizenService
from services.permits import PermitCheck, PermitError, PermitResult, PermitService
from services.quotas import LookupQuotas
from services.validation import InvalidInput

REGISTER_OF_ROLE = {"police": "city", "checkpoint": "roadblock"}


class PermitQuery(StatesGroup):
    value = State()


def permit_text(check: PermitCheck, lang: str, tz: ZoneInfo) -> str:
    if check.result is PermitResult.NONE:
        return text(lang, "permit.none")
    body = text(
        lang,
        PERMIT_RESULTS[check.result],
        register=label(lang, REGISTER_NAMES.get(check.register or ""), check.register or ""),
        organisation=check.organisation,
        purpose=label(lang, PURPOSE_NAMES.get(check.purpose or ""), check.purpose or ""),
        start=local_time(check.valid_from, tz) if check.valid_from else "",
        until=local_time(check.valid_until, tz) if check.valid_until else "",
    )
    if check.loose:
        body += "\n" + text(lang, "permit.loose", plate=check.matched_plate)
    return body


async def join_as_officer(
    message: Message, payload: str, lang: str, permits: PermitService
) -> None:
    assert message.from_user is not None
    try:
        role = await permits.join_as_officer(
            payload, message.from_user.id, message.from_user.full_name, bot="staff"
        )
    except PermitError as error:
        await message.answer(text(lang, error.key))
        return
    await message.answer(text(lang, "permit.joined", role=text(lang, OFFICER_ROLES[role])))


async def start_check(
    message: Message, state: FSMContext, lang: str, permits: PermitService
) -> None:
    refusal = text(lang, "permit.not_officer")
    if await sender_lookup(message, permits.officer_role, refusal) is None:
        return
    await ask(message, state, PermitQuery.value, lang, "permit.ask")


async def check(
    message: Message,
    lang: str,
    permits: PermitService,
    quotas: LookupQuotas,
    city_tz: ZoneInfo,
) -> None:
    """One check by an officer; the state stays, so the next car can follow at once. A
    checkpoint officer checks the roadblock register, police the city one."""
    role = await sender_lookup(message, permits.officer_role, text(lang, "permit.not_officer"))
    if role is None:
        return
    assert message.from_user is not None
    register = REGISTER_OF_ROLE[role]
    raw = (message.text or "").strip()
    if not await quotas.allow("permit-check", f"officer:{message.from_user.id}"):
        await message.answer(text(lang, "permit.rate_limited"))
        return
    actor = f"officer:{message.from_user.id}"
    try:
        if re.fullmatch(r"[0-9 ]{12,15}", raw):
            result = await permits.check_iin(
                raw.replace(" ", ""), at=message.date, actor=actor, register=register
            )
        else:
            result = await permits.check_plate(
                raw, at=message.date, actor=actor, register=register
            )
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await message.answer(permit_text(result, lang, city_tz))


async def my_permit(
    message: Message,
    lang: str,
    permits: PermitService,
    citizens: CitizenService,
    city_tz: ZoneInfo,
) -> None:
    iin = await sender_lookup(message, citizens.iin_of, text(lang, "permit.mine_unlinked"))
    if iin is None:
        return
    assert message.from_user is not None
    result = await permits.check_iin(iin, at=message.date, actor=f"tg:{message.from_user.id}")
    await message.answer(permit_text(result, lang, city_tz))


def build_officer_router() -> Router:
    """The staff bot's entry points; included before the other flows, so that the button
    works in the middle of another flow's question."""
    router = Router(name=__name__ + ".officer")
    router.message.register(join_as_officer, StartPayload("off_"))
    register_entry(router, start_check, button="staff_menu.permit", command="check")
    return router


def build_officer_query_router() -> Router:
    """What an officer types while checking; included after the other flows, so that
    their menu buttons still work while the check goes on."""
    router = Router(name=__name__ + ".officer_query")
    router.message.register(check, StateFilter(PermitQuery.value))
    return router


def build_citizen_router() -> Router:
    router = Router(name=__name__ + ".citizen")
    register_entry(router, my_permit, button="citizen_menu.permit", command="permit")
    return router
