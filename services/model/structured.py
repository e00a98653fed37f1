"""One stochastic run on a structured city (services.model.population): infections
pass within households, school classes, workplaces and the community, by district.

How it stays fast: only infectious people do work. Each step, each infectious person
makes a Poisson number of transmission attempts in each setting (its contacts there x
the probability per contact x its infectiousness x the setting's factor that day);
each attempt lands on a random member of the setting (for the community: a district,
then a five-year age band from the mixing matrix's row, then a resident) and infects
them if they are still susceptible, with their susceptibility. The attempts in a step
are vectorised; over a run the work grows with infections, not with people x days.
The disease course is drawn once at infection (services.model.simulate.draw_course).

Interventions arrive as a ``Policy``: per day, a factor per setting (masks, the city's
quarantine, schools closed), a work-from-home share, a quarantine zone (contacts across
one district's border cut), testing of symptomatic people who then isolate after a
delay, and quarantine of their households after a further delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from services.model.disease import Disease
from services.model.population import (
    FIVE_YEAR_BANDS,
    SETTINGS,
    STUDENT,
    WORKER,
    Population,
    PopulationConfig,
)
from services.model.simulate import DIED, IntArray, Run, draw_course

HOME, SCHOOL, WORK, COMMUNITY = range(4)
NEVER = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Policy:
    """Per day (index 0 is the model's start): what the interventions do that day."""

    setting_factor: npt.NDArray[np.float64]  # (4, days): contacts x risk per contact
    work_from_home: npt.NDArray[np.float64]  # share of workers at home
    zone: npt.NDArray[np.int64]  # district whose border is cut, -1 none
    zone_cut: npt.NDArray[np.float64]  # share of contacts across it that do not happen
    testing: npt.NDArray[np.float64]  # share of symptomatic people tested and isolated
    test_delay: npt.NDArray[np.float64]  # days from symptoms to isolation
    tracing: npt.NDArray[np.float64]  # share of isolated people whose household quarantines
    trace_delay: npt.NDArray[np.float64]  # days from isolation to the household's quarantine
    isolation_efficacy: float = 0.9  # share of outside-home contacts an isolated person cuts
    quarantine_efficacy: float = 0.8
    quarantine_days: int = 14

    @classmethod
    def none(cls, days: int) -> Policy:
        return cls(
            setting_factor=np.ones((len(SETTINGS), days)),
            work_from_home=np.zeros(days),
            zone=np.full(days, -1, np.int64),
            zone_cut=np.zeros(days),
            testing=np.zeros(days),
            test_delay=np.zeros(days),
            tracing=np.zeros(days),
            trace_delay=np.zeros(days),
        )


@dataclass(frozen=True)
class Transmission:
    """Probability per contact and the relative weight of a contact in each setting."""

    per_contact: float
    setting_weight: tuple[float, float, float, float] = (3.0, 0.6, 0.6, 0.3)
    susceptibility: tuple[float, ...] = (1.0,) * 9  # by the disease's ten-year band
    early_fraction: float = 0.0  # first share of the infectious time (at most
    early_cap_days: float = 1e9  # this many days) is ...
    early_ratio: float = 1.0  # ... this many times as infectious (Covasim's viral load)
    # People in hospital still infect others until discharge (Covasim's default; the
    # city's model takes them out of the community at admission).
    infectious_in_hospital: bool = False


@dataclass(frozen=True)
class StructuredRun(Run):
    district_names: tuple[str, ...] = ()
    # name -> (districts, days): infected_now, hospitalised, dead, infected
    districts: dict[str, IntArray] = field(default_factory=dict)
    by_setting: tuple[int, ...] = ()  # infections in each setting (seeds not counted)


def per_contact_for_r0(
    population: Population,
    config: PopulationConfig,
    setting_weight: tuple[float, ...],
    infectious_days: float,
    r0: float,
) -> float:
    """The probability per contact at which the mean person infects ``r0`` others in a
    susceptible city. Contacts that repeat (one's household, class, workplace) are
    counted once each, with the chance of infecting them over the infectious time;
    community contacts are new people every day. Evaluated on every k-th person (at
    most ~100,000; people are listed household by household, district by district, so
    the sample spreads over the city)."""
    sample = slice(None, None, max(1, population.size // 100_000))
    contacts = tuple(c[sample] for c in _contacts(population, config))
    group = np.zeros(len(contacts[HOME]))
    groups = population.group[sample]
    in_group = groups >= 0
    group[in_group] = population.group_sizes()[groups[in_group]] - 1
    home_size = contacts[HOME]

    def r(p: float) -> float:
        total = home_size * -np.expm1(-p * setting_weight[HOME] * infectious_days)
        for setting in (SCHOOL, WORK):
            others = np.maximum(group, 1)
            daily = p * setting_weight[setting] * contacts[setting] * infectious_days
            total = total + np.where(group > 0, others * -np.expm1(-daily / others), 0)
        total = total + p * setting_weight[COMMUNITY] * contacts[COMMUNITY] * infectious_days
        return float(total.mean())

    low, high = 0.0, 1.0
    if r(high) < r0:
        return high
    for _ in range(32):
        middle = (low + high) / 2
        low, high = (middle, high) if r(middle) < r0 else (low, middle)
    return (low + high) / 2


def _contacts(
    population: Population, config: PopulationConfig
) -> tuple[npt.NDArray[np.float64], ...]:
    """Contacts a day of every person in each setting (before interventions)."""
    home = (population.household_sizes()[population.household] - 1).astype(np.float64)
    in_group = population.group >= 0
    others = np.zeros(population.size)
    others[in_group] = population.group_sizes()[population.group[in_group]] - 1
    band5 = population.band5
    if config.whole_group:
        school = np.where(population.role == STUDENT, others, 0.0)
        work = np.where(population.role == WORKER, others, 0.0)
    else:
        school_c = np.asarray(config.school_contacts)[band5]
        work_c = np.asarray(config.work_contacts)[band5]
        school = np.where(population.role == STUDENT, np.minimum(school_c, others), 0.0)
        work = np.where(population.role == WORKER, np.minimum(work_c, others), 0.0)
    community = np.asarray(config.community_contacts, dtype=np.float64)[band5]
    return home, school, work, community


def _mixing(config: PopulationConfig, population: Population) -> npt.NDArray[np.float64]:
    """Cumulative rows of the community mixing matrix (who one's contacts are, by
    five-year band); without a matrix, contacts are by the population's shares."""
    if config.community_mixing:
        rows = np.asarray(config.community_mixing, dtype=np.float64)
    else:
        shares = np.bincount(population.band5, minlength=FIVE_YEAR_BANDS).astype(np.float64)
        rows = np.tile(shares, (FIVE_YEAR_BANDS, 1))
    rows = rows / np.maximum(rows.sum(axis=1, keepdims=True), 1e-12)
    cumulative = np.cumsum(rows, axis=1)
    cumulative[:, -1] = 1.0
    return cumulative


class _DistrictLedger:
    """Per district and step: counts that change (as simulate's _Ledger, by district)."""

    NAMES = (
        "exposed",
        "infectious",
        "hospitalised",
        "recovered",
        "dead",
        "infections",
        "onsets",
        "admissions",
    )

    def __init__(self, districts: int, steps: int) -> None:
        self.size = steps + 2
        self.districts = districts
        self.series = {name: np.zeros(districts * self.size, np.int64) for name in self.NAMES}

    def add(self, name: str, district: npt.NDArray[np.int8], at: IntArray, sign: int = 1) -> None:
        if len(at):
            index = district.astype(np.int64) * self.size + np.minimum(at, self.size - 1)
            counts = np.bincount(index, minlength=self.districts * self.size)
            self.series[name] += sign * counts

    def daily(self, name: str, steps: int, per_day: int, cumulative: bool = True) -> IntArray:
        by_step = self.series[name].reshape(self.districts, self.size)[:, :steps]
        if cumulative:
            return np.cumsum(by_step, axis=1)[:, per_day - 1 :: per_day]
        return by_step.reshape(self.districts, steps // per_day, per_day).sum(axis=2)


def simulate_structured(
    disease: Disease,
    population: Population,
    config: PopulationConfig,
    transmission: Transmission,
    policy: Policy,
    *,
    days: int,
    seed: int,
    seed_infections: int,
    steps_per_day: int = 1,
) -> StructuredRun:
    """Run one replicate on ``population``; ``seed_infections`` random people are
    exposed on day 0."""
    n = population.size
    if days < 1 or steps_per_day < 1:
        raise ValueError("days and steps_per_day must be positive")
    if not 0 <= seed_infections <= n:
        raise ValueError("seed_infections must be between 0 and the population")
    rng = np.random.default_rng(seed)
    # Testing draws come from their own stream, so a scenario with testing keeps the
    # same transmission draws as one without for as long as nothing differs.
    testing_rng = np.random.default_rng([seed, 1])
    per_day = steps_per_day
    steps = days * per_day
    dt = 1.0 / per_day
    chances = disease.chances()
    districts = len(population.district_names)
    ledger = _DistrictLedger(districts, steps)
    contacts = _contacts(population, config)
    mixing = _mixing(config, population)
    # Attempts are made at the highest susceptibility and thinned by the target's.
    sus = np.asarray(transmission.susceptibility, dtype=np.float64)
    weight = np.asarray(transmission.setting_weight) * transmission.per_contact * sus.max()
    sus = sus / sus.max()
    resident_share = np.bincount(population.district, minlength=districts) / n
    district_cumulative = np.cumsum(resident_share)
    district_cumulative[-1] = 1.0
    home_at_work = rng.random(n).astype(np.float32)  # below the day's share: works from home
    infected_step = np.full(n, -1, np.int32)
    infectious_at = np.full(n, NEVER, np.int32)
    infectious_end = np.zeros(n, np.int32)
    onset = np.full(n, -1, np.int32)
    isolate_at = np.full(n, NEVER, np.int32)
    quarantine_from = np.full(n, NEVER, np.int32)
    quarantine_until = np.zeros(n, np.int32)
    fate = np.zeros(n, np.int8)
    starting: dict[int, list[IntArray]] = {}
    by_setting = np.zeros(len(SETTINGS), np.int64)
    hh_start = population.household_start
    g_start = population.group_start
    district = population.district

    def infect(step: int, people: IntArray) -> None:
        day = min(step // per_day, days - 1)
        infected_step[people] = step
        where = district[people]
        course = draw_course(disease, rng, population.band[people], step, per_day, chances)
        ledger.add("exposed", where, np.full(len(people), step))
        ledger.add("infections", where, np.full(len(people), step))
        ledger.add("exposed", where, course.infectious_at, -1)
        ledger.add("infectious", where, course.infectious_at)
        ledger.add("infectious", where, course.infectious_end, -1)
        ill_now = course.onset >= 0
        ledger.add("onsets", where[ill_now], course.onset[ill_now])
        admitted_where = where[course.admitted_people]
        ledger.add("admissions", admitted_where, course.admitted)
        ledger.add("hospitalised", admitted_where, course.admitted)
        ledger.add("hospitalised", admitted_where, course.discharged, -1)
        dies = course.fate[course.admitted_people] == DIED
        ledger.add("dead", admitted_where[dies], course.discharged[dies])
        recovered = np.ones(len(people), bool)
        recovered[course.admitted_people[dies]] = False
        recovered_at = course.infectious_end.copy()
        recovered_at[course.admitted_people] = course.discharged
        ledger.add("recovered", where[recovered], recovered_at[recovered])
        infectious_at[people] = course.infectious_at
        infectious_end[people] = course.infectious_end
        if transmission.infectious_in_hospital:
            infectious_end[people[course.admitted_people]] = course.discharged
        onset[people] = course.onset
        fate[people] = course.fate
        for at in np.unique(course.infectious_at):
            starting.setdefault(int(at), []).append(people[course.infectious_at == at])
        ill = np.flatnonzero(course.onset >= 0)
        if not len(ill) or policy.testing[day:].max(initial=0) <= 0:
            return
        onset_day = np.minimum(course.onset[ill] // per_day, days - 1)
        tested = ill[testing_rng.random(len(ill)) < policy.testing[onset_day]]
        if not len(tested):
            return
        tested_day = np.minimum(course.onset[tested] // per_day, days - 1)
        isolated = course.onset[tested] + np.rint(policy.test_delay[tested_day] * per_day)
        isolate_at[people[tested]] = isolated
        traced = testing_rng.random(len(tested)) < policy.tracing[tested_day]
        if not traced.any():
            return
        index_people = people[tested[traced]]
        begins = isolated[traced] + np.rint(policy.trace_delay[tested_day[traced]] * per_day)
        homes = population.household[index_people]
        sizes = hh_start[homes + 1] - hh_start[homes]
        members = np.repeat(hh_start[homes], sizes) + _ranks(sizes)
        quarantine_from[members] = np.repeat(begins, sizes)
        quarantine_until[members] = np.repeat(begins + policy.quarantine_days * per_day, sizes)

    def in_range(start: IntArray, size: IntArray) -> IntArray:
        """A random index in [start, start + size) for each attempt. Attempts on oneself
        are dropped later, so callers scale the rate by size / (size - 1)."""
        return start + np.floor(rng.random(len(start)) * size).astype(np.int64)

    isolating = bool(policy.testing.max(initial=0) > 0)

    def away_factor(people: IntArray, step: int) -> npt.NDArray[np.float64] | float:
        if not isolating:
            return 1.0
        factor = np.ones(len(people))
        factor[isolate_at[people] <= step] *= 1 - policy.isolation_efficacy
        quarantined = (quarantine_from[people] <= step) & (step < quarantine_until[people])
        factor[quarantined] *= 1 - policy.quarantine_efficacy
        return factor

    if seed_infections:
        infect(0, np.sort(rng.choice(n, size=seed_infections, replace=False)))
    active = np.zeros(0, np.int64)
    for step in range(steps):
        day = step // per_day
        arriving = starting.pop(step, [])
        active = active[infectious_end[active] > step]
        if arriving:
            active = np.concatenate([active, *arriving])
        if not len(active):
            if not starting:
                break
            continue
        w = _infectiousness(
            active, step, onset, infectious_at, infectious_end, disease, transmission, per_day
        )
        factor = policy.setting_factor[:, day] * weight * dt
        away = away_factor(active, step)
        zone = int(policy.zone[day])
        cut = float(policy.zone_cut[day]) if zone >= 0 else 0.0
        targets_all: list[IntArray] = []
        settings_all: list[int] = []
        for setting in range(len(SETTINGS)):
            if factor[setting] <= 0:
                continue
            people = active
            rate = w * factor[setting] * contacts[setting][active]
            if setting != HOME:
                rate = rate * away
            if setting == WORK and policy.work_from_home[day] > 0:
                rate = rate * (home_at_work[active] >= policy.work_from_home[day])
            keep = rate > 0
            people, rate = people[keep], rate[keep]
            if not len(people):
                continue
            if setting == HOME:
                h = population.household[people]
                start, size = hh_start[h], hh_start[h + 1] - hh_start[h]
                rate = rate * size / np.maximum(size - 1, 1)
                counts = rng.poisson(rate)
                sources = np.repeat(people, counts)
                targets = in_range(np.repeat(start, counts), np.repeat(size, counts))
            elif setting in (SCHOOL, WORK):
                g = population.group[people].astype(np.int64)
                start, size = g_start[g], g_start[g + 1] - g_start[g]
                rate = rate * size / np.maximum(size - 1, 1)
                counts = rng.poisson(rate)
                sources = np.repeat(people, counts)
                slots = in_range(np.repeat(start, counts), np.repeat(size, counts))
                targets = population.group_members[slots].astype(np.int64)
            else:
                sources = np.repeat(people, rng.poisson(rate))
                targets = _community_targets(
                    rng, sources, population, config, mixing, district_cumulative
                )
            ok = (targets >= 0) & (targets != sources)
            ok &= infected_step[np.maximum(targets, 0)] < 0
            sources, targets = sources[ok], targets[ok]
            accept = sus[population.band[targets]]
            if setting != HOME:
                accept = accept * away_factor(targets, step)
            if setting == WORK and policy.work_from_home[day] > 0:
                accept = accept * (home_at_work[targets] >= policy.work_from_home[day])
            if cut > 0 and setting != HOME:
                crossing = (district[sources] == zone) != (district[targets] == zone)
                accept = accept * np.where(crossing, 1 - cut, 1.0)
            hit = rng.random(len(targets)) < accept
            targets_all.append(targets[hit])
            settings_all.append(setting)
        if not targets_all:
            continue
        chosen = np.concatenate(targets_all)
        if not len(chosen):
            continue
        people_new, first = np.unique(chosen, return_index=True)
        # Count each new infection once, in the setting of its first attempt.
        bounds = np.cumsum([len(t) for t in targets_all])
        setting_of = np.searchsorted(bounds, first, side="right")
        by_setting += np.bincount(
            np.asarray(settings_all)[setting_of], minlength=len(SETTINGS)
        ).astype(np.int64)
        infect(step, people_new.astype(np.int64))
    return _result(
        population,
        ledger,
        days=days,
        steps=steps,
        per_day=per_day,
        infected_step=infected_step,
        fate=fate,
        by_setting=by_setting,
    )


def _ranks(sizes: IntArray) -> IntArray:
    """0, 1, ..., size-1 for each size, concatenated."""
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(total) - starts


def _infectiousness(
    people: IntArray,
    step: int,
    onset: npt.NDArray[np.int32],
    infectious_at: npt.NDArray[np.int32],
    infectious_end: npt.NDArray[np.int32],
    disease: Disease,
    transmission: Transmission,
    per_day: int,
) -> npt.NDArray[np.float64]:
    their_onset = onset[people]
    w = np.where(
        their_onset < 0,
        disease.asymptomatic_infectiousness,
        np.where(step < their_onset, 1.0, disease.symptomatic_infectiousness),
    )
    if transmission.early_fraction > 0 and transmission.early_ratio != 1.0:
        begin = infectious_at[people]
        early = np.minimum(
            np.floor(transmission.early_fraction * (infectious_end[people] - begin)),
            transmission.early_cap_days * per_day,
        )
        early_end = begin + early
        w = np.where(step < early_end, w * transmission.early_ratio, w)
    return w


def _community_targets(
    rng: np.random.Generator,
    sources: IntArray,
    population: Population,
    config: PopulationConfig,
    mixing: npt.NDArray[np.float64],
    district_cumulative: npt.NDArray[np.float64],
) -> IntArray:
    """A district (one's own, or with the commuting share one weighted by residents),
    an age band from the mixing row, then a resident of that district and band."""
    count = len(sources)
    own = population.district[sources].astype(np.int64)
    if len(district_cumulative) > 1:
        other = np.searchsorted(district_cumulative, rng.random(count), side="right")
        where = np.where(rng.random(count) < config.commuting, other, own)
    else:
        where = own
    # Each row's cumulative shares shifted by its index make one increasing sequence:
    # one search finds the band in the source's own row.
    own_band = population.band5[sources].astype(np.int64)
    flat = (mixing + np.arange(FIVE_YEAR_BANDS)[:, None]).ravel()
    band = (
        np.searchsorted(flat, own_band + rng.random(count), side="right")
        - own_band * FIVE_YEAR_BANDS
    )
    bucket = where * FIVE_YEAR_BANDS + np.minimum(band, FIVE_YEAR_BANDS - 1)
    start = population.bucket_start[bucket]
    size = population.bucket_start[bucket + 1] - start
    slot = start + np.floor(rng.random(count) * size).astype(np.int64)
    targets = np.where(
        size > 0,
        population.bucket_members[np.minimum(slot, len(population.bucket_members) - 1)],
        -1,
    )
    return targets.astype(np.int64)


def _result(
    population: Population,
    ledger: _DistrictLedger,
    *,
    days: int,
    steps: int,
    per_day: int,
    infected_step: npt.NDArray[np.int32],
    fate: npt.NDArray[np.int8],
    by_setting: IntArray,
) -> StructuredRun:
    series = {name: ledger.daily(name, steps, per_day) for name in _DistrictLedger.NAMES}
    new_infections = ledger.daily("infections", steps, per_day, cumulative=False)
    onsets = ledger.daily("onsets", steps, per_day, cumulative=False).sum(axis=0)
    admissions = ledger.daily("admissions", steps, per_day, cumulative=False).sum(axis=0)
    infected_now = series["exposed"] + series["infectious"] + series["hospitalised"]
    city = {name: values.sum(axis=0) for name, values in series.items()}
    infected_day = np.where(infected_step >= 0, infected_step // per_day, -1).astype(np.int32)
    return StructuredRun(
        population=population.size,
        exposed=city["exposed"],
        infectious=city["infectious"],
        hospitalised=city["hospitalised"],
        recovered=city["recovered"],
        dead=city["dead"],
        infected=np.cumsum(new_infections.sum(axis=0)),
        new_symptomatic=onsets,
        new_hospitalised=admissions,
        infected_day=infected_day,
        fate=fate,
        age_band=population.band,
        district_names=population.district_names,
        districts={
            "infected_now": infected_now,
            "hospitalised": series["hospitalised"],
            "dead": series["dead"],
            "infected": np.cumsum(new_infections, axis=1),
        },
        by_setting=tuple(int(v) for v in by_setting),
    )
