"""Fitting the model's free parameters.

``calibrate`` fits three knobs to the source's first scenario: the contacts of one phase
(how far contacts came back after lifting) to the peak number infected at once (see
scenarios.yaml for why the source's 791,610 is read that way), the hospitalisation
odds multiplier to the peak in hospital, and the fatality odds multiplier to deaths.
Each knob is found by false position (Illinois) inside a bracket, on runs that share one
seed (common random numbers, so the objective is nearly smooth); the three are refitted
in turn until all land within half a percent, because hospital admission ends a
person's infectious time and so feeds back on the number infected.

``fit_case_series`` fits one contacts level and the share of cases detected to a city's
own daily case series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from services.model.disease import source_consistent_defaults
from services.model.ensemble import Band, run_tasks, tasks_for, with_overrides
from services.model.scenarios import ModelSpec, ScenarioError
from services.model.simulate import Run, simulate

TOLERANCE = 0.005
Report = Callable[[str], None]


@dataclass(frozen=True)
class Fit:
    contacts: float
    hospitalisation_odds: float
    fatality_odds: float
    targets: dict[str, float]
    replicate_medians: dict[str, Band]
    runs: int

    def errors(self) -> dict[str, float]:
        """Relative error of each replicate median against its target."""
        return {
            name: self.replicate_medians[name].median / target - 1.0
            for name, target in self.targets.items()
        }


def _false_position(
    objective: Callable[[float], float], low: float, high: float, *, log: bool
) -> float:
    """A root of an increasing ``objective`` (relative error) between low and high."""

    def to_x(v: float) -> float:
        return math.exp(v) if log else v

    a, b = (math.log(low), math.log(high)) if log else (low, high)
    fa, fb = objective(to_x(a)), objective(to_x(b))
    if fa > 0 or fb < 0:
        raise ScenarioError(
            f"the target is out of reach between {low:g} and {high:g} "
            f"(relative errors {fa:+.1%} and {fb:+.1%})"
        )
    side = 0
    for _ in range(40):
        c = b - fb * (b - a) / (fb - fa) if fb != fa else (a + b) / 2
        fc = objective(to_x(c))
        if abs(fc) < TOLERANCE / 2:
            return to_x(c)
        if fc > 0:
            b, fb = c, fc
            if side == 1:
                fa /= 2
            side = 1
        else:
            a, fa = c, fc
            if side == -1:
                fb /= 2
            side = -1
    return to_x((a + b) / 2)


def calibrate(
    spec: ModelSpec,
    *,
    population: int | None = None,
    report: Report | None = None,
    workers: int | None = None,
) -> Fit:
    if spec.calibration is None:
        raise ScenarioError("the scenario file has no calibration section")
    target = spec.calibration
    population = population or target.population
    scale = population / target.population
    targets = {name: value * scale for name, value in target.targets.items()}
    scenario = spec.scenario(target.scenario)
    seeds = with_overrides(spec, population=population).seed_infections
    knobs = {
        "contacts": scenario.schedule[target.phase].contacts,
        "hospitalisation_odds": spec.disease.hospitalisation_odds,
        "fatality_odds": spec.disease.fatality_odds,
    }
    runs = 0

    def run(**changed: float) -> Run:
        nonlocal runs
        values = {**knobs, **changed}
        phases = scenario.phases(spec.start)
        first_day, _, probability = phases[target.phase]
        phases[target.phase] = (first_day, values["contacts"], probability)
        runs += 1
        return simulate(
            source_consistent_defaults(values["hospitalisation_odds"], values["fatality_odds"]),
            phases,
            population=population,
            days=spec.days,
            seed=spec.seed,
            seed_infections=seeds,
            steps_per_day=spec.steps_per_day,
        )

    def error(knob: str, measure: str) -> Callable[[float], float]:
        return lambda value: run(**{knob: value}).totals()[measure] / targets[measure] - 1.0

    fits = (
        ("contacts", "peak_infected", 0.01, 40.0, False),
        ("hospitalisation_odds", "peak_hospitalised", 0.01, 1e4, True),
        ("fatality_odds", "deaths", 0.01, 1e4, True),
    )
    for round_ in range(1, 6):
        for knob, measure, low, high, log in fits:
            knobs[knob] = _false_position(error(knob, measure), low, high, log=log)
        totals = run().totals()
        worst = max(abs(totals[m] / targets[m] - 1.0) for m in targets)
        if report:
            report(
                f"round {round_}: contacts {knobs['contacts']:.3f}, hospitalisation odds "
                f"x{knobs['hospitalisation_odds']:.3f}, fatality odds "
                f"x{knobs['fatality_odds']:.3f}; worst error {worst:.2%} ({runs} runs)"
            )
        if worst < TOLERANCE:
            break
    fitted = fitted_spec(
        spec, knobs["contacts"], knobs["hospitalisation_odds"], knobs["fatality_odds"]
    )
    check = replace(fitted.only([scenario.key]), population=population, seed_infections=seeds)
    results = run_tasks(tasks_for(check), workers=workers)
    medians = {name: Band.of([r["totals"][name] for r in results]) for name in targets}
    return Fit(
        contacts=knobs["contacts"],
        hospitalisation_odds=knobs["hospitalisation_odds"],
        fatality_odds=knobs["fatality_odds"],
        targets=targets,
        replicate_medians=medians,
        runs=runs + len(results),
    )


def fitted_spec(
    spec: ModelSpec, contacts: float, hospitalisation_odds: float, fatality_odds: float
) -> ModelSpec:
    """The spec with the fitted knobs in place (the phase's contacts in its scenario)."""
    assert spec.calibration is not None
    key, index = spec.calibration.scenario, spec.calibration.phase
    scenarios = []
    for scenario in spec.scenarios:
        if scenario.key == key:
            schedule = list(scenario.schedule)
            schedule[index] = replace(schedule[index], contacts=contacts)
            scenario = replace(scenario, schedule=tuple(schedule))
        scenarios.append(scenario)
    return replace(
        spec,
        scenarios=tuple(scenarios),
        disease=source_consistent_defaults(hospitalisation_odds, fatality_odds),
    )


@dataclass(frozen=True)
class SeriesFit:
    start: date
    days: int
    contacts: float
    probability: float
    detected: float  # share of symptomatic onsets that appear in the series
    r: float
    rmse: float
    seed_infections: int


def fit_case_series(
    spec: ModelSpec,
    series: list[tuple[date, int]],
    *,
    population: int | None = None,
    seed_infections: int | None = None,
) -> SeriesFit:
    """One contacts level (at the first phase's probability per contact) and the share
    detected, so that detected x daily symptom onsets follows the series in the least
    squares sense. The run starts on the series' first day with ``seed_infections``
    people infected (default: ten times the first week's daily mean, i.e. about one in
    five detected over a few days). While few are immune, the share detected and the
    starting infections trade off against each other; the contacts do not."""
    if len(series) < 14:
        raise ScenarioError("a case series needs at least 14 days")
    series = sorted(series)
    start, days = series[0][0], (series[-1][0] - series[0][0]).days + 1
    observed = np.zeros(days)
    for day, cases in series:
        observed[(day - start).days] += cases
    population = population or spec.population
    seeds = seed_infections or int(min(population, max(10, round(10 * observed[:7].mean()))))
    probability = spec.scenarios[0].schedule[0].probability or 0.05
    disease = spec.disease

    def residual(contacts: float) -> tuple[float, float]:
        run = simulate(
            disease,
            [(0, contacts, probability)],
            population=population,
            days=days,
            seed=spec.seed,
            seed_infections=seeds,
            steps_per_day=spec.steps_per_day,
        )
        onsets = run.new_symptomatic.astype(np.float64)
        power = float(onsets @ onsets)
        detected = min(1.0, float(observed @ onsets) / power) if power else 1.0
        return float(np.sqrt(np.mean((observed - detected * onsets) ** 2))), detected

    golden = (math.sqrt(5) - 1) / 2
    low, high = 0.2, 20.0
    x1, x2 = high - golden * (high - low), low + golden * (high - low)
    f1, f2 = residual(x1)[0], residual(x2)[0]
    for _ in range(30):
        if f1 < f2:
            high, x2, f2 = x2, x1, f1
            x1 = high - golden * (high - low)
            f1 = residual(x1)[0]
        else:
            low, x1, f1 = x1, x2, f2
            x2 = low + golden * (high - low)
            f2 = residual(x2)[0]
    contacts = (low + high) / 2
    rmse, detected = residual(contacts)
    return SeriesFit(
        start=start,
        days=days,
        contacts=contacts,
        probability=probability,
        detected=detected,
        r=disease.r0(contacts, probability),
        rmse=rmse,
        seed_infections=seeds,
    )
