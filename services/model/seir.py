"""The deterministic SEIR equations and the final-size equation: the yardsticks the
stochastic engine is checked against (with large N its mean must agree with them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class SeirCurve:
    days: npt.NDArray[np.float64]
    susceptible: npt.NDArray[np.float64]
    exposed: npt.NDArray[np.float64]
    infectious: npt.NDArray[np.float64]
    removed: npt.NDArray[np.float64]

    def peak(self) -> tuple[float, float]:
        """(peak number infectious, the day it happens)."""
        return peak_of(self.days, self.infectious)


def peak_of(
    times: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """(peak value, its time), refined between samples by a parabola through the three
    samples around the maximum (equally spaced times)."""
    i = int(np.argmax(values))
    if 0 < i < len(values) - 1:
        left, mid, right = (float(v) for v in values[i - 1 : i + 2])
        bend = left - 2 * mid + right
        shift = 0.5 * (left - right) / bend if bend else 0.0
        step = float(times[1] - times[0])
        return mid - 0.25 * (left - right) * shift, float(times[i]) + shift * step
    return float(values[i]), float(times[i])


def solve_seir(
    *,
    population: float,
    beta: float,
    latent_days: float,
    infectious_days: float,
    exposed0: float,
    days: int,
    per_day: int = 100,
) -> SeirCurve:
    """S' = -beta S I / N, E' = beta S I / N - E / latent, I' = E / latent - I / infectious,
    R' = I / infectious; classical Runge-Kutta with ``per_day`` steps a day."""
    sigma, gamma = 1.0 / latent_days, 1.0 / infectious_days
    h = 1.0 / per_day

    def rates(y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        s, e, i, _ = y
        infection = beta * s * i / population
        return np.array([-infection, infection - sigma * e, sigma * e - gamma * i, gamma * i])

    y = np.array([population - exposed0, exposed0, 0.0, 0.0])
    out = np.empty((days * per_day + 1, 4))
    out[0] = y
    for n in range(days * per_day):
        k1 = rates(y)
        k2 = rates(y + 0.5 * h * k1)
        k3 = rates(y + 0.5 * h * k2)
        k4 = rates(y + h * k3)
        y = y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[n + 1] = y
    grid = np.arange(days * per_day + 1, dtype=np.float64) * h
    return SeirCurve(grid, out[:, 0], out[:, 1], out[:, 2], out[:, 3])


def final_size(r0: float) -> float:
    """The fraction eventually infected, z = 1 - exp(-R0 z), for R0 > 1 (0 otherwise)."""
    if r0 <= 1.0:
        return 0.0
    z = 1.0 - 1e-9
    for _ in range(200):  # Newton's method from above converges monotonically
        f = z - 1.0 + math.exp(-r0 * z)
        z -= f / (1.0 - r0 * math.exp(-r0 * z))
    return z
