"""The citizen's news subscription: thin handlers over NewsService."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from flows.filters import register_entry
from presentation.i18n import text
from services.news import NewsError, NewsService

MAX_DISTRICT_BUTTONS = 20


class StopNews(CallbackData, prefix="nws"):
    pass


class NewsDistrict(CallbackData, prefix="nwd"):
    index: int


def stop_keyboard(lang: str) -> InlineKeyboardMarkup:
    """The one button under every news item (and the subscription's answer)."""
    button = InlineKeyboardButton(
        text=text(lang, "news.stop_button"), callback_data=StopNews().pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def _districts_keyboard(lang: str, districts: list[str]) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(text=name, callback_data=NewsDistrict(index=i).pack())
        for i, name in enumerate(districts[:MAX_DISTRICT_BUTTONS])
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, *stop_keyboard(lang).inline_keyboard])


async def news_menu(message: Message, lang: str, news: NewsService) -> None:
    """One tap subscribes; the answer offers the district and the way to stop."""
    assert message.from_user is not None
    new = await news.subscribe(message.chat.id)
    districts = await news.districts()
    key = "news.subscribed" if new else "news.already"
    lines = [text(lang, key)]
    if districts:
        lines.append(text(lang, "news.choose_district"))
        keyboard = _districts_keyboard(lang, districts)
    else:
        keyboard = stop_keyboard(lang)
    await message.answer("\n\n".join(lines), reply_markup=keyboard)


async def stop(query: CallbackQuery, lang: str, news: NewsService) -> None:
    chat = query.message.chat.id if query.message is not None else query.from_user.id
    stopped = await news.unsubscribe(chat)
    await query.answer(text(lang, "news.stopped" if stopped else "news.not_subscribed"))
    if query.message is not None:
        await query.message.answer(
            text(lang, "news.stopped" if stopped else "news.not_subscribed")
        )


async def choose_district(
    query: CallbackQuery, callback_data: NewsDistrict, lang: str, news: NewsService
) -> None:
    chat = query.message.chat.id if query.message is not None else query.from_user.id
    districts = await news.districts()
    if not 0 <= callback_data.index < len(districts):
        await query.answer()
        return
    district = districts[callback_data.index]
    try:
        chosen = await news.choose_district(chat, district)
    except NewsError:
        chosen = False
    key = "news.district_chosen" if chosen else "news.not_subscribed"
    await query.answer(text(lang, key, district=district))
    if query.message is not None:
        await query.message.answer(text(lang, key, district=district))


def build_router() -> Router:
    router = Router(name=__name__)
    register_entry(router, news_menu, button="news.menu")
    router.callback_query.register(stop, StopNews.filter())
    router.callback_query.register(choose_district, NewsDistrict.filter())
    return router
