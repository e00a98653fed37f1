"""The home rule on a run of fixes (geofence/home.py, HomeWatch): leaving takes two fixes
outside, coming back takes one fix confidently inside or two fixes in a row within 30 m."""

from __future__ import annotations

import pytest

from geofence.home import Change, HomeWatch

AWAY = HomeWatch(away=True, outside_run=2)


def walk(watch: HomeWatch, fixes: list[tuple[float, float | None]]) -> list[Change | None]:
    """The change each fix makes, in order; ``watch`` follows the fixes."""
    changes = []
    for distance, accuracy in fixes:
        watch, change = watch.after(distance, accuracy)
        changes.append(change)
    return changes


# At each distance (m) and reported accuracy (m; None: not reported, taken as 20): whether
# one such fix brings the patient back, and whether two such fixes in a row do.
ACCURACIES = (0.0, 20.0, 50.0, 51.0, None)
INSIDE_30_M = [(True, True), (False, True), (False, True), (False, False), (False, True)]
GRID = {29.9: INSIDE_30_M, 30.0: INSIDE_30_M, 30.1: [(False, False)] * len(ACCURACIES)}
# Distance plus accuracy at 30 m and just over: one fix is confident up to 30 m.
CONFIDENT = [
    (10.0, 20.0, True, True),
    (10.1, 20.0, False, True),
    (10.0, None, True, True),
    (10.1, None, False, True),
]
BOUNDARIES = [
    (distance, accuracy, one, two)
    for distance, row in GRID.items()
    for accuracy, (one, two) in zip(ACCURACIES, row, strict=True)
] + CONFIDENT


@pytest.mark.parametrize(("distance", "accuracy", "one_closes", "two_close"), BOUNDARIES)
def test_coming_back_at_the_boundaries(
    distance: float, accuracy: float | None, one_closes: bool, two_close: bool
) -> None:
    once = walk(AWAY, [(distance, accuracy)])
    assert once == [Change.BACK if one_closes else None]
    if not one_closes:
        twice = walk(AWAY, [(distance, accuracy)] * 2)
        assert twice == [None, Change.BACK if two_close else None]


@pytest.mark.parametrize(("distance", "accuracy", "_one", "_two"), BOUNDARIES)
def test_no_fix_near_home_is_a_new_departure(
    distance: float, accuracy: float | None, _one: bool, _two: bool
) -> None:
    assert Change.LEFT not in walk(AWAY, [(distance, accuracy)] * 3)


def test_a_fix_75_m_away_at_46_m_does_not_bring_the_patient_back() -> None:
    watch, change = AWAY.after(75.0, 46.0)
    assert change is None
    assert watch.away
    assert walk(AWAY, [(75.0, 46.0)] * 5) == [None] * 5


def test_two_fixes_in_a_row_within_30_m_bring_the_patient_back() -> None:
    watch, first = AWAY.after(25.0, 15.0)
    assert first is None
    assert watch.away
    watch, second = watch.after(28.0, 30.0)
    assert second is Change.BACK
    assert not watch.away


def test_one_fix_within_30_m_then_an_ambiguous_one_does_not_bring_the_patient_back() -> None:
    assert walk(AWAY, [(25.0, 15.0), (75.0, 46.0)]) == [None, None]
    assert walk(AWAY, [(25.0, 15.0), (40.0, 20.0)]) == [None, None]
    # The run starts again after the ambiguous fix: one more within 30 m is not enough.
    assert walk(AWAY, [(25.0, 15.0), (40.0, 20.0), (25.0, 15.0)]) == [None, None, None]
    assert walk(AWAY, [(25.0, 15.0), (40.0, 20.0), (25.0, 15.0), (20.0, 10.0)]) == [
        None,
        None,
        None,
        Change.BACK,
    ]


def test_a_fix_outside_breaks_the_run_within_30_m() -> None:
    assert walk(AWAY, [(25.0, 15.0), (80.0, 5.0), (25.0, 15.0)]) == [None, None, None]


def test_too_inaccurate_fixes_neither_count_nor_break_a_run_either_way() -> None:
    assert walk(AWAY, [(25.0, 15.0), (10.0, 120.0), (25.0, 15.0)]) == [None, None, Change.BACK]
    assert walk(HomeWatch(), [(80.0, 5.0), (40.0, 90.0), (80.0, 5.0)]) == [
        None,
        None,
        Change.LEFT,
    ]


def test_leaving_takes_two_fixes_outside_in_a_row() -> None:
    assert walk(HomeWatch(), [(60.0, 10.0), (60.0, 10.0)]) == [None, Change.LEFT]
    assert walk(HomeWatch(), [(60.0, 10.0), (75.0, 46.0), (60.0, 10.0)]) == [None, None, None]
    assert walk(HomeWatch(), [(25.0, 15.0), (25.0, 15.0)]) == [None, None]


def test_once_back_a_new_departure_is_counted_afresh() -> None:
    fixes: list[tuple[float, float | None]] = [
        (60.0, 10.0),
        (60.0, 10.0),
        (75.0, 46.0),
        (60.0, 10.0),
        (5.0, 5.0),
        (60.0, 10.0),
        (60.0, 10.0),
    ]
    assert walk(HomeWatch(), fixes) == [
        None,
        Change.LEFT,
        None,
        None,
        Change.BACK,
        None,
        Change.LEFT,
    ]
