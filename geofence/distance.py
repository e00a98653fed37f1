"""Geodesic distance for the short ranges home quarantine is about.

Between two points a few hundred metres apart the ellipsoid is, to well under a
millimetre, a plane whose scale is set by the two radii of curvature of WGS84 at the
points' mean latitude: the meridian's (north-south) and the prime vertical's (east-west).
That is what these functions compute. They agree with the full geodesic (geopy's
``geodesic``, Karney's algorithm) to under a millimetre within 200 m and to under a
centimetre within 10 km (``bench/quarantine.py`` measures it), and cost a fraction of
a microsecond per pair in numpy. Beyond a few tens of kilometres use a real geodesic:
nothing here needs one, because a fix that far from home is outside by any measure.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
_E2 = WGS84_F * (2 - WGS84_F)
_RAD = math.pi / 180.0

FloatArray = npt.NDArray[np.float64]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two points given in degrees (one pair, plain floats)."""
    metres: float = _on_plane(math, lat1, lon1, lat2, lon2)
    return metres


def distances_m(
    lat1: FloatArray | float,
    lon1: FloatArray | float,
    lat2: FloatArray | float,
    lon2: FloatArray | float,
) -> FloatArray:
    """The same for arrays (element by element, broadcasting as numpy does)."""
    metres: FloatArray = _on_plane(
        np, *(np.asarray(v, dtype=np.float64) for v in (lat1, lon1, lat2, lon2))
    )
    return metres


def _on_plane(xp: Any, lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """The distance on the plane of the two radii at the mean latitude, computed by
    ``xp``: ``math`` for one pair of floats (fast), ``numpy`` for arrays."""
    mean = (lat1 + lat2) * 0.5 * _RAD
    sin_mean = xp.sin(mean)
    w2 = 1.0 - _E2 * sin_mean * sin_mean
    w = xp.sqrt(w2)
    prime_vertical = WGS84_A / w
    meridian = WGS84_A * (1.0 - _E2) / (w2 * w)
    north = meridian * (lat2 - lat1) * _RAD
    east = prime_vertical * xp.cos(mean) * _wrap(lon2 - lon1) * _RAD
    return xp.hypot(north, east)


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """Metres per degree east and north at a latitude (the plane tangent there)."""
    phi = latitude * _RAD
    w2 = 1.0 - _E2 * math.sin(phi) ** 2
    east = WGS84_A / math.sqrt(w2) * math.cos(phi) * _RAD
    north = WGS84_A * (1.0 - _E2) / (w2 * math.sqrt(w2)) * _RAD
    return east, north


def _wrap(degrees: Any) -> Any:
    """A longitude difference (a float or an array) folded into [-180, 180) (across the
    antimeridian)."""
    return (degrees + 180.0) % 360.0 - 180.0
