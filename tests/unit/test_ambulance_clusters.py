"""Clusters of ambulance calls: five calls within 100 m and 3 days are a cluster; fewer,
farther or older ones are not; new calls grow or merge the clusters they touch."""

import numpy as np

from geofence.clusters import ClusterRule, assign, neighbour_pairs, project

DAY = 86400.0
RULE = ClusterRule(meters=100, seconds=3 * DAY, minimum=5)
# Almaty: a degree of latitude is about 111 km, of longitude about 84 km.
LAT, LON = 43.238, 76.945


def _calls(points: list[tuple[float, float, float]]) -> tuple[np.ndarray, ...]:
    """(metres north, metres east, days) -> projected x, y and seconds."""
    lat = np.array([LAT + north / 111_000 for north, _, _ in points])
    lon = np.array([LON + east / 81_300 for _, east, _ in points])
    x, y = project(lat, lon)
    t = np.array([days * DAY for _, _, days in points])
    return x, y, t


def _run(
    points: list[tuple[float, float, float]],
    known: list[int] | None = None,
    fresh: list[bool] | None = None,
):
    x, y, t = _calls(points)
    size = len(points)
    return assign(
        x,
        y,
        t,
        np.array(known or [0] * size, dtype=np.int64),
        np.array(fresh or [True] * size),
        RULE,
    )


def test_five_calls_from_one_building_within_three_days_are_a_new_cluster() -> None:
    result = _run([(0, 0, 0), (20, 10, 0.5), (-30, 15, 1), (10, -40, 2), (5, 5, 2.5)])
    assert result.new == [-1]
    assert list(result.cluster) == [-1] * 5


def test_four_calls_are_not_a_cluster_however_close() -> None:
    result = _run([(0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 3, 0)])
    assert result.new == []
    assert list(result.cluster) == [0] * 4


def test_calls_spread_over_more_than_the_days_or_the_metres_are_not_a_cluster() -> None:
    spread_in_time = _run([(0, 0, d * 3.5) for d in range(6)])
    spread_in_space = _run([(d * 150, 0, 0) for d in range(6)])
    assert spread_in_time.new == []
    assert spread_in_space.new == []


def test_a_new_call_joins_the_cluster_it_is_near_and_no_new_cluster_is_made() -> None:
    points = [(0, 0, 0), (20, 10, 0.5), (-30, 15, 1), (10, -40, 2), (5, 5, 2.5), (0, 30, 2.7)]
    result = _run(points, known=[7, 7, 7, 7, 7, 0], fresh=[False] * 5 + [True])
    assert result.new == []
    assert list(result.cluster) == [7] * 6


def test_a_call_between_two_clusters_merges_them_into_the_older() -> None:
    west = [(0, -90 + i, 0) for i in range(5)]
    east = [(0, 90 - i, 0) for i in range(5)]
    bridge = [(0, 0, 0)]
    result = _run(west + east + bridge, known=[3] * 5 + [9] * 5 + [0], fresh=[False] * 10 + [True])
    assert result.merged == {9: 3}
    assert set(result.cluster) == {3}


def test_neighbours_are_found_across_cell_edges_and_only_within_the_distance() -> None:
    x, y, t = _calls([(0, 0, 0), (0, 99, 0), (0, 101, 0), (0, 99, 3.1)])
    first, second = neighbour_pairs(x, y, t, np.array([0]), RULE)
    assert sorted(second.tolist()) == [0, 1]
    assert set(first.tolist()) == {0}
