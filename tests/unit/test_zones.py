"""Zones: GeoJSON checked on the way in, and the spatial index."""

import json

import pytest

from geofence.zones import ZoneError, ZoneIndex, parse_zones


def square(lon: float, lat: float, size: float = 0.01) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def feature(name: str, ring: list[list[float]], kind: str = "sector") -> dict[str, object]:
    return {
        "type": "Feature",
        "properties": {"name": name, "kind": kind},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def test_a_feature_collection_of_sectors_is_read() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            feature("Sector 1", square(76.90, 43.20)),
            feature("Sector 2", square(76.91, 43.20)),
        ],
    }
    zones = parse_zones(json.dumps(document))
    assert [(z.name, z.kind) for z in zones] == [("Sector 1", "sector"), ("Sector 2", "sector")]


@pytest.mark.parametrize(
    ("ring", "says"),
    [
        (square(8_559_000.0, 5_349_000.0, 500.0), "looks projected"),
        ([[76.9, 43.2], [76.91, 43.2], [76.91, 43.21], [76.9, 43.21]], "not closed"),
        ([[76.9, 43.2], [76.91, 43.2], [76.9, 43.2]], "at least 4 positions"),
        (
            [[76.9, 43.2], [76.91, 43.21], [76.91, 43.2], [76.9, 43.21], [76.9, 43.2]],
            "Self-intersection",
        ),
        ([[76.9, 43.2], ["x", 43.2], [76.91, 43.21], [76.9, 43.2]], r"not \[lon, lat\]"),
    ],
)
def test_bad_rings_are_refused_with_the_reason(ring: list[list[float]], says: str) -> None:
    with pytest.raises(ZoneError, match=says):
        parse_zones(feature("Bad", ring))


def test_points_are_located_in_every_zone_that_contains_them() -> None:
    zones = parse_zones(
        {
            "type": "FeatureCollection",
            "features": [
                feature("A", square(76.90, 43.20, 0.02), "district"),
                feature("B", square(76.905, 43.205), "quarantine"),
            ],
        }
    )
    index = ZoneIndex([(10, zones[0].geometry), (20, zones[1].geometry)])
    assert index.containing(76.906, 43.206) == [10, 20]
    assert index.containing(76.901, 43.201) == [10]
    assert index.containing(77.5, 43.5) == []
    assert index.containing(76.90, 43.21) == [10]  # on the boundary: inside
    points, ids = index.locate([76.906, 77.5, 76.901], [43.206, 43.5, 43.201])
    assert sorted(zip(points.tolist(), ids.tolist(), strict=True)) == [(0, 10), (0, 20), (2, 10)]
