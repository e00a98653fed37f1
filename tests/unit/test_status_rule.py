"""The colour rule, on vectors: every colour, the 72-hour edge, lifting."""

from datetime import UTC, datetime, timedelta

from services.status import (
    Colour,
    Isolation,
    NegativeResult,
    Records,
    compute_status,
)

T0 = datetime(2021, 3, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def negative(sampled: datetime, result: datetime | None = None) -> NegativeResult:
    return NegativeResult(sampled, result or sampled + 6 * H, "City lab")


def test_nothing_known_is_blue() -> None:
    status = compute_status(Records([], [], []), T0)
    assert status.colour is Colour.BLUE
    assert status.colour.may_enter


def test_a_negative_result_is_green_for_exactly_72_hours_from_the_result() -> None:
    records = Records([], [], [negative(T0 - 6 * H, T0)])
    green = compute_status(records, T0 + 72 * H - timedelta(microseconds=1))
    assert green.colour is Colour.GREEN
    assert green.until == T0 + 72 * H
    assert compute_status(records, T0 + 72 * H).colour is Colour.BLUE
    assert compute_status(records, T0 - timedelta(seconds=1)).colour is Colour.BLUE


def test_a_positive_result_is_red_until_isolation_ends_and_a_negative_test_lifts_it() -> None:
    positive = Isolation(T0, T0 + 14 * D, "City lab")
    only_positive = Records([positive], [], [])
    red = compute_status(only_positive, T0 + D)
    assert red.colour is Colour.RED
    assert not red.colour.may_enter
    assert red.needs_negative_test
    assert red.until == T0 + 14 * D
    # The isolation ended but no negative test: still red.
    assert compute_status(only_positive, T0 + 30 * D).colour is Colour.RED
    # A negative test taken early does not lift it.
    early = Records([positive], [], [negative(T0 + 5 * D)])
    assert compute_status(early, T0 + 30 * D).colour is Colour.RED
    # A test on the last day, once the isolation is over: lifted, and green for 72 h.
    lifted = Records([positive], [], [negative(T0 + 13 * D + 12 * H, T0 + 14 * D + 2 * H)])
    assert compute_status(lifted, T0 + 14 * D - H).colour is Colour.RED
    assert compute_status(lifted, T0 + 14 * D + 3 * H).colour is Colour.GREEN


def test_a_registered_contact_is_yellow_and_lifted_the_same_way() -> None:
    contact = Isolation(T0, T0 + 14 * D)
    assert compute_status(Records([], [contact], []), T0 + H).colour is Colour.YELLOW
    assert compute_status(Records([], [contact], [negative(T0 + 2 * D)]), T0 + 3 * D).colour is (
        Colour.YELLOW
    )
    lifted = Records([], [contact], [negative(T0 + 14 * D)])
    assert compute_status(lifted, T0 + 14 * D + 7 * H).colour is Colour.GREEN


def test_red_wins_over_yellow_and_over_a_recent_negative() -> None:
    records = Records(
        [Isolation(T0 + D, T0 + 15 * D)], [Isolation(T0, T0 + 14 * D)], [negative(T0)]
    )
    assert compute_status(records, T0 + 2 * D).colour is Colour.RED
    assert compute_status(records, T0 + 12 * H).colour is Colour.YELLOW


def test_a_new_positive_after_recovery_is_red_again() -> None:
    first = Isolation(T0, T0 + 14 * D)
    second = Isolation(T0 + 60 * D, T0 + 74 * D)
    records = Records([first, second], [], [negative(T0 + 14 * D)])
    assert compute_status(records, T0 + 20 * D).colour is Colour.BLUE
    assert compute_status(records, T0 + 61 * D).colour is Colour.RED


def test_records_not_yet_known_at_the_moment_are_ignored() -> None:
    records = Records([Isolation(T0 + D, T0 + 15 * D)], [], [])
    assert compute_status(records, T0).colour is Colour.BLUE


def test_a_status_survives_its_json_round_trip() -> None:
    from services.status import Status

    status = compute_status(Records([], [], [negative(T0)]), T0 + D)
    assert Status.from_json(status.to_json()) == status
