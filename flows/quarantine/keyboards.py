from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from presentation.i18n import text


class Consent(CallbackData, prefix="qc"):
    answer: str


class HomeChoice(CallbackData, prefix="qh"):
    answer: str  # "yes", "no", "here"


class EnrolSkip(CallbackData, prefix="qe"):
    step: str


def consent_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "quarantine.agree"),
                    callback_data=Consent(answer="agree").pack(),
                ),
                InlineKeyboardButton(
                    text=text(lang, "quarantine.decline"),
                    callback_data=Consent(answer="decline").pack(),
                ),
            ]
        ]
    )


def home_here_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "quarantine.home_here"),
                    callback_data=HomeChoice(answer="here").pack(),
                )
            ]
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
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "doctor.skip"), callback_data=EnrolSkip(step=step).pack()
                )
            ]
        ]
    )
