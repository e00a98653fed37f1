"""The situation centre's figures, all from the roll-ups and the daily indicators (never
from the raw event tables, so the page costs the same with ten million visits as with
ten)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.hotline import CallCounts, call_counts
from services.indicators import IndicatorService
from services.rollups import Rollups

WINDOW_DAYS = 60
SPARK_DAYS = 14
CHECKIN_HOURS = 48
HEATMAP_DAYS = 7
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
    """A figure at a glance: today's value, yesterday's, the week before's average."""

    key: str
    title: str
    today: float | None
    yesterday: float | None
    week_average: float | None
    trend: list[float]
    note: str = ""
    rising_is_bad: bool = True

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
    key: str, title: str, values: list[float], *, note: str = "", rising_is_bad: bool = True
) -> Tile:
    week = values[-8:-1]
    return Tile(
        key,
        title,
        values[-1],
        values[-2],
        sum(week) / len(week) if week else None,
        values[-SPARK_DAYS:],
        note,
        rising_is_bad,
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
        rollups = self.rollups
        today = now.astimezone(rollups.tz).date()
        first = today - timedelta(days=WINDOW_DAYS - 1)
        daily = await rollups.daily(DAILY_METRICS, first, today)
        entered = await self.indicators.series(
            ["beds_occupied", "beds_total", "lab_capacity"], first, today
        )
        opened = daily["quarantine_opened"].total()
        closed = daily["quarantine_closed"].total()
        level = await rollups.total_before(
            "quarantine_opened", first
        ) - await rollups.total_before("quarantine_closed", first)
        at_home: list[int] = []
        for came, left in zip(opened, closed, strict=True):
            level += came - left
            at_home.append(level)
        hours, checkins = await rollups.hourly(
            "checkins", now - timedelta(hours=CHECKIN_HOURS - 1), now
        )
        in_hospital = [_number(v) for v in entered["beds_occupied"]]
        capacity = [_number(v) for v in entered["lab_capacity"]]
        new_cases = daily["new_cases"].total()
        tests = daily["pcr_tests"].total()
        capacity_today = _last_known(capacity)
        beds_total = _last_known([_number(v) for v in entered["beds_total"]])
        hospital_now = _last_known(in_hospital)
        tiles = [
            _tile("new-cases", "New cases", [float(v) for v in new_cases]),
            _tile(
                "pcr-tests",
                "PCR tests",
                [float(v) for v in tests],
                note=f"{tests[-1] / capacity_today:.0%} of capacity" if capacity_today else "",
                rising_is_bad=False,
            ),
            _tile("at-home", "In home quarantine", [float(v) for v in at_home]),
            Tile(
                "in-hospital",
                "In hospital",
                hospital_now,
                in_hospital[-2],
                None,
                [v or 0.0 for v in in_hospital[-SPARK_DAYS:]],
                note=(
                    f"of {beds_total:,.0f} beds" if beds_total and hospital_now is not None else ""
                )
                or ("entered by hand on Daily indicators" if hospital_now is None else ""),
            ),
            _tile(
                "contacts", "Contacts registered", [float(v) for v in daily["contacts"].total()]
            ),
            _tile(
                "checkins",
                "Check-ins",
                [float(v) for v in daily["checkins"].total()],
                rising_is_bad=False,
            ),
            _tile(
                "violations",
                "Quarantine violations",
                [float(v) for v in daily["violations"].total()],
            ),
            _tile("calls", "Hotline calls", [float(v) for v in daily["calls_topic"].total()]),
        ]
        return Situation(
            today=today,
            days=daily["new_cases"].days,
            refreshed_at=await rollups.refreshed_at(),
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
            calls=await call_counts(rollups, since=now - timedelta(days=HEATMAP_DAYS), until=now),
        )
