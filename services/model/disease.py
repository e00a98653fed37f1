"""What the disease does to a person once infected: durations, chances by age, and the
population's age pyramid. Every number says where it comes from.

Durations and chances by age are Covasim's defaults (Kerr et al. 2021, PLoS Comput
Biol 17(7): e1009149; ``covasim/parameters.py`` of Covasim 4.0.1), each of which cites
its own clinical source there (Lauer et al., Linton et al., Wölfel et al., Verity et
al., Imperial College report 9, O'Driscoll et al.). The age pyramid is Kazakhstan's
from the UN World Population Prospects 2019, as Covasim ships it
(``covasim/data/country_age_data.py``); the source gives no pyramid for Almaty itself,
which is younger than the country's average, so hospitalisation and deaths per
infection are if anything slightly over-estimated before calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

AGE_BANDS = ("0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+")

# UN WPP 2019, Kazakhstan, people per ten-year band (Covasim's country_age_data.py).
KAZAKHSTAN_AGE_PYRAMID = (
    3_868_009,
    2_720_923,
    2_573_190,
    2_993_496,
    2_286_423,
    2_039_442,
    1_438_908,
    552_508,
    303_808,
)

# Covasim's get_prognoses(), overall (not conditional) chances per infection. Its
# 80-89 and 90+ bands are merged into 80+ with the 80-89 values (90+ is ~1/6 of 80+).
_SYMPTOMATIC = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90)
_SEVERE = (0.00050, 0.00165, 0.00720, 0.02080, 0.03430, 0.07650, 0.13280, 0.20655, 0.24570)
_DEATH = (0.00002, 0.00002, 0.00010, 0.00032, 0.00098, 0.00265, 0.00766, 0.02439, 0.08292)

# The source (Almaty's slides) gives R0 = 3.11 for its unmitigated curve of 10 contacts
# a day at 5% per contact; with Covasim's durations that fixes how infectious a person
# is after symptom onset relative to before (see ``source_consistent_defaults``).
SOURCE_R0 = 3.11
SOURCE_UNMITIGATED = (10.0, 0.05)


@dataclass(frozen=True)
class Duration:
    """A delay in days, drawn per person: lognormal with this mean and standard
    deviation (as Covasim's ``lognormal_int``), or exponential with this mean."""

    mean: float
    sd: float = 0.0
    dist: str = "lognormal"

    def draw(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        if self.dist == "exponential":
            return rng.exponential(self.mean, size)
        if self.sd <= 0:
            return np.full(size, self.mean)
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        return rng.lognormal(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2), size)


def scale_odds(p: npt.NDArray[np.float64], odds_ratio: float) -> npt.NDArray[np.float64]:
    """Multiply the odds of each chance by ``odds_ratio``: a calibration knob that keeps
    every chance between 0 and 1 and the order between age bands."""
    return p * odds_ratio / (1.0 - p + p * odds_ratio)


@dataclass(frozen=True)
class Disease:
    """The course of an infection. Chances are per age band (``AGE_BANDS``)."""

    latent: Duration = Duration(4.5, 1.5)  # exposed -> infectious (Covasim exp2inf)
    presymptomatic: Duration = Duration(1.1, 0.9)  # infectious -> symptoms (inf2sym)
    asymptomatic: Duration = Duration(8.0, 2.0)  # infectious, never ill (asym2rec)
    mild: Duration = Duration(8.0, 2.0)  # symptoms -> recovered (mild2rec)
    to_hospital: Duration = Duration(6.6, 4.9)  # symptoms -> hospital (sym2sev)
    hospital_to_recovery: Duration = Duration(18.1, 6.3)  # (sev2rec)
    hospital_to_death: Duration = Duration(12.2, 5.1)  # sev2crit 1.5 + crit2die 10.7
    symptomatic: tuple[float, ...] = _SYMPTOMATIC
    severe: tuple[float, ...] = _SEVERE
    death: tuple[float, ...] = _DEATH
    # Relative infectiousness: asymptomatic people as much as others (Covasim
    # asymp_factor 1.0); after symptom onset, see source_consistent_defaults().
    asymptomatic_infectiousness: float = 1.0
    symptomatic_infectiousness: float = 1.0
    # Calibration knobs (1.0 = Covasim's chances).
    hospitalisation_odds: float = 1.0
    fatality_odds: float = 1.0
    age_pyramid: tuple[int, ...] = KAZAKHSTAN_AGE_PYRAMID

    def age_shares(self) -> npt.NDArray[np.float64]:
        weights = np.asarray(self.age_pyramid, dtype=np.float64)
        return weights / weights.sum()

    def chances(self) -> tuple[npt.NDArray[np.float64], ...]:
        """Per age band: P(symptoms), P(hospital | symptoms), P(death | hospital)."""
        symptomatic = np.asarray(self.symptomatic, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            severe = np.where(
                symptomatic > 0, np.asarray(self.severe) / np.maximum(symptomatic, 1e-12), 0
            )
            death = np.where(
                np.asarray(self.severe) > 0,
                np.asarray(self.death) / np.maximum(np.asarray(self.severe), 1e-12),
                0,
            )
        return (
            symptomatic,
            scale_odds(np.clip(severe, 0, 1), self.hospitalisation_odds),
            scale_odds(np.clip(death, 0, 1), self.fatality_odds),
        )

    def infectious_days(self) -> float:
        """Mean infectious days per infection, weighted by relative infectiousness:
        R0 = contacts per day x probability per contact x this."""
        symptomatic, severe, _ = self.chances()
        after_onset = (1 - severe) * self.mild.mean + severe * self.to_hospital.mean
        per_band = (1 - symptomatic) * self.asymptomatic_infectiousness * (
            self.asymptomatic.mean
        ) + symptomatic * (
            self.presymptomatic.mean + self.symptomatic_infectiousness * after_onset
        )
        return float(self.age_shares() @ per_band)

    def r0(self, contacts: float, probability: float) -> float:
        return contacts * probability * self.infectious_days()


def source_consistent_defaults(
    hospitalisation_odds: float = 1.0, fatality_odds: float = 1.0
) -> Disease:
    """Covasim's course with the post-onset infectiousness chosen so that the source's
    10 contacts a day at 5% gives the source's R0 of 3.11 (people who feel ill stay home
    more; about half as infectious with Covasim's chances). Solved after the calibration
    knobs are applied, because hospital admission ends a person's infectious time."""
    base = Disease(
        symptomatic_infectiousness=0.0,
        hospitalisation_odds=hospitalisation_odds,
        fatality_odds=fatality_odds,
    )
    without_onset = base.infectious_days()
    per_unit = replace(base, symptomatic_infectiousness=1.0).infectious_days() - without_onset
    wanted = SOURCE_R0 / (SOURCE_UNMITIGATED[0] * SOURCE_UNMITIGATED[1])
    return replace(base, symptomatic_infectiousness=(wanted - without_onset) / per_unit)


def seir_disease(latent_days: float, infectious_days: float) -> Disease:
    """The textbook SEIR course (exponential delays, nobody ill, nobody dies), for
    checking the stochastic engine against the deterministic equations."""
    return Disease(
        latent=Duration(latent_days, dist="exponential"),
        asymptomatic=Duration(infectious_days, dist="exponential"),
        symptomatic=tuple(0.0 for _ in AGE_BANDS),
        severe=tuple(0.0 for _ in AGE_BANDS),
        death=tuple(0.0 for _ in AGE_BANDS),
    )
