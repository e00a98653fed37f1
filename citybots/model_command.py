"""`citybots model run | calibrate`: the stochastic epidemic model from the command line.

The runs go to worker processes (services.model.ensemble); this process only shows
progress, prints the table (or JSON) and draws the chart.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from citybots.commands import command_error
from citybots.progress import counted
from citybots.settings import Settings
from presentation.rendering import curves_chart
from services.model.calibrate import calibrate, fit_case_series
from services.model.ensemble import ScenarioResult, run_spec, with_overrides
from services.model.scenarios import POPULATION_KINDS, ModelSpec, ScenarioError, load_spec

CHART_PANELS = [
    ("infected_now", "Infected at once (exposed, infectious or in hospital)"),
    ("hospitalised", "In hospital"),
    ("dead", "Deaths, total"),
]


def add_parser(commands: Any) -> None:
    model = commands.add_parser("model", help="the stochastic epidemic model (scenarios)")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    run = model_commands.add_parser("run", help="run scenarios; a table, JSON and a chart")
    calibrating = model_commands.add_parser(
        "calibrate", help="fit the free parameters to the source's run or to a case series"
    )
    for sub in (run, calibrating):
        sub.add_argument("--scenarios", type=Path, help="scenario file (default: the shipped six)")
        sub.add_argument("--population", type=int, help="people (default: the file's, 2,000,000)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        sub.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    run.add_argument("--days", type=int, help="days to simulate (default: the file's, 365)")
    run.add_argument("--replicates", type=int, help="runs per scenario (default: the file's)")
    run.add_argument("--seed", type=int, help="first replicate's seed (default: the file's)")
    run.add_argument(
        "--only", action="append", metavar="KEY", help="run only this scenario (repeatable)"
    )
    run.add_argument("--chart", type=Path, help="where to write the PNG chart")
    run.add_argument(
        "--population-kind",
        choices=POPULATION_KINDS,
        help="homogeneous mixing (the file's default) or the structured city: households, "
        "schools, workplaces, districts, and the scenarios that need it",
    )
    source = calibrating.add_mutually_exclusive_group()
    source.add_argument(
        "--cases", type=Path, help="fit to a daily case series instead: CSV date,cases"
    )
    calibrating.add_argument(
        "--seed-infections",
        type=int,
        help="case series: people infected on its first day (default: 10 x the first "
        "week's daily mean)",
    )
    source.add_argument(
        "--from-registry",
        action="store_true",
        help="fit to the daily first positive PCR results in the health registry",
    )


def _positive(value: int | None, name: str) -> None:
    if value is not None and value < 1:
        raise ScenarioError(f"--{name} must be at least 1")


def _spec(args: argparse.Namespace) -> ModelSpec:
    spec = load_spec(args.scenarios)
    for name in ("population", "days", "replicates", "workers", "seed_infections"):
        _positive(getattr(args, name, None), name)
    kind = getattr(args, "population_kind", None) or spec.population_kind
    if getattr(args, "only", None):
        spec = spec.only(args.only)
    return with_overrides(
        spec,
        population=args.population,
        days=getattr(args, "days", None),
        replicates=getattr(args, "replicates", None),
        seed=getattr(args, "seed", None),
        population_kind=kind,
    )


def _band(value: float, low: float, high: float) -> str:
    return f"{value:,.0f} ({low:,.0f}-{high:,.0f})"


def format_table(spec: ModelSpec, results: list[ScenarioResult]) -> str:
    head = (
        f"{spec.population:,} people, {spec.days} days from {spec.start}, "
        f"{spec.replicates} replicate(s) each; median (90% band)"
    )
    if spec.population_kind == "structured":
        head += "; structured city: households, schools, workplaces, districts"
    rows = [
        ("scenario", "infected, total", "infected at peak", "peak in hospital (date)", "deaths")
    ]
    for r in results:
        peak_date = r.as_json()["peak_hospitalised_date"]
        rows.append(
            (
                r.scenario.key,
                _band(r.infected.median, r.infected.low, r.infected.high),
                _band(r.peak_infected.median, r.peak_infected.low, r.peak_infected.high),
                _band(
                    r.peak_hospitalised.median, r.peak_hospitalised.low, r.peak_hospitalised.high
                )
                + f" {peak_date}",
                _band(r.deaths.median, r.deaths.low, r.deaths.high),
            )
        )
    lines = [head, "", *_aligned(rows)]
    for r in results:
        if r.districts is None:
            continue
        lines += ["", f"{r.scenario.key}: by district, median (90% band)"]
        district_rows = [("district", "infected, total", "peak in hospital (day)", "deaths")]
        for name, bands in r.districts.items():
            peak, day = bands["peak_hospitalised"], bands["peak_hospitalised_day"]
            district_rows.append(
                (
                    name,
                    _band(bands["infected"].median, bands["infected"].low, bands["infected"].high),
                    _band(peak.median, peak.low, peak.high) + f" (day {day.median:.0f})",
                    _band(bands["deaths"].median, bands["deaths"].low, bands["deaths"].high),
                )
            )
        lines += _aligned(district_rows)
        if r.by_setting:
            lines.append(
                "infections by setting (median): "
                + ", ".join(f"{k} {v:,.0f}" for k, v in r.by_setting.items())
            )
    return "\n".join(lines)


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]


def _chart(spec: ModelSpec, results: list[ScenarioResult], path: Path) -> Path:
    title = (
        f"{len(results)} scenarios, {spec.population:,} people, median and 90% band of "
        f"{spec.replicates} run(s)"
    )
    png = curves_chart(
        title,
        spec.start,
        CHART_PANELS,
        [
            (r.scenario.name, {name: r.curves[name].tolist() for name, _ in CHART_PANELS})
            for r in results
        ],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def _run(settings: Settings, args: argparse.Namespace) -> int:
    spec = _spec(args)
    progress = counted(
        f"model: {len(spec.scenarios)} scenario(s) x {spec.replicates} replicate(s)",
        unit="runs",
        every=5.0,
    )
    results = run_spec(spec, workers=args.workers, progress=progress)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    chart = _chart(spec, results, args.chart or settings.data_dir / "model" / f"run-{stamp}.png")
    if args.json:
        print(
            json.dumps(
                {
                    "population": spec.population,
                    "days": spec.days,
                    "start": spec.start.isoformat(),
                    "replicates": spec.replicates,
                    "seed": spec.seed,
                    "population_kind": spec.population_kind,
                    "scenarios": [r.as_json() for r in results],
                    "chart": str(chart),
                },
                indent=2,
            )
        )
    else:
        print(format_table(spec, results))
        print(f"\nchart: {chart}")
    return 0


def read_case_series(path: Path) -> list[tuple[date, int]]:
    """CSV with a header ``date,cases``; every bad row is reported with its line."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror})") from None
    series: list[tuple[date, int]] = []
    problems = []
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"date", "cases"} - set(reader.fieldnames):
            raise ScenarioError(f"{path}: the header must name the columns date,cases")
        for row in reader:
            line = reader.line_num
            try:
                day = date.fromisoformat((row["date"] or "").strip())
                cases = int((row["cases"] or "").strip())
                if cases < 0:
                    raise ValueError
            except ValueError:
                problems.append(f"line {line}: expected a date like 2020-04-13 and a count >= 0")
                continue
            series.append((day, cases))
    if problems:
        raise ScenarioError(f"{path}: " + "; ".join(problems[:5]))
    days = [d for d, _ in series]
    if len(set(days)) != len(days):
        raise ScenarioError(f"{path}: a date appears more than once")
    return series


async def _registry_series(settings: Settings) -> list[tuple[date, int]]:
    """New cases per day (a person counted again only after 90 days without a positive
    result), from the roll-ups, brought up to date first."""
    from citybots.infrastructure import command_services

    async with command_services(settings) as services:
        await services.rollups.refresh()
        return await services.rollups.per_day("new_cases")


def _fit_series(args: argparse.Namespace, series: list[tuple[date, int]]) -> int:
    spec = _spec(args)
    fit = fit_case_series(
        spec, series, population=args.population, seed_infections=args.seed_infections
    )
    result = {
        "start": fit.start.isoformat(),
        "days": fit.days,
        "contacts": round(fit.contacts, 3),
        "probability": fit.probability,
        "r": round(fit.r, 3),
        "detected": round(fit.detected, 4),
        "rmse": round(fit.rmse, 2),
        "seed_infections": fit.seed_infections,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"fitted to {fit.days} days from {fit.start}: {fit.contacts:.2f} contacts a day "
            f"at {fit.probability:.1%} (R = {fit.r:.2f}); {fit.detected:.1%} of "
            f"symptomatic cases detected; root mean square error {fit.rmse:.1f} cases/day"
        )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    spec = _spec(args)
    fit = calibrate(
        spec,
        population=args.population,
        workers=args.workers,
        report=lambda message: print(f"calibrate: {message}", file=sys.stderr, flush=True),
    )
    errors = fit.errors()
    if args.json:
        print(
            json.dumps(
                {
                    "contacts": fit.contacts,
                    "hospitalisation_odds": fit.hospitalisation_odds,
                    "fatality_odds": fit.fatality_odds,
                    "targets": fit.targets,
                    "medians": {k: b.median for k, b in fit.replicate_medians.items()},
                    "relative_errors": errors,
                    "runs": fit.runs,
                },
                indent=2,
            )
        )
        return 0
    assert spec.calibration is not None
    print(
        f"fitted ({fit.runs} runs): contacts after lifting {fit.contacts:.2f} a day, "
        f"hospitalisation odds x{fit.hospitalisation_odds:.2f}, "
        f"fatality odds x{fit.fatality_odds:.2f}"
    )
    for name, target in fit.targets.items():
        band = fit.replicate_medians[name]
        print(
            f"  {name:<18} target {target:>11,.0f}  median of {spec.replicates} runs "
            f"{band.median:>11,.0f}  error {errors[name]:+.2%}"
        )
    print(
        f"to keep them, set in the scenario file: hospitalisation_odds: "
        f"{fit.hospitalisation_odds:.2f}, fatality_odds: {fit.fatality_odds:.2f}, and "
        f"contacts: {fit.contacts:.2f} in phase {spec.calibration.phase} of "
        f"{spec.calibration.scenario}"
    )
    return 0


async def model_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.model_command == "run":
            return await asyncio.to_thread(_run, settings, args)
        series = None
        if args.cases:
            series = read_case_series(args.cases)
        elif args.from_registry:
            series = await _registry_series(settings)
        if series is not None:
            return await asyncio.to_thread(_fit_series, args, series)
        return await asyncio.to_thread(_calibrate, args)
    except ScenarioError as error:
        return command_error(str(error), 2)
