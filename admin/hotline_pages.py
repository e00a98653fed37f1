"""The Hotline page: calls by topic and outcome, a district x hour heat map of calls, the
tickets waiting for an agent, and the questions the FAQ could not answer (with a CSV
export that cannot inject spreadsheet formulas)."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, audited_csv, audited_page
from flows.faq import answers, intent_title
from flows.hotline.call_scripts import scripts, topic_titles
from presentation.i18n import label
from presentation.keys import OUTCOME_NAMES
from services.hotline import HotlineService, Tickets, Unanswered, call_counts, recent_calls
from services.rollups import Rollups

HOTLINE: web.AppKey[HotlineService] = web.AppKey("hotline", HotlineService)
TICKETS: web.AppKey[Tickets] = web.AppKey("tickets", Tickets)
ROLLUPS: web.AppKey[Rollups] = web.AppKey("hotline_rollups", Rollups)
ROLES = frozenset({"analyst", "epidemiologist"})
DAYS = 7


def call_topic_titles() -> dict[str, str]:
    """The hotline's call topics (FAQ intents and call scripts) by their English titles."""
    titles = {intent: entry["title"] for intent, entry in answers("en").items()}
    titles.update(topic_titles("en"))
    return titles


async def hotline_page(request: web.Request) -> web.Response:
    tz = request.app[CITY_TIMEZONE]
    now = datetime.now(tz)
    counts = await call_counts(request.app[ROLLUPS], since=now - timedelta(days=DAYS), until=now)
    peak = max((max(row) for row in counts.by_district_hour.values()), default=0)
    titles = call_topic_titles()
    return await audited_page(
        request,
        "hotline.view",
        {},
        "panel/hotline.html",
        days=DAYS,
        counts=counts,
        peak=max(peak, 1),
        titles=titles,
        intent=lambda name: intent_title("en", name),
        outcome=lambda name: label("en", OUTCOME_NAMES.get(name), name),
        waiting=await request.app[TICKETS].waiting(),
        unanswered=await request.app[HOTLINE].unanswered(limit=100),
        calls=await recent_calls(request.app[HOTLINE].pool),
        scripts=list(scripts().values()),
        tz=tz,
    )


def _unanswered_row(question: Unanswered) -> list[object]:
    confidence = "" if question.confidence is None else f"{question.confidence:.2f}"
    return [question.asked_at, question.language, question.text, question.top_intent, confidence]


async def unanswered_export(request: web.Request) -> web.Response:
    rows = await request.app[HOTLINE].unanswered(limit=100_000)
    return await audited_csv(
        request,
        "hotline.export_unanswered",
        {},
        "unanswered-questions.csv",
        ["asked_at", "language", "text", "closest_intent", "confidence"],
        rows,
        _unanswered_row,
    )


def setup_hotline_pages(
    app: web.Application, hotline: HotlineService, tickets: Tickets, rollups: Rollups
) -> None:
    app[HOTLINE] = hotline
    app[TICKETS] = tickets
    app[ROLLUPS] = rollups
    add_route(app, "GET", "/hotline", hotline_page, roles=ROLES, title="Hotline")
    add_route(app, "GET", "/hotline/unanswered.csv", unanswered_export, roles=ROLES)
