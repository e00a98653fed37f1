"""The feeds' typed rows: what a CSV row of each feed must hold."""

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.feeds.specs import FEEDS, parse_row, per_subscriber
from services.feeds.store import district_placer, item_fields
from services.registry_rows import REASONS, RowError
from tests.factories import feed_row

TZ = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 4, 24, 12, 0, tzinfo=UTC)


def test_a_traffic_row_by_hour_starts_at_that_hour_in_the_city() -> None:
    day, hour, keys, at, figures = parse_row(
        FEEDS["traffic"], ["2026-04-20", "8", "Almaly", "CAM-17", "1 204"], TZ, NOW
    )
    assert (day, hour, keys, figures) == (
        date(2026, 4, 20),
        8,
        ["Almaly", "CAM-17"],
        {"vehicles": 1204},
    )
    assert at == datetime(2026, 4, 20, 8, tzinfo=TZ)


def test_a_row_for_the_whole_day_has_no_hour_and_an_optional_name_may_be_empty() -> None:
    _, hour, keys, at, _ = parse_row(
        FEEDS["traffic"], ["2026-04-20", "", "Almaly", "", "9"], TZ, NOW
    )
    assert hour is None
    assert keys == ["Almaly", ""]
    assert at == datetime(2026, 4, 20, tzinfo=TZ)


def test_budget_amounts_keep_two_decimals_exactly() -> None:
    *_, figures = parse_row(FEEDS["budget"], ["2026-04-20", "Tests", "1250000,5", "2e6"], TZ, NOW)
    assert figures == {"spent": "1250000.50", "planned": "2000000.00"}


@pytest.mark.parametrize(
    ("feed", "fields", "code"),
    [
        ("traffic", ["20.04.2026", "", "Almaly", "", "9"], "day.format"),
        ("traffic", ["2026-04-26", "", "Almaly", "", "9"], "day.range"),
        ("traffic", ["1999-12-31", "", "Almaly", "", "9"], "day.range"),
        ("traffic", ["2026-04-20", "24", "Almaly", "", "9"], "hour.value"),
        ("traffic", ["2026-04-20", "٣", "Almaly", "", "9"], "hour.value"),
        ("traffic", ["2026-04-20", "", "", "CAM-1", "9"], "key.missing"),
        ("traffic", ["2026-04-20", "", "A" * 201, "", "9"], "key.missing"),
        ("traffic", ["2026-04-20", "", "Almaly", "", "-3"], "figure.count"),
        ("traffic", ["2026-04-20", "", "Almaly", "", "2.5"], "figure.count"),
        ("traffic", ["2026-04-20", "", "Almaly", "", "²"], "figure.count"),
        ("traffic", ["2026-04-20", "", "Almaly", "", "1000000001"], "figure.count"),
        ("budget", ["2026-04-20", "Tests", "12.345", "1"], "figure.amount"),
        ("budget", ["2026-04-20", "Tests", "NaN", "1"], "figure.amount"),
        ("budget", ["2026-04-20", "Tests", "1e13", "1"], "figure.amount"),
        ("budget", ["2026-04-20", "Tests", "١٢", "1"], "figure.amount"),
    ],
)
def test_a_bad_row_is_refused_with_a_reason(feed: str, fields: list[str], code: str) -> None:
    with pytest.raises(RowError) as refused:
        parse_row(FEEDS[feed], fields, TZ, NOW)
    assert refused.value.code == code
    assert code in REASONS


def test_every_feed_names_its_columns_once_with_a_figure_and_a_first_name() -> None:
    for spec in FEEDS.values():
        assert len(set(spec.columns)) == len(spec.columns)
        assert spec.figures
        assert spec.keys[0].required


def test_a_pushed_item_becomes_the_csv_row_and_unknown_fields_refuse_it() -> None:
    beds = FEEDS["beds"]
    item = {
        "day": "2026-04-20",
        "hospital": "City 1",
        "beds": 300,
        "occupied": 120,
        "icu": 12,
        "ventilators": None,
    }
    assert item_fields(beds, item) == ["2026-04-20", "City 1", "300", "120", "12", ""]
    assert item_fields(beds, {**item, "patient_iin": "791028302728"}) is None
    assert item_fields(beds, {**item, "beds": [300]}) is None
    assert item_fields(beds, {**item, "beds": True}) is None
    assert item_fields(beds, "not an object") is None


@pytest.mark.parametrize(
    "fields",
    [
        ["2026-04-20", "23", "Sector 1", "Beeline", "+7 701 123 45 67"],
        ["2026-04-20", "23", "Sector 1", "87011234567", "1"],
        ["2026-04-20", "23", "Sector 1", "Beeline", "791028302728"],
        ["2026-04-20", "23", "Sector 1", "401990123456789", "1"],
        ["2026-04-20", "23", "Sector 1", "msisdn", "1"],
        ["2026-04-20", "23", "Sector 1", "Beeline"],
        None,
    ],
)
def test_an_operators_row_naming_a_subscriber_is_not_an_aggregate(
    fields: list[str] | None,
) -> None:
    assert per_subscriber(FEEDS["operators"], fields)


def test_an_operators_aggregate_row_passes_and_must_name_its_hour() -> None:
    spec = FEEDS["operators"]
    row = ["2026-04-20", "23", "Sector 1 (Almaly)", "Kcell", "1 204"]
    assert not per_subscriber(spec, row)
    assert parse_row(spec, row, TZ, NOW)[4] == {"away": 1204}
    with pytest.raises(RowError) as refused:
        parse_row(spec, ["2026-04-20", "", "Sector 1", "Kcell", "4"], TZ, NOW)
    assert refused.value.code == "hour.value"


def test_a_call_names_one_of_the_three_lines_and_a_pushed_caller_number_is_dropped() -> None:
    calls = FEEDS["calls"]
    row = ["2026-04-20", "9", "103", "Almaly", "A-1", "120", "", ""]
    assert parse_row(calls, row, TZ, NOW)[2] == ["103", "Almaly", "A-1"]
    with pytest.raises(RowError) as refused:
        parse_row(calls, ["2026-04-20", "9", "112", "Almaly", "A-1", "120", "", ""], TZ, NOW)
    assert refused.value.code == "key.choice"
    item = {
        "day": "2026-04-20",
        "hour": 9,
        "line": "1308",
        "district": "Almaly",
        "call": "B-7",
        "seconds": 95,
        "caller": "+77011234567",
    }
    assert item_fields(calls, item) == ["2026-04-20", "9", "1308", "Almaly", "B-7", "95", "", ""]


def _square(west: float, south: float) -> dict[str, object]:
    ring = [[west, south], [west + 0.1, south], [west + 0.1, south + 0.1], [west, south + 0.1]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_a_call_given_as_a_point_keeps_only_the_district_that_contains_it() -> None:
    calls = FEEDS["calls"]
    place = district_placer(
        [
            {"id": 1, "name": "Almaly", "geometry": _square(76.9, 43.2)},
            {"id": 2, "name": "Medeu", "geometry": json.dumps(_square(77.0, 43.2))},
        ]
    )
    assert calls.columns[-2:] == ("latitude", "longitude")
    row = ["2026-04-20", "9", "103", "", "A-1", "120", "43.2512345", "77.0412345"]
    stored = parse_row(calls, row, TZ, NOW, place=place)
    assert stored[2] == ["103", "Medeu", "A-1"]
    assert "43.25" not in repr(stored)
    assert "77.04" not in repr(stored)
    named = ["2026-04-20", "9", "103", "Almaly", "A-2", "60", "43.25", "77.04"]
    assert parse_row(calls, named, TZ, NOW, place=place)[2] == ["103", "Almaly", "A-2"]
    for latitude, longitude, code in (
        ("43.25", "", "location.format"),
        ("north", "77.04", "location.format"),
        ("91", "77.04", "location.range"),
        ("0", "0", "location.null_island"),
        ("51.13", "71.43", "point.outside"),  # Astana: in none of the city's districts
    ):
        with pytest.raises(RowError) as refused:
            parse_row(calls, [*row[:6], latitude, longitude], TZ, NOW, place=place)
        assert refused.value.code == code
        assert code in REASONS
    with pytest.raises(RowError) as unplaced:
        parse_row(calls, row, TZ, NOW)  # no districts loaded
    assert unplaced.value.code == "point.outside"
    with pytest.raises(RowError) as nowhere:
        parse_row(calls, [*row[:6], "", ""], TZ, NOW, place=place)
    assert nowhere.value.code == "key.missing"


def test_a_pushed_call_may_give_a_point_instead_of_its_district() -> None:
    calls = FEEDS["calls"]
    item = {"day": "2026-04-20", "hour": 9, "line": "103", "call": "A-1", "seconds": 60}
    assert item_fields(calls, {**item, "latitude": 43.25, "longitude": 77.04}) == [
        "2026-04-20",
        "9",
        "103",
        "",
        "A-1",
        "60",
        "43.25",
        "77.04",
    ]


@pytest.mark.parametrize("feed", list(FEEDS))
def test_every_feed_takes_its_own_row_and_refuses_a_negative_figure(feed: str) -> None:
    spec = FEEDS[feed]
    row = feed_row(spec, date(2026, 4, 20), 7, name="Almaly")
    assert len(row) == len(spec.columns)
    assert not (spec.aggregates_only and per_subscriber(spec, row))
    day, _, keys, _, figures = parse_row(spec, row, TZ, NOW)
    assert day == date(2026, 4, 20)
    assert len(keys) == len(spec.keys)
    assert set(figures) == {f.name for f in spec.figures}
    bad = list(row)
    bad[spec.columns.index(spec.figures[0].name)] = "-1"
    with pytest.raises(RowError) as refused:
        parse_row(spec, bad, TZ, NOW)
    assert refused.value.code in ("figure.count", "figure.amount")


def test_the_readme_shows_every_feed_with_a_row_and_a_pushed_item_that_import() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    sections = re.findall(
        r"^### .+ \(`(\w+)`\)\n\n.+?\n\n```csv\n(.+?)\n(.+?)\n```\n\n"
        r"`POST /api/v1/feeds/(\w+)`: `(.+?)`$",
        readme,
        flags=re.MULTILINE,
    )
    assert sorted(s[0] for s in sections) == sorted(FEEDS)
    place = district_placer([{"id": 1, "name": "Almaly", "geometry": _square(76.85, 43.2)}])
    for feed, header, line, pushed_to, pushed in sections:
        spec = FEEDS[feed]
        assert (header.split(","), pushed_to) == (list(spec.columns), feed)
        row = line.split(",")
        assert not per_subscriber(spec, row)
        parse_row(spec, row, TZ, NOW, place=place)
        (item,) = json.loads(pushed)
        assert item_fields(spec, item) == row
