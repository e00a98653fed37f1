"""What each of the situation centre's feeds holds: its columns, typed, and how a CSV row
(or a pushed JSON item) of it is checked. Pure: no I/O.

A feed's row is a day (and, for road traffic, optionally an hour), one or more names
(the keys: a district and a camera, a transport mode and a route, a hospital ...) and
its figures: counts (whole numbers) or amounts (money, two decimals at most). The first
key is what the charts and the daily roll-ups break the figures down by.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from services.registry_rows import RowError
from services.validation import parse_coordinates

EARLIEST_DAY = date(2000, 1, 1)
LINES = ("103", "1308", "1406")
MAX_COUNT = 10**9
MAX_AMOUNT = Decimal(10**12)
MAX_NAME = 200
POINT_COLUMNS = ("latitude", "longitude")
# Places a point (longitude, latitude) in the city's district that contains it, or None.
Placer = Callable[[float, float], str | None]


@dataclass(frozen=True)
class Key:
    name: str
    title: str
    required: bool = True
    choices: tuple[str, ...] = ()  # the only values allowed, when given


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    money: bool = False  # an amount with decimals, else a whole count


@dataclass(frozen=True)
class FeedSpec:
    name: str
    title: str
    keys: tuple[Key, ...]
    figures: tuple[Figure, ...]
    hourly: bool = False  # the feed has an hour column (empty: the whole day)
    level: bool = False  # a state of the day (beds), not a count summed over days
    headline: str = ""  # the figure on the situation centre's tile (else the first)
    rising_is_bad: bool = False
    about: str = ""
    # Counts of people handed over by a third party (the mobile operators): a file with
    # any row that is not the aggregate (another shape, or a subscriber's identifier in
    # it) is refused whole, and every row must name its hour.
    aggregates_only: bool = False
    on_situation: bool = True  # a tile and a chart of its own on the situation centre
    # Roll-up metrics besides the figures' (name -> the key to break down by), each
    # counting the feed's rows: one row is one event (a call).
    counted: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = ()  # fields of a pushed item dropped unread (a caller's number)
    # The rows may give a point (latitude, longitude: the last two columns, which a file
    # may leave out) instead of their district: the point is placed in its district at
    # import and only the district is kept.
    point: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        hour = ("hour",) if self.hourly else ()
        point = POINT_COLUMNS if self.point else ()
        return (
            "day",
            *hour,
            *(k.name for k in self.keys),
            *(f.name for f in self.figures),
            *point,
        )

    @property
    def tile_figure(self) -> Figure:
        return next((f for f in self.figures if f.name == self.headline), self.figures[0])

    def metric(self, figure: str) -> str:
        """The daily roll-ups' metric of one figure."""
        return f"feed_{self.name}_{figure}"

    @property
    def metrics(self) -> list[str]:
        """Every roll-up metric the feed's rows count in."""
        return [self.metric(f.name) for f in self.figures] + [name for name, _ in self.counted]


BY_DISTRICT = (Key("district", "District"),)


def counts(**titles: str) -> tuple[Figure, ...]:
    """Whole-number figures, by name and title, in the order given."""
    return tuple(Figure(name, title) for name, title in titles.items())


FEEDS: dict[str, FeedSpec] = {
    spec.name: spec
    for spec in (
        FeedSpec(
            "traffic",
            "Road traffic",
            (Key("district", "District"), Key("camera", "Camera", required=False)),
            counts(vehicles="Vehicles"),
            hourly=True,
            about="vehicles counted by the traffic cameras, per camera or district, per day "
            "or hour",
        ),
        FeedSpec(
            "transport",
            "Public transport",
            (Key("mode", "Mode"), Key("route", "Route", required=False)),
            counts(passengers="Passengers"),
            about="passengers carried per day, per mode (bus, metro, tram ...) and route",
        ),
        FeedSpec(
            "flights",
            "Incoming flights",
            (Key("origin", "Origin"), Key("flight", "Flight")),
            counts(passengers="Passengers", tested="Tested", quarantined="Sent to quarantine"),
            rising_is_bad=True,
            about="each arriving flight: its passengers, how many were tested and how many "
            "sent to quarantine",
        ),
        FeedSpec(
            "beds",
            "Hospital beds",
            (Key("hospital", "Hospital"),),
            counts(
                beds="Infectious-disease beds",
                occupied="Occupied",
                icu="ICU beds occupied",
                ventilators="Ventilators in use",
            ),
            level=True,
            headline="occupied",
            rising_is_bad=True,
            about="each hospital's infectious-disease beds, how many are occupied, ICU beds "
            "occupied and ventilators in use, as of the day",
        ),
        FeedSpec(
            "medical",
            "Medical workers examined",
            BY_DISTRICT,
            counts(examined="Examined", positive="Positive"),
            about="medical workers examined per day and district, and how many tested positive",
        ),
        FeedSpec(
            "facilities",
            "Pharmacies and quarantine centres",
            BY_DISTRICT,
            counts(
                pharmacies="Pharmacies open",
                quarantine_centres="Quarantine centres",
                quarantine_places="Places in quarantine centres",
            ),
            level=True,
            about="pharmacies open and quarantine centres (with their places) per district, "
            "as of the day",
        ),
        FeedSpec(
            "operators",
            "Mobile operators: away from home at night",
            (Key("sector", "Sector"), Key("operator", "Operator")),
            counts(away="Subscribers away"),
            hourly=True,
            rising_is_bad=True,
            aggregates_only=True,
            about="per sector and hour of the quarantine night, how many of an operator's "
            "subscribers were away from their usual night location (counts only: a file with "
            "any per-subscriber row is refused whole)",
        ),
        FeedSpec(
            "calls",
            "Calls to 103, 1308 and 1406",
            (
                Key("line", "Line", choices=LINES),
                Key("district", "District"),
                Key("call", "Call id"),
            ),
            counts(seconds="Duration, seconds"),
            hourly=True,
            aggregates_only=True,
            on_situation=False,
            counted=(("line_calls", "keys[1] || '|' || keys[2]"),),
            dropped=("caller", "caller_number", "phone"),
            point=True,
            about="each call to the ambulance (103), the city's contact centre (1308) and "
            "1406: its line, hour, district (or a point, placed in its district; only the "
            "district is kept), the telephone system's call id and duration; never the "
            "caller's number (a file with one is refused whole)",
        ),
        FeedSpec(
            "budget",
            "Budget",
            (Key("item", "Item"),),
            (Figure("spent", "Spent", money=True), Figure("planned", "Planned", money=True)),
            rising_is_bad=True,
            about="expenditure per budget item and day against the plan, in tenge",
        ),
    )
}


def _day(raw: str, today: date) -> date:
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise RowError("day.format") from None
    if not EARLIEST_DAY <= value <= today:
        raise RowError("day.range")
    return value


def _hour(raw: str) -> int | None:
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2 and int(raw) < 24):
        raise RowError("hour.value")
    return int(raw)


def _count(raw: str) -> int:
    text = raw.replace(" ", "")
    # ASCII digits only: "²" and other scripts' digits are digits to str.isdigit.
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_COUNT):
        raise RowError("figure.count")
    return int(text)


def _amount(raw: str) -> str:
    """An amount kept as its exact decimal text (JSON numbers would become floats)."""
    text = raw.replace(" ", "").replace(",", ".")
    try:
        value = Decimal(text) if text.isascii() else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not 0 <= value <= MAX_AMOUNT:
        raise RowError("figure.amount")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise RowError("figure.amount")
    return str(value.quantize(Decimal("0.01")))


def _name(raw: str, key: Key) -> str:
    if len(raw) > MAX_NAME or (key.required and not raw):
        raise RowError("key.missing")
    if key.choices and raw not in key.choices:
        raise RowError("key.choice")
    return raw


# What a subscriber's identifier looks like: a phone number (+7 / 8 and ten digits, or
# any 10-15 digits), an IIN, an IMSI or IMEI (15 digits). No aggregate's cell is one.
_IDENTIFIER = re.compile(r"\+?[0-9][0-9 ()-]{9,18}")
PERSONAL_COLUMNS = frozenset(
    {"msisdn", "phone", "imsi", "imei", "iin", "subscriber", "subscriber_id", "caller", "number"}
)


def per_subscriber(spec: FeedSpec, fields: list[str] | None) -> bool:
    """Whether a row of an aggregates-only feed is not an aggregate: not the feed's shape,
    a column named like an identifier, or a cell that reads as one."""
    if fields is None or len(fields) != len(spec.columns):
        return True
    for cell in fields:
        value = cell.strip()
        if value.lower() in PERSONAL_COLUMNS:
            return True
        digits = sum(c.isdigit() for c in value)
        if digits >= 10 and _IDENTIFIER.fullmatch(value):
            return True
    return False


def _place(spec: FeedSpec, values: list[str], position: int, place: Placer | None) -> None:
    """A row's point (its last two values, removed here) placed in its district, which
    fills an empty district (the key at ``position``); with a district named, the point is
    only checked. Never kept: the district is as precise as the figures need."""
    latitude, longitude = values[-2:]
    del values[-2:]
    if not (latitude or longitude):
        return
    try:
        point = parse_coordinates(float(latitude), float(longitude))
    except ValueError as error:  # InvalidInput is a ValueError too
        raise RowError(getattr(error, "code", "location.format")) from None
    index = position + [k.name for k in spec.keys].index("district")
    if values[index]:
        return
    district = place(point.longitude, point.latitude) if place is not None else None
    if district is None:
        raise RowError("point.outside")
    values[index] = district


def parse_row(
    spec: FeedSpec,
    fields: list[str],
    tz: ZoneInfo,
    latest: datetime,
    *,
    place: Placer | None = None,
) -> tuple[Any, ...]:
    """A checked row as stored: (day, hour, keys, at, figures as JSON text).

    ``latest``: now (with a little clock skew); a day after the city's today is refused.
    ``place``: where a feed with points finds a point's district."""
    values = [f.strip() for f in fields]
    if spec.point:
        _place(spec, values, 2 if spec.hourly else 1, place)
    today = latest.astimezone(tz).date()
    day = _day(values[0], today)
    position = 1
    hour = None
    if spec.hourly:
        hour = _hour(values[1])
        if hour is None and spec.aggregates_only:
            raise RowError("hour.value")
        position = 2
    keys = [
        _name(raw, key)
        for key, raw in zip(spec.keys, values[position : position + len(spec.keys)], strict=True)
    ]
    position += len(spec.keys)
    figures: dict[str, int | str] = {}
    for figure, raw in zip(spec.figures, values[position:], strict=True):
        figures[figure.name] = _amount(raw) if figure.money else _count(raw)
    start = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=hour or 0)
    return (day, hour, keys, start, figures)
