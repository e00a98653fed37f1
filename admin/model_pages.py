"""The Model page: choose scenarios, run them in worker processes, watch the progress,
see the charts and compare the scenarios side by side."""

from __future__ import annotations

from aiohttp import web

from admin.panel import add_route, path_id, render, session_of
from presentation.rendering import curves_chart
from services.model.runs import ModelRunError, ModelRuns

MODEL_RUNS: web.AppKey[ModelRuns] = web.AppKey("model_runs")
CHARTS: web.AppKey[dict[int, bytes]] = web.AppKey("model_charts")
ROLES = frozenset({"analyst", "epidemiologist"})
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
        "chosen": [s.key for s in spec.scenarios],
    }


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
    values = {"population": form.get("population"), "days": form.get("days")}
    values["replicates"] = form.get("replicates")
    try:
        run_id = await runs.start(
            scenarios=chosen,
            population=_int(values["population"], "population"),
            days=_int(values["days"], "days"),
            replicates=_int(values["replicates"], "replicates"),
            requested_by=session_of(request).user.username,
        )
    except ModelRunError as error:
        return render(
            request,
            "panel/model.html",
            status=400,
            spec=runs.spec,
            form={**values, "chosen": chosen},
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
    return render(request, "panel/model_run.html", run=run, spec=runs.spec)


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
