"""The brigade's conversation in the staff bot. Made for one hand on a cheap phone: one
button opens today's tasks, each task's buttons sit under it, a photo needs no command.

A member joins by the operations desk's one-use link (``/start brg_...``). A started
task's track is the live location the member shares (its first message and its edits);
photos sent while a task is started are kept with it; ✅ Done needs one at least."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from flows.common.location import fix_from, live_share_start
from flows.common.steps import sender_lookup
from flows.filters import HasLocation, StartPayload, register_entry
from presentation.formatting import local_clock
from presentation.i18n import text
from services.brigades import BrigadeError, BrigadeService, Task
from services.location_fixes import validate_fix

METHOD_KEYS = {
    "surface": "brigade.method_surface",
    "indoor": "brigade.method_indoor",
    "vehicle": "brigade.method_vehicle",
}
STATE_KEYS = {
    "planned": "brigade.state_planned",
    "started": "brigade.state_started",
    "done": "brigade.state_done",
    "blocked": "brigade.state_blocked",
}


class BrigadeWork(StatesGroup):
    reason = State()


class TaskAction(CallbackData, prefix="bt"):
    action: str  # start, done, block
    task: int


class HasPhoto(Filter):
    async def __call__(self, message: Message) -> bool:
        return bool(message.photo)


class IsMember(Filter):
    """The sender is in a brigade (a location or photo from anyone else is another
    flow's, or nobody's)."""

    async def __call__(self, message: Message, brigades: BrigadeService) -> bool:
        return message.from_user is not None and (
            await brigades.brigade_of(message.from_user.id) is not None
        )


def _task_line(task: Task, lang: str) -> str:
    return text(
        lang,
        "brigade.task_line",
        position=task.position,
        area=task.area_name,
        method=text(lang, METHOD_KEYS[task.method]),
        state=text(lang, STATE_KEYS[task.state]),
    )


def _keyboard(tasks: list[Task], lang: str) -> InlineKeyboardMarkup | None:
    rows = []
    for task in tasks:
        if task.state == "started":
            rows.append(
                [
                    InlineKeyboardButton(
                        text=text(lang, "brigade.done_button", position=task.position),
                        callback_data=TaskAction(action="done", task=task.id).pack(),
                    ),
                    InlineKeyboardButton(
                        text=text(lang, "brigade.blocked_button", position=task.position),
                        callback_data=TaskAction(action="block", task=task.id).pack(),
                    ),
                ]
            )
        elif task.state in ("planned", "blocked"):
            rows.append(
                [
                    InlineKeyboardButton(
                        text=text(lang, "brigade.start_button", position=task.position),
                        callback_data=TaskAction(action="start", task=task.id).pack(),
                    )
                ]
            )
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def join(message: Message, payload: str, lang: str, brigades: BrigadeService) -> None:
    assert message.from_user is not None
    try:
        brigade = await brigades.join(payload, message.from_user.id, message.from_user.full_name)
    except BrigadeError as error:
        await message.answer(text(lang, error.code))
        return
    await message.answer(
        text(lang, "brigade.joined", brigade=brigade.name, district=brigade.district)
    )


async def today_tasks(
    message: Message, lang: str, brigades: BrigadeService, city_tz: ZoneInfo
) -> None:
    brigade = await sender_lookup(message, brigades.brigade_of, text(lang, "brigade.not_member"))
    if brigade is None:
        return
    assert message.from_user is not None
    tasks = await brigades.tasks_of(message.from_user.id, datetime.now(city_tz).date())
    if not tasks:
        await message.answer(text(lang, "brigade.no_tasks"))
        return
    lines = [text(lang, "brigade.tasks_title", brigade=brigade.name)]
    lines += [_task_line(task, lang) for task in tasks]
    await message.answer("\n".join(lines), reply_markup=_keyboard(tasks, lang))


async def task_action(
    query: CallbackQuery,
    callback_data: TaskAction,
    state: FSMContext,
    lang: str,
    brigades: BrigadeService,
) -> None:
    member = query.from_user.id
    await query.answer()
    if not isinstance(query.message, Message):
        return
    keyboard = None
    try:
        if callback_data.action == "start":
            task = await brigades.start(callback_data.task, member)
            answer = text(lang, "brigade.started", position=task.position, area=task.area_name)
            keyboard = _keyboard([task], lang)  # ✅ Done and ⛔ Blocked under the task
        elif callback_data.action == "done":
            task = await brigades.done(callback_data.task, member)
            share = round(100 * (task.coverage or 0))
            key = "brigade.done" if share >= 100 * brigades.clean_coverage else "brigade.done_low"
            answer = text(lang, key, position=task.position, coverage=share)
        else:
            await state.set_state(BrigadeWork.reason)
            await state.update_data(task=callback_data.task)
            answer = text(lang, "brigade.ask_reason")
    except BrigadeError as error:
        answer = text(lang, error.code)
    await query.message.answer(answer, reply_markup=keyboard)


async def got_reason(
    message: Message, state: FSMContext, lang: str, brigades: BrigadeService
) -> None:
    assert message.from_user is not None
    task_id = (await state.get_data()).get("task")
    if not isinstance(task_id, int):
        await state.clear()
        return
    try:
        task = await brigades.block(task_id, message.from_user.id, message.text or "")
    except BrigadeError as error:
        if error.code == "brigade.reason":
            await message.answer(text(lang, "brigade.reason"))
            return
        await state.clear()
        await message.answer(text(lang, error.code))
        return
    await state.clear()
    await message.answer(
        text(lang, "brigade.blocked", position=task.position, reason=task.blocked_reason)
    )


async def got_location(
    message: Message, lang: str, brigades: BrigadeService, city_tz: ZoneInfo
) -> None:
    """The first message of a live share (or a one-off location, explained)."""
    one_off = text(lang, "brigade.static_location")
    started = await live_share_start(message, lang, one_off)
    if started is None:
        return
    fix, until = started
    task_id = await brigades.record_fix(fix)
    if task_id is None:
        await message.answer(text(lang, "brigade.no_started"))
        return
    await message.answer(text(lang, "brigade.live_received", until=local_clock(until, city_tz)))


async def live_edit(message: Message, brigades: BrigadeService) -> None:
    """A move of the live location: silently added to the started task's track."""
    fix = fix_from(message, edited=True)
    if fix is not None and validate_fix(fix):
        await brigades.record_fix(fix)


async def got_photo(message: Message, lang: str, brigades: BrigadeService) -> None:
    assert message.from_user is not None
    assert message.photo
    task = await brigades.started_task(message.from_user.id)
    if task is None:
        await message.answer(text(lang, "brigade.no_started"))
        return
    try:
        count = await brigades.add_photo(task.id, message.from_user.id, message.photo[-1].file_id)
    except BrigadeError as error:
        await message.answer(text(lang, error.code))
        return
    await message.answer(text(lang, "brigade.photo_saved", count=count))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(join, StartPayload("brg_"))
    register_entry(router, today_tasks, button="brigade.menu")
    router.callback_query.register(task_action, TaskAction.filter())
    router.message.register(got_reason, StateFilter(BrigadeWork.reason))
    router.message.register(got_location, HasLocation(), IsMember())
    router.message.register(got_photo, HasPhoto(), IsMember())
    router.edited_message.register(live_edit, HasLocation(), IsMember())
    return router
