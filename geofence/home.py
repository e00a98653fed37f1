"""The home-radius rule: is a live-location fix at home, outside, or too vague to say?

A phone reports each fix with a horizontal accuracy: the radius around the reported
point within which the true position probably is. At home, indoors, reported points
wander by tens of metres while the accuracy grows to match; a person who really walks
away produces points far off with an accuracy that does not cover the gap. So:

- OUTSIDE when even the nearest point of the uncertainty disc is beyond the home
  radius: ``distance - accuracy > 30 m``. Jitter cannot do that unless the phone lies
  about its accuracy; walking 60 m away with a 10 m accuracy does (60 - 10 = 50 > 30).
- POOR when that is not so and the accuracy is worse than 50 m: such a fix could be
  at home or well away, and judging it either way would be a guess. A run of them is
  its own alert ("fixes arrive but are too inaccurate"), not a departure.
- HOME otherwise: the fix is consistent with being at home.

A fix without a reported accuracy is taken as accurate to 20 m, a typical outdoor
figure. A departure is confirmed by two OUTSIDE fixes in a row (one wild fix with a
falsely small accuracy does not raise an alarm; a person who left sends more than
one), and a single HOME fix ends it. A fix implying a speed above 100 m/s from the
last accepted one (after both accuracies are allowed for) is a glitch and is ignored.
"""

from __future__ import annotations

from enum import StrEnum

HOME_RADIUS_M = 30.0
MAX_USABLE_ACCURACY_M = 50.0
ASSUMED_ACCURACY_M = 20.0
OUTSIDE_FIXES_TO_CONFIRM = 2
MAX_SPEED_M_PER_S = 100.0


class Verdict(StrEnum):
    HOME = "home"
    OUTSIDE = "outside"
    POOR = "poor"


def judge(distance: float, accuracy: float | None, radius: float = HOME_RADIUS_M) -> Verdict:
    """The verdict on one fix ``distance`` metres from the home point."""
    uncertainty = ASSUMED_ACCURACY_M if accuracy is None else accuracy
    if distance - uncertainty > radius:
        return Verdict.OUTSIDE
    if uncertainty > MAX_USABLE_ACCURACY_M:
        return Verdict.POOR
    return Verdict.HOME


def plausible_move(
    distance: float, seconds: float, accuracy: float | None, previous_accuracy: float | None
) -> bool:
    """Could a person have moved ``distance`` metres in ``seconds``? Both fixes'
    uncertainties are subtracted first, so GPS noise never makes a move implausible."""
    slack = (ASSUMED_ACCURACY_M if accuracy is None else accuracy) + (
        ASSUMED_ACCURACY_M if previous_accuracy is None else previous_accuracy
    )
    return distance - slack <= MAX_SPEED_M_PER_S * max(seconds, 1.0)
