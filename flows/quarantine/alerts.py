"""How alerts and patients' notices read: one place for the outbox and for the doctor's
buttons, which redraw the alert after each press."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from flows.formatting import local_clock, local_time
from presentation.i18n import text
from presentation.rules import silence
from services.quarantine import Action, EpisodeView


class AlertAction(CallbackData, prefix="qa"):
    action: str
    episode: int


def alert_text(
    params: dict[str, Any],
    lang: str,
    tz: ZoneInfo,
    *,
    escalated: bool = False,
    view: EpisodeView | None = None,
) -> str:
    at = datetime.fromisoformat(params["at"])
    lines = [
        text(
            lang,
            f"doctor.alert.{params['kind']}",
            code=params["code"],
            time=local_time(at, tz),
            distance=params.get("distance") if params.get("distance") is not None else "?",
            silence=silence(lang),
        )
    ]
    if params.get("phone"):
        lines.append(text(lang, "doctor.alert.phone", phone=params["phone"]))
    if escalated or (view is not None and view.escalated):
        lines.append(text(lang, "doctor.alert.escalated"))
    if view is not None:
        if view.acknowledged:
            lines.append(text(lang, "doctor.alert.acknowledged"))
        if view.called:
            lines.append(text(lang, "doctor.alert.called"))
        if view.resolved:
            lines.append(text(lang, "doctor.alert.resolved"))
        elif view.closed_kind:
            lines.append(text(lang, f"doctor.alert.ended.{view.closed_kind}"))
    return "\n".join(lines)


def alert_keyboard(
    episode_id: int, lang: str, view: EpisodeView | None = None
) -> InlineKeyboardMarkup | None:
    """Acknowledge, called, resolve; each button goes once it no longer applies."""
    if view is not None and (view.resolved or view.closed_kind):
        return None
    wanted = [
        (Action.ACKNOWLEDGE, "doctor.alert.button_ack", view is None or not view.acknowledged),
        (Action.CALLED, "doctor.alert.button_called", view is None or not view.called),
        (Action.RESOLVE, "doctor.alert.button_resolve", True),
    ]
    row = [
        InlineKeyboardButton(
            text=text(lang, key),
            callback_data=AlertAction(action=action.value, episode=episode_id).pack(),
        )
        for action, key, show in wanted
        if show
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


def closed_text(params: dict[str, Any], lang: str, tz: ZoneInfo) -> str:
    return text(
        lang,
        f"doctor.closed.{params['kind']}",
        code=params["code"],
        time=local_clock(datetime.fromisoformat(params["at"]), tz),
        opened=text(lang, f"doctor.kind.{params['opened_kind']}"),
    )


def patient_text(params: dict[str, Any], lang: str) -> str:
    distance = params.get("distance")
    return text(
        lang,
        f"quarantine.patient.{params['kind']}",
        distance=distance if distance else "?",
        silence=silence(lang),
    )
