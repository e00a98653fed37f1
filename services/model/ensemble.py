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

from services.model.city import Structure, build_policy
from services.model.disease import Disease
from services.model.population import SETTINGS, Population, PopulationConfig, build_population
from services.model.scenarios import ModelSpec, Scenario
from services.model.simulate import Run, simulate
from services.model.structured import (
    Policy,
    StructuredRun,
    Transmission,
    per_contact_for_r0,
    simulate_structured,
)

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
    structure: Structure | None = None  # set: run on the structured city
    policy: Policy | None = None


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
    # Structured runs: per district name, its bands; infections by setting (medians).
    districts: dict[str, dict[str, Band]] | None = None
    by_setting: dict[str, float] | None = None

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
            **(
                {
                    "districts": {
                        name: {k: band(b) for k, b in bands.items()}
                        for name, bands in self.districts.items()
                    },
                    "infections_by_setting": self.by_setting,
                }
                if self.districts is not None
                else {}
            ),
        }


def tasks_for(spec: ModelSpec) -> list[Task]:
    """Replicate r of every scenario uses seed ``spec.seed + r``: scenarios are compared
    on the same random draws (and, structured, on the same synthetic city), and the
    same file gives the same numbers."""
    structure = spec.structure if spec.population_kind == "structured" else None
    policies = {
        s.key: build_policy(s.interventions, s.multipliers(spec.start), spec.start, spec.days)
        for s in (spec.scenarios if structure is not None else ())
    }
    replicates = range(spec.replicates)
    # Structured: replicate by replicate, so a worker builds each city once.
    order = (
        [(r, s) for r in replicates for s in spec.scenarios]
        if structure is not None
        else [(r, s) for s in spec.scenarios for r in replicates]
    )
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
            steps_per_day=structure.steps_per_day if structure else spec.steps_per_day,
            structure=structure,
            policy=policies.get(scenario.key),
        )
        for r, scenario in order
    ]


_CITIES: dict[tuple[PopulationConfig, int, int], Population] = {}


def city_for(structure: Structure, pyramid: tuple[int, ...], size: int, seed: int) -> Population:
    """The synthetic city of a replicate, kept while the next tasks use the same one."""
    key = (structure.population, size, seed)
    if key not in _CITIES:
        _CITIES.clear()
        _CITIES[key] = build_population(structure.population, pyramid, size, seed)
    return _CITIES[key]


def _structured_run(task: Task) -> StructuredRun:
    assert task.structure is not None
    assert task.policy is not None
    city = city_for(task.structure, task.disease.age_pyramid, task.population, task.seed)
    transmission = Transmission(
        per_contact=per_contact_for_r0(
            city,
            task.structure.population,
            task.structure.setting_weight,
            task.disease.infectious_days(),
            task.structure.r0,
        ),
        setting_weight=task.structure.setting_weight,
    )
    return simulate_structured(
        task.disease,
        city,
        task.structure.population,
        transmission,
        task.policy,
        days=task.days,
        seed=task.seed,
        seed_infections=task.seed_infections,
        steps_per_day=task.steps_per_day,
    )


def run_task(task: Task) -> dict[str, Any]:
    run: Run
    if task.structure is not None:
        run = _structured_run(task)
    else:
        run = simulate(
            task.disease,
            task.phases,
            population=task.population,
            days=task.days,
            seed=task.seed,
            seed_infections=task.seed_infections,
            steps_per_day=task.steps_per_day,
        )
    extra: dict[str, Any] = {}
    if isinstance(run, StructuredRun):
        extra = {
            "district_names": run.district_names,
            "districts": {k: v.astype(np.int32) for k, v in run.districts.items()},
            "by_setting": run.by_setting,
        }
    return {
        **extra,
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
                **_district_summary(runs),
            )
        )
    return out


def _district_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per district: bands of infected, peak in hospital (and its day) and deaths."""
    if not runs or "districts" not in runs[0]:
        return {}
    names = runs[0]["district_names"]
    districts = {}
    for i, name in enumerate(names):
        hospital = [r["districts"]["hospitalised"][i] for r in runs]
        districts[name] = {
            "infected": Band.of([float(r["districts"]["infected"][i][-1]) for r in runs]),
            "peak_hospitalised": Band.of([float(h.max()) for h in hospital]),
            "peak_hospitalised_day": Band.of([float(np.argmax(h)) for h in hospital]),
            "deaths": Band.of([float(r["districts"]["dead"][i][-1]) for r in runs]),
        }
    by_setting = {
        s: float(np.median([r["by_setting"][k] for r in runs])) for k, s in enumerate(SETTINGS)
    }
    return {"districts": districts, "by_setting": by_setting}


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
    population_kind: str | None = None,
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
    spec = replace(spec, **changes)
    return spec.of_kind(population_kind) if population_kind is not None else spec
