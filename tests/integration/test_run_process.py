"""`citybots run` as a person starts it: a fresh data folder, no URLs, then Ctrl-C."""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from citybots.embedded import free_port
from citybots.settings import BOT_NAMES
from tests.commands import run_citybots, start_citybots


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATA_DIR": str(data_dir), "ADMIN_PORT": str(port)})
    return start_citybots("run", env=env, cwd=data_dir)


def _read_until(process: subprocess.Popen[str], marker: str, seconds: float = 60) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in output:\n{''.join(seen)}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_run_starts_everything_prints_a_summary_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    process = _start(tmp_path, port)
    try:
        summary = _read_until(process, "Stop with Ctrl-C")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert json.load(r)["status"] == "ok"
    finally:
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "citybots: stopped" in output
    for name in BOT_NAMES:
        assert f"@citybots_{name}_bot" in summary
    assert "PostgreSQL  embedded" in summary
    assert f"http://127.0.0.1:{port}/sandbox/" in summary
    assert not (tmp_path / "postgres" / "pgdata" / "postmaster.pid").exists()
    assert not (tmp_path / "redis" / "redis.pid").exists()
    assert (tmp_path / "postgres" / "pgdata" / "PG_VERSION").exists()


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        health = json.load(r)
    return bool(health["status"] == "ok" and health["postgres"]["ok"] and health["redis"]["ok"])


def test_a_second_run_on_the_same_data_dir_is_refused_and_stops_nothing(tmp_path: Path) -> None:
    port = free_port()
    first = _start(tmp_path, port)
    try:
        _read_until(first, "Stop with Ctrl-C", seconds=180)
        second = _start(tmp_path, free_port())
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 1, output
        assert f"already running (pid {first.pid})" in output
        # A one-off command uses the running servers and stops neither.
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        status = run_citybots(
            "db", "status", env={**env, "DATA_DIR": str(tmp_path)}, cwd=tmp_path, timeout=120
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert _healthy(port)
        assert (tmp_path / "postgres" / "pgdata" / "postmaster.pid").exists()
        assert (tmp_path / "redis" / "redis.pid").exists()
    finally:
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=60)
    assert first.returncode == 0, output
