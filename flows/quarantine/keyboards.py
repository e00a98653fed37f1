from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

from flows.common.keyboards import inline_keyboard
from presentation.i18n import text


class Consent(CallbackData, prefix="qc"):
    answer: str


class HomeChoice(CallbackData, prefix="qh"):
    answer: str  # "yes", "no", "here"


class EnrolSkip(CallbackData, prefix="qe"):
    step: str


def consent_keyboard(lang: str) -> InlineKeyboardMarkup:
    return inline_keyboard(
        [
            [
                (text(lang, "quarantine.agree"), Consent(answer="agree")),
                (text(lang, "quarantine.decline"), Consent(answer="decline")),
            ]
        ]
    )


def home_here_keyboard(lang: str) -> InlineKeyboardMarkup:
    return inline_keyboard([[(text(lang, "quarantine.home_here"), HomeChoice(answer="here"))]])


def home_confirm_keyboard(lang: str) -> InlineKeyboardMarkup:
    """Is the place the patient shared their home? One answer a row."""
    return inline_keyboard(
        [
            [(text(lang, "quarantine.home_yes"), HomeChoice(answer="yes"))],
            [(text(lang, "quarantine.home_no"), HomeChoice(answer="no"))],
        ]
    )


def phone_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=text(lang, "quarantine.share_phone"), request_contact=True)]
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def skip_keyboard(lang: str, step: str) -> InlineKeyboardMarkup:
    return inline_keyboard([[(text(lang, "doctor.skip"), EnrolSkip(step=step))]])
