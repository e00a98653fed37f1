"""The agent bot: hotline 1308 agents take citizens' hand-off tickets and, on a call, walk
a script: the caller's words (or a pick from the list) -> the NLU's suggestions -> a
decision tree from flows/hotline/scripts/ walked with buttons to its outcome, or an FAQ
answer to read and the outcome -> the district. The call is logged (topic, outcome,
district, time; never the caller) for the situation centre's calls by district and hour."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from flows.common.keyboards import choice_keyboard, inline_keyboard
from flows.common.steps import ask, pressed
from flows.context import Limits
from flows.faq import answer_text, answers, topics
from flows.faq.handlers import Parser, PlainText
from flows.filters import StartPayload, register_entry
from flows.hotline.call_scripts import Script, scripts, suggested
from presentation.i18n import text
from presentation.keys import OUTCOME_NAMES, TICKET_ACTIONS
from services.hotline import OUTCOMES, HotlineError, Tickets
from services.permits import PermitError, PermitService

DISTRICTS = (
    "Alatau",
    "Almaly",
    "Auezov",
    "Bostandyk",
    "Zhetysu",
    "Medeu",
    "Nauryzbay",
    "Turksib",
)


class CallScript(StatesGroup):
    words = State()


class TicketAction(CallbackData, prefix="tk"):
    action: str  # take, close
    ticket: int


class ScriptStep(CallbackData, prefix="sc"):
    step: str  # script, go (a node of the script), topic (an FAQ answer), outcome, district
    value: str


def ticket_keyboard(lang: str, ticket_id: int, action: str) -> InlineKeyboardMarkup:
    label = text(lang, TICKET_ACTIONS[action])
    return inline_keyboard([[(label, TicketAction(action=action, ticket=ticket_id))]])


def _choices(lang: str, found: list[Script], intents: list[str]) -> InlineKeyboardMarkup:
    """Decision-tree scripts first (📋), then FAQ answers to read."""
    return inline_keyboard(
        [[("📋 " + s.title[lang], ScriptStep(step="script", value=s.id))] for s in found]
        + [
            [(answers(lang)[i]["title"], ScriptStep(step="topic", value=i.removeprefix("faq_")))]
            for i in intents
        ]
    )


def _district_buttons() -> InlineKeyboardMarkup:
    return inline_keyboard(
        [
            [(d, ScriptStep(step="district", value=d)) for d in DISTRICTS[i : i + 2]]
            for i in range(0, len(DISTRICTS), 2)
        ]
    )


async def _show_node(
    message: Message, state: FSMContext, lang: str, script: Script, at: str
) -> None:
    """The script from node ``at``: what to say, up to the next question or the end."""
    lines: list[str] = []
    node = script.nodes[at]
    while node.say is not None and node.next is not None:
        lines.append(node.say[lang])
        node = script.nodes[node.next]
    if node.ask is not None:
        lines.append("❓ " + node.ask[lang])
        await message.answer(
            "\n\n".join(lines),
            reply_markup=inline_keyboard(
                [[(o.label[lang], ScriptStep(step="go", value=o.next))] for o in node.options]
            ),
        )
        return
    assert node.say is not None
    assert node.end is not None
    lines.append(node.say[lang])
    lines.append(text(lang, "agent.script_outcome", outcome=text(lang, OUTCOME_NAMES[node.end])))
    await state.update_data(topic=script.topic, outcome=node.end)
    await message.answer("\n\n".join(lines))
    await message.answer(text(lang, "agent.script_district"), reply_markup=_district_buttons())


async def join(message: Message, payload: str, lang: str, permits: PermitService) -> None:
    assert message.from_user is not None
    try:
        await permits.join_as_officer(
            payload, message.from_user.id, message.from_user.full_name, bot="agent"
        )
    except PermitError as error:
        await message.answer(text(lang, error.key))
        return
    await message.answer(text(lang, "agent.joined"))


async def _agent(message: Message, lang: str, tickets: Tickets) -> bool:
    assert message.from_user is not None
    if await tickets.is_agent(message.from_user.id):
        return True
    await message.answer(text(lang, "agent.not_agent"))
    return False


async def shift_on(message: Message, lang: str, tickets: Tickets) -> None:
    if not await _agent(message, lang, tickets):
        return
    assert message.from_user is not None
    waiting = await tickets.set_shift(message.from_user.id, True)
    await message.answer(text(lang, "agent.shift_on", count=len(waiting)))
    for ticket in waiting:
        await message.answer(
            text(lang, "agent.ticket", number=ticket.id, question=ticket.question or "—"),
            reply_markup=ticket_keyboard(lang, ticket.id, "take"),
        )


async def shift_off(message: Message, lang: str, tickets: Tickets) -> None:
    if not await _agent(message, lang, tickets):
        return
    assert message.from_user is not None
    await tickets.set_shift(message.from_user.id, False)
    await message.answer(text(lang, "agent.shift_off"))


async def ticket_pressed(
    query: CallbackQuery, callback_data: TicketAction, lang: str, tickets: Tickets
) -> None:
    message = await pressed(query)
    if not await tickets.is_agent(query.from_user.id):
        await message.answer(text(lang, "agent.not_agent"))
        return
    try:
        if callback_data.action == "take":
            ticket = await tickets.take(callback_data.ticket, query.from_user.id)
            await message.answer(
                text(lang, "agent.taken", number=ticket.id, question=ticket.question or "—"),
                reply_markup=ticket_keyboard(lang, ticket.id, "close"),
            )
        elif callback_data.action == "close":
            await tickets.close(callback_data.ticket, query.from_user.id)
            await message.answer(text(lang, "agent.closed", number=callback_data.ticket))
    except HotlineError as error:
        await message.answer(text(lang, error.key))


async def start_script(message: Message, state: FSMContext, lang: str, tickets: Tickets) -> None:
    if not await _agent(message, lang, tickets):
        return
    choices = _choices(lang, list(scripts().values()), topics(lang))
    await ask(message, state, CallScript.words, lang, "agent.script_ask", choices)


async def caller_words(
    message: Message, state: FSMContext, lang: str, nlu: Parser, tickets: Tickets
) -> None:
    """The caller's words, typed by the agent: the NLU suggests the script."""
    parsed = await nlu.parse_async(message.text or "")
    known = set(topics(lang))
    ranked = [r["name"] for r in parsed["intent_ranking"]][:3]
    await message.answer(
        text(lang, "agent.script_suggested"),
        reply_markup=_choices(lang, suggested(ranked)[:2], [i for i in ranked if i in known]),
    )


async def relay(message: Message, lang: str, tickets: Tickets) -> None:
    """An agent's text during a conversation goes to the citizen."""
    assert message.from_user is not None
    ticket = await tickets.current(agent_chat=message.from_user.id)
    if ticket is None:
        await message.answer(text(lang, "agent.no_conversation"))
        return
    await tickets.relay(
        ticket,
        from_agent=True,
        text=message.text or "",
        key=f"a{message.chat.id}:{message.message_id}",
    )


async def script_pressed(
    query: CallbackQuery,
    callback_data: ScriptStep,
    state: FSMContext,
    lang: str,
    tickets: Tickets,
    limits: Limits,
) -> None:
    message = await pressed(query)
    if not await tickets.is_agent(query.from_user.id):
        return
    step, value = callback_data.step, callback_data.value
    if step == "script" and value in scripts():
        script = scripts()[value]
        await state.update_data(script=script.id, topic=None, outcome=None)
        await message.answer("📋 " + script.title[lang])
        await _show_node(message, state, lang, script, script.start)
    elif step == "go":
        walking = scripts().get((await state.get_data()).get("script") or "")
        if walking is None or value not in walking.nodes:
            await message.answer(text(lang, "agent.script_expired"))
            return
        await _show_node(message, state, lang, walking, value)
    elif step == "topic":
        intent = f"faq_{value}"
        if intent not in answers(lang):
            return
        await state.update_data(topic=intent)
        await message.answer(
            text(lang, "agent.script_read") + "\n\n" + answer_text(lang, intent, limits),
            reply_markup=choice_keyboard(
                lang, OUTCOME_NAMES, OUTCOMES, lambda o: ScriptStep(step="outcome", value=o)
            ),
        )
    elif step == "outcome" and value in OUTCOMES:
        await state.update_data(outcome=value)
        await message.answer(text(lang, "agent.script_district"), reply_markup=_district_buttons())
    elif step == "district" and value in DISTRICTS:
        data = await state.get_data()
        if not data.get("topic") or not data.get("outcome"):
            await message.answer(text(lang, "agent.script_expired"))
            return
        logged = await tickets.log_call(
            query.from_user.id,
            topic=data["topic"],
            outcome=data["outcome"],
            district=value,
            key=f"{message.chat.id}:{message.message_id}",
        )
        await state.clear()
        if logged:
            await message.answer(text(lang, "agent.logged"))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(join, StartPayload("off_"))
    register_entry(router, shift_on, button="agent_menu.shift_on")
    register_entry(router, shift_off, button="agent_menu.shift_off")
    register_entry(router, start_script, button="agent_menu.script", command="call")
    router.callback_query.register(ticket_pressed, TicketAction.filter())
    router.callback_query.register(script_pressed, ScriptStep.filter())
    router.message.register(caller_words, StateFilter(CallScript.words), PlainText())
    router.message.register(relay, PlainText())
    return router
