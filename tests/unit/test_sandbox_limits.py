"""The sandbox's flood limits on a clock of the test's own: sends judged late because the
sandbox's own loop paused are not refused for it, and a bot too fast still is."""

from __future__ import annotations

import time

import pytest

from bots.sandbox import limits as limits_module
from bots.sandbox.limits import HEARTBEAT, FloodLimits

# Past a whole number of seconds by a hair: the clock's float sums (it starts at the real
# clock, thousands of seconds) must not leave a pause a rounding error short of its length.
NUDGE = 1e-6


class Clock:
    """Starts at the real clock (a chat's bucket is stamped by it) and moves when told."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits_module.time, "monotonic", clock)
    return clock


def _sends(limits: FloodLimits, chats: range) -> int:
    """Send to each chat at once; how many were refused."""
    refused = 0
    for chat in chats:
        if limits.wait(1, "citizen", chat, paid=False) is None:
            limits.record(1, chat, paid=False)
        else:
            refused += 1
    return refused


def _sending_for(limits: FloodLimits, clock: Clock, seconds: float, chats: int) -> int:
    """25 sends a second, spaced as the pacer spaces them, the loop beating meanwhile; how
    many were refused."""
    refused = 0
    for step in range(round(seconds * 25)):
        clock.now += 0.04
        limits.beat()
        refused += _sends(limits, range(step % chats, step % chats + 1))
    return refused


def test_sends_that_piled_up_while_the_sandbox_paused_are_not_refused(clock: Clock) -> None:
    limits = FloodLimits()
    assert _sending_for(limits, clock, 2, 50) == 0
    clock.now += 2.0  # the loop stood still while 50 more sends arrived, 25 a second
    assert _sends(limits, range(100, 150)) == 0
    assert limits.own_pauses == 1
    assert limits.own_paused_seconds == pytest.approx(2.0 - HEARTBEAT, abs=0.01)


def test_without_the_pause_credit_the_same_pile_is_refused(clock: Clock) -> None:
    limits = FloodLimits(credit_own_pauses=False)
    _sending_for(limits, clock, 2, 50)
    clock.now += 2.0
    assert _sends(limits, range(100, 150)) == 20  # 30 in the second, the rest refused


def test_a_bot_too_fast_is_refused_even_after_a_pause(clock: Clock) -> None:
    limits = FloodLimits()
    _sending_for(limits, clock, 2, 50)
    clock.now += HEARTBEAT + 1.0 + NUDGE  # a beat a second overdue: 30 more sends allowed
    assert _sends(limits, range(100, 200)) == 100 - (30 + 30)


def test_the_credit_lasts_only_a_short_while_after_the_pause(clock: Clock) -> None:
    limits = FloodLimits()
    _sending_for(limits, clock, 1, 25)
    clock.now += 2.0
    limits.beat()  # nothing was judged during the pause's grace...
    for _ in range(round((limits_module.PAUSE_GRACE + 1.0) / HEARTBEAT)):
        clock.now += HEARTBEAT
        limits.beat()
    assert _sends(limits, range(100, 150)) == 20  # ...and now the limits are whole again


def test_a_chat_gets_its_burst_and_the_pause_on_top(clock: Clock) -> None:
    limits = FloodLimits()
    limits.beat()
    clock.now += HEARTBEAT + 8.0 + NUDGE  # a beat 8 s overdue: 8 sends, judged at once
    refused = sum(_sends(limits, range(7, 8)) for _ in range(14))
    assert refused == 1  # 5 of its burst, 8 of the pause's seconds: the 14th is refused


@pytest.mark.parametrize(("credit", "refused"), [(True, 0), (False, 2)])
def test_a_pause_the_loop_noticed_itself_still_counts_for_the_second_after_it(
    clock: Clock, credit: bool, refused: int
) -> None:
    """The sandbox's own watcher usually runs before the piled-up requests are judged: the
    pause is its to count, and the second that follows the pile holds 25 + 8 sends."""
    limits = FloodLimits(credit_own_pauses=credit)
    assert _sending_for(limits, clock, 2, 50) == 0
    clock.now += 0.32  # the loop stood still while 8 sends arrived, 25 a second
    limits.beat()
    piled = _sends(limits, range(100, 108))
    assert piled + _sending_for(limits, clock, 0.96, 50) == refused
    assert limits.own_pauses == (1 if credit else 0)
