"""Disinfection brigades: planning (the panel's `operations` role), work in the field (the
staff bot, role `brigade`), clean zones and monitoring.

A brigade's day is a list of tasks in order, each an area (a zone that exists, or a line
or polygon drawn on the map) and a method. A member starts a task, shares live location
while working (the fixes are the task's track), marks it done with at least one photo,
or blocked with a reason. A done task's area is *clean* for ``clean_hours``; its coverage
is the share of the area within half the spraying width of the tracks
(geofence/coverage.py), so walking one street of a large sector is not a clean sector.

The parts:

- :mod:`.model`       plain values, refusals, the drawn-area check, the task query;
- :mod:`.planning`    brigades, invites and the tasks of a day (the panel);
- :mod:`.field`       members, their tasks, tracks, photos, done and blocked (the bot);
- :mod:`.monitoring`  clean zones, the watch list, figures per district, retention.

:class:`BrigadeService` is the one object the rest of the platform holds: it is made of
the three parts, which share its pool and rules.
"""

from __future__ import annotations

import asyncpg

from services.brigades.field import BrigadeField
from services.brigades.model import (
    METHODS,
    Brigade,
    BrigadeError,
    DistrictDay,
    Task,
    Watch,
    check_area,
)
from services.brigades.monitoring import BrigadeMonitor
from services.brigades.planning import BrigadePlanning

__all__ = [
    "METHODS",
    "Brigade",
    "BrigadeError",
    "BrigadeService",
    "DistrictDay",
    "Task",
    "Watch",
    "check_area",
]


class BrigadeService(BrigadePlanning, BrigadeField, BrigadeMonitor):
    """The brigades' parts over one pool and one set of rules."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clean_hours: float = 24,
        spray_width_m: float = 20,
        still_minutes: float = 30,
        clean_coverage: float = 0.6,
        outside_margin_m: float = 100,
    ) -> None:
        self.pool = pool
        self.clean_hours = clean_hours
        self.spray_width_m = spray_width_m
        self.still_minutes = still_minutes
        self.clean_coverage = clean_coverage
        self.outside_margin_m = outside_margin_m
