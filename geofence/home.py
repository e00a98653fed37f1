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
figure. A fix implying a speed above 100 m/s from the last accepted one (after both
accuracies are allowed for) is a glitch and is ignored.

Leaving and coming back are judged alike (:class:`HomeWatch`): neither turns on one fix
whose disc merely touches the line. A departure is confirmed by two OUTSIDE fixes in a
row (one wild fix with a falsely small accuracy does not raise an alarm; a person who
left sends more than one). Once away, the person is back home on a fix *confidently
inside* (the whole disc within the radius: ``distance + accuracy <= 30 m``) or on two
fixes in a row *within the radius* (the reported point within 30 m, the accuracy
usable: 50 m or better). A fix 75 m away at ±46 m is HOME by :func:`judge` (its disc
reaches home) but neither, so it leaves the person away, and it is not a new departure
either. POOR fixes say nothing either way: they neither count towards nor break a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

HOME_RADIUS_M = 30.0
MAX_USABLE_ACCURACY_M = 50.0
ASSUMED_ACCURACY_M = 20.0
OUTSIDE_FIXES_TO_CONFIRM = 2
INSIDE_FIXES_TO_CONFIRM = 2
MAX_RUN = 1000  # a run's length is only compared with 2; it is stored in a smallint
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


def confidently_inside(
    distance: float, accuracy: float | None, radius: float = HOME_RADIUS_M
) -> bool:
    """The whole uncertainty disc is within the home radius."""
    uncertainty = ASSUMED_ACCURACY_M if accuracy is None else accuracy
    return distance + uncertainty <= radius


def within_radius(distance: float, accuracy: float | None, radius: float = HOME_RADIUS_M) -> bool:
    """The reported point is within the home radius and its accuracy is usable."""
    uncertainty = ASSUMED_ACCURACY_M if accuracy is None else accuracy
    return distance <= radius and uncertainty <= MAX_USABLE_ACCURACY_M


class Change(StrEnum):
    LEFT = "left"  # a "left home" episode opens
    BACK = "back"  # it closes: back home


@dataclass(frozen=True)
class HomeWatch:
    """Where the home rule stands for one person: away or not, and the runs of OUTSIDE and
    within-radius fixes so far. :meth:`after` gives the state after one more fix and the
    change it makes, if any."""

    away: bool = False
    outside_run: int = 0
    inside_run: int = 0

    def after(
        self, distance: float, accuracy: float | None, radius: float = HOME_RADIUS_M
    ) -> tuple[HomeWatch, Change | None]:
        verdict = judge(distance, accuracy, radius)
        if verdict is Verdict.POOR:
            return self, None
        outside_run = min(self.outside_run + 1, MAX_RUN) if verdict is Verdict.OUTSIDE else 0
        if not self.away:
            if outside_run >= OUTSIDE_FIXES_TO_CONFIRM:
                return HomeWatch(True, outside_run, 0), Change.LEFT
            return HomeWatch(False, outside_run, 0), None
        if confidently_inside(distance, accuracy, radius):
            return HomeWatch(), Change.BACK
        inside_run = (
            min(self.inside_run + 1, MAX_RUN) if within_radius(distance, accuracy, radius) else 0
        )
        if inside_run >= INSIDE_FIXES_TO_CONFIRM:
            return HomeWatch(), Change.BACK
        return HomeWatch(True, outside_run, inside_run), None


def plausible_move(
    distance: float, seconds: float, accuracy: float | None, previous_accuracy: float | None
) -> bool:
    """Could a person have moved ``distance`` metres in ``seconds``? Both fixes'
    uncertainties are subtracted first, so GPS noise never makes a move implausible."""
    slack = (ASSUMED_ACCURACY_M if accuracy is None else accuracy) + (
        ASSUMED_ACCURACY_M if previous_accuracy is None else previous_accuracy
    )
    return distance - slack <= MAX_SPEED_M_PER_S * max(seconds, 1.0)
