"""The situation centre's figures, all from the roll-ups and the daily indicators (never
from the raw event tables, so the page costs the same with ten million visits as with
ten)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.feeds.figures import FeedSeries, biggest, feed_series, quarantine_zones_by_day
from services.hotline import CallCounts, call_counts
from services.indicators import IndicatorService
from services.rollups import DailySeries, Rollups

WINDOW_DAYS = 60
SPARK_DAYS = 14
CHECKIN_HOURS = 48
HEATMAP_DAYS = 7
# Counts that grow through the day: (metric, (tile key, title, whether a rise is bad)).
COUNTED: list[tuple[str, tuple[str, str, bool]]] = [
    ("new_cases", ("new-cases", "New cases", True)),
    ("pcr_tests", ("pcr-tests", "PCR tests", False)),
    ("contacts", ("contacts", "Contacts registered", True)),
    ("checkins", ("checkins", "Check-ins", False)),
    ("violations", ("violations", "Quarantine violations", True)),
    ("calls_topic", ("calls", "Hotline calls", True)),
]
DAILY_METRICS = [
    "new_cases",
    "pcr_tests",
    "contacts",
    "quarantine_opened",
    "quarantine_closed",
    "violations",
    "calls_topic",
    "checkins",
    "passings",
]


@dataclass(frozen=True)
class Tile:
    """A figure at a glance: today's value, yesterday's (by the same hour for counts that
    grow through the day), the week before's average."""

    key: str
    title: str
    today: float | None
    yesterday: float | None
    week_average: float | None
    trend: list[float]
    note: str = ""
    rising_is_bad: bool = True
    by_this_hour: bool = False  # yesterday is counted up to this hour, not the whole day

    @property
    def change(self) -> float | None:
        if self.today is None or self.yesterday is None:
            return None
        return self.today - self.yesterday


@dataclass(frozen=True)
class Situation:
    today: date
    days: list[date]
    refreshed_at: datetime | None
    tiles: list[Tile]
    new_cases: list[int]
    tests_by_lab: dict[str, list[int]]
    lab_capacity: list[float | None]
    at_home: list[int]
    in_hospital: list[float | None]
    contacts: list[int]
    checkin_hours: list[datetime]
    checkins_by_hour: dict[str, list[int]]
    violations_by_kind: dict[str, list[int]]
    calls_by_topic: dict[str, list[int]]
    passings: list[int]
    calls: CallCounts
    feeds: dict[str, FeedSeries]
    quarantine_zones: list[int]

    def table(self) -> tuple[list[str], list[list[object]]]:
        """The daily figures as the CSV export's header and rows, a day a row."""
        columns: list[tuple[str, list[int] | list[float | None]]] = [
            ("new_cases", self.new_cases),
            ("pcr_tests", DailySeries(self.days, self.tests_by_lab).total()),
            ("lab_capacity", self.lab_capacity),
            ("at_home", self.at_home),
            ("in_hospital", self.in_hospital),
            ("contacts", self.contacts),
            ("passings", self.passings),
            ("quarantine_zones", self.quarantine_zones),
        ]
        for series in self.feeds.values():
            for figure in series.spec.figures:
                columns.append((f"{series.spec.name}_{figure.name}", series.totals[figure.name]))
        rows: list[list[object]] = [
            [day.isoformat(), *("" if v[i] is None else v[i] for _, v in columns)]
            for i, day in enumerate(self.days)
        ]
        return ["day", *(name for name, _ in columns)], rows


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _tile(
    key: str,
    title: str,
    values: list[float],
    *,
    yesterday: float | None = None,
    note: str = "",
    rising_is_bad: bool = True,
) -> Tile:
    """``yesterday``: yesterday's count by this hour (else its whole day, for levels)."""
    week = values[-8:-1]
    return Tile(
        key,
        title,
        values[-1],
        values[-2] if yesterday is None else yesterday,
        sum(week) / len(week) if week else None,
        values[-SPARK_DAYS:],
        note,
        rising_is_bad,
        yesterday is not None,
    )


def _last_known(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def _feed_tile(series: FeedSeries, today: date) -> Tile:
    """A feed's headline figure; a state of the day (pharmacies open) as of the last day
    it was given, with that day named when it is not today."""
    spec = series.spec
    figure = spec.tile_figure
    values = [float(v) for v in series.headline]
    notes = []
    if spec.name == "budget":
        spent, planned = sum(series.totals["spent"]), sum(series.totals["planned"])
        if planned:
            notes.append(f"{spent / planned:.0%} of plan over {len(series.days)} days")
    elif len(spec.figures) > 1:
        other = spec.figures[1]
        shown = series.on(other.name, series.last_day if spec.level else today)
        if shown is not None:
            notes.append(f"{other.title.lower()}: {shown:,}")
    if series.last_day is None:
        notes = ["no rows imported yet"]
    elif spec.level and series.last_day != today:
        notes.append(f"as of {series.last_day.strftime('%d %b')}")
    tile = _tile(
        f"feed-{spec.name}",
        f"{spec.title}: {figure.title.lower()}",
        values,
        note="; ".join(notes),
        rising_is_bad=spec.rising_is_bad,
    )
    if spec.level and series.last_day is not None:
        latest = series.on(figure.name, series.last_day)
        return replace(tile, today=None if latest is None else float(latest))
    return tile


class SituationCentre:
    def __init__(self, rollups: Rollups, indicators: IndicatorService) -> None:
        self.rollups = rollups
        self.indicators = indicators
        self._last: tuple[tuple[object, ...], Situation] | None = None

    async def current(self, now: datetime) -> Situation:
        """The figures, recomputed only when they can have changed: after a roll-up run, a
        change of the daily indicators, or a new hour (the windows move by whole hours).
        A wall screen reloading every few seconds costs one small query a time."""
        row = await self.rollups.pool.fetchrow(
            "SELECT (SELECT refreshed_at FROM rollup_state) AS rolled,"
            " (SELECT max(entered_at) FROM daily_indicators) AS entered"
        )
        assert row is not None
        hour = now.astimezone(self.rollups.tz).replace(minute=0, second=0, microsecond=0)
        key = (row["rolled"], row["entered"], hour)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        situation = await self.load(now)
        self._last = (key, situation)
        return situation

    async def load(self, now: datetime) -> Situation:
        """Every figure of the page; the queries run side by side on the pool."""
        rollups = self.rollups
        today = now.astimezone(rollups.tz).date()
        first = today - timedelta(days=WINDOW_DAYS - 1)
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        day_start = datetime(today.year, today.month, today.day, tzinfo=rollups.tz)
        (
            (daily, entered, came_before, left_before),
            (checked_in, so_far, refreshed_at, calls),
        ) = await asyncio.gather(
            asyncio.gather(
                rollups.daily(DAILY_METRICS, first, today),
                self.indicators.series(
                    ["beds_occupied", "beds_total", "lab_capacity"], first, today
                ),
                rollups.total_before("quarantine_opened", first),
                rollups.total_before("quarantine_closed", first),
            ),
            asyncio.gather(
                rollups.hourly("checkins", now - timedelta(hours=CHECKIN_HOURS - 1), now),
                rollups.totals_between(  # yesterday up to the end of this hour
                    [m for m, _ in COUNTED],
                    day_start - timedelta(days=1),
                    hour - timedelta(hours=23),
                ),
                rollups.refreshed_at(),
                call_counts(rollups, since=now - timedelta(days=HEATMAP_DAYS), until=now),
            ),
        )
        feeds = await feed_series(rollups, first, today)
        zones = await quarantine_zones_by_day(rollups, daily["new_cases"].days)
        hours, checkins = checked_in
        opened = daily["quarantine_opened"].total()
        closed = daily["quarantine_closed"].total()
        level = came_before - left_before
        at_home: list[int] = []
        for came, left in zip(opened, closed, strict=True):
            level += came - left
            at_home.append(level)
        in_hospital = [_number(v) for v in entered["beds_occupied"]]
        beds = feeds["beds"]
        if beds.last_day is not None:  # the hospitals' feed, not the figure typed by hand
            in_hospital = [
                float(v) if d <= beds.last_day else None
                for d, v in zip(beds.days, beds.totals["occupied"], strict=True)
            ]
        capacity = [_number(v) for v in entered["lab_capacity"]]
        new_cases = daily["new_cases"].total()
        tests = daily["pcr_tests"].total()
        capacity_today = _last_known(capacity)
        beds_total = _last_known([_number(v) for v in entered["beds_total"]])
        if beds.last_day is not None:
            beds_total = beds.on("beds", beds.last_day) or beds_total
        hospital_now = _last_known(in_hospital)
        days = daily["new_cases"].days
        entered_on = next(
            (d for d, v in zip(days[::-1], in_hospital[::-1], strict=True) if v is not None), None
        )
        tiles = []
        for metric, (key, title, rising_is_bad) in COUNTED:
            values = [float(v) for v in daily[metric].total()]
            note = ""
            if metric == "pcr_tests" and capacity_today:
                note = f"{tests[-1] / capacity_today:.0%} of capacity"
            tiles.append(
                _tile(
                    key,
                    title,
                    values,
                    yesterday=float(so_far[metric]),
                    note=note,
                    rising_is_bad=rising_is_bad,
                )
            )
        tiles.insert(2, _tile("at-home", "In home quarantine", [float(v) for v in at_home]))
        hospital_note = "entered by hand on Daily indicators"
        if hospital_now is not None:
            notes = [f"of {beds_total:,.0f} beds"] if beds_total else []
            if beds.last_day is not None:
                notes.append("from the hospitals' feed")
            if entered_on != today and entered_on is not None:
                notes.append(f"as entered for {entered_on.strftime('%d %b')}")
            hospital_note = "; ".join(notes)
        tiles.insert(
            3,
            Tile(
                "in-hospital",
                "In hospital",
                hospital_now,
                in_hospital[-2],
                None,
                [v or 0.0 for v in in_hospital[-SPARK_DAYS:]],
                note=hospital_note,
            ),
        )
        tiles.extend(
            _feed_tile(series, today)
            for name, series in feeds.items()
            if name != "beds" and series.spec.on_situation
        )
        return Situation(
            today=today,
            days=daily["new_cases"].days,
            refreshed_at=refreshed_at,
            tiles=tiles,
            new_cases=new_cases,
            tests_by_lab=biggest(daily["pcr_tests"].by_key, 6),
            lab_capacity=capacity,
            at_home=at_home,
            in_hospital=in_hospital,
            contacts=daily["contacts"].total(),
            checkin_hours=hours,
            checkins_by_hour=checkins,
            violations_by_kind=biggest(daily["violations"].by_key, 6),
            calls_by_topic=biggest(daily["calls_topic"].by_key, 6),
            passings=daily["passings"].total(),
            calls=calls,
            feeds=feeds,
            quarantine_zones=zones,
        )
