"""Texts of the messages the outbox carries, rendered in the recipient's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup

from flows.hotline import ticket_keyboard
from flows.news.handlers import stop_keyboard
from flows.quarantine.alerts import alert_keyboard, alert_text, closed_text, patient_text
from flows.quarantine.keyboards import home_confirm_keyboard
from presentation.formatting import local_clock, local_time
from presentation.i18n import LANGUAGES, text
from presentation.keys import COLOUR_NAMES, COLOUR_NEXT, RESULTS, STATUS_REASONS
from presentation.rules import HOME_RADIUS, green_validity


class UnknownNotice(KeyError):
    pass


# Sent before other notices when a bot's queue is long: a doctor's alert, a hotline
# ticket or message someone is waiting on.
URGENT_KINDS = frozenset(
    {
        "quarantine_alert",
        "quarantine_escalation",
        "hotline_ticket",
        "hotline_from_citizen",
        "hotline_reply",
        "ambulance_cluster",
    }
)
# What may go out as a paid broadcast (TELEGRAM_PAID_BROADCAST): notices to many people.
BROADCAST_KINDS = frozenset(
    {"exposure", "exposure_retracted", "own_result", "status_changed", "news", "news_urgent"}
)


# Kinds that come in pairs rendered alike, each with its own text.
_PAIRED_KEYS = {
    "exposure": "notices.exposure",
    "exposure_retracted": "notices.exposure_retracted",
    "hotline_taken": "notices.hotline_taken",
    "hotline_closed": "notices.hotline_closed",
}


@dataclass(frozen=True)
class Notice:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


def _status_notice(kind: str, params: dict[str, Any], lang: str, tz: ZoneInfo) -> str:
    """A result of the person's own, or a change of their colour: the colour now, why and
    until when, as the status card says it."""
    colour = params["colour"]
    lines = []
    if kind == "own_result":
        lines.append(
            text(
                lang,
                "notices.own_result",
                result=text(lang, RESULTS[params["result"]]),
                sampled=local_time(datetime.fromisoformat(params["sampled_at"]), tz),
            )
        )
    else:
        lines.append(text(lang, "notices.status_changed"))
    now_line = text(lang, "notices.colour_now", colour=text(lang, COLOUR_NAMES[colour]))
    if params.get("until"):
        key = "status.valid_until" if colour == "green" else "status.isolation_until"
        until = local_time(datetime.fromisoformat(params["until"]), tz)
        now_line += "\n" + text(lang, key, time=until)
    lines.append(now_line)
    lines.append(
        text(lang, STATUS_REASONS[params["reason"]], laboratory=params["laboratory"] or "—")
    )
    lines.append(text(lang, COLOUR_NEXT[colour], hours=green_validity(lang)))
    return "\n\n".join(lines)


def render_notice(kind: str, params: dict[str, Any], lang: str, tz: ZoneInfo) -> Notice:
    if kind in ("exposure", "exposure_retracted"):
        start = local_time(datetime.fromisoformat(params["start"]), tz)
        end = local_time(datetime.fromisoformat(params["end"]), tz)
        return Notice(text(lang, _PAIRED_KEYS[kind], venue=params["venue"], start=start, end=end))
    if kind in ("own_result", "status_changed"):
        return Notice(_status_notice(kind, params, lang, tz))
    if kind == "staff_checkout":
        return Notice(text(lang, "notices.staff_checkout", venue=params["venue"]))
    if kind == "staff_checkin":
        key = "notices.staff_checkin" if params["admitted"] else "notices.staff_lookup"
        return Notice(text(lang, key, venue=params["venue"]))
    if kind == "venue_verified":
        return Notice(text(lang, "notices.venue_verified", venue=params["venue"]))
    if kind == "venue_unverified":
        return Notice(
            text(lang, "notices.venue_unverified", venue=params["venue"], reason=params["reason"])
        )
    if kind == "account_moved":
        return Notice(text(lang, "notices.account_moved", iin=params["iin"]))
    if kind == "dispute_resolved":
        key = "notices.dispute_upheld" if params["upheld"] else "notices.dispute_rejected"
        return Notice(text(lang, key, id=params["id"], note=params["note"]))
    if kind in ("quarantine_alert", "quarantine_escalation"):
        escalated = kind == "quarantine_escalation"
        return Notice(
            alert_text(params, lang, tz, escalated=escalated),
            alert_keyboard(int(params["episode"]), lang),
        )
    if kind == "quarantine_closed":
        return Notice(closed_text(params, lang, tz))
    if kind == "hotline_ticket":
        return Notice(
            text(lang, "agent.ticket", number=params["id"], question=params["question"] or "—"),
            ticket_keyboard(lang, int(params["id"]), "take"),
        )
    if kind == "hotline_from_citizen":
        return Notice(
            text(lang, "notices.hotline_from_citizen", number=params["id"], text=params["text"]),
            ticket_keyboard(lang, int(params["id"]), "close"),
        )
    if kind in ("hotline_taken", "hotline_closed"):
        return Notice(text(lang, _PAIRED_KEYS[kind], number=params["id"]))
    if kind == "hotline_reply":
        return Notice(text(lang, "notices.hotline_reply", text=params["text"]))
    if kind == "quarantine_declined":
        return Notice(text(lang, "doctor.declined", code=params["code"]))
    if kind == "quarantine_case_closed":
        return Notice(text(lang, "doctor.case_closed", code=params["code"]))
    if kind == "quarantine_patient":
        return Notice(patient_text(params, lang))
    if kind == "quarantine_live_ending":
        until = local_clock(datetime.fromisoformat(params["until"]), tz)
        return Notice(text(lang, "quarantine.live_ending", until=until))
    if kind == "quarantine_confirm_home":
        accuracy = params.get("accuracy")
        body = text(lang, "quarantine.confirm_home", radius=HOME_RADIUS)
        if accuracy is not None:
            body += "\n" + text(lang, "quarantine.accuracy", accuracy=accuracy)
        return Notice(body, home_confirm_keyboard(lang))
    if kind == "ambulance_cluster":
        return Notice(
            text(
                lang,
                "ambulance.cluster_alert",
                cluster=params["cluster"],
                calls=params["calls"],
                first=local_time(datetime.fromisoformat(params["first"]), tz),
                last=local_time(datetime.fromisoformat(params["last"]), tz),
                place=f"{params['latitude']:.3f}, {params['longitude']:.3f}",
            )
        )
    if kind in ("news", "news_urgent", "news_channel"):
        return news_notice(kind, params, lang)
    raise UnknownNotice(kind)


def news_notice(kind: str, params: dict[str, Any], lang: str) -> Notice:
    """A news item as Telegram shows it: to a subscriber in their language with the
    button that stops the news (an urgent one headed with its district); to the channel
    in every language, one after the other. ``params["texts"]``: the item's texts."""
    texts = params["texts"]
    if kind == "news_channel":
        return Notice("\n\n— — —\n\n".join(texts[code] for code in LANGUAGES))
    body = texts[lang]
    if kind == "news_urgent":
        body = text(lang, "news.urgent", district=params["district"]) + "\n\n" + body
    return Notice(body, stop_keyboard(lang))
