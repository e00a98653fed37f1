"""The situation centre's figures, all from the roll-ups and the daily indicators (never
from the raw event tables, so the page costs the same with ten million visits as with
ten)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.hotline import CallCounts, call_counts
from services.indicators import IndicatorService
from services.rollups import Rollups

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


def _biggest(by_key: dict[str, list[int]], keep: int) -> dict[str, list[int]]:
    """The ``keep`` biggest keys over the period; the rest summed as "other"."""
    ranked = sorted(by_key.items(), key=lambda kv: -sum(kv[1]))
    kept = dict(ranked[:keep])
    rest = [values for _, values in ranked[keep:]]
    if rest:
        kept["other"] = [sum(day) for day in zip(*rest, strict=True)]
    return kept


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
        hours, checkins = checked_in
        opened = daily["quarantine_opened"].total()
        closed = daily["quarantine_closed"].total()
        level = came_before - left_before
        at_home: list[int] = []
        for came, left in zip(opened, closed, strict=True):
            level += came - left
            at_home.append(level)
        in_hospital = [_number(v) for v in entered["beds_occupied"]]
        capacity = [_number(v) for v in entered["lab_capacity"]]
        new_cases = daily["new_cases"].total()
        tests = daily["pcr_tests"].total()
        capacity_today = _last_known(capacity)
        beds_total = _last_known([_number(v) for v in entered["beds_total"]])
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
        return Situation(
            today=today,
            days=daily["new_cases"].days,
            refreshed_at=refreshed_at,
            tiles=tiles,
            new_cases=new_cases,
            tests_by_lab=_biggest(daily["pcr_tests"].by_key, 6),
            lab_capacity=capacity,
            at_home=at_home,
            in_hospital=in_hospital,
            contacts=daily["contacts"].total(),
            checkin_hours=hours,
            checkins_by_hour=checkins,
            violations_by_kind=_biggest(daily["violations"].by_key, 6),
            calls_by_topic=_biggest(daily["calls_topic"].by_key, 6),
            passings=daily["passings"].total(),
            calls=calls,
        )
