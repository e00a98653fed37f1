"""The structured city: the synthetic population matches the distributions it is built
from (within sampling error), the same seed gives the same numbers, interventions act
where they should, and the scenario file's structured block is checked like the rest."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from services.model.city import CityError, build_policy, load_matrices
from services.model.disease import source_consistent_defaults
from services.model.ensemble import run_task, summarise, tasks_for, with_overrides
from services.model.infectious import Infectious, per_edge_rates, poisson
from services.model.population import STUDENT, WORKER, build_population
from services.model.scenarios import ScenarioError, default_scenarios_path, load_spec, parse_spec
from services.model.structured import (
    Policy,
    Transmission,
    contacts_per_setting,
    per_contact_for_r0,
    per_member_contacts,
    simulate_structured,
)

SIZE = 200_000


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_spec().of_kind("structured")


@pytest.fixture(scope="module")
def city(spec):  # type: ignore[no-untyped-def]
    return build_population(spec.structure.population, spec.disease.age_pyramid, SIZE, seed=11)


def _within(observed: float, expected: float, count: int, sigmas: float = 4.0) -> bool:
    """Observed share within ``sigmas`` binomial standard errors of the expected one."""
    error = np.sqrt(max(expected * (1 - expected), 1e-12) / count)
    return abs(observed - expected) <= sigmas * error + 1e-9


def test_household_sizes_and_ages_match_their_input_distributions(spec, city) -> None:  # type: ignore[no-untyped-def]
    config = spec.structure.population
    sizes = city.household_sizes()
    households = len(sizes)
    wanted = np.asarray(config.household_sizes) / sum(config.household_sizes)
    observed = np.bincount(sizes, minlength=len(wanted) + 1)[1:] / households
    for k, (got, expected) in enumerate(zip(observed, wanted, strict=True), start=1):
        assert _within(got, expected, households), (k, got, expected)
    pyramid = np.asarray(spec.disease.age_pyramid, dtype=np.float64)
    pyramid /= pyramid.sum()
    bands = np.bincount(city.band, minlength=len(pyramid)) / city.size
    for band, (got, expected) in enumerate(zip(bands, pyramid, strict=True)):
        assert _within(got, expected, city.size), (band, got, expected)
    assert city.size == SIZE == int(sizes.sum())
    # Every household has a head aged 20 or more, listed first.
    assert city.age[city.household_start[:-1]].min() >= 20
    # Children live with adults about a generation older, not at random.
    kids = np.flatnonzero(city.age < 15)
    heads = city.household_start[city.household[kids]]
    assert 20 < float(np.mean(city.age[heads].astype(int) - city.age[kids])) < 40


def test_school_enrolment_work_and_districts_match_their_inputs(spec, city) -> None:  # type: ignore[no-untyped-def]
    config = spec.structure.population
    years = city.age.astype(int)
    school_age = (years >= config.school_ages[0]) & (years < config.school_ages[1])
    enrolled = float((city.role[school_age] == STUDENT).mean())
    assert _within(enrolled, config.enrolment, int(school_age.sum()))
    assert not (city.role[~school_age] == STUDENT).any()
    working_age = (years >= config.work_ages[0]) & (years < config.work_ages[1])
    employed = float((city.role[working_age] == WORKER).mean())
    assert _within(employed, config.employment, int(working_age.sum()))
    # Classes are of one district and one school year, of about the configured size.
    students = np.flatnonzero(city.role == STUDENT)
    classes = city.group[students]
    for values in (city.age[students], city.district[students]):
        per_class = np.unique(np.stack([classes, values]), axis=1)
        assert per_class.shape[1] == len(np.unique(classes))
    class_sizes = np.bincount(classes)
    class_sizes = class_sizes[class_sizes > 0]
    assert abs(class_sizes.mean() - config.class_size) < 2.5
    # Districts hold their share of the residents (up to one household at each edge).
    shares = np.bincount(city.district, minlength=len(config.districts)) / city.size
    wanted = config.scaled_districts(1.0)
    assert np.allclose(shares, wanted, atol=10 / city.size)
    # Commuting: about the configured share of workers work in another district.
    workers = np.flatnonzero(city.role == WORKER)
    away = city.group_district[city.group[workers]] != city.district[workers]
    jobs = np.array([d.jobs for d in config.districts], dtype=np.float64)
    own_district_draw = float(np.sum(wanted * jobs / jobs.sum()))
    expected_away = config.commuting * (1 - own_district_draw)
    assert abs(float(away.mean()) - expected_away) < 0.01
    # Every group member is listed once, under its own group.
    members = city.group_members
    assert len(members) == int((city.group >= 0).sum()) == len(np.unique(members))
    first = city.group_start[city.group[members[:50]]]
    assert np.all(first <= np.arange(50))


def _run(spec, city, policy: Policy, seed: int, days: int = 150):  # type: ignore[no-untyped-def]
    structure = spec.structure
    disease = spec.disease
    transmission = Transmission(
        per_contact=per_contact_for_r0(
            city, structure.population, structure.setting_weight, disease.infectious_days(), 2.5
        ),
        setting_weight=structure.setting_weight,
    )
    return simulate_structured(
        disease,
        city,
        structure.population,
        transmission,
        policy,
        days=days,
        seed=seed,
        seed_infections=40,
    )


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_numbers(spec, city) -> None:  # type: ignore[no-untyped-def]
    again_city = build_population(
        spec.structure.population, spec.disease.age_pyramid, SIZE, seed=11
    )
    assert np.array_equal(again_city.household, city.household)
    assert np.array_equal(again_city.group, city.group)
    first = _run(spec, city, Policy.none(150), seed=5)
    again = _run(spec, again_city, Policy.none(150), seed=5)
    other = _run(spec, city, Policy.none(150), seed=6)
    for name in ("infected", "hospitalised", "dead", "infectious", "exposed"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    for name, values in first.districts.items():
        assert np.array_equal(values, again.districts[name])
    assert first.by_setting == again.by_setting
    assert not np.array_equal(first.infectious, other.infectious)
    # The per-district series add up to the city's, and every state to the people.
    assert np.array_equal(first.districts["hospitalised"].sum(axis=0), first.hospitalised)
    assert np.array_equal(first.districts["infected"].sum(axis=0), first.infected)
    susceptible = first.population - first.infected
    total = susceptible + first.exposed + first.infectious + first.hospitalised
    assert np.all(total + first.recovered + first.dead == first.population)
    assert int((first.infected_day >= 0).sum()) == first.infected[-1]
    assert sum(first.by_setting) + 40 == first.infected[-1]


def test_closing_schools_stops_school_infections_and_shrinks_the_wave(spec, city) -> None:  # type: ignore[no-untyped-def]
    open_runs = [_run(spec, city, Policy.none(150), seed=s) for s in (1, 2)]
    closed = Policy.none(150)
    closed.setting_factor[1, :] = 0.0
    closed_runs = [_run(spec, city, closed, seed=s) for s in (1, 2)]
    assert all(r.by_setting[1] > 0 for r in open_runs)
    assert all(r.by_setting[1] == 0 for r in closed_runs)
    assert np.mean([r.infected[-1] for r in closed_runs]) < np.mean(
        [r.infected[-1] for r in open_runs]
    )


def test_a_sealed_zone_slows_the_spread_and_isolation_cuts_it(spec, city) -> None:  # type: ignore[no-untyped-def]
    # Every district sealed in turn is not possible with one zone; sealing the largest
    # cuts the contacts across its border, so the city's wave is smaller or later.
    biggest = int(np.argmax(np.bincount(city.district)))
    sealed = Policy.none(150)
    sealed.zone[:] = biggest
    sealed.zone_cut[:] = 1.0
    free = _run(spec, city, Policy.none(150), seed=3)
    run = _run(spec, city, sealed, seed=3)
    assert run.infected[60] < free.infected[60]
    # Isolation and household quarantine of everyone with symptoms, at once, cut spread.
    tracing = Policy.none(150)
    tracing.testing[:] = 1.0
    tracing.tracing[:] = 1.0
    traced = _run(spec, city, replace(tracing, isolation_efficacy=1.0), seed=3)
    assert traced.infected[-1] < free.infected[-1]


def test_the_structured_scenarios_run_and_report_each_district(spec) -> None:  # type: ignore[no-untyped-def]
    small = with_overrides(
        spec.only(["schools-open", "zone-alatau"]), population=60_000, days=120, replicates=2
    )
    tasks = tasks_for(small)
    assert [t.replicate for t in tasks] == [0, 0, 1, 1]  # one city per replicate
    results = summarise(small, [run_task(t) for t in tasks])
    districts = results[0].districts
    assert districts is not None
    assert list(districts) == [d.name for d in spec.structure.population.districts]
    for bands in districts.values():
        assert bands["infected"].low <= bands["infected"].median <= bands["infected"].high
    assert results[0].by_setting is not None
    assert set(results[0].by_setting) == {
        "home",
        "school",
        "work",
        "community",
    }
    doc = results[1].as_json()
    assert doc["districts"]["Alatau"]["peak_hospitalised"]["median"] >= 0


def test_homogeneous_runs_keep_the_six_and_structured_runs_add_the_new_ones() -> None:
    shipped = load_spec()
    assert [s.key for s in shipped.of_kind("homogeneous").scenarios][:1] == ["lift-13-april"]
    assert len(shipped.of_kind("homogeneous").scenarios) == 6
    structured = shipped.of_kind("structured").scenarios
    assert {"schools-open", "schools-closed", "zone-alatau", "test-and-trace"} <= {
        s.key for s in structured
    }
    with pytest.raises(ScenarioError, match="needs --population-kind structured"):
        shipped.only(["schools-closed"]).of_kind("homogeneous")
    # The policy applies the schedule's multiplier and each intervention by date.
    scenario = shipped.scenario("zone-alatau")
    policy = build_policy(
        scenario.interventions, scenario.multipliers(shipped.start), shipped.start, 200
    )
    june_10 = 89
    assert policy.zone[june_10] == 0
    assert policy.zone_cut[june_10] == 0.9
    assert policy.setting_factor[1, june_10] == 0.0  # schools closed then
    assert policy.work_from_home.max() == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["scenarios"][6]["interventions"][0].update(kind="curfew"),
            "scenarios[6].interventions[0].kind: must be one of",
        ),
        (
            lambda d: d["scenarios"][8]["interventions"][3].update(district="Atlantis"),
            "scenarios[8].interventions[3].district: must be one of Alatau",
        ),
        (
            lambda d: d["scenarios"][6]["interventions"][2]["factors"].update(kitchen=0.5),
            "factors.kitchen: settings are home, school, work, community",
        ),
        (
            lambda d: d["structured"]["contacts"].update(school=[1, 2]),
            "structured.contacts.school: must be a list of 16 numbers",
        ),
        (
            lambda d: d["structured"]["districts"][0].update(population=-5),
            "structured.districts[0].population: must be a whole number",
        ),
        (
            lambda d: d["scenarios"][7]["interventions"][1].update(until="2020-03-01"),
            "until: must be after",
        ),
    ],
)
def test_a_bad_structured_block_or_intervention_is_refused_saying_where(
    change,  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    document = yaml.safe_load(Path(default_scenarios_path()).read_text(encoding="utf-8"))
    change(document)
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(document)


def test_interventions_without_a_structured_block_are_refused() -> None:
    document = yaml.safe_load(Path(default_scenarios_path()).read_text(encoding="utf-8"))
    del document["structured"]
    with pytest.raises(ScenarioError, match="interventions: need the file's structured block"):
        parse_spec(document)
    document["model"]["population_kind"] = "structured"
    document["scenarios"] = document["scenarios"][:6]
    with pytest.raises(ScenarioError, match="no structured block"):
        parse_spec(document)


def test_the_probability_per_contact_gives_the_wanted_r0(spec, city) -> None:  # type: ignore[no-untyped-def]
    structure = spec.structure
    days = source_consistent_defaults().infectious_days()
    low = per_contact_for_r0(city, structure.population, structure.setting_weight, days, 1.5)
    high = per_contact_for_r0(city, structure.population, structure.setting_weight, days, 3.0)
    assert 0 < low < high < 1


def test_school_and_work_contacts_go_to_the_enrolled_and_employed_keeping_the_matrix_means(
    spec,  # type: ignore[no-untyped-def]
    city,  # type: ignore[no-untyped-def]
) -> None:
    # The matrices give contacts per head of a band, pupils or not; only pupils (workers)
    # have school (work) contacts, so each carries the band's contacts over its share.
    config = spec.structure.population
    _, school, work, _ = contacts_per_setting(city, config)
    assert not school[city.role != STUDENT].any()
    assert not work[city.role != WORKER].any()
    per_pupil, per_worker = per_member_contacts(city, config)
    for band in range(16):
        people = city.band5 == band
        for got, matrix, role, per_member in (
            (school, config.school_contacts, STUDENT, per_pupil),
            (work, config.work_contacts, WORKER, per_worker),
        ):
            members = people & (city.role == role)
            if not members.any():
                assert per_member[band] == 0
                continue
            # The band's mean over everyone is the matrix's row sum ...
            assert got[people].mean() == pytest.approx(matrix[band], rel=0.01, abs=1e-6)
            # ... so a member has more than the row sum when not everyone is a member.
            share = members.sum() / people.sum()
            assert got[members].mean() == pytest.approx(matrix[band] / share, rel=0.01, abs=1e-6)
    # 10-14s are all of school age and ~98% enrolled: a pupil has ~1/0.98 of the row sum.
    assert per_pupil[2] == pytest.approx(config.school_contacts[2] / config.enrolment, rel=0.02)


def test_random_networks_as_covasims_have_the_mean_contacts_and_go_both_ways(spec) -> None:  # type: ignore[no-untyped-def]
    # bench/model.py's matched configuration: schools and workplaces as Covasim 4.0.1's
    # static random networks; each person's group is themselves and their partners.
    config = replace(spec.structure.population, random_networks=(20.0, 16.0), whole_group=True)
    city = build_population(config, spec.disease.age_pyramid, 20_000, seed=3)
    for role, mean in ((STUDENT, 20.0), (WORKER, 16.0)):
        people = np.flatnonzero(city.role == role)
        degrees = city.group_sizes()[city.group[people]] - 1
        assert abs(float(degrees.mean()) - mean) < 0.5
        for person in people[:100]:
            g = city.group[person]
            listed = city.group_members[city.group_start[g] : city.group_start[g + 1]]
            assert person in listed
            for partner in listed[listed != person]:
                assert city.role[partner] == role
                h = city.group[partner]
                assert person in city.group_members[city.group_start[h] : city.group_start[h + 1]]


def test_per_edge_attempts_infect_a_member_with_the_linear_chance() -> None:
    # Covasim's edges: a member is infected in a day with the chance per contact x
    # infectiousness; Poisson attempts are converted so at least one lands on them
    # with that chance (one's own slot counted, as the engine drops those attempts).
    active = Infectious()
    rows = {name: np.zeros(2) for name in Infectious.COLUMNS}
    rows["rate"] = np.array([[4 * 0.5, 10 * 0.2, 0.0, 1.0], [4 * 2.0, 0.0, 10 * 0.01, 3.0]])
    rows["home_size"] = np.array([4, 4])
    rows["group_size"] = np.array([10, 10])
    active.add(rows)
    rates = active.rate.copy()
    per_edge_rates(rates, active)
    per_member = 1 - np.exp(-rates[:, :3] / np.array([[4, 10, 10]]))
    assert per_member[0] == pytest.approx([0.5, 0.2, 0.0])
    assert per_member[1] == pytest.approx([1.0, 0.0, 0.01])  # a chance above 1 is 1
    assert rates[:, 3] == pytest.approx([1.0, 3.0])  # community contacts are new people


def test_the_engines_poisson_draws_have_poissons_distribution() -> None:
    # Inversion for small rates, numpy beyond 40 terms: the chance of 0 and 1, the mean
    # and the variance within sampling error, the same seed the same draws.
    for lam in (0.02, 0.4, 3.0, 60.0):
        rates = np.full(200_000, lam)
        draws = poisson(np.random.default_rng(7), rates)
        assert np.array_equal(draws, poisson(np.random.default_rng(7), rates))
        n = len(draws)
        assert abs(draws.mean() - lam) < 5 * np.sqrt(lam / n)
        assert abs(draws.var() - lam) < 5 * lam * np.sqrt(2 / n) + 5 * np.sqrt(lam / n)
        for k, chance in ((0, np.exp(-lam)), (1, lam * np.exp(-lam))):
            assert _within(float((draws == k).mean()), float(chance), n, sigmas=5)


def test_the_published_contact_matrices_are_16x16_non_negative_and_what_the_model_uses(
    spec,  # type: ignore[no-untyped-def]
) -> None:
    # The file as published (Prem et al. 2021, Kazakhstan), read without the model's code.
    path = Path(str(default_scenarios_path())).parent / "data" / "prem2021_kaz.csv"
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if not x.startswith("#")]
    header, rows = lines[0].split(","), [x.split(",") for x in lines[1:]]
    assert header[:3] == ["area", "setting", "age"]
    assert len(header) == 3 + 16
    table: dict[tuple[str, str], list[list[float]]] = {}
    for row in rows:
        table.setdefault((row[0], row[1]), []).append([float(v) for v in row[3:]])
    assert set(table) == {
        (area, setting)
        for area in ("national", "urban")
        for setting in ("home", "school", "work", "others")
    }
    for matrix in table.values():
        values = np.asarray(matrix)
        assert values.shape == (16, 16)
        assert (values >= 0).all()
    # Loaded by the model's reader, and used by the shipped structured city (urban).
    loaded = load_matrices(path, "urban")
    config = spec.structure.population
    urban = {s: np.asarray(table[("urban", s)]) for s in ("home", "school", "work", "others")}
    for setting, values in urban.items():
        assert np.array_equal(loaded.matrices[setting], values)
    assert np.allclose(config.school_contacts, urban["school"].sum(axis=1))
    assert np.allclose(config.work_contacts, urban["work"].sum(axis=1))
    assert np.allclose(config.community_contacts, urban["others"].sum(axis=1))
    assert np.array_equal(np.asarray(config.community_mixing), urban["others"])
    # A few published values, as a check that rows and columns were not swapped: the
    # 10-14s' school contacts are mostly with their own band, and nobody under 15 works.
    assert urban["school"][2].argmax() == 2
    assert urban["work"][:3].sum() == 0
    assert "published" in spec.structure.sources["contacts"].lower()


def test_a_contact_matrix_file_missing_a_setting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "matrices.csv"
    bands = ",".join(f"b{i}" for i in range(16))
    ones = ",".join(["1"] * 16)
    rows = [f"urban,{s},{i},{ones}" for s in ("home", "school", "work") for i in range(16)]
    path.write_text(f"# comment\narea,setting,age,{bands}\n" + "\n".join(rows) + "\n")
    with pytest.raises(CityError, match="0 rows for area 'urban', setting 'others'"):
        load_matrices(path, "urban")
    document = yaml.safe_load(Path(default_scenarios_path()).read_text(encoding="utf-8"))
    document["structured"]["contacts"]["matrices"] = {"file": str(path), "area": "urban"}
    with pytest.raises(ScenarioError, match="setting 'others'"):
        parse_spec(document)
