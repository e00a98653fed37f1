"""How alerts and patients' notices read: one place for the outbox and for the doctor's
buttons, which redraw the alert after each press."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from flows.formatting import local_clock, local_time
from flows.i18n import text
from services.quarantine import Action, AlertKind, CloseKind, EpisodeView

# Each kind's text key, written out so that a missing text is found by a test
# (tests/unit/test_quarantine_texts.py), not by a doctor waiting for an alert.
ALERT_TEXTS: dict[AlertKind, str] = {
    AlertKind.LEFT_HOME: "doctor.alert.left_home",
    AlertKind.SIGNAL_LOST: "doctor.alert.signal_lost",
    AlertKind.LIVE_ENDED: "doctor.alert.live_ended",
    AlertKind.SHARING_STOPPED: "doctor.alert.sharing_stopped",
    AlertKind.NO_FIX: "doctor.alert.no_fix",
    AlertKind.INACCURATE: "doctor.alert.inaccurate",
    AlertKind.LEFT_CHAT: "doctor.alert.left_chat",
}
"""The doctor's alert (and its escalation) when an episode opens."""

KIND_NAMES: dict[AlertKind, str] = {
    AlertKind.LEFT_HOME: "doctor.kind.left_home",
    AlertKind.SIGNAL_LOST: "doctor.kind.signal_lost",
    AlertKind.LIVE_ENDED: "doctor.kind.live_ended",
    AlertKind.SHARING_STOPPED: "doctor.kind.sharing_stopped",
    AlertKind.NO_FIX: "doctor.kind.no_fix",
    AlertKind.INACCURATE: "doctor.kind.inaccurate",
    AlertKind.LEFT_CHAT: "doctor.kind.left_chat",
}
"""A kind's short name, in lists of cases and in "alert … is over"."""

PATIENT_TEXTS: dict[AlertKind | CloseKind, str] = {
    AlertKind.LEFT_HOME: "quarantine.patient.left_home",
    AlertKind.SIGNAL_LOST: "quarantine.patient.signal_lost",
    AlertKind.LIVE_ENDED: "quarantine.patient.live_ended",
    AlertKind.SHARING_STOPPED: "quarantine.patient.sharing_stopped",
    AlertKind.NO_FIX: "quarantine.patient.no_fix",
    AlertKind.INACCURATE: "quarantine.patient.inaccurate",
    AlertKind.LEFT_CHAT: "quarantine.patient.left_chat",
    CloseKind.BACK_HOME: "quarantine.patient.back_home",
    CloseKind.SIGNAL_BACK: "quarantine.patient.signal_back",
    CloseKind.CASE_CLOSED: "quarantine.patient.case_closed",
}
"""The patient's notice when an episode opens, when it closes by itself, and when the
case closes (``sharing_stopped`` also goes out as soon as the share stops)."""

CLOSED_TEXTS: dict[CloseKind, str] = {
    CloseKind.BACK_HOME: "doctor.closed.back_home",
    CloseKind.SIGNAL_BACK: "doctor.closed.signal_back",
}
"""The doctor's message when an episode closes by itself."""

ENDED_TEXTS: dict[CloseKind, str] = {
    CloseKind.BACK_HOME: "doctor.alert.ended.back_home",
    CloseKind.SIGNAL_BACK: "doctor.alert.ended.signal_back",
    CloseKind.RESOLVED: "doctor.alert.ended.resolved",
    CloseKind.CASE_CLOSED: "doctor.alert.ended.case_closed",
    CloseKind.SUPERSEDED: "doctor.alert.ended.superseded",
}
"""The line an alert's message gets once its episode is over, however it ended."""


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
            ALERT_TEXTS[AlertKind(params["kind"])],
            code=params["code"],
            time=local_time(at, tz),
            distance=params.get("distance") if params.get("distance") is not None else "?",
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
            lines.append(text(lang, ENDED_TEXTS[CloseKind(view.closed_kind)]))
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
        CLOSED_TEXTS[CloseKind(params["kind"])],
        code=params["code"],
        time=local_clock(datetime.fromisoformat(params["at"]), tz),
        opened=text(lang, KIND_NAMES[AlertKind(params["opened_kind"])]),
    )


def patient_text(params: dict[str, Any], lang: str) -> str:
    distance = params.get("distance")
    kind: AlertKind | CloseKind
    try:
        kind = AlertKind(params["kind"])
    except ValueError:
        kind = CloseKind(params["kind"])
    return text(lang, PATIENT_TEXTS[kind], distance=distance if distance else "?")
