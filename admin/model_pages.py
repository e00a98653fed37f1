"""The Model page: choose scenarios, run them in worker processes, watch the progress,
see the charts and compare the scenarios side by side."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin.panel import add_route, path_id, render, session_of
from flows.rendering import curves_chart
from services.model.runs import ModelRunError, ModelRuns

MODEL_RUNS: web.AppKey[ModelRuns] = web.AppKey("model_runs")
CHARTS: web.AppKey[dict[int, bytes]] = web.AppKey("model_charts")
ROLES = frozenset({"analyst", "epidemiologist"})
# A schematic map: Almaty's districts as tiles in their rough places (north up).
# Districts of another city's file are laid out in rows after them.
DISTRICT_TILES = {
    "Alatau": (0, 0),
    "Zhetysu": (1, 0),
    "Turksib": (2, 0),
    "Auezov": (0, 1),
    "Almaly": (1, 1),
    "Medeu": (2, 1),
    "Nauryzbay": (0, 2),
    "Bostandyk": (1, 2),
}
TILE = 120
PANELS = [
    ("infected_now", "Infected at once"),
    ("hospitalised", "In hospital"),
    ("dead", "Deaths, total"),
]


def _form_defaults(runs: ModelRuns) -> dict[str, object]:
    spec = runs.spec
    return {
        "population": spec.population,
        "days": spec.days,
        "replicates": min(spec.replicates, 5),
        "chosen": [s.key for s in spec.scenarios if not s.structured_only],
        "population_kind": spec.population_kind,
    }


def _shade(share: float) -> str:
    """From pale (no load) to dark red (the run's highest load)."""
    low, high = (255, 245, 230), (179, 0, 0)
    rgb = [round(a + (b - a) * min(max(share, 0.0), 1.0)) for a, b in zip(low, high, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def district_maps(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per scenario: the tiles of a district map of peak load (peak in hospital per
    100,000 residents, median), shaded on one scale for the whole run."""
    residents = result.get("district_residents") or {}
    loads: dict[str, dict[str, tuple[float, float]]] = {}
    for scenario in result["scenarios"]:
        districts = scenario.get("districts")
        if not districts:
            continue
        loads[scenario["key"]] = {
            name: (
                bands["peak_hospitalised"]["median"],
                bands["peak_hospitalised"]["median"] * 100_000 / max(residents.get(name, 0), 1),
            )
            for name, bands in districts.items()
        }
    top = max((per for s in loads.values() for _, per in s.values()), default=0.0) or 1.0
    maps = {}
    for key, by_name in loads.items():
        spare = 0
        tiles = []
        for name, (peak, per) in by_name.items():
            if name in DISTRICT_TILES:
                col, row = DISTRICT_TILES[name]
            else:
                col, row = spare % 3, 3 + spare // 3
                spare += 1
            tiles.append(
                {
                    "name": name,
                    "x": col * TILE,
                    "y": row * TILE,
                    "peak": peak,
                    "per_100k": per,
                    "fill": _shade(per / top),
                    "dark": per / top > 0.55,
                }
            )
        maps[key] = tiles
    return maps


def schools_comparison(result: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Schools open against schools closed, when the run has both."""
    by_key = {s["key"]: s for s in result["scenarios"]}
    if "schools-open" not in by_key or "schools-closed" not in by_key:
        return None
    opened, closed = by_key["schools-open"], by_key["schools-closed"]
    rows = []
    for label, key in (
        ("Infected, total", "infected"),
        ("In hospital, peak", "peak_hospitalised"),
        ("Deaths", "deaths"),
    ):
        a, b = opened[key]["median"], closed[key]["median"]
        rows.append(
            {
                "label": label,
                "open": opened[key],
                "closed": closed[key],
                "change": (b - a) / a if a else None,
            }
        )
    return rows


async def model_page(request: web.Request) -> web.Response:
    runs = request.app[MODEL_RUNS]
    return render(
        request,
        "panel/model.html",
        spec=runs.spec,
        form=_form_defaults(runs),
        recent=await runs.recent(),
        error="",
    )


def _int(value: object, name: str) -> int:
    try:
        return int(str(value).replace(",", "").replace(" ", ""))
    except ValueError:
        raise ModelRunError(f"the {name} must be a whole number") from None


async def start_run(request: web.Request) -> web.StreamResponse:
    runs = request.app[MODEL_RUNS]
    form = await request.post()
    chosen = [str(v) for v in form.getall("scenario", [])]
    if form.get("compare") == "schools":
        chosen = ["schools-open", "schools-closed"]
    values = {"population": form.get("population"), "days": form.get("days")}
    values["replicates"] = form.get("replicates")
    kind = str(form.get("population_kind") or "homogeneous")
    if form.get("compare") == "schools":
        kind = "structured"
    try:
        run_id = await runs.start(
            scenarios=chosen,
            population=_int(values["population"], "population"),
            days=_int(values["days"], "days"),
            replicates=_int(values["replicates"], "replicates"),
            requested_by=session_of(request).user.username,
            population_kind=kind,
        )
    except ModelRunError as error:
        return render(
            request,
            "panel/model.html",
            status=400,
            spec=runs.spec,
            form={**values, "chosen": chosen, "population_kind": kind},
            recent=await runs.recent(),
            error=str(error).capitalize() + ".",
        )
    raise web.HTTPSeeOther(f"/model/runs/{run_id}")


def _run_or_404(request: web.Request) -> tuple[ModelRuns, int]:
    return request.app[MODEL_RUNS], path_id(request, "run_id", "run")


async def run_page(request: web.Request) -> web.Response:
    runs, run_id = _run_or_404(request)
    run = await runs.get(run_id)
    if run is None:
        raise web.HTTPNotFound(text="no such run")
    maps = district_maps(run.result) if run.result else {}
    return render(
        request,
        "panel/model_run.html",
        run=run,
        spec=runs.spec,
        maps=maps,
        tile=TILE,
        map_height=max((t["y"] for m in maps.values() for t in m), default=0) + TILE,
        schools=schools_comparison(run.result) if run.result else None,
        beds=await runs.beds_total() if maps else None,
    )


async def run_progress(request: web.Request) -> web.Response:
    runs, run_id = _run_or_404(request)
    run = await runs.get(run_id)
    if run is None:
        raise web.HTTPNotFound(text="no such run")
    return web.json_response(
        {"state": run.state, "done": run.done, "total": run.total, "error": run.error}
    )


async def run_chart(request: web.Request) -> web.Response:
    runs, run_id = _run_or_404(request)
    cache = request.app[CHARTS]
    if run_id not in cache:
        run = await runs.get(run_id)
        if run is None or run.result is None:
            raise web.HTTPNotFound(text="no chart yet")
        scenarios = run.result["scenarios"]
        names = {s.key: s.name for s in runs.spec.scenarios}
        title = (
            f"Run #{run.id}: {run.request['population']:,} people, median and 90% band "
            f"of {run.request['replicates']} run(s) per scenario"
        )
        start = runs.spec.start
        cache[run_id] = curves_chart(
            title,
            start,
            PANELS,
            [(names.get(s["key"], s["key"]), s["curves"]) for s in scenarios],
        )
    return web.Response(body=cache[run_id], content_type="image/png")


def setup_model_pages(app: web.Application, runs: ModelRuns) -> None:
    app[MODEL_RUNS] = runs
    app[CHARTS] = {}
    add_route(app, "GET", "/model", model_page, roles=ROLES, title="Model")
    add_route(app, "POST", "/model/runs", start_run, roles=ROLES)
    add_route(app, "GET", "/model/runs/{run_id}", run_page, roles=ROLES)
    add_route(app, "GET", "/model/runs/{run_id}/progress", run_progress, roles=ROLES)
    add_route(app, "GET", "/model/runs/{run_id}/chart.png", run_chart, roles=ROLES)
