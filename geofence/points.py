"""Points of interest from GeoJSON: Point features become rows for the importer, each
with its feature number, so a bad feature is reported like a bad CSV line."""

from __future__ import annotations

import json
from typing import Any


def point_rows(data: bytes) -> list[tuple[int, list[str] | None]]:
    """``(feature number, [kind, name, latitude, longitude, residents])``; None for a
    feature that is not a Point with two numeric coordinates (reported as malformed)."""
    try:
        document: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [(1, None)]
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        return [(1, None)]
    rows: list[tuple[int, list[str] | None]] = []
    for number, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        properties = (feature.get("properties") if isinstance(feature, dict) else None) or {}
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if (
            not isinstance(geometry, dict)
            or geometry.get("type") != "Point"
            or not isinstance(coordinates, list)
            or len(coordinates) < 2
            or not isinstance(properties, dict)
        ):
            rows.append((number, None))
            continue
        longitude, latitude = coordinates[0], coordinates[1]  # GeoJSON is longitude first
        residents = properties.get("residents")
        rows.append(
            (
                number,
                [
                    str(properties.get("kind", "")),
                    str(properties.get("name", "")),
                    str(latitude),
                    str(longitude),
                    "" if residents is None else str(residents),
                ],
            )
        )
    return rows
