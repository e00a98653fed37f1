"""Zones (districts, sectors, quarantine zones): GeoJSON polygons in longitude/latitude,
checked on the way in, and a spatial index that says which zones contain many points
at once.

GeoJSON (RFC 7946) is longitude first, in degrees. Files exported from GIS tools are
often in a projected system (metres, e.g. EPSG:3857 or a UTM zone) or latitude first;
both are refused with a message saying so, as are rings that are not closed, too
short, or cross themselves. Nothing is guessed or repaired silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

KINDS = ("district", "sector", "quarantine")
_POLYGONAL = ("Polygon", "MultiPolygon")


class ZoneError(ValueError):
    """A zone that cannot be imported; the message says which feature and why."""


@dataclass(frozen=True)
class ZoneShape:
    name: str
    kind: str
    geometry: BaseGeometry
    geojson: dict[str, Any]


def parse_zones(
    document: str | bytes | dict[str, Any], *, kind: str | None = None
) -> list[ZoneShape]:
    """Every polygon feature of a GeoJSON document, checked. ``kind`` is used for
    features without a ``kind`` property. Raises ZoneError on the first bad feature."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as error:
            raise ZoneError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ZoneError("a GeoJSON document is a JSON object")
    kind_of_type = document.get("type")
    if kind_of_type == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise ZoneError("the FeatureCollection has no features")
    elif kind_of_type == "Feature":
        features = [document]
    elif kind_of_type in _POLYGONAL:
        features = [{"type": "Feature", "properties": {}, "geometry": document}]
    else:
        raise ZoneError(f"expected a FeatureCollection, Feature or Polygon, not {kind_of_type!r}")
    return [_zone(index, feature, kind) for index, feature in enumerate(features, start=1)]


def _zone(index: int, feature: Any, default_kind: str | None) -> ZoneShape:
    where = f"feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ZoneError(f"{where}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    name = str(properties.get("name") or "").strip()
    if not name:
        raise ZoneError(f"{where}: no name (properties.name)")
    where = f"feature {index} ({name})"
    kind = str(properties.get("kind") or default_kind or "")
    if kind not in KINDS:
        raise ZoneError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in _POLYGONAL:
        raise ZoneError(f"{where}: the geometry must be a Polygon or MultiPolygon")
    polygons = geometry.get("coordinates")
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    if not isinstance(polygons, list) or not polygons:
        raise ZoneError(f"{where}: no coordinates")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise ZoneError(f"{where}: a polygon without rings")
        for number, ring in enumerate(polygon, start=1):
            _check_ring(where, number, ring)
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, AttributeError) as error:
        raise ZoneError(f"{where}: unreadable geometry ({error})") from None
    if not parsed.is_valid:
        raise ZoneError(f"{where}: invalid polygon: {explain_validity(parsed)}")
    return ZoneShape(name, kind, parsed, geometry)


def _check_ring(where: str, number: int, ring: Any) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ZoneError(f"{where}: ring {number} needs at least 4 positions (closed)")
    for position in ring:
        if (
            not isinstance(position, list | tuple)
            or len(position) < 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in position[:2])
        ):
            raise ZoneError(f"{where}: ring {number} has a position that is not [lon, lat]")
        lon, lat = position[0], position[1]
        if abs(lon) > 180 or abs(lat) > 90:
            raise ZoneError(
                f"{where}: ring {number} has [{lon}, {lat}], outside longitude/latitude "
                "degrees: the file looks projected (metres); export it as WGS84 (EPSG:4326)"
            )
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise ZoneError(f"{where}: ring {number} is not closed (first and last differ)")


class ZoneIndex:
    """Which of a set of zones contain which points (boundary included), through an
    R-tree (shapely's STRtree) and vectorised predicates."""

    def __init__(self, zones: Sequence[tuple[int, BaseGeometry]]) -> None:
        self.ids = np.array([zone_id for zone_id, _ in zones], dtype=np.int64)
        self.tree = shapely.STRtree([geometry for _, geometry in zones])

    def __len__(self) -> int:
        return len(self.ids)

    def locate(
        self, longitudes: Iterable[float], latitudes: Iterable[float]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Pairs (point index, zone id) for every zone that contains each point."""
        points = shapely.points(
            np.fromiter(longitudes, dtype=np.float64), np.fromiter(latitudes, dtype=np.float64)
        )
        point_index, tree_index = self.tree.query(points, predicate="intersects")
        return point_index.astype(np.int64), self.ids[tree_index]

    def containing(self, longitude: float, latitude: float) -> list[int]:
        """The zones containing one point."""
        _, zone_ids = self.locate([longitude], [latitude])
        return sorted(int(z) for z in zone_ids)
