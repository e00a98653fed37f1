"""Model figures: the six scenarios at full size, and a check against Covasim 4.0.1.

.venv/bin/python bench/model.py [--population 2000000] [--days 365]
                                [--compare-population 200000] [--compare-days 180]
                                [--replicates 10] [--kind structured|homogeneous]
                                [--no-covasim] [--no-speed] [--covasim-runs FILE]
                                [--dispersion 0.45] [--poisson-contacts]

1. Speed: the six scenarios x ``--population`` people x ``--days`` days x 1 replicate
   on the ``--kind`` population, twice: in this one process (per process), then in
   worker processes, one per core (the whole machine): wall time, peak memory (this
   process, and every worker), person-days per second, the load average around it.
2. Agreement (structured only): Covasim's hybrid population (households, schools, work,
   community) against this model on a matched configuration - the same contacts per
   layer (households of the same sizes, schools and workplaces as static random
   networks), per-contact probability applied per edge, disease course, susceptibility
   by age, viral-load profile and spread of infectiousness between people - at
   ``--compare-population`` people, ``--replicates`` seeds each, schools open and
   schools closed from day 0. Prints the medians of attack rate and peak day, their
   differences (target: within 5%) and the effect of closing schools (target:
   the same direction and within 20% of Covasim's).
3. The speed ratios: (1)'s person-days per second, in one process and on the whole
   machine, over Covasim's hybrid person-days per second (initialisation and run, one
   process) measured in (2). The per-process ratio is the like-for-like one: Covasim
   too would run one simulation per core.

Covasim is installed only into this benchmark's own environment (bench/.covasim-venv,
gitignored, from PyPI with pip, once); it is never a dependency of the project.
Nothing in the matched configuration is fitted to Covasim's results: every setting is
Covasim 4.0.1's documented default. Two of them are options of the engine that the
city's scenarios leave off: each person's infectiousness drawn from a gamma of shape
0.45 (``--dispersion``; Covasim's beta_dist, a negative binomial of dispersion 0.45,
mean 1), and household and network contacts infecting with a linear chance a day per
edge as Covasim's do (``--poisson-contacts`` turns it off: Poisson attempts, whose
chance 1 - exp(-x) saturates for super-spreaders). What is still not matched: Covasim
has a critical stage between severe and death (the same infectious time), its
community contacts are a static network too where this model draws new ones every day,
and it draws its random numbers differently.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import venv
from dataclasses import replace
from pathlib import Path
from statistics import median

import numpy as np

from services.model.disease import Disease
from services.model.ensemble import run_tasks, summarise, tasks_for, with_overrides
from services.model.population import District, PopulationConfig, build_population
from services.model.scenarios import load_spec
from services.model.structured import Policy, Transmission, simulate_structured

COVASIM = "covasim==4.0.1"
COVASIM_VENV = Path(__file__).resolve().parent / ".covasim-venv"
# Covasim 4.0.1's hybrid defaults, as `cv.Sim(pop_type="hybrid", location="Kazakhstan")`
# reports them: beta 0.016; beta_layer h 3.0, s 0.6, w 0.6, c 0.3; contacts h 2.496
# (household size - 1, Poisson clusters), s 20 (ages 6-21), w 16 (ages 22-64), c 20;
# sus_ORs by ten-year band; viral load twice as high for the first 30% of the
# infectious time, at most 4 days. Without waning immunity (no reinfections, as here).
COVASIM_BETA = 0.016
COVASIM_SUSCEPTIBILITY = (0.34, 0.67, 1.0, 1.0, 1.0, 1.0, 1.24, 1.47, 1.47)
COVASIM_HOUSEHOLD_CONTACTS = 2.496
# beta_dist: each person's infectiousness a negative binomial of mean 1 and dispersion
# 0.45 (drawn at 0.01 steps), i.e. about a gamma of shape 0.45.
COVASIM_DISPERSION = 0.45
COVASIM_RUN = """
import json, sys, time
import numpy as np
import covasim as cv
size, days, seeds, closed = json.loads(sys.argv[1])
for seed in seeds:
    for schools_closed in closed:
        t0 = time.perf_counter()
        interventions = [cv.clip_edges(days=0, changes=0.0, layers="s")] if schools_closed else []
        sim = cv.Sim(pop_size=size, pop_type="hybrid", location="Kazakhstan", n_days=days,
                     rand_seed=seed, interventions=interventions, use_waning=False, verbose=0)
        sim.initialize()
        t1 = time.perf_counter()
        sim.run()
        t2 = time.perf_counter()
        import resource
        print(json.dumps({
            "seed": seed, "schools_closed": schools_closed, "initialise": t1 - t0,
            "run": t2 - t1,
            "attack_rate": float(sim.results["cum_infections"][-1]) / size,
            "peak_day": int(np.argmax(sim.results["n_exposed"])),
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }), flush=True)
"""


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def six_scenarios(population: int, days: int, kind: str, workers: int) -> float:
    """Runs the six 2020 scenarios; returns person-days per second (wall)."""
    spec = with_overrides(
        load_spec(), population=population, days=days, replicates=1, population_kind=kind
    )
    spec = spec.only([s.key for s in spec.scenarios if not s.structured_only])
    before = load()
    started = time.perf_counter()
    results = run_tasks(tasks_for(spec), workers=workers)
    wall = time.perf_counter() - started
    summarise(spec, results)
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    by_worker: dict[int, int] = {}
    for r in results:
        if r["worker"] != os.getpid():
            by_worker[r["worker"]] = max(by_worker.get(r["worker"], 0), r["peak_rss_kib"])
    peak_mib = (parent + sum(by_worker.values())) / 1024
    person_days = len(spec.scenarios) * population * days
    rate = person_days / wall
    where = (
        f"{len(by_worker)} worker processes; peak memory {peak_mib:,.0f} MiB (this process "
        f"{parent / 1024:,.0f} MiB + each worker's peak: "
        + ", ".join(f"{v / 1024:,.0f}" for v in by_worker.values())
        + " MiB)"
        if by_worker
        else f"this one process; its peak memory {parent / 1024:,.0f} MiB"
    )
    print(
        f"six scenarios ({kind}): {len(spec.scenarios)} x {population:,} people x {days} days "
        f"x 1 replicate in {wall:.1f} s wall ({where}); {rate / 1e6:,.1f} million "
        f"person-days/s ({before} before, {load()} after)",
        flush=True,
    )
    for r in sorted(results, key=lambda r: r["scenario"]):
        t = r["totals"]
        print(
            f"  {r['scenario']:<22} infected {t['infected']:>11,.0f}  at peak "
            f"{t['peak_infected']:>9,.0f}  peak in hospital {t['peak_hospitalised']:>8,.0f}"
            f"  deaths {t['deaths']:>8,.0f}"
        )
    return rate


def matched_city() -> PopulationConfig:
    """Covasim's hybrid population in this model's terms: one district, households of
    zero-truncated Poisson sizes (people-weighted contacts 2.496), people placed at
    random, everyone aged 6-21 in a static random network of 20 contacts on average,
    everyone aged 22-64 in one of 16 (as starsim's RandomNet builds Covasim 4.0.1's
    schools and workplaces), 20 random community contacts a day. (Classes of 21 and
    workplaces of 17 as cliques gave the same attack rates within 0.2 points.)"""
    sizes = np.arange(1, 30)
    lam = COVASIM_HOUSEHOLD_CONTACTS
    poisson = np.exp(sizes * math.log(lam) - lam - np.array([math.lgamma(k + 1) for k in sizes]))
    return PopulationConfig(
        districts=(District("city", 1, 1.0),),
        household_sizes=tuple(float(p) for p in poisson / poisson.sum()),
        school_ages=(6, 22),
        enrolment=1.0,
        class_size=21.0,
        work_ages=(22, 65),
        employment=1.0,
        workplace_sizes=((17, 17, 1.0),),
        commuting=0.0,
        community_contacts=(20.0,) * 16,
        whole_group=True,
        random_networks=(20.0, 16.0),
        grades_by_age=False,
        family_households=False,
    )


def ours_matched(
    size: int,
    days: int,
    seeds: list[int],
    schools_closed: bool,
    dispersion: float = COVASIM_DISPERSION,
    per_edge: bool = True,
) -> list[dict]:
    config = matched_city()
    disease = replace(Disease(), symptomatic_infectiousness=1.0)
    transmission = Transmission(
        # Covasim normalises the viral load to a mean of 1 over the infectious time.
        per_contact=COVASIM_BETA / (0.3 * 2.0 + 0.7),
        susceptibility=COVASIM_SUSCEPTIBILITY,
        early_fraction=0.3,
        early_cap_days=4.0,
        early_ratio=2.0,
        infectious_in_hospital=True,
        dispersion=dispersion,
        per_edge=per_edge,
    )
    out = []
    for seed in seeds:
        city = build_population(config, disease.age_pyramid, size, seed)
        policy = Policy.none(days)
        if schools_closed:
            policy.setting_factor[1, :] = 0.0
        started = time.perf_counter()
        run = simulate_structured(
            disease, city, config, transmission, policy, days=days, seed=seed, seed_infections=20
        )
        infected_now = run.infected_now()
        out.append(
            {
                "attack_rate": float(run.infected[-1]) / size,
                "peak_day": int(np.argmax(infected_now)),
                "seconds": time.perf_counter() - started,
            }
        )
    return out


def covasim(size: int, days: int, seeds: list[int]) -> list[dict]:
    """Covasim's runs, each printed as it ends (a long comparison shows its progress)."""
    python = COVASIM_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {COVASIM} into {COVASIM_VENV} (once) ...", flush=True)
        venv.create(COVASIM_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", COVASIM], check=True)
    runs = []
    with subprocess.Popen(
        [str(python), "-c", COVASIM_RUN, json.dumps([size, days, seeds, [False, True]])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "STARSIM_INSTALL_FONTS": "0"},
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("{"):
                run = json.loads(line)
                runs.append(run)
                print(
                    f"  Covasim seed {run['seed']}, schools "
                    f"{'closed' if run['schools_closed'] else 'open'}: attack rate "
                    f"{run['attack_rate']:.1%}, peak day {run['peak_day']}, "
                    f"{run['initialise'] + run['run']:.0f} s",
                    flush=True,
                )
    if process.returncode:
        raise SystemExit(f"Covasim stopped with exit status {process.returncode}")
    return runs


def _within(ours: float, theirs: float, share: float) -> str:
    difference = (ours - theirs) / theirs if theirs else float("inf")
    verdict = "within" if abs(difference) <= share else "NOT within"
    return f"{difference:+.1%} ({verdict} {share:.0%})"


def compare(
    size: int,
    days: int,
    replicates: int,
    runs_file: Path | None = None,
    dispersion: float = COVASIM_DISPERSION,
    per_edge: bool = True,
) -> float:
    """Prints the agreement; returns Covasim's hybrid person-days per second. Covasim's
    runs are written to ``runs_file`` (JSON), or read from it when it exists (to check
    a change of this model against the same Covasim runs; the speed ratio then comes
    from the run that wrote it)."""
    seeds = list(range(1, replicates + 1))
    print(
        f"Covasim 4.0.1 hybrid against this model (matched), {size:,} people x {days} days, "
        f"{replicates} seeds, schools open and closed ...",
        flush=True,
    )
    print(
        f"  this model: infectiousness dispersion {dispersion or 'none'}, household and "
        f"network contacts {'as edges (linear chance)' if per_edge else 'as Poisson attempts'}",
        flush=True,
    )
    ours = {
        closed: ours_matched(size, days, seeds, closed, dispersion, per_edge)
        for closed in (False, True)
    }
    for closed, runs in ours.items():
        print(
            f"  this model, schools {'closed' if closed else 'open'}: attack rates "
            + ", ".join(f"{r['attack_rate']:.1%}" for r in runs)
            + "; peak days "
            + ", ".join(str(r["peak_day"]) for r in runs),
            flush=True,
        )
    if runs_file is not None and runs_file.exists():
        saved = json.loads(runs_file.read_text())
        if saved["size"] != size or saved["days"] != days or saved["seeds"] != seeds:
            raise SystemExit(f"{runs_file} holds other runs: {saved['size']} people ...")
        theirs = saved["runs"]
        print(f"  Covasim's runs read from {runs_file}", flush=True)
    else:
        print(f"  ({load()}) Covasim ...", flush=True)
        theirs = covasim(size, days, seeds)
        print(f"  ({load()})", flush=True)
        if runs_file is not None:
            runs_file.write_text(
                json.dumps({"size": size, "days": days, "seeds": seeds, "runs": theirs})
            )
    spent = sum(r["initialise"] + r["run"] for r in theirs)
    covasim_rate = len(theirs) * size * days / spent
    our_spent = sum(r["seconds"] for runs in ours.values() for r in runs)
    print(
        f"Covasim: {len(theirs)} runs in {spent:,.0f} s (initialise + run), "
        f"{covasim_rate / 1e6:,.3f} million person-days/s, peak "
        f"{max(r['peak_rss_kib'] for r in theirs) / 1024:,.0f} MiB; this model (one process, "
        f"no worker pool): {our_spent:,.1f} s, "
        f"{len(theirs) * size * days / our_spent / 1e6:,.1f} million person-days/s",
        flush=True,
    )
    effects = {}
    for closed in (False, True):
        label = "schools closed" if closed else "schools open"
        cov = [r for r in theirs if r["schools_closed"] == closed]
        ar_cov, ar_ours = (
            median(r["attack_rate"] for r in cov),
            median(r["attack_rate"] for r in ours[closed]),
        )
        pd_cov, pd_ours = (
            median(r["peak_day"] for r in cov),
            median(r["peak_day"] for r in ours[closed]),
        )
        effects[closed] = (ar_cov, ar_ours)
        print(
            f"  {label:<15} attack rate: Covasim {ar_cov:.1%}, this model {ar_ours:.1%}: "
            f"{_within(ar_ours, ar_cov, 0.05)};  peak day: Covasim {pd_cov:.0f}, this "
            f"model {pd_ours:.0f}: {_within(pd_ours, pd_cov, 0.05)}"
        )
    cov_effect = effects[True][0] - effects[False][0]
    our_effect = effects[True][1] - effects[False][1]
    same = (cov_effect < 0) == (our_effect < 0)
    print(
        f"  closing schools changes the attack rate by {cov_effect:+.1%} points in Covasim "
        f"and {our_effect:+.1%} points here: "
        f"{'the same direction' if same else 'OPPOSITE directions'}, "
        f"{_within(our_effect, cov_effect, 0.20)}"
    )
    return covasim_rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--kind", choices=("structured", "homogeneous"), default="structured")
    parser.add_argument("--compare-population", type=int, default=200_000)
    parser.add_argument("--compare-days", type=int, default=180)
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--no-covasim", action="store_true")
    parser.add_argument("--covasim-runs", type=Path, help="JSON of Covasim's runs (write/read)")
    parser.add_argument("--no-speed", action="store_true", help="only the comparison")
    parser.add_argument(
        "--dispersion",
        type=float,
        default=COVASIM_DISPERSION,
        help="gamma shape of each person's infectiousness in the matched runs (0: none)",
    )
    parser.add_argument(
        "--poisson-contacts",
        action="store_true",
        help="matched runs: household and network contacts as Poisson attempts, not edges",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; {load()}", flush=True)
    if not args.no_speed:
        one = six_scenarios(args.population, args.days, args.kind, workers=1)
        machine = six_scenarios(args.population, args.days, args.kind, workers=cores)
    if args.no_covasim or args.kind != "structured":
        return
    covasim_rate = compare(
        args.compare_population,
        args.compare_days,
        args.replicates,
        args.covasim_runs,
        args.dispersion,
        not args.poisson_contacts,
    )
    if args.no_speed:
        return
    for label, rate in (("in one process", one), (f"on the machine ({cores} processes)", machine)):
        ratio = rate / covasim_rate
        print(
            f"speed {label}: the six scenarios ran at {rate / 1e6:,.1f} million "
            f"person-days/s, Covasim's hybrid (one process) at {covasim_rate / 1e6:,.3f} "
            f"million: {ratio:,.0f} times ({'meets' if ratio >= 100 else 'MISSES'} the "
            "target of 100)"
        )


if __name__ == "__main__":
    sys.exit(main())
