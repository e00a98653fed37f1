"""How much of an area a brigade's tracks covered: each track (a member's fixes in time
order) is a line, buffered by half the spraying width on each side, and the share of the
area inside that swath is the coverage. Computed with shapely on a local plane in metres
(the tangent plane at the area's centre, as geofence.distance), so the width is metres.
A line area (a street drawn on the map) is itself buffered by the width first."""

from __future__ import annotations

from collections.abc import Sequence

from shapely import affinity
from shapely.geometry import LineString, Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from geofence.distance import metres_per_degree

Track = Sequence[tuple[float, float]]  # (longitude, latitude) in time order


def area_in_metres(area: dict[str, object], width_m: float) -> tuple[BaseGeometry, float, float]:
    """The area (GeoJSON geometry) on the local plane, with the plane's origin."""
    geometry = shape(area)
    centre = geometry.centroid
    east, north = metres_per_degree(centre.y)
    local = affinity.affine_transform(
        geometry, [east, 0, 0, north, -centre.x * east, -centre.y * north]
    )
    if local.geom_type in ("LineString", "MultiLineString", "Point"):
        local = local.buffer(width_m / 2)
    return local, centre.x, centre.y


def coverage(area: dict[str, object], tracks: Sequence[Track], width_m: float) -> float:
    """The share (0..1) of ``area`` within ``width_m / 2`` of a track."""
    local, lon0, lat0 = area_in_metres(area, width_m)
    if local.is_empty or local.area == 0:
        return 0.0
    east, north = metres_per_degree(lat0)
    swaths = []
    for track in tracks:
        points = [((lon - lon0) * east, (lat - lat0) * north) for lon, lat in track]
        if len(points) == 1:
            swaths.append(Point(points[0]).buffer(width_m / 2))
        elif points:
            swaths.append(LineString(points).buffer(width_m / 2))
    if not swaths:
        return 0.0
    covered = local.intersection(unary_union(swaths)).area
    return max(0.0, min(1.0, covered / local.area))


def contains(area: dict[str, object], longitude: float, latitude: float, margin_m: float) -> bool:
    """Whether a point is inside the area or within ``margin_m`` of it."""
    local, lon0, lat0 = area_in_metres(area, 2 * margin_m)
    east, north = metres_per_degree(lat0)
    point = Point((longitude - lon0) * east, (latitude - lat0) * north)
    return bool(local.distance(point) <= margin_m)
