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

:class:`BrigadeService` is the one object the rest of the platform holds: each of its
methods is one part's.
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


class BrigadeService:
    """The brigades' parts over one pool, under the names callers use."""

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
        self.planning = BrigadePlanning(pool)
        self.field = BrigadeField(pool, spray_width_m=spray_width_m)
        self.monitor = BrigadeMonitor(
            pool,
            clean_hours=clean_hours,
            still_minutes=still_minutes,
            clean_coverage=clean_coverage,
            outside_margin_m=outside_margin_m,
        )
        # planning (the panel)
        self.create = self.planning.create
        self.brigades = self.planning.brigades
        self.invite = self.planning.invite
        self.add_task = self.planning.add_task
        self.plan_district = self.planning.plan_district
        self.zones = self.planning.zones
        self.tasks = self.planning.tasks
        # the field (the staff bot)
        self.join = self.field.join
        self.brigade_of = self.field.brigade_of
        self.tasks_of = self.field.tasks_of
        self.start = self.field.start
        self.record_fix = self.field.record_fix
        self.started_task = self.field.started_task
        self.add_photo = self.field.add_photo
        self.done = self.field.done
        self.block = self.field.block
        # clean zones, monitoring, figures
        self.clean_zones = self.monitor.clean_zones
        self.watch = self.monitor.watch
        self.district_days = self.monitor.district_days
        self.purge = self.monitor.purge

    @property
    def clean_coverage(self) -> float:
        """A done task's area is clean from this share of coverage."""
        return self.monitor.clean_coverage
