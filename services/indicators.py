"""Daily indicators entered by hand: one value per day and indicator, replaced by a later
entry for the same day (the audit log keeps every change, with who and the old value)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

import asyncpg

from services.audit import record

INDICATORS = {
    "beds_total": "Hospital beds for COVID-19, total",
    "beds_occupied": "Hospital beds occupied",
    "icu_beds_occupied": "Intensive-care beds occupied",
    "lab_capacity": "Laboratory capacity, PCR tests a day",
    "lab_tests_done": "PCR tests done",
    "medical_workers_examined": "Medical workers examined",
    "medical_workers_positive": "Medical workers positive",
    "ambulance_calls": "Ambulance calls",
}


MAX_DECIMALS = 4


class IndicatorError(ValueError):
    pass


@dataclass(frozen=True)
class DayFigures:
    day: date
    values: dict[str, Decimal]


def parse_value(name: str, raw: str) -> Decimal | None:
    """A figure as typed: empty means not entered; otherwise a number of at least 0."""
    text = raw.strip().replace(" ", "").replace(",", ".")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise IndicatorError(f"{INDICATORS[name]}: {raw!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > 10**9:
        raise IndicatorError(f"{INDICATORS[name]}: must be between 0 and 1,000,000,000")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise IndicatorError(f"{INDICATORS[name]}: at most {MAX_DECIMALS} decimal places")
    return value


class IndicatorService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, day: date, values: dict[str, Decimal], *, actor: str) -> int:
        """Store a day's figures in one transaction; returns how many changed."""
        unknown = set(values) - set(INDICATORS)
        if unknown:
            raise IndicatorError("unknown indicators: " + ", ".join(sorted(unknown)))
        changed = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for name, value in values.items():
                old = await conn.fetchval(
                    "SELECT value FROM daily_indicators WHERE day = $1 AND indicator = $2"
                    " FOR UPDATE",
                    day,
                    name,
                )
                if old == value:
                    continue
                await conn.execute(
                    "INSERT INTO daily_indicators (day, indicator, value, entered_by)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (day, indicator) DO UPDATE"
                    " SET value = $3, entered_by = $4, entered_at = now()",
                    day,
                    name,
                    value,
                    actor,
                )
                await record(
                    conn,
                    actor=actor,
                    action="indicators.set",
                    subject=f"{day.isoformat()}:{name}",
                    details={"old": None if old is None else str(old), "new": str(value)},
                )
                changed += 1
        return changed

    async def history(self, *, days: int = 60) -> list[DayFigures]:
        rows = await self.pool.fetch(
            "SELECT day, indicator, value FROM daily_indicators"
            " WHERE day > current_date - $1::int ORDER BY day DESC",
            days,
        )
        by_day: dict[date, dict[str, Decimal]] = {}
        for r in rows:
            by_day.setdefault(r["day"], {})[r["indicator"]] = r["value"]
        return [DayFigures(day, values) for day, values in by_day.items()]

    async def series(
        self, names: list[str], first: date, last: date
    ) -> dict[str, list[Decimal | None]]:
        """Each indicator's value per day from ``first`` to ``last`` (None: not entered)."""
        length = (last - first).days + 1
        values: dict[str, list[Decimal | None]] = {name: [None] * length for name in names}
        rows = await self.pool.fetch(
            "SELECT day, indicator, value FROM daily_indicators"
            " WHERE indicator = ANY($1::text[]) AND day BETWEEN $2 AND $3",
            names,
            first,
            last,
        )
        for r in rows:
            values[r["indicator"]][(r["day"] - first).days] = r["value"]
        return values
