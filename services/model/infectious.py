"""The people infectious at a step of the structured model, kept as short contiguous
arrays (services.model.structured).

Why: at 2 million people the step's cost was gathering, for every infectious person
and every setting, values out of the city's 2-million-long arrays (random memory
access, every day of each person's infectious time). Here everything a step needs of
a person (the end of their infectious time, their onset, their base rate of attempts
in each setting, where their household and group are) is gathered once, when they
become infectious; a step then reads and filters these short arrays in order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Infectious:
    """Columns of equal length, one row per infectious person."""

    COLUMNS = (
        "person",  # index in the city
        "end",  # first step no longer infectious
        "onset",  # step of symptoms, -1 never
        "early_end",  # first step after the more infectious early part
        "rate",  # (k, 4) attempts a step per setting before infectiousness and the day
        "home_start",  # first member of the household (people are numbered by home)
        "home_size",
        "group_start",  # first slot of the class or workplace in group_members
        "group_size",
        "home_at_work",  # works from home on days whose share exceeds this
    )

    def __init__(self) -> None:
        self.person = np.zeros(0, np.int64)
        self.end = np.zeros(0, np.int32)
        self.onset = np.zeros(0, np.int32)
        self.early_end = np.zeros(0, np.int32)
        self.rate = np.zeros((0, 4), np.float64)
        self.home_start = np.zeros(0, np.int64)
        self.home_size = np.zeros(0, np.int64)
        self.group_start = np.zeros(0, np.int64)
        self.group_size = np.zeros(0, np.int64)
        self.home_at_work = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return len(self.person)

    def drop_ended(self, step: int) -> npt.NDArray[np.bool_]:
        """Which rows are still infectious at ``step``. The table is compacted only
        once a quarter of its rows have ended (copying every column each step cost
        more than carrying the ended rows, whose rates the caller zeroes)."""
        keep = self.end > step
        ended = len(keep) - int(np.count_nonzero(keep))
        if ended and ended * 4 >= len(keep):
            for name in self.COLUMNS:
                setattr(self, name, getattr(self, name)[keep])
            keep = keep[keep]
        return keep

    def add(self, rows: dict[str, npt.NDArray[np.generic]]) -> None:
        for name in self.COLUMNS:
            old = getattr(self, name)
            setattr(self, name, np.concatenate((old, rows[name].astype(old.dtype))))

    def infectiousness(
        self, step: int, asymptomatic: float, symptomatic: float, early_ratio: float
    ) -> FloatArray:
        """Relative infectiousness at ``step``: asymptomatic, before onset (1) or after."""
        w = np.where(self.onset < 0, asymptomatic, np.where(step < self.onset, 1.0, symptomatic))
        if early_ratio != 1.0:
            w = np.where(step < self.early_end, w * early_ratio, w)
        return w


def poisson(rng: np.random.Generator, lam: FloatArray) -> IntArray:
    """Poisson draws: by inversion for rates up to 10, vectorised over the rows still
    searching, and by numpy above. The rates here are mostly well below 1, where this
    is several times faster than ``Generator.poisson`` (most rows stop at 0 after one
    uniform and one exp). A row still searching after 100 terms (a chance below 1e-30
    at a rate of 10, or a uniform above the rounded cumulative sum) keeps 100."""
    counts = np.zeros(len(lam), np.int64)
    large = lam > 10
    if large.any():
        counts[large] = rng.poisson(lam[large])
    small = np.flatnonzero(~large)
    lam = lam[small]
    u = rng.random(len(small))
    term = np.exp(-lam)
    cumulative = term.copy()
    more = np.flatnonzero(u > cumulative)
    for k in range(1, 101):
        if not len(more):
            break
        counts[small[more]] = k
        term[more] *= lam[more] / k
        cumulative[more] += term[more]
        more = more[u[more] > cumulative[more]]
    return counts


def per_edge_rates(rates: FloatArray, active: Infectious) -> None:
    """Attempts a step on each household or group member (oneself included, dropped
    later) whose Poisson chance of at least one equals the linear chance per edge."""
    # The rate columns are home, school, work, community (services.model.population).
    for columns, size in (((0,), active.home_size), ((1, 2), active.group_size)):
        for column in columns:
            chance = np.minimum(rates[:, column] / size, 1 - 1e-9)
            rates[:, column] = -np.log1p(-chance) * size
