"""Two workers with schedulers: each tick of a job runs in exactly one of them, and when
one is killed in the middle of a run, its run is rolled back and the other worker takes
every following tick by itself."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import asyncpg

WORKER = Path(__file__).with_name("job_worker.py")


async def test_each_tick_runs_once_and_a_killed_worker_loses_only_its_own_run(
    pool: asyncpg.Pool, database_url: str, redis_url: str
) -> None:
    table = f"job_ticks_{secrets.token_hex(4)}"
    await pool.execute(f"CREATE TABLE {table} (tick bigint NOT NULL, pid int NOT NULL)")
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            database_url,
            redis_url,
            table,
            "8",
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:

        async def first_run(worker: asyncio.subprocess.Process) -> tuple[int, int]:
            assert worker.stdout is not None
            line = await worker.stdout.readline()
            return worker.pid, int(line.split()[1])

        # Kill whichever worker first reports it is inside a run (before it commits).
        done, pending = await asyncio.wait(
            [asyncio.create_task(first_run(w)) for w in workers],
            timeout=30,
            return_when=asyncio.FIRST_COMPLETED,
        )
        victim_pid, killed_tick = next(iter(done)).result()
        victim = next(w for w in workers if w.pid == victim_pid)
        victim.kill()
        for task in pending:
            task.cancel()
        survivor = next(w for w in workers if w is not victim)
        assert survivor.stdout is not None
        await asyncio.wait_for(survivor.stdout.read(), timeout=60)
        assert await asyncio.wait_for(survivor.wait(), timeout=60) == 0
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()
    rows = await pool.fetch(f"SELECT tick, pid FROM {table} ORDER BY tick")  # noqa: S608
    await pool.execute(f"DROP TABLE {table}")
    ticks = [r["tick"] for r in rows]
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    assert killed_tick not in ticks  # killed mid-run: its transaction was rolled back
    after = [r for r in rows if r["tick"] > killed_tick]
    assert after, "nobody ran the job after the kill"
    assert {r["pid"] for r in after} == {survivor.pid}
    assert [r["tick"] for r in after] == list(range(killed_tick + 1, killed_tick + 1 + len(after)))
