"""The Daily indicators page: a form for the figures no system feeds, their history, and
a CSV export whose cells cannot run as spreadsheet formulas."""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web

from admin.panel import CITY_TIMEZONE, add_route, render_page, session_of
from admin.templating import csv_download
from services.indicators import INDICATORS, IndicatorError, IndicatorService, parse_value

INDICATOR_SERVICE: web.AppKey[IndicatorService] = web.AppKey("indicators", IndicatorService)
ROLES = frozenset({"analyst"})


async def _page(
    request: web.Request,
    *,
    day: str = "",
    entered: dict[str, str] | None = None,
    error: str = "",
    notice: str = "",
) -> web.Response:
    history = await request.app[INDICATOR_SERVICE].history()
    today = datetime.now(request.app[CITY_TIMEZONE]).date().isoformat()
    chosen = day or today
    if entered is None:  # the chosen day's stored figures, to edit
        stored = next((h.values for h in history if h.day.isoformat() == chosen), {})
        entered = {k: str(v) for k, v in stored.items()}
    return render_page(
        request,
        "panel/indicators.html",
        indicators=INDICATORS,
        history=history,
        day=chosen,
        entered=entered,
        error=error,
        notice=notice,
    )


async def indicators_page(request: web.Request) -> web.Response:
    return await _page(request, day=request.query.get("day", "")[:10])


async def save(request: web.Request) -> web.Response:
    form = await request.post()
    entered = {name: str(form.get(name, ""))[:40] for name in INDICATORS}
    raw_day = str(form.get("day", ""))[:10]
    try:
        day = date.fromisoformat(raw_day)
        if day > datetime.now(request.app[CITY_TIMEZONE]).date():
            raise IndicatorError("the day cannot be in the future")
        values = {}
        for name, raw in entered.items():
            value = parse_value(name, raw)
            if value is not None:
                values[name] = value
        if not values:
            raise IndicatorError("enter at least one figure")
        changed = await request.app[INDICATOR_SERVICE].save(
            day, values, actor=session_of(request).user.username
        )
    except ValueError as error:
        message = str(error) if isinstance(error, IndicatorError) else "choose a day"
        return await _page(
            request, day=raw_day, entered=entered, error=message[0].upper() + message[1:] + "."
        )
    return await _page(request, day=raw_day, notice=f"Saved {changed} figure(s) for {day}.")


async def export(request: web.Request) -> web.Response:
    history = await request.app[INDICATOR_SERVICE].history(days=3660)
    return csv_download(
        "daily-indicators.csv",
        ["day", *INDICATORS],
        (
            [figures.day.isoformat()] + [figures.values.get(name, "") for name in INDICATORS]
            for figures in history
        ),
    )


def setup_indicators_pages(app: web.Application, indicators: IndicatorService) -> None:
    app[INDICATOR_SERVICE] = indicators
    add_route(app, "GET", "/indicators", indicators_page, roles=ROLES, title="Daily indicators")
    add_route(app, "POST", "/indicators", save, roles=ROLES)
    add_route(app, "GET", "/indicators.csv", export, roles=ROLES)
