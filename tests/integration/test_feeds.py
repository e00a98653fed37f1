"""The feeds' import: typed rows stored once, corrected by a later file, refused with a
reason, rolled up into the situation centre's daily figures (beds among them)."""

from __future__ import annotations

import csv
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from admin.choropleth import choropleth
from citybots.wiring import Services
from services.feeds.calls import call_picture
from services.feeds.figures import feed_series
from services.feeds.maps import feed_layers
from services.feeds.operators import operator_picture
from services.feeds.specs import FEEDS
from services.registry_rows import CsvSource, read_csv_lines
from services.situation import SituationCentre
from tests.factories import add_district, feed_row
from tests.integration.test_rollups import refreshed

TZ = ZoneInfo("Asia/Almaty")


def _lines(text: str) -> list[tuple[int, list[str] | None]]:
    return list(read_csv_lines(text.splitlines(keepends=True)))


async def test_a_feed_file_is_stored_once_corrected_later_and_bad_rows_reported(
    services: Services, tmp_path: Path
) -> None:
    camera = f"CAM-{secrets.token_hex(3)}"
    day = date(2025, 2, 3)
    text = (
        "day,hour,district,camera,vehicles\n"
        f"{day},8,Almaly,{camera},1200\n"
        f"{day},9,Almaly,{camera},1500\n"
        f"{day},25,Almaly,{camera},1\n"
        f"{day},10,Almaly,{camera}\n"
        f"{day},11,Almaly,{camera},many\n"
    )
    importer = services.feeds.importer
    first = await importer.import_rows("traffic", _lines(text), source="test")
    again = await importer.import_rows("traffic", _lines(text), source="test")
    corrected = await importer.import_rows(
        "traffic", _lines(f"{day},9,Almaly,{camera},1600\n"), source="test"
    )
    assert (first.accepted, first.duplicates, first.rejected_total) == (2, 0, 3)
    assert [(r.line, r.code) for r in first.rejected] == [
        (4, "hour.value"),
        (5, "row.columns"),
        (6, "figure.count"),
    ]
    assert (again.accepted, again.duplicates) == (0, 2)
    assert (corrected.accepted, corrected.corrected) == (0, 1)
    stored = await services.feeds.records.rows("traffic", first=day)
    mine = sorted((r.hour, r.figures["vehicles"]) for r in stored if r.keys[1] == camera)
    assert mine == [(8, 1200), (9, 1600)]

    first.write_rejected(tmp_path / "rejected.csv")
    with (tmp_path / "rejected.csv").open(encoding="utf-8") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["line", "code", "reason", "day", "hour", "district", "camera", "vehicles"]
    assert rows[1][:2] == ["4", "hour.value"]
    assert "0 to 23" in rows[1][2]


async def test_an_import_is_audited_at_both_ends_with_its_counts(services: Services) -> None:
    item = f"Item {secrets.token_hex(3)}"
    await services.feeds.importer.import_rows(
        "budget", _lines(f"2025-02-03,{item},100.5,200\n"), source="test", actor="analyst-1"
    )
    end = await services.rollups.pool.fetchrow(
        "SELECT actor, details FROM audit_log WHERE action = 'import.end' AND subject = 'budget'"
        " ORDER BY id DESC LIMIT 1"
    )
    assert end is not None
    assert end["actor"] == "analyst-1"
    assert end["details"]["accepted"] == 1
    assert end["details"]["status"] == "done"


async def test_feed_figures_roll_up_by_day_and_the_bed_figure_comes_from_the_hospitals(
    services: Services,
) -> None:
    today = datetime.now(TZ).date()
    yesterday = today - timedelta(days=1)
    hospital = f"Hospital {secrets.token_hex(3)}"
    await refreshed(services.rollups)  # what earlier tests imported, counted before
    before = await feed_series(services.rollups, yesterday, today)
    beds = await services.feeds.importer.import_rows(
        "beds",
        _lines(f"{yesterday},{hospital},300,120,10,4\n{today},{hospital},300,135,12,5\n"),
        source="test",
    )
    flights = await services.feeds.importer.import_rows(
        "flights",
        _lines(f"{today},Moscow,KC-{secrets.token_hex(2)},150,150,12\n"),
        source="test",
    )
    assert beds.accepted == 2
    assert flights.accepted == 1
    await refreshed(services.rollups)
    after = await feed_series(services.rollups, yesterday, today)
    assert [
        a - b
        for a, b in zip(
            after["beds"].totals["occupied"], before["beds"].totals["occupied"], strict=True
        )
    ] == [120, 135]
    assert after["beds"].by_key[hospital] == [120, 135]
    assert (
        after["flights"].totals["quarantined"][-1] - before["flights"].totals["quarantined"][-1]
        == 12
    )
    assert after["beds"].last_day == today

    situation = await SituationCentre(services.rollups, services.indicators).load(
        datetime.now(UTC)
    )
    in_hospital = next(t for t in situation.tiles if t.key == "in-hospital")
    assert in_hospital.today == after["beds"].totals["occupied"][-1]
    assert "hospitals' feed" in in_hospital.note
    assert any(t.key == "feed-flights" for t in situation.tiles)
    header, rows = situation.table()
    assert "beds_occupied" in header
    assert "flights_quarantined" in header
    last = dict(zip(header, rows[-1], strict=True))
    assert last["day"] == today.isoformat()
    assert last["beds_occupied"] == after["beds"].totals["occupied"][-1]


async def test_an_operators_file_with_one_subscriber_row_is_refused_whole(
    services: Services, tmp_path: Path
) -> None:
    sector = f"Sector {secrets.token_hex(3)}"
    good = f"2025-02-03,23,{sector},Kcell,40\n2025-02-03,0,{sector},Kcell,35\n"
    path = tmp_path / "operators.csv"
    path.write_text(
        "day,hour,sector,operator,away\n" + good + f"2025-02-03,1,{sector},+77011234567,1\n"
    )
    refused = await services.feeds.importer.import_rows(
        "operators", CsvSource(path), source="test"
    )
    assert (refused.accepted, refused.rejected_total) == (0, 1)
    assert refused.rejected[0].line == 4
    assert refused.rejected[0].code == "operator.per_subscriber"
    assert refused.rejected[0].raw == []  # the number is not copied into the report
    stored = await services.feeds.records.rows("operators", first=date(2025, 2, 3))
    assert not [r for r in stored if r.keys[0] == sector]
    with pytest.raises(TypeError):
        await services.feeds.importer.import_rows("operators", iter(_lines(good)), source="test")

    path.write_text(good)
    accepted = await services.feeds.importer.import_rows(
        "operators", CsvSource(path), source="test"
    )
    assert accepted.accepted == 2


async def test_the_operators_picture_has_the_peak_hours_and_the_sectors_on_a_map(
    services: Services,
) -> None:
    today = datetime.now(TZ).date()
    sector = f"Sector {secrets.token_hex(3)}"
    await services.rollups.pool.execute(
        "INSERT INTO zones (name, kind, geometry, valid_from) VALUES ($1, 'sector', $2, now())",
        sector,
        {
            "type": "Polygon",
            "coordinates": [[[76.9, 43.2], [76.95, 43.2], [76.95, 43.25], [76.9, 43.2]]],
        },
    )
    rows = [
        (1, [today.isoformat(), "23", sector, "Kcell", "9000"]),
        (2, [today.isoformat(), "2", sector, "Kcell", "100"]),
    ]
    await services.feeds.importer.import_rows("operators", rows, source="test")
    await refreshed(services.rollups)
    picture = await operator_picture(services.rollups, today)
    assert dict(picture.by_sector)[sector] == 9100
    assert picture.peak_hours[0] == 23
    assert picture.by_day_hour[today.strftime("%d %b")][23] >= 9000
    shape = next(s for s in picture.sectors if s.name == sector)
    assert shape.rings[0][0] == (76.9, 43.2)
    drawn = choropleth(picture.sectors, dict(picture.by_sector), element_id="m", unit="away")
    assert f"{sector}: 9,100 away" in drawn


async def test_calls_by_line_district_and_hour_and_a_caller_number_refuses_the_file(
    services: Services, tmp_path: Path
) -> None:
    today = datetime.now(TZ).date()
    district = f"District {secrets.token_hex(3)}"
    tag = secrets.token_hex(3)
    lines = [
        f"{today},9,103,{district},A-{tag}-1,120",
        f"{today},9,103,{district},A-{tag}-2,60",
        f"{today},21,1308,{district},B-{tag}-1,300",
        f"{today},21,112,{district},C-{tag}-1,300",
    ]
    path = tmp_path / "calls.csv"
    path.write_text("\n".join([*lines, f"{today},10,103,{district},A-{tag}-3,60,+77011234567"]))
    refused = await services.feeds.importer.import_rows("calls", CsvSource(path), source="test")
    assert [(r.line, r.code) for r in refused.rejected] == [(5, "operator.per_subscriber")]
    assert refused.accepted == 0

    path.write_text("\n".join(lines))
    report = await services.feeds.importer.import_rows("calls", CsvSource(path), source="test")
    assert report.accepted == 3
    assert [(r.line, r.code) for r in report.rejected] == [(4, "key.choice")]
    await refreshed(services.rollups)
    everything = await call_picture(services.rollups, today, line=None, hour=None)
    ambulance = await call_picture(services.rollups, today, line="103", hour=9)
    assert dict(ambulance.by_district)[district] == 2
    assert ambulance.by_district_hour[district][9] == 2
    assert ambulance.by_district_hour[district][21] == 0
    assert everything.by_district_hour[district][21] == 1
    assert everything.per_line["103"] >= 2
    assert 9 in ambulance.peak_hours


async def test_a_call_given_as_a_point_is_counted_in_its_district_and_the_point_not_kept(
    services: Services, tmp_path: Path
) -> None:
    today = datetime.now(TZ).date()
    district, latitude, longitude = await add_district(services)
    tag = secrets.token_hex(3)
    inside = f"{latitude + 0.0012345:.7f},{longitude + 0.0017891:.7f}"
    path = tmp_path / "calls.csv"
    path.write_text(
        "day,hour,line,district,call,seconds,latitude,longitude\n"
        f"{today},9,103,,P-{tag}-1,120,{inside}\n"
        f"{today},9,1406,,P-{tag}-2,60,{inside}\n"
        f"{today},10,103,,P-{tag}-3,60,{latitude + 0.5},{longitude}\n"
        f"{today},10,1308,{district},P-{tag}-4,60\n"
    )
    report = await services.feeds.importer.import_rows("calls", CsvSource(path), source="test")
    assert report.accepted == 3
    assert [(r.line, r.code) for r in report.rejected] == [(4, "point.outside")]
    assert report.rejected[0].raw[-2:] == ["", ""]  # not even the refused row's point
    rows = await services.feeds.records.rows("calls", first=today)
    mine = [r for r in rows if r.keys[2].startswith(f"P-{tag}")]
    assert sorted(r.keys[1] for r in mine) == [district] * 3
    assert all(r.fields(FEEDS["calls"])[-2:] == ["", ""] for r in mine)
    stored = await services.zones.pool.fetchval(
        "SELECT string_agg(r::text, ' ') FROM feed_records r WHERE feed = 'calls'"
        " AND keys[3] LIKE $1",
        f"P-{tag}%",
    )
    assert f"{longitude + 0.0017891:.4f}" not in stored
    await refreshed(services.rollups)
    picture = await call_picture(services.rollups, today, line=None, hour=None)
    assert dict(picture.by_district)[district] == 3


async def test_the_map_layers_sum_a_range_of_days_per_sector_and_per_district_and_line(
    services: Services,
) -> None:
    today = datetime.now(TZ).date()
    district, _, _ = await add_district(services)
    sector, _, _ = await add_district(services)  # a square of its own, made a sector
    await services.zones.pool.execute("UPDATE zones SET kind = 'sector' WHERE name = $1", sector)
    nowhere = f"Sector {secrets.token_hex(3)}"  # no shape
    tag = secrets.token_hex(3)
    away = [
        (1, [f"{today - timedelta(days=back)}", "23", name, "Beeline", "10"])
        for back in (0, 1, 8)
        for name in (sector, nowhere)
    ]
    calls = [
        (1, [f"{today - timedelta(days=back)}", "9", line, district, f"L-{tag}-{n}", "60"])
        for n, (back, line) in enumerate(((0, "103"), (1, "103"), (1, "1308"), (8, "1406")))
    ]
    for feed, rows in (("operators", away), ("calls", calls)):
        numbered = [(n, fields) for n, (_, fields) in enumerate(rows, 1)]
        report = await services.feeds.importer.import_rows(feed, numbered, source="test")
        assert report.accepted == len(rows)
    await refreshed(services.rollups)
    layers = await feed_layers(services.rollups, today - timedelta(days=6), today)
    sectors = {f["properties"]["name"]: f for f in layers["operators"]["features"]}
    assert sectors[sector]["properties"]["away"] == 20  # the 8th day back is outside
    assert sectors[sector]["geometry"]["type"] == "Polygon"
    assert nowhere not in sectors
    assert layers["unmapped"]["away"] >= 20
    districts = {f["properties"]["name"]: f["properties"] for f in layers["calls"]["features"]}
    assert districts[district] == {
        "name": district,
        "calls": 3,
        "lines": {"103": 2, "1308": 1, "1406": 0},
    }
    assert (layers["from"], layers["to"]) == (str(today - timedelta(days=6)), str(today))


@pytest.mark.parametrize("feed", list(FEEDS))
async def test_every_feed_imports_refuses_a_bad_row_and_charts_by_day(
    services: Services, feed: str
) -> None:
    spec = FEEDS[feed]
    today = datetime.now(TZ).date()
    yesterday = today - timedelta(days=1)
    name = f"N{secrets.token_hex(3)}"
    bad = feed_row(spec, today, 1, name=name)
    bad[0] = "yesterday"
    rows = [
        (1, feed_row(spec, yesterday, 11, name=name)),
        (2, feed_row(spec, today, 13, name=name)),
        (3, bad),
    ]
    await refreshed(services.rollups)  # what earlier tests imported, counted before
    before = (await feed_series(services.rollups, yesterday, today))[feed]
    report = await services.feeds.importer.import_rows(feed, rows, source="test")
    assert (report.accepted, [(r.line, r.code) for r in report.rejected]) == (
        2,
        [(3, "day.format")],
    )
    await refreshed(services.rollups)
    after = (await feed_series(services.rollups, yesterday, today))[feed]
    figure = spec.tile_figure.name
    added = [a - b for a, b in zip(after.totals[figure], before.totals[figure], strict=True)]
    # money is rolled up in whole tenge
    assert added == ([12, 14] if spec.tile_figure.money else [11, 13])
    assert after.last_day == today
    stored = await services.feeds.records.rows(feed, first=yesterday)
    exported = [[str(c) for c in r.fields(spec)] for r in stored if name in str(r.keys)]
    assert exported == [rows[1][1], rows[0][1]]  # latest first, as imported
