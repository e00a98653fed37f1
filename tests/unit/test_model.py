"""The epidemic model: reproducible, right against the SEIR equations and the
final-size equation, and calibrated to the source's first scenario."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.model.calibrate import calibrate, fit_case_series
from services.model.disease import (
    SOURCE_R0,
    Disease,
    scale_odds,
    seir_disease,
    source_consistent_defaults,
)
from services.model.ensemble import run_task, tasks_for, with_overrides
from services.model.scenarios import ScenarioError, load_spec, parse_spec
from services.model.seir import final_size, peak_of, solve_seir
from services.model.simulate import DIED, SUSCEPTIBLE, simulate

LATENT, INFECTIOUS, BETA = 4.0, 5.0, 0.5  # R0 = 2.5


def _seir_runs(population: int, replicates: int, per_day: int, days: int) -> list:
    return [
        simulate(
            seir_disease(LATENT, INFECTIOUS),
            [(0, BETA, 1.0)],
            population=population,
            days=days,
            seed=seed,
            seed_infections=population // 1000,
            steps_per_day=per_day,
        )
        for seed in range(replicates)
    ]


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_numbers() -> None:
    disease = source_consistent_defaults()
    kwargs = {"population": 50_000, "days": 120, "seed_infections": 20, "steps_per_day": 2}
    first = simulate(disease, [(0, 10, 0.05)], seed=7, **kwargs)
    again = simulate(disease, [(0, 10, 0.05)], seed=7, **kwargs)
    other = simulate(disease, [(0, 10, 0.05)], seed=8, **kwargs)
    for name in ("infected", "hospitalised", "dead", "infectious", "exposed"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert np.array_equal(first.fate, again.fate)
    assert not np.array_equal(first.infectious, other.infectious)


def test_every_person_has_a_course_that_adds_up_to_the_daily_series() -> None:
    run = simulate(
        source_consistent_defaults(4.0, 4.0),
        [(0, 10, 0.05)],
        population=100_000,
        days=300,
        seed=3,
        seed_infections=50,
    )
    infected_people = int((run.infected_day >= 0).sum())
    assert infected_people == run.infected[-1]
    assert int((run.fate != SUSCEPTIBLE).sum()) == infected_people
    # 300 days is long past the wave: everyone's course has ended by then.
    assert int((run.fate == DIED).sum()) == run.dead[-1]
    assert run.recovered[-1] + run.dead[-1] == infected_people
    susceptible = run.population - run.infected
    total = susceptible + run.exposed + run.infectious + run.hospitalised + run.recovered
    assert np.all(total + run.dead == run.population)
    ages = np.bincount(run.age_band, minlength=9) / run.population
    assert np.allclose(ages, Disease().age_shares(), atol=0.01)


def test_the_stochastic_mean_agrees_with_the_seir_equations_within_two_percent() -> None:
    population, per_day, days = 1_000_000, 8, 140
    runs = _seir_runs(population, replicates=4, per_day=per_day, days=days)
    mean = np.mean([r.infectious for r in runs], axis=0).astype(np.float64)
    times = np.arange(days) + 1.0 - 1.0 / per_day  # index d is the end of day d
    size, when = peak_of(times, mean)
    ode = solve_seir(
        population=population,
        beta=BETA,
        latent_days=LATENT,
        infectious_days=INFECTIOUS,
        exposed0=population // 1000,
        days=days,
    )
    ode_size, ode_when = ode.peak()
    assert size == pytest.approx(ode_size, rel=0.02)
    assert when == pytest.approx(ode_when, rel=0.02)


@pytest.mark.parametrize("r0", [1.5, 2.5, 3.11])
def test_the_final_size_matches_the_final_size_equation(r0: float) -> None:
    population = 400_000
    run = simulate(
        seir_disease(LATENT, INFECTIOUS),
        [(0, r0 / INFECTIOUS, 1.0)],
        population=population,
        days=500,
        seed=11,
        seed_infections=200,
        steps_per_day=4,
    )
    assert run.infected[-1] / population == pytest.approx(final_size(r0), abs=0.01)
    assert final_size(0.9) == 0.0


def test_the_disease_course_gives_the_sources_r0_and_odds_keep_chances_below_one() -> None:
    assert source_consistent_defaults().r0(10, 0.05) == pytest.approx(SOURCE_R0)
    assert source_consistent_defaults(3.0, 5.0).r0(10, 0.05) == pytest.approx(SOURCE_R0)
    chances = np.array([0.0, 0.1, 0.5, 0.99])
    scaled = scale_odds(chances, 50.0)
    assert np.all(scaled <= 1.0)
    assert np.all(np.diff(scaled) > 0)
    assert scale_odds(chances, 1.0) == pytest.approx(chances)


def test_the_shipped_scenarios_are_the_sources_six_and_land_on_its_first_run() -> None:
    spec = load_spec().of_kind("homogeneous")
    assert len(spec.scenarios) == 6
    assert spec.population == 2_000_000
    assert spec.calibration is not None
    first = spec.scenario(spec.calibration.scenario)
    assert first.schedule[spec.calibration.phase].start == date(2020, 4, 13)
    result = run_task(tasks_for(with_overrides(spec.only([first.key]), replicates=1))[0])
    for measure, target in spec.calibration.targets.items():
        assert result["totals"][measure] == pytest.approx(target, rel=0.10), measure
    # Multi-step exits show no outbreak, as in the source.
    for key in ("exit-two-steps", "exit-three-steps"):
        exit_run = run_task(tasks_for(with_overrides(spec.only([key]), replicates=1))[0])
        assert exit_run["totals"]["infected"] < 0.001 * spec.population


def test_calibration_fits_three_knobs_to_the_targets() -> None:
    spec = load_spec()
    assert spec.calibration is not None
    # Start away from the shipped values; a smaller city keeps the test quick.
    start = replace(
        spec,
        replicates=2,
        disease=source_consistent_defaults(1.0, 1.0),
        scenarios=tuple(s for s in spec.scenarios if s.key == spec.calibration.scenario),
    )
    fit = calibrate(start, population=100_000, workers=1)
    errors = fit.errors()
    assert all(abs(e) < 0.10 for e in errors.values()), errors
    assert 5 < fit.contacts < 15
    assert fit.hospitalisation_odds > 1.0
    assert fit.fatality_odds > 1.0


def test_a_case_series_gives_back_the_contacts_it_was_made_with() -> None:
    spec = replace(load_spec(), steps_per_day=2)
    made = simulate(
        spec.disease,
        [(0, 4.0, 0.05)],
        population=200_000,
        days=90,
        seed=spec.seed,
        seed_infections=100,
        steps_per_day=2,
    )
    detected = np.rint(made.new_symptomatic * 0.25).astype(int)
    first = date(2020, 3, 13)
    series = [(date.fromordinal(first.toordinal() + d), int(c)) for d, c in enumerate(detected)]
    fit = fit_case_series(spec, series, population=200_000, seed_infections=100)
    assert fit.contacts == pytest.approx(4.0, rel=0.10)
    assert fit.detected == pytest.approx(0.25, rel=0.25)
    with pytest.raises(ScenarioError, match="at least 14 days"):
        fit_case_series(spec, series[:5])


_GOOD = """
model: {start: 2020-03-13, population: 1000, days: 30}
scenarios:
  - key: a
    schedule:
      - {from: 2020-03-13, contacts: 10, probability: 0.05}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("contacts: 10", "contacts: -1"), r"scenarios\[0\]\.schedule\[0\]\.contacts: must be"),
        (("probability: 0.05", "probability: 5"), r"probability: must be a number between 0"),
        (("from: 2020-03-13, c", "from: 2020-03-14, c"), r"must be the model's start"),
        (("start: 2020-03-13", "start: 13.03.2020"), r"model\.start: must be a date"),
        (("population: 1000", "population: 1.5"), r"model\.population: must be a whole number"),
        (("key: a", "kex: a"), r"scenarios\[0\]\.key: every scenario needs a short key"),
    ],
)
def test_a_bad_scenario_file_is_refused_saying_where(
    change: tuple[str, str], message: str
) -> None:
    import yaml

    parse_spec(yaml.safe_load(_GOOD))
    with pytest.raises(ScenarioError, match=message):
        parse_spec(yaml.safe_load(_GOOD.replace(*change)))


def test_phases_out_of_order_duplicate_keys_and_broken_yaml_are_refused(tmp_path: Path) -> None:
    import yaml

    doubled = _GOOD + _GOOD[_GOOD.index("  - key") :]
    with pytest.raises(ScenarioError, match="keys must be unique"):
        parse_spec(yaml.safe_load(doubled))
    backwards = _GOOD + "      - {from: 2020-03-01, contacts: 1, probability: 0.01}\n"
    with pytest.raises(ScenarioError, match="date order"):
        parse_spec(yaml.safe_load(backwards))
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_spec(broken)
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_spec(tmp_path / "missing.yaml")
