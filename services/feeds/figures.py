"""The feeds' daily figures as the situation centre and the feeds' pages draw them: from
the daily roll-ups, never from the rows themselves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.feeds.specs import FEEDS, FeedSpec
from services.rollups import Rollups

KEYS_SHOWN = 6


@dataclass(frozen=True)
class FeedSeries:
    """One feed over consecutive days: each figure's city total per day, the headline
    figure broken down by the feed's first name, and the last day with any row."""

    spec: FeedSpec
    days: list[date]
    totals: dict[str, list[int]]
    by_key: dict[str, list[int]]
    last_day: date | None

    @property
    def headline(self) -> list[int]:
        return self.totals[self.spec.tile_figure.name]

    def on(self, figure: str, day: date | None) -> int | None:
        """A figure's total on a day within the window (None outside it, or no day)."""
        if day is None or not self.days or not self.days[0] <= day <= self.days[-1]:
            return None
        return self.totals[figure][(day - self.days[0]).days]


def biggest(by_key: dict[str, list[int]], keep: int) -> dict[str, list[int]]:
    """The ``keep`` biggest keys over the period; the rest summed as "other"."""
    ranked = sorted(by_key.items(), key=lambda kv: -sum(kv[1]))
    kept = dict(ranked[:keep])
    rest = [values for _, values in ranked[keep:]]
    if rest:
        kept["other"] = [sum(day) for day in zip(*rest, strict=True)]
    return kept


async def feed_series(rollups: Rollups, first: date, last: date) -> dict[str, FeedSeries]:
    """Every feed's figures from ``first`` to ``last`` (city days, both included)."""
    metrics = [spec.metric(f.name) for spec in FEEDS.values() for f in spec.figures]
    daily, latest = await asyncio.gather(
        rollups.daily(metrics, first, last),
        rollups.pool.fetch(
            "SELECT f.feed, (SELECT max(day) FROM feed_records r WHERE r.feed = f.feed) AS day"
            " FROM unnest($1::text[]) AS f(feed)",
            list(FEEDS),
        ),
    )
    last_days = {r["feed"]: r["day"] for r in latest}
    series = {}
    for spec in FEEDS.values():
        totals = {f.name: daily[spec.metric(f.name)].total() for f in spec.figures}
        by_key = daily[spec.metric(spec.tile_figure.name)].by_key
        series[spec.name] = FeedSeries(
            spec,
            daily[spec.metric(spec.figures[0].name)].days,
            totals,
            biggest(by_key, KEYS_SHOWN),
            last_days.get(spec.name),
        )
    return series


async def quarantine_zones_by_day(rollups: Rollups, days: list[date]) -> list[int]:
    """How many quarantine zones were in force at some time of each day: the quarantine
    dates drawn against the traffic."""
    if not days:
        return []
    tz = rollups.tz
    starts = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in days]
    rows = await rollups.pool.fetch(
        "SELECT d.start, count(z.id) AS zones FROM unnest($1::timestamptz[]) AS d(start)"
        " LEFT JOIN zones z ON z.kind = 'quarantine' AND z.valid_from < d.start + interval '1 day'"
        " AND (z.valid_until IS NULL OR z.valid_until > d.start) GROUP BY d.start",
        starts,
    )
    counts = {r["start"]: r["zones"] for r in rows}
    return [counts.get(start, 0) for start in starts]


def window(today: date, days: int) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today
