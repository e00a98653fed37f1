"""Every import is audited at both ends: who started it (the panel user, the laboratory,
or the operating-system user and --actor), then its counts, even when it fails or is
stopped; an import killed outright leaves its start row."""

import asyncio
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from citybots.wiring import Services
from services.registry_rows import CsvSource
from tests.conftest import AUDIT_CHAIN_KEY
from tests.factories import make_iin


def _pcr_csv(path: Path, rows: int) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    sampled, result = (
        (now - timedelta(hours=30)).isoformat(),
        (now - timedelta(hours=2)).isoformat(),
    )
    with path.open("w") as out:
        out.write("iin,sampled_at,result_at,result,laboratory\n")
        for _ in range(rows):
            out.write(f"{make_iin()},{sampled},{result},negative,Audit Lab\n")
    return path


async def _rows_of(pool: asyncpg.Pool, *, actor: str) -> list[Any]:
    return await pool.fetch(
        "SELECT actor, action, subject, details FROM audit_log"
        " WHERE actor = $1 AND action LIKE 'import.%' ORDER BY id",
        actor,
    )


async def test_an_import_writes_who_started_it_and_then_its_counts(
    services: Services, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    path = _pcr_csv(tmp_path / "pcr.csv", 3)
    report = await services.importer.import_rows(
        "pcr",
        CsvSource(path).rows(),
        source="file:pcr.csv",
        actor="audit-test-done",
        about={"file": "pcr.csv", "bytes": path.stat().st_size},
    )
    start, end = await _rows_of(pool, actor="audit-test-done")
    assert (start["action"], start["subject"]) == ("import.start", "pcr")
    assert start["details"]["file"] == "pcr.csv"
    assert start["details"]["bytes"] == path.stat().st_size
    assert end["action"] == "import.end"
    assert end["details"]["import"] == start["details"]["import"]
    assert end["details"]["status"] == "done"
    assert (end["details"]["rows"], end["details"]["accepted"]) == (3, report.accepted) == (3, 3)


async def test_a_failed_and_a_cancelled_import_still_write_their_end(
    services: Services, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    good = list(CsvSource(_pcr_csv(tmp_path / "pcr.csv", 2)).rows())

    def broken() -> Iterator[tuple[int, list[str] | None]]:
        yield from good
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="disk"):
        await services.importer.import_rows("pcr", broken(), actor="audit-test-failed")
    start, end = await _rows_of(pool, actor="audit-test-failed")
    assert start["action"] == "import.start"
    assert (end["details"]["status"], end["details"]["error"]) == ("failed", "OSError")
    assert end["details"]["rows"] == 2

    # Stopped part-way (Ctrl-C, SIGTERM, a dropped request): the end row says so.
    def rows_then_stopped() -> Iterator[tuple[int, list[str] | None]]:
        for n in range(5000):
            if n == 2500:
                task.cancel()  # delivered at the import's next pause
            yield good[n % 2]

    task = asyncio.create_task(
        services.importer.import_rows("pcr", rows_then_stopped(), actor="audit-test-stopped")
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    start, end = await _rows_of(pool, actor="audit-test-stopped")
    assert start["action"] == "import.start"
    assert end["details"]["status"] == "cancelled"
    assert 2500 <= end["details"]["rows"] < 5000


async def test_a_killed_cli_import_leaves_its_start_row_naming_the_user_and_actor(
    database_url: str, redis_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    path = _pcr_csv(tmp_path / "big.csv", 200_000)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AUDIT_CHAIN_KEY": AUDIT_CHAIN_KEY,
    }
    user = pwd.getpwuid(os.geteuid()).pw_name
    actor = f"cli:{user} as ticket-4711"
    process = subprocess.Popen(  # noqa: ASYNC220 - killed from this test, not awaited
        [
            sys.executable,
            "-m",
            "citybots.cli",
            "import",
            "pcr",
            str(path),
            "--actor",
            "ticket-4711",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # a bound, not a timing: up to 2 minutes on a loaded machine
            if await _rows_of(pool, actor=actor) or process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    rows = await _rows_of(pool, actor=actor)
    assert [r["action"] for r in rows] == ["import.start"]  # the end never came
    assert rows[0]["details"]["file"] == "big.csv"
    assert rows[0]["details"]["bytes"] == path.stat().st_size
    assert rows[0]["details"]["actor"] == "ticket-4711"


def test_a_command_without_the_deployments_audit_key_is_refused_in_one_line(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """`citybots import` run with a key of its own (no AUDIT_CHAIN_KEY: a random one in
    its DATA_DIR) would chain rows verify then flags: it is refused before the first row."""
    path = _pcr_csv(tmp_path / "pcr.csv", 3)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AUDIT_CHAIN_KEY": "not this deployment's key",
    }
    result = subprocess.run(
        [sys.executable, "-m", "citybots.cli", "import", "pcr", str(path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "citybots: audit_log: this session's audit key is not the one the chain is written"
        " with (AUDIT_CHAIN_KEY): the row is not written; the command stopped there"
    )
