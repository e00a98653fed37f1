"""Zones with versions on real PostgreSQL: a passing is judged against the zone in force."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from citybots.wiring import Services
from geofence.zones import parse_zones
from services.zones import ZoneImportError
from tests.integration.test_cli import _citybots


def zone(name: str, west: float, size: float, kind: str = "quarantine") -> dict[str, object]:
    ring = [
        [west, 43.25],
        [west + size, 43.25],
        [west + size, 43.25 + size],
        [west, 43.25 + size],
        [west, 43.25],
    ]
    return {
        "type": "Feature",
        "properties": {"name": name, "kind": kind},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


async def test_a_point_is_judged_against_the_version_in_force(services: Services) -> None:
    name = f"Block {secrets.token_hex(3)}"
    t1 = datetime(2026, 4, 1, tzinfo=UTC)
    t2 = t1 + timedelta(days=10)
    small = parse_zones(zone(name, 76.90, 0.01))
    wide = parse_zones(zone(name, 76.90, 0.05))
    first = await services.zones.import_shapes(small, valid_from=t1, actor="test", source="t")
    assert (first.added, first.replaced) == (1, 0)
    again = await services.zones.import_shapes(small, valid_from=t2, actor="test", source="t")
    assert again.unchanged == 1
    widened = await services.zones.import_shapes(wide, valid_from=t2, actor="test", source="t")
    assert widened.replaced == 1
    outside_small = (76.93, 43.27)
    before = await services.zones.zones_at(*outside_small, t1 + timedelta(days=1))
    after = await services.zones.zones_at(*outside_small, t2 + timedelta(days=1))
    assert [z.name for z in before] == []
    assert [(z.name, z.version) for z in after] == [(name, 2)]
    inside = await services.zones.zones_at(76.905, 43.255, t1 + timedelta(days=1))
    assert [(z.name, z.version) for z in inside if z.name == name] == [(name, 1)]
    with pytest.raises(ZoneImportError):  # a version may not begin before the one in force
        await services.zones.import_shapes(small, valid_from=t1, actor="test", source="t")


def test_import_zones_from_the_command_line(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    good = tmp_path / "sectors.geojson"
    name = f"Sector {secrets.token_hex(3)}"
    good.write_text(
        json.dumps({"type": "FeatureCollection", "features": [zone(name, 77.0, 0.02, "sector")]})
    )
    result = _citybots(
        "import", "zones", str(good), "--valid-from", "2026-05-01T00:00", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "1 zones: 1 new, 0 new versions, 0 unchanged" in result.stdout
    projected = tmp_path / "projected.geojson"
    feature = zone("Metres", 8_559_000.0, 500.0)
    projected.write_text(json.dumps(feature))
    refused = _citybots("import", "zones", str(projected), env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "looks projected" in refused.stderr
    assert "nothing imported" in refused.stderr
