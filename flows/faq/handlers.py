"""Free text in the citizen bot: a question is answered from the FAQ in the person's
language; below the confidence threshold the three closest topics are offered as
buttons with «talk to an operator», and the question is kept (without identity) for the
FAQ's next edition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiogram import Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from flows.common.steps import pressed
from flows.faq import SMALL_TALK, answer_text, answers, topics
from presentation.i18n import text
from services.hotline import HotlineService, Tickets

if TYPE_CHECKING:  # flows.context imports this module's parser
    from flows.context import Limits

ANSWER_CONFIDENCE = 0.5  # below this, the closest topics are offered instead
CLOSEST = 3


class Parser(Protocol):
    """The NLU (nlu.service.Nlu): the flows only need its answer."""

    async def parse_async(self, text: str) -> dict[str, Any]: ...


class FaqTopic(CallbackData, prefix="faq"):
    intent: str


class WithdrawTicket(CallbackData, prefix="faqw"):
    ticket: int


def _withdraw_button(lang: str, ticket_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "faq.operator_cancel"),
                    callback_data=WithdrawTicket(ticket=ticket_id).pack(),
                )
            ]
        ]
    )


class PlainText(Filter):
    """A text message that is not a command."""

    async def __call__(self, message: Message) -> bool:
        return bool(message.text) and not (message.text or "").startswith("/")


def _closest(lang: str, parsed: dict[str, Any]) -> InlineKeyboardMarkup:
    known = set(topics(lang))
    closest = [r["name"] for r in parsed["intent_ranking"] if r["name"] in known][:CLOSEST]
    rows = [
        [
            InlineKeyboardButton(
                text=answers(lang)[intent]["title"], callback_data=FaqTopic(intent=intent).pack()
            )
        ]
        for intent in closest
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text=text(lang, "faq.operator"),
                callback_data=FaqTopic(intent="human_handoff").pack(),
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def hand_off(message: Message, lang: str, question: str, tickets: Tickets) -> None:
    """A ticket for the agents; the citizen is told whether anyone is on shift now."""
    ticket, on_shift = await tickets.open(message.chat.id, lang, question)
    if ticket.state == "taken":
        await message.answer(text(lang, "faq.operator_with_you"))
        return
    key = "faq.operator_soon" if on_shift else "faq.operator_waiting"
    await message.answer(
        text(lang, key, number=ticket.id), reply_markup=_withdraw_button(lang, ticket.id)
    )


def _faq_answer(lang: str, parsed: dict[str, Any], limits: Limits) -> str | None:
    """The FAQ's answer when the question was understood well enough, else None."""
    intent = parsed["intent"]["name"]
    if float(parsed["intent"]["confidence"]) < ANSWER_CONFIDENCE:
        return None
    if intent in answers(lang) and (intent.startswith("faq_") or intent in SMALL_TALK):
        return answer_text(lang, intent, limits)
    return None


async def ask(
    message: Message,
    lang: str,
    nlu: Parser,
    hotline: HotlineService,
    tickets: Tickets,
    limits: Limits,
) -> None:
    question = (message.text or "").strip()
    ticket = await tickets.current(citizen_chat=message.chat.id)
    if ticket is not None and ticket.state == "taken":  # talking with an operator: relay
        await tickets.relay(
            ticket,
            from_agent=False,
            text=question,
            key=f"c{message.chat.id}:{message.message_id}",
        )
        return
    parsed = await nlu.parse_async(question)
    answer = _faq_answer(lang, parsed, limits)
    if ticket is not None:  # waiting for an operator: the FAQ still answers meanwhile
        waiting = text(lang, "faq.operator_still_waiting", number=ticket.id)
        await message.answer(
            f"{answer}\n\n{waiting}" if answer else waiting,
            reply_markup=_withdraw_button(lang, ticket.id),
        )
        return
    intent = parsed["intent"]["name"]
    confidence = float(parsed["intent"]["confidence"])
    if answer is not None:
        await message.answer(answer)
        return
    if confidence >= ANSWER_CONFIDENCE and intent == "human_handoff":
        await hand_off(message, lang, question, tickets)
        return
    await hotline.record_unanswered(question, lang, intent, confidence)
    await message.answer(text(lang, "faq.not_sure"), reply_markup=_closest(lang, parsed))


async def topic_pressed(
    query: CallbackQuery, callback_data: FaqTopic, lang: str, tickets: Tickets, limits: Limits
) -> None:
    message = await pressed(query)
    if callback_data.intent == "human_handoff":
        await hand_off(message, lang, "", tickets)
        return
    if callback_data.intent in answers(lang):
        await message.answer(answer_text(lang, callback_data.intent, limits))


async def withdraw_pressed(
    query: CallbackQuery, callback_data: WithdrawTicket, lang: str, tickets: Tickets
) -> None:
    message = await pressed(query)
    # the chat, not the button's number, says whose ticket: a forged number closes nothing
    if await tickets.withdraw(callback_data.ticket, message.chat.id):
        key = "faq.operator_withdrawn"
    else:
        key = "faq.operator_not_waiting"
    await message.answer(text(lang, key, number=callback_data.ticket))


def build_router() -> Router:
    """Last in the citizen bot: only text no other flow took reaches it."""
    router = Router(name=__name__)
    router.callback_query.register(withdraw_pressed, WithdrawTicket.filter())
    router.callback_query.register(topic_pressed, FaqTopic.filter())
    router.message.register(ask, PlainText())
    return router
