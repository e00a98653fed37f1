"""Checkpoint flows: an officer logs passings in the staff bot (direction, then one plate
or IIN after another, the permit result shown at once); a traveller registers a passing
in the citizen bot by the checkpoint's QR code and a phone number, nothing else."""

from __future__ import annotations

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
)

from flows.common.keyboards import main_menu, share_phone_keyboard
from flows.common.steps import ask, pressed, sender_lookup
from flows.contacts import shared_phone
from flows.context import BotProfile
from flows.filters import HasContact, StartPayload, register_entry
from flows.permits.handlers import permit_text
from presentation.formatting import local_time
from presentation.i18n import text
from presentation.keys import CHECKPOINT_DIRECTIONS, input_error
from services.checkpoints import DIRECTIONS, CheckpointService, Passing
from services.permits import PermitError, PermitResult, PermitService
from services.validation import InvalidInput


class CheckpointForm(StatesGroup):
    """An officer's passings (``value``: one plate or IIN after another); a traveller's
    ``phone``."""

    value = State()
    phone = State()


class Direction(CallbackData, prefix="cpd"):
    direction: str
    checkpoint: int = 0  # set for a traveller (the QR's checkpoint)


def _directions(lang: str, checkpoint: int = 0) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, CHECKPOINT_DIRECTIONS[d]),
                    callback_data=Direction(direction=d, checkpoint=checkpoint).pack(),
                )
                for d in DIRECTIONS
            ]
        ]
    )


def passing_text(passing: Passing, lang: str, tz: ZoneInfo) -> str:
    lines = [
        text(
            lang,
            "checkpoint.logged",
            checkpoint=passing.checkpoint.name,
            direction=text(lang, CHECKPOINT_DIRECTIONS[passing.direction]),
            time=local_time(passing.at, tz),
        )
    ]
    if passing.permit is not None:
        lines.append(permit_text(passing.permit, lang, tz))
    if passing.flagged and passing.permit and passing.permit.result is PermitResult.SUSPENDED:
        lines.append(text(lang, "checkpoint.flagged_suspended"))
    elif passing.flagged:
        lines.append(text(lang, "checkpoint.flagged", zone=passing.checkpoint.zone_name))
    return "\n".join(lines)


async def start_logging(
    message: Message,
    state: FSMContext,
    lang: str,
    permits: PermitService,
    checkpoints: CheckpointService,
) -> None:
    refusal = text(lang, "permit.not_officer")
    if await sender_lookup(message, permits.officer_role, refusal) is None:
        return
    refusal = text(lang, "checkpoint.not_assigned")
    checkpoint = await sender_lookup(message, checkpoints.checkpoint_of, refusal)
    if checkpoint is None:
        return
    await state.clear()
    await message.answer(
        text(lang, "checkpoint.ask_direction", checkpoint=checkpoint.name),
        reply_markup=_directions(lang),
    )


async def direction_pressed(
    query: CallbackQuery,
    callback_data: Direction,
    state: FSMContext,
    lang: str,
    checkpoints: CheckpointService,
) -> None:
    message = await pressed(query)
    if callback_data.direction not in DIRECTIONS:
        return
    if callback_data.checkpoint:  # a traveller, from the QR code
        await state.update_data(
            checkpoint=callback_data.checkpoint, direction=callback_data.direction
        )
        keyboard = share_phone_keyboard(lang)
        await ask(
            message, state, CheckpointForm.phone, lang, "checkpoint.traveller_phone", keyboard
        )
        return
    checkpoint = await checkpoints.checkpoint_of(query.from_user.id)
    if checkpoint is None:
        await message.answer(text(lang, "checkpoint.not_assigned"))
        return
    await state.update_data(direction=callback_data.direction)
    direction = text(lang, CHECKPOINT_DIRECTIONS[callback_data.direction])
    await ask(
        message, state, CheckpointForm.value, lang, "checkpoint.ask_value", direction=direction
    )


async def log_value(
    message: Message,
    state: FSMContext,
    lang: str,
    checkpoints: CheckpointService,
    city_tz: ZoneInfo,
) -> None:
    """One passing; the state stays, so the next car can follow at once."""
    assert message.from_user is not None
    checkpoint = await checkpoints.checkpoint_of(message.from_user.id)
    if checkpoint is None:
        await state.clear()
        await message.answer(text(lang, "checkpoint.not_assigned"))
        return
    direction = str((await state.get_data()).get("direction", "in"))
    try:
        passing = await checkpoints.log_passing(
            checkpoint,
            officer=message.from_user.id,
            direction=direction,
            value=message.text or "",
            at=message.date,
            update_key=f"{message.chat.id}:{message.message_id}",
        )
    except InvalidInput as error:
        await message.answer(input_error(lang, error.code))
        return
    await message.answer(passing_text(passing, lang, city_tz), reply_markup=_directions(lang))


async def traveller_start(
    message: Message, payload: str, state: FSMContext, lang: str, checkpoints: CheckpointService
) -> None:
    checkpoint = await checkpoints.by_token(payload)
    if checkpoint is None:
        await message.answer(text(lang, "checkpoint.unknown_code"))
        return
    await state.clear()
    await message.answer(
        text(lang, "checkpoint.traveller_intro", checkpoint=checkpoint.name),
        reply_markup=_directions(lang, checkpoint.id),
    )


async def traveller_phone(
    message: Message,
    state: FSMContext,
    lang: str,
    checkpoints: CheckpointService,
    profile: BotProfile,
    city_tz: ZoneInfo,
) -> None:
    phone = await shared_phone(message, lang)
    if phone is None:
        return
    data = await state.get_data()
    await state.clear()
    menu = main_menu(lang, profile.menu)
    checkpoint = await checkpoints.by_id(int(data.get("checkpoint", 0)))
    if checkpoint is None:
        await message.answer(text(lang, "checkpoint.unknown_code"), reply_markup=menu)
        return
    try:
        passing = await checkpoints.self_register(
            checkpoint,
            phone=phone,
            direction=str(data.get("direction", "in")),
            at=message.date,
            update_key=f"{message.chat.id}:{message.message_id}",
        )
    except PermitError as error:
        await message.answer(text(lang, error.key), reply_markup=menu)
        return
    await message.answer(passing_text(passing, lang, city_tz), reply_markup=menu)


def build_officer_router() -> Router:
    router = Router(name=__name__ + ".officer")
    register_entry(router, start_logging, button="staff_menu.passing", command="passing")
    router.callback_query.register(direction_pressed, Direction.filter())
    return router


def build_officer_form_router() -> Router:
    router = Router(name=__name__ + ".officer_form")
    router.message.register(log_value, StateFilter(CheckpointForm.value))
    return router


def build_traveller_router() -> Router:
    router = Router(name=__name__ + ".traveller")
    router.message.register(traveller_start, StartPayload("cp_"))
    router.callback_query.register(direction_pressed, Direction.filter())
    router.message.register(traveller_phone, StateFilter(CheckpointForm.phone), HasContact())
    return router
