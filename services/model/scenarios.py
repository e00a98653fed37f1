"""Scenario files: YAML schedules of contacts per day and probability per contact.

The shipped file (``scenarios.yaml`` beside this module) holds the six scenarios of the
source with every assumption written beside its number. A file is checked as a whole
and every mistake is reported with where it is (``scenarios[2].schedule[1].contacts:
must be a number of at least 0``), never half-used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.model.city import (
    CityError,
    Intervention,
    Structure,
    parse_interventions,
    parse_structure,
)
from services.model.disease import Disease, source_consistent_defaults

DEFAULT_SCENARIOS = "scenarios.yaml"
POPULATION_KINDS = ("homogeneous", "structured")
# What calibration fits, each by its own knob (see services.model.calibrate).
_CALIBRATION_TARGETS = ("peak_infected", "peak_hospitalised", "deaths")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Phase:
    start: date
    contacts: float
    probability: float
    why: str = ""


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    schedule: tuple[Phase, ...]
    note: str = ""
    interventions: tuple[Intervention, ...] = ()
    structured_only: bool = False  # its interventions need the structured city

    def phases(self, start: date) -> list[tuple[int, float, float]]:
        """(day from the model's start, contacts, probability) for the engine."""
        return [((p.start - start).days, p.contacts, p.probability) for p in self.schedule]

    def multipliers(self, start: date) -> list[tuple[int, float]]:
        """For the structured city: each phase's contacts x probability relative to the
        first phase's, which the structured block's R0 describes."""
        first = self.schedule[0].contacts * self.schedule[0].probability
        return [
            ((p.start - start).days, p.contacts * p.probability / first if first else 0.0)
            for p in self.schedule
        ]


@dataclass(frozen=True)
class Calibration:
    scenario: str
    phase: int  # index into that scenario's schedule whose contacts are fitted
    population: int
    targets: dict[str, float]  # measure -> value at ``population``


@dataclass(frozen=True)
class ModelSpec:
    start: date
    population: int
    days: int
    seed_infections: int
    steps_per_day: int
    replicates: int
    seed: int
    disease: Disease
    scenarios: tuple[Scenario, ...]
    calibration: Calibration | None = None
    source: str = ""
    population_kind: str = "homogeneous"
    structure: Structure | None = None

    def scenario(self, key: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.key == key:
                return scenario
        known = ", ".join(s.key for s in self.scenarios)
        raise ScenarioError(f"no scenario {key!r} (the file has: {known})")

    def only(self, keys: list[str]) -> ModelSpec:
        return replace(self, scenarios=tuple(self.scenario(k) for k in keys))

    def of_kind(self, kind: str) -> ModelSpec:
        """The spec run on a homogeneous or a structured population. Homogeneous runs
        leave out the scenarios whose interventions need the structured city."""
        if kind not in POPULATION_KINDS:
            raise ScenarioError(f"population kind must be one of {', '.join(POPULATION_KINDS)}")
        if kind == "structured":
            if self.structure is None:
                raise ScenarioError("structured: the file has no structured block")
            return replace(self, population_kind=kind)
        kept = tuple(s for s in self.scenarios if not s.structured_only)
        if not kept:
            raise ScenarioError("every chosen scenario needs --population-kind structured")
        return replace(self, population_kind=kind, scenarios=kept)


def default_scenarios_path() -> Path:
    return Path(str(resources.files("services.model").joinpath(DEFAULT_SCENARIOS)))


def _number(
    value: object, where: str, *, low: float, high: float | None = None, integer: bool = False
) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer and not float(value).is_integer():  # type: ignore[arg-type]
        ok = False
    if ok and (value < low or (high is not None and value > high)):  # type: ignore[operator]
        ok = False
    if not ok:
        kind = "a whole number" if integer else "a number"
        span = f"between {low:g} and {high:g}" if high is not None else f"of at least {low:g}"
        raise ScenarioError(f"{where}: must be {kind} {span} (got {value!r})")
    return float(value)  # type: ignore[arg-type]


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{where}: must be a date like 2020-04-13 (got {value!r})") from None


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: must be a mapping of names to values")
    return value


def _scenario(raw: object, where: str, start: date, districts: tuple[str, ...] | None) -> Scenario:
    item = _mapping(raw, where)
    key = item.get("key")
    if not isinstance(key, str) or not key.strip():
        raise ScenarioError(f"{where}.key: every scenario needs a short key")
    schedule_raw = item.get("schedule")
    if not isinstance(schedule_raw, list) or not schedule_raw:
        raise ScenarioError(f"{where}.schedule: a list of at least one phase is needed")
    phases = []
    for n, phase_raw in enumerate(schedule_raw):
        at = f"{where}.schedule[{n}]"
        phase = _mapping(phase_raw, at)
        phases.append(
            Phase(
                start=_date(phase.get("from"), f"{at}.from"),
                contacts=_number(phase.get("contacts"), f"{at}.contacts", low=0, high=1000),
                probability=_number(phase.get("probability"), f"{at}.probability", low=0, high=1),
                why=str(phase.get("why", "")),
            )
        )
    if phases[0].start != start:
        raise ScenarioError(f"{where}.schedule[0].from: must be the model's start, {start}")
    for n in range(1, len(phases)):
        if phases[n].start <= phases[n - 1].start:
            raise ScenarioError(f"{where}.schedule[{n}].from: phases must be in date order")
    interventions: tuple[Intervention, ...] = ()
    if item.get("interventions") is not None:
        if districts is None:
            raise ScenarioError(f"{where}.interventions: need the file's structured block")
        interventions = parse_interventions(
            item["interventions"], f"{where}.interventions", _number, _date, districts
        )
    return Scenario(
        key=key.strip(),
        name=str(item.get("name") or key),
        schedule=tuple(phases),
        note=str(item.get("note", "")),
        interventions=interventions,
        structured_only=bool(item.get("structured_only", bool(interventions))),
    )


def parse_spec(document: object) -> ModelSpec:
    try:
        return _parse_spec(document)
    except CityError as error:
        raise ScenarioError(str(error)) from None


def _parse_spec(document: object) -> ModelSpec:
    top = _mapping(document, "file")
    model = _mapping(top.get("model", {}), "model")
    start = _date(model.get("start"), "model.start")
    population = int(
        _number(model.get("population"), "model.population", low=1, high=1e9, integer=True)
    )
    seeds = int(
        _number(model.get("seed_infections", 10), "model.seed_infections", low=0, integer=True)
    )
    if seeds > population:
        raise ScenarioError("model.seed_infections: cannot exceed the population")
    disease = source_consistent_defaults(
        _number(model.get("hospitalisation_odds", 1.0), "model.hospitalisation_odds", low=1e-3),
        _number(model.get("fatality_odds", 1.0), "model.fatality_odds", low=1e-3),
    )
    structure = None
    if top.get("structured") is not None:
        structure = parse_structure(top["structured"], _number, disease.age_pyramid)
    districts = tuple(d.name for d in structure.population.districts) if structure else None
    kind = model.get("population_kind", "homogeneous")
    if kind not in POPULATION_KINDS:
        raise ScenarioError(
            f"model.population_kind: must be one of {', '.join(POPULATION_KINDS)} (got {kind!r})"
        )
    raw_scenarios = top.get("scenarios")
    if not isinstance(raw_scenarios, list) or not raw_scenarios:
        raise ScenarioError("scenarios: a list of at least one scenario is needed")
    scenarios = tuple(
        _scenario(raw, f"scenarios[{n}]", start, districts) for n, raw in enumerate(raw_scenarios)
    )
    keys = [s.key for s in scenarios]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ScenarioError(f"scenarios: keys must be unique ({', '.join(duplicates)})")
    spec = ModelSpec(
        start=start,
        population=population,
        days=int(_number(model.get("days", 365), "model.days", low=1, high=3650, integer=True)),
        seed_infections=seeds,
        steps_per_day=int(
            _number(
                model.get("steps_per_day", 4), "model.steps_per_day", low=1, high=96, integer=True
            )
        ),
        replicates=int(
            _number(model.get("replicates", 5), "model.replicates", low=1, high=1000, integer=True)
        ),
        seed=int(_number(model.get("seed", 1), "model.seed", low=0, integer=True)),
        disease=disease,
        scenarios=scenarios,
        source=str(top.get("source", "")),
        structure=structure,
    )
    if kind == "structured":
        spec = spec.of_kind(kind)
    if "calibration" in top:
        spec = replace(spec, calibration=_calibration(top["calibration"], spec))
    return spec


def _calibration(raw: object, spec: ModelSpec) -> Calibration:
    item = _mapping(raw, "calibration")
    scenario = spec.scenario(str(item.get("scenario")))
    phase = int(_number(item.get("phase"), "calibration.phase", low=0, integer=True))
    if phase >= len(scenario.schedule):
        raise ScenarioError(
            f"calibration.phase: {scenario.key} has phases 0 to {len(scenario.schedule) - 1}"
        )
    raw_targets = _mapping(item.get("targets"), "calibration.targets")
    if set(raw_targets) != set(_CALIBRATION_TARGETS):
        raise ScenarioError(
            "calibration.targets: needs exactly " + ", ".join(_CALIBRATION_TARGETS)
        )
    return Calibration(
        scenario=scenario.key,
        phase=phase,
        population=int(
            _number(item.get("population", spec.population), "calibration.population", low=1)
        ),
        targets={
            name: _number(raw_targets[name], f"calibration.targets.{name}", low=1)
            for name in _CALIBRATION_TARGETS
        },
    )


def load_spec(path: Path | None = None) -> ModelSpec:
    path = path or default_scenarios_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML ({error})") from None
    try:
        return parse_spec(document)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
