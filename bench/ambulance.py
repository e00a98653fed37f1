"""Ambulance call clusters: the computation for a city's year of calls, at once and as the
platform runs it (a day's new calls against the days around them).

.venv/bin/python bench/ambulance.py [--calls 500000] [--days 365] [--hotspots 300]

Calls are spread over the city at random, plus ``--hotspots`` buildings each with a burst
of calls over a few days (the clusters to find). Prints the seconds and calls per second,
and the core count.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from geofence.clusters import ClusterRule, assign, project

WEST, SOUTH, EAST, NORTH = 76.75, 43.15, 77.05, 43.35  # Almaty, roughly
DAY = 86400.0


def calls(count: int, days: int, hotspots: int, seed: int = 103) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    burst = 8
    spread = count - hotspots * burst
    lat = rng.uniform(SOUTH, NORTH, spread)
    lon = rng.uniform(WEST, EAST, spread)
    t = rng.uniform(0, days * DAY, spread)
    centres = rng.uniform((SOUTH, WEST), (NORTH, EAST), (hotspots, 2))
    starts = rng.uniform(0, (days - 3) * DAY, hotspots)
    lat = np.concatenate(
        [lat, np.repeat(centres[:, 0], burst) + rng.normal(0, 0.0002, hotspots * burst)]
    )
    lon = np.concatenate(
        [lon, np.repeat(centres[:, 1], burst) + rng.normal(0, 0.0002, hotspots * burst)]
    )
    t = np.concatenate([t, np.repeat(starts, burst) + rng.uniform(0, 2 * DAY, hotspots * burst)])
    return lat, lon, t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--hotspots", type=int, default=300)
    args = parser.parse_args()
    rule = ClusterRule()
    lat, lon, t = calls(args.calls, args.days, args.hotspots)
    n = lat.size
    started = time.perf_counter()
    x, y = project(lat, lon)
    whole = assign(x, y, t, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), rule)
    seconds = time.perf_counter() - started
    print(f"cores: {os.cpu_count()}")
    print(
        f"{n:,} calls over {args.days} days, all at once: {seconds:.2f} s "
        f"({n / seconds:,.0f} calls/s), {len(whole.new):,} clusters "
        f"({args.hotspots} planted), {whole.cores:,} core calls"
    )
    # The platform's step: the last day's calls are new, the rest clustered already; the
    # window holds the calls within twice the rule's days of them.
    last_day = t >= (args.days - 1) * DAY
    window = t >= (args.days - 1) * DAY - 2 * rule.seconds
    known = whole.cluster.copy()
    known[known < 0] = -known[known < 0]
    known[last_day] = 0
    started = time.perf_counter()
    step = assign(x[window], y[window], t[window], known[window], last_day[window], rule)
    seconds = time.perf_counter() - started
    print(
        f"one day's {int(last_day.sum()):,} new calls against {int(window.sum()):,} in the "
        f"window: {seconds * 1000:.0f} ms, {len(step.new)} new clusters"
    )


if __name__ == "__main__":
    main()
