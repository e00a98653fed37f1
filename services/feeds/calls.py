"""Calls to the three lines (103 ambulance, 1308 contact centre, 1406) by district and
hour, from the roll-up of the calls feed (issue 22 §3): totals per line, the hours of
day they come in (optionally one hour only), the peak hours and the districts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.feeds.operators import SectorShape, hour_grid, zone_shapes
from services.feeds.specs import LINES
from services.rollups import Rollups

METRIC = "line_calls"


@dataclass(frozen=True)
class CallPicture:
    days: int
    line: str | None  # None: every line
    hour: int | None  # None: every hour
    per_line: dict[str, int]
    by_hour: list[int]  # the chosen line's calls by hour of day
    by_district_hour: dict[str, list[int]]  # the chosen line's, district -> 24
    by_district: list[tuple[str, int]]  # the chosen line's (and hour's), most first
    districts: list[SectorShape]

    @property
    def peak_hours(self) -> list[int]:
        return sorted((h for h in range(24) if self.by_hour[h]), key=lambda h: -self.by_hour[h])[
            :3
        ]

    @property
    def total(self) -> int:
        return sum(self.by_hour)


async def call_picture(
    rollups: Rollups, today: date, *, days: int = 14, line: str | None, hour: int | None
) -> CallPicture:
    """The last ``days`` city days up to ``today``; ``line`` and ``hour`` narrow it."""
    tz = rollups.tz
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=tz)
    hours, by_key = await rollups.hourly(METRIC, since, since + timedelta(days=days))
    grid = hour_grid(tz, hours, by_key)
    per_line = dict.fromkeys(LINES, 0)
    by_district_hour: dict[str, list[int]] = {}
    for key, row in grid.items():
        call_line, _, district = key.partition("|")
        per_line[call_line] = per_line.get(call_line, 0) + sum(row)
        if line is None or call_line == line:
            mine = by_district_hour.setdefault(district, [0] * 24)
            for h in range(24):
                mine[h] += row[h]
    by_hour = [sum(row[h] for row in by_district_hour.values()) for h in range(24)]
    by_district = sorted(
        (
            (district, row[hour] if hour is not None else sum(row))
            for district, row in by_district_hour.items()
        ),
        key=lambda kv: -kv[1],
    )
    return CallPicture(
        days,
        line,
        hour,
        per_line,
        by_hour,
        dict(sorted(by_district_hour.items())),
        [kv for kv in by_district if kv[1]],
        await zone_shapes(rollups, "district"),
    )
