"""One stochastic run: every one of N people, from susceptible through exposed,
infectious (asymptomatic, or pre-symptomatic then symptomatic), hospitalised, to
recovered or dead.

How it stays fast at millions of people: a person's whole course is drawn the moment
they are infected (each delay and each branch drawn for that person, by age), and the
course is written as events into per-step arrays, so a step costs work only for the
people infected in it, never for everyone. Over a run the work is proportional to the
number of infections, not to people x days.

Transmission is homogeneous mixing: each infectious person has ``contacts`` contacts a
day with people drawn at random, each infecting a susceptible with ``probability``, so
each susceptible is infected in a step of ``dt`` days with chance
``1 - exp(-contacts * probability * W * dt / N)`` where W is the infectiousness-weighted
number of infectious people; the number infected is drawn as one binomial, which is
exactly the sum of those per-person draws. Because people differ only by age, and
ages are drawn independently per person, "the next k susceptible people by index" is
a uniformly random choice of k susceptible people (exchangeability); a susceptibility
that differed between people would need an explicit random choice instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.model.disease import Disease, Duration

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SUSCEPTIBLE, RECOVERED, DIED = 0, 1, 2


@dataclass(frozen=True)
class Run:
    """Daily series of one run and the people's fates. Index d is the state at the end of
    day d (time d + 1 - dt, after the day's last step), day 0 being the start."""

    population: int
    exposed: IntArray
    infectious: IntArray
    hospitalised: IntArray
    recovered: IntArray
    dead: IntArray
    infected: IntArray  # cumulative infections, seeds included
    new_symptomatic: IntArray  # symptom onsets that day (what a city's case series sees)
    new_hospitalised: IntArray
    infected_day: npt.NDArray[np.int32]  # per person: day infected, -1 never
    fate: npt.NDArray[np.int8]  # per person: SUSCEPTIBLE, or the drawn RECOVERED / DIED
    age_band: npt.NDArray[np.int8]  # per person

    @property
    def days(self) -> int:
        return len(self.infected)

    def infected_now(self) -> IntArray:
        """People carrying the infection that day: exposed, infectious or in hospital."""
        return self.exposed + self.infectious + self.hospitalised

    def totals(self) -> dict[str, float]:
        peak_day = int(np.argmax(self.hospitalised))
        infected_now = self.infected_now()
        return {
            "infected": float(self.infected[-1]),
            "peak_infected": float(infected_now.max()),
            "peak_infected_day": float(np.argmax(infected_now)),
            "peak_hospitalised": float(self.hospitalised[peak_day]),
            "peak_hospitalised_day": float(peak_day),
            "deaths": float(self.dead[-1]),
            "peak_infectious": float(self.infectious.max()),
            "peak_infectious_day": float(np.argmax(self.infectious)),
        }


def _steps(
    duration: Duration, rng: np.random.Generator, size: int, per_day: int, minimum: int = 1
) -> IntArray:
    """Delays rounded to whole steps (as Covasim's lognormal_int rounds to days)."""
    steps = np.rint(duration.draw(rng, size) * per_day).astype(np.int64)
    return np.maximum(steps, minimum)


@dataclass(frozen=True)
class Course:
    """The drawn course of people infected at one step, each array in their order.
    Steps are absolute; ``onset`` is -1 for people never ill, ``admitted``,
    ``discharged`` and ``died_at`` list only the people admitted to hospital."""

    infectious_at: IntArray
    infectious_end: IntArray  # recovery, or admission to hospital
    onset: IntArray
    admitted: IntArray
    discharged: IntArray
    recovered_at: IntArray  # every recovery, in or out of hospital
    died_at: IntArray
    admitted_people: IntArray  # index into the infected people of each admission
    fate: npt.NDArray[np.int8]


def draw_course(
    disease: Disease,
    rng: np.random.Generator,
    ages: npt.NDArray[np.int8],
    step: int,
    per_day: int,
    chances: tuple[FloatArray, ...] | None = None,
) -> Course:
    """Draw the whole course of ``len(ages)`` people infected at ``step``: each delay and
    each branch by age, in a fixed order of draws (the same seed, the same courses)."""
    p_symptoms, p_hospital, p_death = chances or disease.chances()
    count = len(ages)
    infectious_at = step + _steps(disease.latent, rng, count, per_day)
    symptoms = rng.random(count) < p_symptoms[ages]
    quiet = np.flatnonzero(~symptoms)
    quiet_end = infectious_at[quiet] + _steps(disease.asymptomatic, rng, len(quiet), per_day)
    ill = np.flatnonzero(symptoms)
    ill_ages = ages[ill]
    onset_ill = infectious_at[ill] + _steps(
        disease.presymptomatic, rng, len(ill), per_day, minimum=0
    )
    severe = rng.random(len(ill)) < p_hospital[ill_ages]
    mild_end = onset_ill[~severe] + _steps(disease.mild, rng, int((~severe).sum()), per_day)
    admitted = onset_ill[severe] + _steps(disease.to_hospital, rng, int(severe.sum()), per_day)
    dies = rng.random(len(admitted)) < p_death[ill_ages[severe]]
    stay = np.where(
        dies,
        _steps(disease.hospital_to_death, rng, len(admitted), per_day),
        _steps(disease.hospital_to_recovery, rng, len(admitted), per_day),
    )
    discharged = admitted + stay
    infectious_end = np.empty(count, np.int64)
    infectious_end[quiet] = quiet_end
    infectious_end[ill[~severe]] = mild_end
    infectious_end[ill[severe]] = admitted
    onset = np.full(count, -1, np.int64)
    onset[ill] = onset_ill
    fate = np.full(count, RECOVERED, np.int8)
    fate[ill[severe][dies]] = DIED
    return Course(
        infectious_at=infectious_at,
        infectious_end=infectious_end,
        onset=onset,
        admitted=admitted,
        discharged=discharged,
        recovered_at=np.concatenate((quiet_end, mild_end, discharged[~dies])),
        died_at=discharged[dies],
        admitted_people=ill[severe],
        fate=fate,
    )


class _Ledger:
    """Per-step event arrays: counts that change at each step, and infectiousness."""

    def __init__(self, steps: int) -> None:
        self.size = steps + 2  # the last slot collects events beyond the horizon
        self.exposed = np.zeros(self.size, np.int64)
        self.infectious = np.zeros(self.size, np.int64)
        self.hospitalised = np.zeros(self.size, np.int64)
        self.recovered = np.zeros(self.size, np.int64)
        self.dead = np.zeros(self.size, np.int64)
        self.onsets = np.zeros(self.size, np.int64)
        self.admissions = np.zeros(self.size, np.int64)
        self.weight = np.zeros(self.size, np.float64)

    def _count(self, at: IntArray) -> IntArray:
        return np.bincount(np.minimum(at, self.size - 1), minlength=self.size)

    def add(self, series: IntArray, at: IntArray) -> None:
        if len(at):
            series += self._count(at)

    def remove(self, series: IntArray, at: IntArray) -> None:
        if len(at):
            series -= self._count(at)

    def weigh(self, at: IntArray, change: float) -> None:
        """Infectiousness changes by ``change`` per person at the given steps."""
        if len(at) and change:
            self.weight += self._count(at) * change


def beta_per_step(phases: list[tuple[int, float, float]], days: int, per_day: int) -> FloatArray:
    """Contacts x probability for each step from (first day, contacts, probability)."""
    beta = np.zeros(days * per_day)
    for first_day, contacts, probability in sorted(phases):
        beta[max(first_day, 0) * per_day :] = contacts * probability
    return beta


def simulate(
    disease: Disease,
    phases: list[tuple[int, float, float]],
    *,
    population: int,
    days: int,
    seed: int,
    seed_infections: int,
    steps_per_day: int = 1,
) -> Run:
    """Run one replicate. ``phases`` are (first day, contacts a day, probability per
    contact), days counted from 0; ``seed_infections`` people are exposed on day 0."""
    if population < 1 or days < 1 or steps_per_day < 1:
        raise ValueError("population, days and steps_per_day must be positive")
    if not 0 <= seed_infections <= population:
        raise ValueError("seed_infections must be between 0 and the population")
    rng = np.random.default_rng(seed)
    per_day = steps_per_day
    steps = days * per_day
    dt = 1.0 / per_day
    beta = beta_per_step(phases, days, per_day)
    shares = disease.age_shares()
    age_band = rng.choice(len(shares), size=population, p=shares).astype(np.int8)
    chances = disease.chances()
    infected_step = np.full(population, -1, np.int32)
    fate = np.zeros(population, np.int8)
    ledger = _Ledger(steps)
    new_infections = np.zeros(steps, np.int64)
    asym_weight = disease.asymptomatic_infectiousness
    sym_weight = disease.symptomatic_infectiousness

    def infect(step: int, count: int, first: int) -> None:
        people = slice(first, first + count)
        infected_step[people] = step
        ledger.exposed[step] += count
        course = draw_course(disease, rng, age_band[people], step, per_day, chances)
        ledger.remove(ledger.exposed, course.infectious_at)
        ledger.add(ledger.infectious, course.infectious_at)
        ledger.remove(ledger.infectious, course.infectious_end)
        ledger.add(ledger.recovered, course.recovered_at)
        ledger.add(ledger.dead, course.died_at)
        ledger.add(ledger.hospitalised, course.admitted)
        ledger.remove(ledger.hospitalised, course.discharged)
        ledger.add(ledger.onsets, course.onset[course.onset >= 0])
        ledger.add(ledger.admissions, course.admitted)
        quiet = course.onset < 0
        ledger.weigh(course.infectious_at[quiet], asym_weight)
        ledger.weigh(course.infectious_end[quiet], -asym_weight)
        ill = ~quiet
        ledger.weigh(course.infectious_at[ill], 1.0)
        ledger.weigh(course.onset[ill], sym_weight - 1.0)
        ledger.weigh(course.infectious_end[ill], -sym_weight)
        fate[people] = course.fate

    infected = 0
    if seed_infections:
        infect(0, seed_infections, 0)
        infected = seed_infections
    weight = 0.0
    for step in range(steps):
        weight += ledger.weight[step]
        susceptible = population - infected
        if weight > 1e-9 and susceptible > 0 and beta[step] > 0:
            chance = -np.expm1(-beta[step] * weight * dt / population)
            count = int(rng.binomial(susceptible, chance))
            if count:
                infect(step, count, infected)
                infected += count
                new_infections[step] = count
    new_infections[0] += seed_infections
    day_end = np.arange(1, days + 1) * per_day - 1

    def daily(series: IntArray) -> IntArray:
        return np.cumsum(series[:steps])[day_end]

    def per_day_sum(series: IntArray) -> IntArray:
        return series[:steps].reshape(days, per_day).sum(axis=1)

    infected_day = np.where(infected_step >= 0, infected_step // per_day, -1).astype(np.int32)
    return Run(
        population=population,
        exposed=daily(ledger.exposed),
        infectious=daily(ledger.infectious),
        hospitalised=daily(ledger.hospitalised),
        recovered=daily(ledger.recovered),
        dead=daily(ledger.dead),
        infected=np.cumsum(per_day_sum(new_infections)),
        new_symptomatic=per_day_sum(ledger.onsets),
        new_hospitalised=per_day_sum(ledger.admissions),
        infected_day=infected_day,
        fate=fate,
        age_band=age_band,
    )
