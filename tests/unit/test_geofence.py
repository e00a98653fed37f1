"""The distance rule against geopy's geodesic, and the home-radius rule on tracks."""

import math
import random

import numpy as np
from geopy.distance import geodesic

from geofence.distance import distance_m, distances_m
from geofence.home import HOME_RADIUS_M, Verdict, judge, plausible_move

ALMATY = (43.2389, 76.8897)


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point roughly ``north_m``/``east_m`` metres away (the test measures it exactly)."""
    return (
        lat + north_m / 111_132.0,
        lon + east_m / (111_320.0 * math.cos(math.radians(lat))),
    )


def test_distance_agrees_with_geopy_within_a_millimetre_up_to_200_m() -> None:
    rng = random.Random(7)
    worst = 0.0
    pairs = []
    for _ in range(5_000):
        lat, lon = _offset(*ALMATY, rng.uniform(-15_000, 15_000), rng.uniform(-15_000, 15_000))
        bearing, length = rng.uniform(0, 2 * math.pi), rng.uniform(0, 200)
        other = _offset(lat, lon, length * math.cos(bearing), length * math.sin(bearing))
        pairs.append((lat, lon, *other))
        reference = geodesic((lat, lon), other).meters
        worst = max(worst, abs(distance_m(lat, lon, *other) - reference))
    assert worst < 0.001
    lat1, lon1, lat2, lon2 = (np.array(column) for column in zip(*pairs, strict=True))
    vector = distances_m(lat1, lon1, lat2, lon2)
    scalar = [distance_m(*pair) for pair in pairs]
    assert np.allclose(vector, scalar, atol=1e-9)


def test_distance_across_the_antimeridian_and_at_zero() -> None:
    assert distance_m(*ALMATY, *ALMATY) == 0.0
    across = distance_m(10.0, 179.9995, 10.0, -179.9995)
    assert abs(across - geodesic((10.0, 179.9995), (10.0, -179.9995)).meters) < 0.001


def _track_verdicts(points: list[tuple[float, float, float | None]]) -> list[Verdict]:
    return [
        judge(distance_m(*ALMATY, *_offset(*ALMATY, north, east)), accuracy)
        for north, east, accuracy in points
    ]


def test_jitter_at_home_is_never_outside() -> None:
    rng = random.Random(3)
    track = []
    for _ in range(2_000):
        accuracy = rng.uniform(5, 45)
        # The reported point wanders within 25 m, plus noise up to the reported accuracy.
        radius = min(25.0, rng.uniform(0, 25) + rng.uniform(0, accuracy) * 0.5)
        angle = rng.uniform(0, 2 * math.pi)
        track.append((radius * math.cos(angle), radius * math.sin(angle), accuracy))
    assert Verdict.OUTSIDE not in _track_verdicts(track)


def test_indoor_fixes_far_off_with_matching_accuracy_are_home_or_poor() -> None:
    # 70 m away but only accurate to 65 m: the disc reaches home, so not a departure.
    assert judge(70.0, 65.0) is Verdict.POOR
    assert judge(45.0, 20.0) is Verdict.HOME
    assert judge(30.0 + 20.0, None) is Verdict.HOME  # no accuracy: taken as 20 m


def test_a_walk_out_to_60_m_is_outside_and_back_home_is_home() -> None:
    walk = [(0, d, 8.0) for d in (5, 15, 25, 35, 45, 60, 60, 45, 20, 5)]
    verdicts = _track_verdicts(walk)
    assert verdicts[:3] == [Verdict.HOME] * 3
    assert verdicts[5] is Verdict.OUTSIDE
    assert verdicts[6] is Verdict.OUTSIDE
    assert verdicts[-1] is Verdict.HOME
    assert judge(HOME_RADIUS_M + 10.0 + 0.1, 10.0) is Verdict.OUTSIDE
    assert judge(HOME_RADIUS_M + 10.0, 10.0) is Verdict.HOME


def test_teleports_are_implausible_and_walks_are_not() -> None:
    assert plausible_move(60.0, 30.0, 10.0, 10.0)
    assert plausible_move(900.0, 30.0, 10.0, 10.0)  # 30 m/s: a car
    assert not plausible_move(50_000.0, 30.0, 10.0, 10.0)
    assert plausible_move(50_000.0, 3_600.0, 10.0, 10.0)  # an hour later: possible
