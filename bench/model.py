"""Model figures: wall time and peak memory for 6 scenarios x 2,000,000 people x 365
days x 1 replicate, and person-days per second against Covasim 4 side by side.

.venv/bin/python bench/model.py [--population 2000000] [--days 365]
                                [--covasim-days 200] [--no-covasim]

Covasim is installed only in this benchmark's own environment (var/bench/covasim-venv,
from PyPI, once) and run with its default parameters on the same population and days
as this model's run it is compared with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import venv
from pathlib import Path

from services.model.ensemble import run_tasks, summarise, tasks_for, with_overrides
from services.model.scenarios import load_spec

COVASIM = "covasim==4.0.1"
COVASIM_VENV = Path("var/bench/covasim-venv")
COVASIM_RUN = """
import json, sys, time
t0 = time.perf_counter()
import covasim as cv
sim = cv.Sim(pop_size=int(sys.argv[1]), n_days=int(sys.argv[2]), verbose=0)
t1 = time.perf_counter()
sim.initialize()
t2 = time.perf_counter()
sim.run()
t3 = time.perf_counter()
import resource
print(json.dumps({"import": t1 - t0, "initialise": t2 - t1, "run": t3 - t2,
                  "infections": float(sim.results["cum_infections"][-1]),
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def six_scenarios(population: int, days: int) -> None:
    spec = with_overrides(load_spec(), population=population, days=days, replicates=1)
    started = time.perf_counter()
    results = run_tasks(tasks_for(spec))
    wall = time.perf_counter() - started
    summarise(spec, results)
    by_worker: dict[int, int] = {}
    for r in results:
        by_worker[r["worker"]] = max(by_worker.get(r["worker"], 0), r["peak_rss_kib"])
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = (parent + sum(by_worker.values())) / 1024
    person_days = len(spec.scenarios) * population * days
    print(
        f"six scenarios: {len(spec.scenarios)} x {population:,} people x {days} days x 1 "
        f"replicate in {wall:.2f} s wall ({len(by_worker)} worker processes); peak memory "
        f"{peak_mib:,.0f} MiB (this process {parent / 1024:,.0f} MiB + each worker's peak: "
        + ", ".join(f"{v / 1024:,.0f}" for v in by_worker.values())
        + f" MiB); {person_days / wall / 1e6:,.0f} million person-days/s"
    )
    for r in sorted(results, key=lambda r: r["scenario"]):
        t = r["totals"]
        print(
            f"  {r['scenario']:<22} infected {t['infected']:>11,.0f}  at peak "
            f"{t['peak_infected']:>9,.0f}  peak in hospital {t['peak_hospitalised']:>8,.0f}"
            f"  deaths {t['deaths']:>8,.0f}"
        )


def ours_one_process(population: int, days: int) -> float:
    """The first scenario, one replicate, in this process: what one core does."""
    spec = with_overrides(
        load_spec().only(["lift-13-april"]), population=population, days=days, replicates=1
    )
    started = time.perf_counter()
    run_tasks(tasks_for(spec), workers=1)
    return time.perf_counter() - started


def covasim(population: int, days: int) -> dict[str, float]:
    python = COVASIM_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {COVASIM} into {COVASIM_VENV} (once) ...", flush=True)
        venv.create(COVASIM_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", COVASIM], check=True)
    out = subprocess.run(
        [str(python), "-c", COVASIM_RUN, str(population), str(days)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--covasim-days", type=int, default=200)
    parser.add_argument("--no-covasim", action="store_true")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    six_scenarios(args.population, args.days)
    if args.no_covasim:
        return
    days = args.covasim_days
    ours = ours_one_process(args.population, days)
    ours_rate = args.population * days / ours
    print(
        f"this model, one process, {args.population:,} people x {days} days: {ours:.2f} s, "
        f"{ours_rate / 1e6:,.1f} million person-days/s"
    )
    print(f"Covasim 4 (defaults), {args.population:,} people x {days} days: running ...")
    result = covasim(args.population, days)
    total = result["initialise"] + result["run"]
    rate = args.population * days / total
    print(
        f"Covasim: initialise {result['initialise']:.1f} s + run {result['run']:.1f} s = "
        f"{total:.1f} s, {rate / 1e6:,.2f} million person-days/s, peak "
        f"{result['peak_rss_kib'] / 1024:,.0f} MiB ({result['infections']:,.0f} infections)"
    )
    print(f"speed-up: {ours_rate / rate:,.0f}x Covasim's person-days per second")


if __name__ == "__main__":
    sys.exit(main())
