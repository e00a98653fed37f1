"""Scenarios x replicates in worker processes, summarised as medians and 90% bands.

The runs go to a process pool (spawned, so it is safe from a process that runs an
event loop and threads), which keeps the bots and the panel responsive; each worker
sends back only the daily series of its run, never the per-person arrays.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import date, timedelta
from multiprocessing import get_context
from typing import Any

import numpy as np
import numpy.typing as npt

from services.model.disease import Disease
from services.model.scenarios import ModelSpec, Scenario
from services.model.simulate import simulate

SERIES = ("infected_now", "hospitalised", "dead", "infected", "new_symptomatic")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Task:
    scenario: str
    replicate: int
    disease: Disease
    phases: list[tuple[int, float, float]]
    population: int
    days: int
    seed: int
    seed_infections: int
    steps_per_day: int


@dataclass(frozen=True)
class Band:
    median: float
    low: float  # 5th percentile
    high: float  # 95th percentile

    @classmethod
    def of(cls, values: list[float]) -> Band:
        low, median, high = np.percentile(values, [5, 50, 95])
        return cls(float(median), float(low), float(high))


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    start: date
    replicates: int
    infected: Band
    peak_infected: Band
    peak_hospitalised: Band
    peak_hospitalised_day: Band
    deaths: Band
    curves: dict[str, npt.NDArray[np.float64]]  # name -> (3, days): 5th, 50th, 95th

    def as_json(self) -> dict[str, Any]:
        def band(b: Band) -> dict[str, float]:
            return {"median": b.median, "p05": b.low, "p95": b.high}

        peak_day = round(self.peak_hospitalised_day.median)
        return {
            "key": self.scenario.key,
            "name": self.scenario.name,
            "replicates": self.replicates,
            "infected": band(self.infected),
            "peak_infected": band(self.peak_infected),
            "peak_hospitalised": band(self.peak_hospitalised),
            "peak_hospitalised_day": band(self.peak_hospitalised_day),
            "peak_hospitalised_date": (self.start + timedelta(days=peak_day)).isoformat(),
            "deaths": band(self.deaths),
        }


def tasks_for(spec: ModelSpec) -> list[Task]:
    """Replicate r of every scenario uses seed ``spec.seed + r``: scenarios are compared
    on the same random draws, and the same file gives the same numbers."""
    return [
        Task(
            scenario=scenario.key,
            replicate=r,
            disease=spec.disease,
            phases=scenario.phases(spec.start),
            population=spec.population,
            days=spec.days,
            seed=spec.seed + r,
            seed_infections=spec.seed_infections,
            steps_per_day=spec.steps_per_day,
        )
        for scenario in spec.scenarios
        for r in range(spec.replicates)
    ]


def run_task(task: Task) -> dict[str, Any]:
    run = simulate(
        task.disease,
        task.phases,
        population=task.population,
        days=task.days,
        seed=task.seed,
        seed_infections=task.seed_infections,
        steps_per_day=task.steps_per_day,
    )
    return {
        "scenario": task.scenario,
        "replicate": task.replicate,
        "totals": run.totals(),
        "series": {
            "infected_now": run.infected_now().astype(np.int32),
            **{name: getattr(run, name).astype(np.int32) for name in SERIES[1:]},
        },
        "worker": os.getpid(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def run_tasks(
    tasks: list[Task], *, workers: int | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    results: list[dict[str, Any]] = []
    if workers == 1:
        for task in tasks:
            results.append(run_task(task))
            if progress:
                progress(len(results), len(tasks))
        return results
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(run_task, task) for task in tasks]):
            results.append(future.result())
            if progress:
                progress(len(results), len(tasks))
    return results


def summarise(spec: ModelSpec, results: list[dict[str, Any]]) -> list[ScenarioResult]:
    out = []
    for scenario in spec.scenarios:
        runs = sorted(
            (r for r in results if r["scenario"] == scenario.key), key=lambda r: r["replicate"]
        )
        totals = [r["totals"] for r in runs]
        curves = {
            name: np.percentile(np.stack([r["series"][name] for r in runs]), [5, 50, 95], axis=0)
            for name in SERIES
        }
        out.append(
            ScenarioResult(
                scenario=scenario,
                start=spec.start,
                replicates=len(runs),
                infected=Band.of([t["infected"] for t in totals]),
                peak_infected=Band.of([t["peak_infected"] for t in totals]),
                peak_hospitalised=Band.of([t["peak_hospitalised"] for t in totals]),
                peak_hospitalised_day=Band.of([t["peak_hospitalised_day"] for t in totals]),
                deaths=Band.of([t["deaths"] for t in totals]),
                curves=curves,
            )
        )
    return out


def run_spec(
    spec: ModelSpec, *, workers: int | None = None, progress: Progress | None = None
) -> list[ScenarioResult]:
    return summarise(spec, run_tasks(tasks_for(spec), workers=workers, progress=progress))


def with_overrides(
    spec: ModelSpec,
    *,
    population: int | None = None,
    days: int | None = None,
    replicates: int | None = None,
    seed: int | None = None,
) -> ModelSpec:
    """The command line's --population/--days/--replicates/--seed over the file's values.
    The seed infections scale with the population so a smaller run keeps its shape."""
    changes: dict[str, Any] = {}
    if population is not None:
        changes["population"] = population
        changes["seed_infections"] = max(
            1, min(population, round(spec.seed_infections * population / spec.population))
        )
    if days is not None:
        changes["days"] = days
    if replicates is not None:
        changes["replicates"] = replicates
    if seed is not None:
        changes["seed"] = seed
    return replace(spec, **changes)
