"""Model runs started from the panel: recorded in PostgreSQL with their progress, run in
worker processes (services.model.ensemble) while the web app keeps answering.

A run's row is its heartbeat: progress updates ``updated_at`` at least every few
seconds, so a run whose process died (a restart, a crash) is seen as interrupted
instead of "running" for ever. One run at a time across all workers, because the model
uses every core.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.audit import record
from services.db import fetch_all, fetch_one, from_row
from services.model.ensemble import ScenarioResult, run_spec, with_overrides
from services.model.scenarios import POPULATION_KINDS, ModelSpec

log = logging.getLogger(__name__)

MAX_POPULATION = 5_000_000
MAX_DAYS = 730
MAX_REPLICATES = 20
STALE_AFTER_SECONDS = 60
HEARTBEAT_SECONDS = 5.0
CURVES = ("infected_now", "hospitalised", "dead")


class ModelRunError(ValueError):
    """A run the panel refuses to start; the message says why."""


@dataclass(frozen=True)
class ModelRun:
    id: int
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    state: str  # running, done, failed (an interrupted run reads as failed)
    request: dict[str, Any]
    done: int
    total: int
    result: dict[str, Any] | None
    error: str | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


_SELECT = (
    "SELECT id, requested_by, created_at, finished_at, done, total, request, {result}, error,"
    " CASE WHEN state = 'running' AND updated_at < now() - make_interval(secs => $1)"
    " THEN 'failed' ELSE state END AS state,"
    " (state = 'running' AND updated_at < now() - make_interval(secs => $1)) AS stale"
    " FROM model_runs"
)


def _run(row: asyncpg.Record) -> ModelRun:
    error = "interrupted: the process running it stopped" if row["stale"] else row["error"]
    return from_row(ModelRun, row, error=error)


def result_document(
    results: list[ScenarioResult], spec: ModelSpec | None = None
) -> dict[str, Any]:
    """What the panel shows: the summary per scenario (per district too, structured),
    the curves for the chart, and the districts' residents at the run's size."""
    residents = {}
    if spec is not None and spec.structure is not None and spec.population_kind == "structured":
        config = spec.structure.population
        sizes = config.scaled_districts(spec.population)
        residents = {d.name: round(float(n)) for d, n in zip(config.districts, sizes, strict=True)}
    return {
        "district_residents": residents,
        "scenarios": [
            {
                **r.as_json(),
                "curves": {
                    name: [[round(float(v), 1) for v in row] for row in r.curves[name]]
                    for name in CURVES
                },
            }
            for r in results
        ],
    }


class ModelRuns:
    def __init__(self, pool: asyncpg.Pool, spec: ModelSpec) -> None:
        self.pool = pool
        self.spec = spec
        self._tasks: set[asyncio.Task[None]] = set()

    def validate(
        self,
        scenarios: list[str],
        population: int,
        days: int,
        replicates: int,
        population_kind: str = "homogeneous",
    ) -> ModelSpec:
        if not scenarios:
            raise ModelRunError("choose at least one scenario")
        known = {s.key for s in self.spec.scenarios}
        unknown = [k for k in scenarios if k not in known]
        if unknown:
            raise ModelRunError("unknown scenario: " + ", ".join(unknown))
        if population_kind not in POPULATION_KINDS:
            raise ModelRunError("the population must be homogeneous or structured")
        if population_kind == "structured" and self.spec.structure is None:
            raise ModelRunError("the scenario file has no structured city")
        needing = [s.name for s in self.spec.scenarios if s.key in scenarios and s.structured_only]
        if population_kind == "homogeneous" and needing:
            raise ModelRunError("these scenarios need the structured city: " + ", ".join(needing))
        if not 1_000 <= population <= MAX_POPULATION:
            raise ModelRunError(f"the population must be between 1,000 and {MAX_POPULATION:,}")
        if not 30 <= days <= MAX_DAYS:
            raise ModelRunError(f"the days must be between 30 and {MAX_DAYS}")
        if not 1 <= replicates <= MAX_REPLICATES:
            raise ModelRunError(f"the replicates must be between 1 and {MAX_REPLICATES}")
        ordered = [s.key for s in self.spec.scenarios if s.key in scenarios]
        return with_overrides(
            self.spec.only(ordered),
            population=population,
            days=days,
            replicates=replicates,
            population_kind=population_kind,
        )

    async def start(
        self,
        *,
        scenarios: list[str],
        population: int,
        days: int,
        replicates: int,
        requested_by: str,
        population_kind: str = "homogeneous",
    ) -> int:
        spec = self.validate(scenarios, population, days, replicates, population_kind)
        request = {
            "scenarios": [s.key for s in spec.scenarios],
            "population": population,
            "days": days,
            "replicates": replicates,
            "start": spec.start.isoformat(),
            "population_kind": population_kind,
        }
        async with self.pool.acquire() as conn, conn.transaction():
            # One run at a time across workers: the lock serialises this check-and-insert.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('model_runs.start'))")
            busy = await conn.fetchval(
                "SELECT id FROM model_runs WHERE state = 'running'"
                " AND updated_at >= now() - make_interval(secs => $1)",
                STALE_AFTER_SECONDS,
            )
            if busy is not None:
                raise ModelRunError(f"run #{busy} is still going; wait for it to finish")
            run_id = await conn.fetchval(
                "INSERT INTO model_runs (requested_by, request, total) VALUES ($1, $2, $3)"
                " RETURNING id",
                requested_by,
                request,
                len(spec.scenarios) * spec.replicates,
            )
            await record(
                conn, actor=requested_by, action="model.run", subject=str(run_id), details=request
            )
        task = asyncio.create_task(self._execute(run_id, spec), name=f"model-run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return int(run_id)

    async def _execute(self, run_id: int, spec: ModelSpec) -> None:
        loop = asyncio.get_running_loop()
        progress: dict[str, int] = {"done": 0}

        def on_progress(done: int, _total: int) -> None:  # called from the runner thread
            loop.call_soon_threadsafe(progress.__setitem__, "done", done)

        async def heartbeat() -> None:
            while True:
                await self.pool.execute(
                    "UPDATE model_runs SET done = $2, updated_at = now() WHERE id = $1",
                    run_id,
                    progress["done"],
                )
                await asyncio.sleep(HEARTBEAT_SECONDS / 5)

        beating = asyncio.create_task(heartbeat())
        try:
            results = await asyncio.to_thread(run_spec, spec, progress=on_progress)
        except Exception as error:
            log.exception("model run %s failed", run_id)
            beating.cancel()
            await self.pool.execute(
                "UPDATE model_runs SET state = 'failed', error = $2, finished_at = now(),"
                " updated_at = now() WHERE id = $1",
                run_id,
                f"{type(error).__name__}: {error}"[:500],
            )
            return
        beating.cancel()
        await self.pool.execute(
            "UPDATE model_runs SET state = 'done', done = total, result = $2,"
            " finished_at = now(), updated_at = now() WHERE id = $1",
            run_id,
            result_document(results, spec),
        )

    async def beds_total(self) -> float | None:
        """The latest hospital beds entered in Daily indicators, if any."""
        value = await self.pool.fetchval(
            "SELECT value FROM daily_indicators WHERE indicator = 'beds_total'"
            " ORDER BY day DESC LIMIT 1"
        )
        return float(value) if value is not None else None

    async def get(self, run_id: int) -> ModelRun | None:
        return await fetch_one(
            self.pool,
            _run,
            _SELECT.format(result="result") + " WHERE id = $2",
            STALE_AFTER_SECONDS,
            run_id,
        )

    async def recent(self, limit: int = 20) -> list[ModelRun]:
        """The latest runs, without their (large) results."""
        return await fetch_all(
            self.pool,
            _run,
            _SELECT.format(result="NULL::jsonb AS result")
            + " ORDER BY created_at DESC, id DESC LIMIT $2",
            STALE_AFTER_SECONDS,
            limit,
        )

    async def wait(self) -> None:
        """For tests and shutdown: until the runs this process started have ended."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
