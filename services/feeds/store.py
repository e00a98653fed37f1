"""The feeds' import, their push-API sources and what the panel reads of them.

The import is the registers' (services/registry.py): the same row loop, audit rows at
both ends, rejected-rows report and chunked transactions; only the row check (a feed's
typed columns, services/feeds/specs.py) and the store differ. A row already stored for
the same feed, day, hour and names with other figures is replaced (counted as
corrected); with the same figures it is a duplicate. Each chunk marks the hours it
touched for the roll-ups in its own transaction, so the situation centre's daily figures
follow within a minute.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from shapely.geometry import shape

from geofence.zones import ZoneIndex
from services.feeds.specs import (
    FEEDS,
    POINT_COLUMNS,
    FeedSpec,
    Placer,
    parse_row,
    per_subscriber,
)
from services.labs import key_hash
from services.registry import RegistryImporter
from services.registry_rows import ImportReport, Rejected, RowParser

Chunk = list[tuple[Any, ...]]  # parsed rows (services/feeds/specs.py parse_row)

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_feed (line int, day date, hour smallint,"
    " keys text[], at timestamptz, figures text) ON COMMIT DELETE ROWS"
)
# A row twice in one chunk: its last line wins, the earlier ones are duplicates.
_MERGE = """
WITH latest AS (
    SELECT DISTINCT ON (day, hour, keys) line, day, hour, keys, at, figures::jsonb AS figures
      FROM stage_feed ORDER BY day, hour, keys, line DESC
), merged AS (
    INSERT INTO feed_records AS r (feed, day, hour, keys, at, figures, source)
    SELECT $1, day, hour, keys, at, figures, $2 FROM latest
    ON CONFLICT (feed, day, hour, keys) DO UPDATE
       SET figures = EXCLUDED.figures, source = EXCLUDED.source, imported_at = now()
     WHERE r.figures IS DISTINCT FROM EXCLUDED.figures
    RETURNING (xmax = 0) AS inserted, at
), marked AS (
    INSERT INTO rollup_dirty (metric, hour)
    SELECT DISTINCT m.metric, date_trunc('hour', merged.at, 'UTC')
      FROM merged CROSS JOIN unnest($3::text[]) AS m(metric)
)
SELECT count(*) FILTER (WHERE inserted) AS added, count(*) FILTER (WHERE NOT inserted) AS changed
  FROM merged
"""


class FeedImporter(RegistryImporter):
    """The registers' importer for the feeds' rows (``kind`` is a feed's name)."""

    def __init__(self, pool: asyncpg.Pool, *, timezone: str = "Asia/Almaty") -> None:
        # No statuses, no exposure search: a feed holds figures, never people.
        self.pool = pool
        self.tz = ZoneInfo(timezone)
        self._districts: tuple[tuple[int, ...], Placer] | None = None

    def _report(self, kind: str) -> ImportReport:
        spec = FEEDS[kind]
        if spec.point:
            return _PointlessReport(kind, columns=spec.columns)
        return ImportReport(kind, columns=spec.columns)

    async def import_rows(
        self, kind: str, rows: Iterable[tuple[int, list[str] | None]], **kwargs: Any
    ) -> ImportReport:
        """As the registers' import; an aggregates-only feed's rows are read twice (``rows``
        must be re-iterable: a list, a CsvSource): a file with any per-subscriber row is
        refused whole before anything is stored, that row's line reported without its
        content (it is personal data). A feed's point (a call's) is placed in the district
        that contains it, among the districts in force now."""
        spec = FEEDS[kind]
        if spec.aggregates_only and iter(rows) is rows:
            raise TypeError("an aggregates-only feed is read twice: pass a re-iterable")
        if spec.point:
            await self._load_districts()
            rows = _Padded(rows, len(spec.columns))
        if spec.aggregates_only:
            line = await asyncio.to_thread(_first_per_subscriber, spec, rows)
            if line is not None:
                refused = Rejected(line, "operator.per_subscriber", [])
                return await super().import_rows(kind, (), refused=[refused], **kwargs)
        return await super().import_rows(kind, rows, **kwargs)

    def _parser(self, kind: str) -> tuple[RowParser, int]:
        spec = FEEDS[kind]
        place = self._districts[1] if spec.point and self._districts else None
        return partial(parse_row, spec, place=place), len(spec.columns)

    async def _load_districts(self) -> None:
        """The districts in force, indexed for placing points (rebuilt when they change)."""
        rows = await self.pool.fetch(
            "SELECT id, name, geometry FROM zones WHERE kind = 'district'"
            " AND valid_until IS NULL ORDER BY id"
        )
        ids = tuple(r["id"] for r in rows)
        if self._districts is None or self._districts[0] != ids:
            self._districts = (ids, district_placer(rows))

    async def _store(
        self, kind: str, chunk: Chunk, source: str, report: ImportReport, lines: list[int]
    ) -> None:
        spec = FEEDS[kind]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_STAGE)
            await conn.copy_records_to_table(
                "stage_feed",
                # as JSON text: COPY's binary format has no encoder for jsonb
                records=[
                    (line, *row[:4], json.dumps(row[4]))
                    for line, row in zip(lines, chunk, strict=True)
                ],
                columns=["line", "day", "hour", "keys", "at", "figures"],
            )
            summary = await conn.fetchrow(_MERGE, kind, source, spec.metrics)
        assert summary is not None
        report.accepted += summary["added"]
        report.corrected += summary["changed"]
        report.duplicates += len(chunk) - summary["added"] - summary["changed"]


def district_placer(rows: Iterable[Any]) -> Placer:
    """Where a point lies among zones (rows of id, name and GeoJSON geometry): the name of
    the first containing it (the lowest id, on a shared border), or None."""
    names: dict[int, str] = {}
    shapes = []
    for row in rows:
        geometry = row["geometry"]
        names[row["id"]] = row["name"]
        shapes.append(
            (row["id"], shape(json.loads(geometry) if isinstance(geometry, str) else geometry))
        )
    index = ZoneIndex(shapes)

    def place(longitude: float, latitude: float) -> str | None:
        found = index.containing(longitude, latitude) if shapes else []
        return names[found[0]] if found else None

    return place


class _Padded:
    """A feed's rows with the optional last columns (a point) filled in where a row
    leaves them out; re-iterable as its source is."""

    def __init__(self, rows: Iterable[tuple[int, list[str] | None]], width: int) -> None:
        self.rows = rows
        self.width = width

    def __iter__(self) -> Iterator[tuple[int, list[str] | None]]:
        short = self.width - len(POINT_COLUMNS)
        for line, fields in self.rows:
            if fields is not None and len(fields) == short:
                fields = [*fields, *("" for _ in POINT_COLUMNS)]
            yield line, fields


class _PointlessReport(ImportReport):
    """A report whose rejected rows leave out their point: a call's place is kept no more
    precisely than its district, not even in the report of what was refused."""

    def reject(self, item: Rejected) -> None:
        if len(item.raw) == len(self.columns):
            item = Rejected(item.line, item.code, [*item.raw[: -len(POINT_COLUMNS)], "", ""])
        super().reject(item)


def _first_per_subscriber(
    spec: FeedSpec, rows: Iterable[tuple[int, list[str] | None]]
) -> int | None:
    return next((line for line, fields in rows if per_subscriber(spec, fields)), None)


def item_fields(spec: FeedSpec, item: object) -> list[str] | None:
    """A pushed JSON item as a CSV row's fields: an object with the feed's columns, each a
    string or a number (an empty hour or optional name may be missing or null)."""
    if not isinstance(item, dict):
        return None
    item = {k: v for k, v in item.items() if k not in spec.dropped}
    if set(item) - set(spec.columns):
        return None
    fields = []
    for column in spec.columns:
        value = item.get(column)
        if value is None:
            value = ""
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        fields.append(str(value))
    return fields


@dataclass(frozen=True)
class FeedSource:
    id: int
    name: str
    feeds: tuple[str, ...]


class FeedSourceError(ValueError):
    pass


class FeedSources:
    """Systems that push feeds over the API, each with its own key (stored hashed)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, name: str, feeds: list[str]) -> str:
        """Register a source allowed to push ``feeds``; returns its key (seen only now)."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise FeedSourceError("a source's name is 1 to 200 characters")
        unknown = sorted(set(feeds) - set(FEEDS))
        if unknown or not feeds:
            raise FeedSourceError("feeds are some of: " + ", ".join(FEEDS))
        key = "feed_" + secrets.token_urlsafe(32)
        try:
            await self.pool.execute(
                "INSERT INTO feed_sources (name, feeds, key_hash) VALUES ($1, $2, $3)",
                name,
                sorted(set(feeds)),
                key_hash(key),
            )
        except asyncpg.UniqueViolationError:
            raise FeedSourceError(f"a source named {name!r} exists already") from None
        return key

    async def authenticate(self, key: str) -> FeedSource | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, feeds FROM feed_sources WHERE key_hash = $1 AND revoked_at IS NULL",
            key_hash(key),
        )
        return FeedSource(row["id"], row["name"], tuple(row["feeds"])) if row else None


@dataclass(frozen=True)
class FeedRow:
    day: date
    hour: int | None
    keys: list[str]
    figures: dict[str, Any]
    imported_at: datetime

    def fields(self, spec: FeedSpec) -> list[object]:
        """The row as the import's CSV columns (an export imports back unchanged)."""
        hour: list[object] = ["" if self.hour is None else self.hour] if spec.hourly else []
        return [
            self.day.isoformat(),
            *hour,
            *self.keys,
            *(self.figures.get(f.name, "") for f in spec.figures),
            *("" for _ in (POINT_COLUMNS if spec.point else ())),
        ]


class FeedRecords:
    """The stored rows of a feed, as the panel lists and exports them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def rows(
        self, feed: str, *, first: date | None = None, limit: int | None = None
    ) -> list[FeedRow]:
        """The latest rows first."""
        records = await self.pool.fetch(
            "SELECT day, hour, keys, figures, imported_at FROM feed_records"
            " WHERE feed = $1 AND day >= coalesce($2, '-infinity'::date)"
            " ORDER BY day DESC, hour DESC NULLS FIRST, keys LIMIT $3",
            feed,
            first,
            limit,
        )
        return [
            FeedRow(r["day"], r["hour"], list(r["keys"]), r["figures"], r["imported_at"])
            for r in records
        ]

    async def last_imported(self) -> dict[str, datetime]:
        rows = await self.pool.fetch(
            "SELECT feed, max(imported_at) AS at FROM feed_records GROUP BY feed"
        )
        return {r["feed"]: r["at"] for r in rows}


class Feeds:
    """The feeds' import, sources and rows, as the panel, the API and the CLI use them."""

    def __init__(self, pool: asyncpg.Pool, *, timezone: str) -> None:
        self.importer = FeedImporter(pool, timezone=timezone)
        self.sources = FeedSources(pool)
        self.records = FeedRecords(pool)
