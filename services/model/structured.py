"""One stochastic run on a structured city (services.model.population): infections
pass within households, school classes, workplaces and the community, by district.

How it stays fast: only infectious people do work. Each step, each infectious person
makes a Poisson number of transmission attempts (the sum over settings of its contacts
there x the probability per contact x its infectiousness x the setting's factor that
day), each attempt in a setting drawn in proportion to those terms; it lands on a
random member of the setting (for the community: a district, then a five-year age band
from the mixing matrix's row, then a resident) and infects them if they are still
susceptible, with their susceptibility. What a step needs of an infectious person is
gathered once, when they become infectious (services.model.infectious), so a step
reads short contiguous arrays; the attempts in a step are vectorised; over a run the
work grows with infections, not with people x days. The disease course is drawn once
at infection (services.model.simulate.draw_course).

Interventions arrive as a ``Policy``: per day, a factor per setting (masks, the city's
quarantine, schools closed), a work-from-home share, a quarantine zone (contacts across
one district's border cut), testing of symptomatic people who then isolate after a
delay, and quarantine of their households after a further delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from services.model.disease import Disease
from services.model.infectious import Infectious, per_edge_rates, poisson
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
    # Shape k of a per-person infectiousness multiplier drawn from a gamma of mean 1
    # (super-spreading; Covasim's beta_dist is a negative binomial of dispersion 0.45,
    # the same shape); 0: everyone equally infectious.
    dispersion: float = 0.0
    # Household and group contacts as Covasim's edges: each member is infected in a
    # day with the probability per contact x infectiousness (linear, at most 1) rather
    # than with 1 - exp(-that) (Poisson attempts); the two differ only for the very
    # infectious (super-spreaders), where Poisson attempts saturate.
    per_edge: bool = False


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
    sample = np.arange(0, population.size, max(1, population.size // 100_000))
    contacts = contacts_per_setting(population, config, sample)
    group = np.zeros(len(sample))
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


def contacts_per_setting(
    population: Population,
    config: PopulationConfig,
    people: IntArray | None = None,
    per_member: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
) -> tuple[npt.NDArray[np.float64], ...]:
    """Contacts a day of ``people`` (default everyone) in each setting, before
    interventions. The matrices' school and work contacts are per head of a five-year
    band, pupils or not: only the enrolled (employed) have them, so each of those has
    the band's contacts divided by the band's enrolled (employed) share."""
    if people is None:
        people = np.arange(population.size)
    h = population.household[people]
    home = (population.household_start[h + 1] - population.household_start[h] - 1).astype(
        np.float64
    )
    g = population.group[people].astype(np.int64)
    in_group = g >= 0
    gg = np.where(in_group, g, 0)
    others = np.where(in_group, population.group_start[gg + 1] - population.group_start[gg] - 1, 0)
    others = others.astype(np.float64)
    band5 = population.band5[people]
    role = population.role[people]
    if config.whole_group:
        school = np.where(role == STUDENT, others, 0.0)
        work = np.where(role == WORKER, others, 0.0)
    else:
        school_c, work_c = per_member or per_member_contacts(population, config)
        school = np.where(role == STUDENT, np.minimum(school_c[band5], others), 0.0)
        work = np.where(role == WORKER, np.minimum(work_c[band5], others), 0.0)
    community = np.asarray(config.community_contacts, dtype=np.float64)[band5]
    return home, school, work, community


def per_member_contacts(
    population: Population, config: PopulationConfig
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """School contacts a day of an enrolled pupil and work contacts of an employed
    person, by five-year band, such that the band's mean over everyone equals the
    matrix's row sum (its contacts per head, pupils or not). Per member that is the row
    sum over the band's share of members, raised further where a small class or
    workplace caps a person's contacts at its size, so the band's mean still holds.
    A band without members keeps no contacts in that setting (the matrices' contacts
    of kindergartens, universities, teachers and of workers outside the work ages
    are not modelled; README, "The structured city"). Kept with the city."""
    key = ("per_member_contacts", config.school_contacts, config.work_contacts)
    cached = population.cache.get(key)
    if cached is not None:
        return cast(tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], cached)
    people = np.bincount(population.band5, minlength=FIVE_YEAR_BANDS).astype(np.float64)
    sizes = population.group_sizes()
    out = []
    for role, per_head in ((STUDENT, config.school_contacts), (WORKER, config.work_contacts)):
        members = np.flatnonzero(population.role == role)
        bands = population.band5[members]
        others = (sizes[population.group[members]] - 1).astype(np.float64)
        count = np.bincount(bands, minlength=FIVE_YEAR_BANDS).astype(np.float64)
        # Wanted mean per member: the contacts of the band's people, carried by members.
        wanted = np.asarray(per_head, dtype=np.float64) * people / np.maximum(count, 1)
        wanted[count == 0] = 0.0
        contacts = wanted.copy()
        for _ in range(6):
            capped = np.minimum(contacts[bands], others)
            achieved = np.bincount(bands, weights=capped, minlength=FIVE_YEAR_BANDS) / np.maximum(
                count, 1
            )
            raise_by = np.where(achieved > 0, wanted / np.maximum(achieved, 1e-12), 1.0)
            contacts = np.minimum(contacts * raise_by, 10 * wanted)
        out.append(contacts)
    result = (out[0], out[1])
    population.cache[key] = result
    return result


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
    per_member = per_member_contacts(population, config)
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

    isolating = bool(policy.testing.max(initial=0) > 0)

    def away_factor(people: IntArray, step: int) -> npt.NDArray[np.float64] | float:
        if not isolating:
            return 1.0
        factor = np.ones(len(people))
        factor[isolate_at[people] <= step] *= 1 - policy.isolation_efficacy
        quarantined = (quarantine_from[people] <= step) & (step < quarantine_until[people])
        factor[quarantined] *= 1 - policy.quarantine_efficacy
        return factor

    def arrive(people: IntArray) -> dict[str, npt.NDArray[np.generic]]:
        """What the step needs of people becoming infectious (Infectious.COLUMNS)."""
        home, school, work, community = contacts_per_setting(
            population, config, people, per_member
        )
        h = population.household[people]
        home_size = hh_start[h + 1] - hh_start[h]
        g = np.maximum(population.group[people].astype(np.int64), 0)
        group_size = g_start[g + 1] - g_start[g]
        # Attempts land on any member, oneself included, and those are dropped.
        rate = np.stack((home, school, work, community), axis=1)
        rate[:, HOME] *= home_size / np.maximum(home_size - 1, 1)
        rate[:, SCHOOL:COMMUNITY] *= (group_size / np.maximum(group_size - 1, 1))[:, None]
        if transmission.dispersion > 0:
            k = transmission.dispersion
            rate *= rng.gamma(k, 1 / k, len(people))[:, None]
        begin, end = infectious_at[people], infectious_end[people]
        early_end = begin
        if transmission.early_fraction > 0 and transmission.early_ratio != 1.0:
            # Covasim's high phase lasts a fraction of the infectious time (capped), and
            # a step counts as high when it begins before that time ends: the steps
            # are the fraction rounded up (2.4 days: 3 days high).
            early = np.minimum(
                transmission.early_fraction * (end - begin),
                transmission.early_cap_days * per_day,
            )
            early_end = begin + np.ceil(early).astype(np.int64)
        return {
            "person": people,
            "end": end,
            "onset": onset[people],
            "early_end": early_end,
            "rate": rate,
            "home_start": hh_start[h],
            "home_size": home_size,
            "group_start": g_start[g],
            "group_size": np.maximum(group_size, 1),
            "home_at_work": home_at_work[people],
        }

    if seed_infections:
        infect(0, np.sort(rng.choice(n, size=seed_infections, replace=False)))
    active = Infectious()
    for step in range(steps):
        day = step // per_day
        arriving = starting.pop(step, [])
        alive = active.drop_ended(step)
        if arriving:
            active.add(arrive(np.concatenate(arriving)))
            alive = np.concatenate((alive, np.ones(len(active) - len(alive), bool)))
        if not alive.any():
            if not starting:
                break
            continue
        # One Poisson draw per infectious person for all settings, then each attempt's
        # setting in proportion to that person's rate in it (the same attempts as one
        # draw per setting, at a quarter of the draws).
        w = active.infectiousness(
            step,
            disease.asymptomatic_infectiousness,
            disease.symptomatic_infectiousness,
            transmission.early_ratio if transmission.early_fraction > 0 else 1.0,
        )
        rates = active.rate * (policy.setting_factor[:, day] * weight * dt)
        wfh = float(policy.work_from_home[day])
        if wfh > 0:
            rates[:, WORK] *= active.home_at_work >= wfh
        if isolating:
            rates[:, HOME + 1 :] *= np.asarray(away_factor(active.person, step))[:, None]
        rates *= (w * alive)[:, None]
        if transmission.per_edge:
            per_edge_rates(rates, active)
        attempts = np.repeat(np.arange(len(active)), poisson(rng, rates.sum(axis=1)))
        if not len(attempts):
            continue
        cumulative = np.cumsum(rates[attempts], axis=1)
        pick = rng.random(len(attempts)) * cumulative[:, -1]
        setting = (pick[:, None] >= cumulative[:, :-1]).sum(axis=1)
        sources = active.person[attempts]
        targets = np.empty(len(attempts), np.int64)
        spot = rng.random(len(attempts))
        at_home = setting == HOME
        grouped = (setting == SCHOOL) | (setting == WORK)
        outside = ~at_home
        who = attempts[at_home]
        targets[at_home] = active.home_start[who] + (spot[at_home] * active.home_size[who]).astype(
            np.int64
        )
        who = attempts[grouped]
        slots = active.group_start[who] + (spot[grouped] * active.group_size[who]).astype(np.int64)
        targets[grouped] = population.group_members[slots]
        community = setting == COMMUNITY
        targets[community] = _community_targets(
            rng, sources[community], population, config, mixing, district_cumulative
        )
        ok = (targets >= 0) & (targets != sources)
        ok &= infected_step[np.maximum(targets, 0)] < 0
        sources, targets, setting, outside = sources[ok], targets[ok], setting[ok], outside[ok]
        accept = sus[population.band[targets]]
        if isolating:
            accept = np.where(outside, accept * away_factor(targets, step), accept)
        if wfh > 0:
            accept = np.where((setting == WORK) & (home_at_work[targets] < wfh), 0.0, accept)
        zone = int(policy.zone[day])
        if zone >= 0 and policy.zone_cut[day] > 0:
            crossing = outside & ((district[sources] == zone) != (district[targets] == zone))
            accept = np.where(crossing, accept * (1 - policy.zone_cut[day]), accept)
        hit = rng.random(len(targets)) < accept
        if not hit.any():
            continue
        # Count each new infection once, in the setting of its first attempt.
        people_new, first = np.unique(targets[hit], return_index=True)
        by_setting += np.bincount(setting[hit][first], minlength=len(SETTINGS))
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
