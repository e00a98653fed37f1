"""Points of interest per sector: imported from CSV (bad rows reported) and GeoJSON,
located through the spatial index, counted per sector in force."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from citybots.wiring import Services
from geofence.points import point_rows
from geofence.zones import parse_zones
from tests.integration.test_cli import _citybots
from tests.integration.test_zones import zone


async def test_points_are_counted_per_sector_and_bad_rows_named(services: Services) -> None:
    tag = secrets.token_hex(3)
    west, east = f"West {tag}", f"East {tag}"
    start = datetime.now(UTC) - timedelta(hours=1)
    shapes = parse_zones(
        {
            "type": "FeatureCollection",
            "features": [zone(west, 70.0, 0.1, "sector"), zone(east, 70.2, 0.1, "sector")],
        }
    )
    await services.zones.import_shapes(shapes, valid_from=start, actor="t", source="t")
    report = await services.importer.import_rows(
        "pois",
        [
            (2, ["pharmacy", f"Apteka {tag}", "43.30", "70.05", ""]),
            (3, ["residents", f"House {tag}", "43.31", "70.06", "120"]),
            (4, ["shop", f"Shop {tag}", "43.30", "70.25", ""]),
            (5, ["castle", "Nope", "43.30", "70.05", ""]),
            (6, ["shop", "Swapped", "70.05", "43.30", "x"]),
            (7, ["hotel", "Projected", "4790000", "7800000", ""]),
            (8, ["residents", f"Nobody {tag}", "43.30", "70.05", ""]),
        ],
        source="test",
    )
    assert report.accepted == 3
    assert {(r.line, r.code) for r in report.rejected} >= {
        (5, "poi.kind"),
        (7, "location.range"),
        (8, "poi.residents"),
    }
    geojson = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"kind": "hostel", "name": f"Hostel {tag}"},
                 "geometry": {"type": "Point", "coordinates": [70.21, 43.29]}},
                {"type": "Feature", "properties": {"kind": "hotel", "name": "Line"},
                 "geometry": {"type": "LineString", "coordinates": [[70, 43], [71, 44]]}},
            ],
        }
    ).encode()  # fmt: skip
    rows = point_rows(geojson)
    assert rows[1] == (2, None)
    second = await services.importer.import_rows("pois", rows, source="geojson")
    assert second.accepted == 1
    again = await services.importer.import_rows("pois", point_rows(geojson), source="geojson")
    assert again.accepted == 0
    summaries = {
        s.name: s for s in await services.zones.points_per_zone("sector", datetime.now(UTC))
    }
    assert summaries[west].points == {"pharmacy": 1, "residents": 1}
    assert summaries[west].residents == 120
    assert summaries[east].points == {"shop": 1, "hostel": 1}


async def test_the_zones_command_answers_which_zone_contains_a_point(
    database_url: str, redis_url: str, tmp_path: Path, services: Services
) -> None:
    name = f"Sector {secrets.token_hex(3)}"
    await services.zones.import_shapes(
        parse_zones(zone(name, 71.0, 0.1, "sector")),
        valid_from=datetime.now(UTC) - timedelta(hours=1),
        actor="t",
        source="t",
    )
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    inside = _citybots("zones", "at", "43.30", "71.05", env=env, cwd=tmp_path)
    assert inside.returncode == 0, inside.stderr
    assert f"sector     {name}  (version 1)" in inside.stdout
    nowhere = _citybots("zones", "at", "0", "0", env=env, cwd=tmp_path)
    assert nowhere.returncode == 2
    assert "null_island" in nowhere.stderr
