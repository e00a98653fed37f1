"""The Situation centre: today's figures with their trend, charts over the last weeks and
the calls heat map, all from the hourly and daily roll-ups."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from admin.ambulance_pages import hospital_figures
from admin.brigades_pages import brigade_figures
from admin.charts import Series, bar_chart, sparkline
from admin.feeds_pages import feed_chart
from admin.hotline_pages import call_topic_titles
from admin.panel import CITY_TIMEZONE, add_route, audited_page, panel_audit
from admin.templating import csv_download
from services.situation import Situation, SituationCentre

SITUATION: web.AppKey[SituationCentre] = web.AppKey("situation", SituationCentre)
ROLES = frozenset({"analyst", "epidemiologist"})


def _moving_average(values: list[int], days: int = 7) -> list[float | None]:
    return [
        sum(values[i - days + 1 : i + 1]) / days if i >= days - 1 else None
        for i in range(len(values))
    ]


def _charts(s: Situation, tz: ZoneInfo) -> dict[str, Markup]:
    days = [d.strftime("%d %b") for d in s.days]
    topics = call_topic_titles()
    return {
        "new_cases": bar_chart(
            days,
            [Series("new cases", s.new_cases, "#c62828")],
            [Series("7-day average", _moving_average(s.new_cases), "#1d2733")],
            element_id="chart-new-cases",
            caption="new cases per day",
        ),
        "pcr_tests": bar_chart(
            days,
            [Series(lab, values) for lab, values in s.tests_by_lab.items()],
            [Series("capacity", s.lab_capacity, "#1d2733")],
            element_id="chart-pcr-tests",
            caption="PCR tests per laboratory and day against capacity",
        ),
        "quarantine": bar_chart(
            days,
            [],
            [
                Series("at home", s.at_home, "#ef6c00"),
                Series("in hospital", s.in_hospital, "#8e24aa"),
            ],
            element_id="chart-quarantine",
            caption="people in home quarantine and in hospital",
        ),
        "checkins": bar_chart(
            [h.astimezone(tz).strftime("%H:00") for h in s.checkin_hours],
            [
                Series("admitted", s.checkins_by_hour.get("admitted", []), "#2e7d32"),
                Series("refused", s.checkins_by_hour.get("refused", []), "#c62828"),
            ],
            element_id="chart-checkins",
            caption="check-ins per hour, last 48 hours",
        ),
        "violations": bar_chart(
            days,
            [Series(kind.replace("_", " "), v) for kind, v in s.violations_by_kind.items()],
            element_id="chart-violations",
            caption="quarantine violations per day by kind",
        ),
        "calls": bar_chart(
            days,
            [Series(topics.get(topic, topic), v) for topic, v in s.calls_by_topic.items()],
            element_id="chart-calls",
            caption="hotline calls per day by topic",
        ),
        "traffic": bar_chart(
            days,
            [Series("checkpoint passings", s.passings, "#546e7a")],
            [Series("contacts registered", s.contacts, "#00838f")],
            element_id="chart-traffic",
            caption="checkpoint passings and contacts registered per day",
        ),
        **{
            f"feed_{name}": feed_chart(series, s.quarantine_zones, element_id=f"chart-feed-{name}")
            for name, series in s.feeds.items()
            if series.spec.on_situation
        },
    }


_drawn: dict[int, tuple[Situation, dict[str, Markup]]] = {}


def _charts_of(situation: Situation, tz: ZoneInfo) -> dict[str, Markup]:
    """The charts of these figures, drawn once however many people look at them."""
    drawn = _drawn.get(id(situation))
    if drawn is None or drawn[0] is not situation:
        _drawn.clear()
        drawn = _drawn[id(situation)] = (situation, _charts(situation, tz))
    return drawn[1]


async def situation_page(request: web.Request) -> web.Response:
    tz = request.app[CITY_TIMEZONE]
    situation = await request.app[SITUATION].current(datetime.now(tz))
    peak = max((max(row) for row in situation.calls.by_district_hour.values()), default=0)
    return await audited_page(
        request,
        "situation.view",
        {},
        "panel/situation.html",
        s=situation,
        charts=_charts_of(situation, tz),
        sparkline=sparkline,
        counts=situation.calls,
        peak=max(peak, 1),
        tz=tz,
        hospitals=await hospital_figures(request),
        brigade_figures=await brigade_figures(request),
    )


async def export(request: web.Request) -> web.Response:
    """The daily figures of the page's window, the feeds' among them, a day a row."""
    tz = request.app[CITY_TIMEZONE]
    situation = await request.app[SITUATION].current(datetime.now(tz))
    header, rows = situation.table()
    await panel_audit(request, "situation.export", {})
    return csv_download("situation.csv", header, rows)


def setup_situation_pages(app: web.Application, situation: SituationCentre) -> None:
    app[SITUATION] = situation
    add_route(app, "GET", "/situation", situation_page, roles=ROLES, title="Situation centre")
    add_route(app, "GET", "/situation.csv", export, roles=ROLES)
