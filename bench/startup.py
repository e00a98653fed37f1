"""`citybots run` from nothing to /healthz green: a first start (initdb included) and a
warm start, with the embedded PostgreSQL and Redis (no DATABASE_URL / REDIS_URL).

    .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from citybots.embedded import free_port


def time_to_green(data_dir: Path) -> tuple[float, float]:
    """Seconds from launching the process to /healthz 200, and to a clean stop."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATA_DIR": str(data_dir), "ADMIN_PORT": str(port), "LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "citybots.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"citybots run exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200 and json.load(r)["status"] == "ok":
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        green = time.perf_counter() - started
    finally:
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return green, time.perf_counter() - stopping


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    first, warm, stops = [], [], []
    for _ in range(args.runs):
        data_dir = Path(tempfile.mkdtemp(prefix="citybots-bench-"))
        try:
            green, stop = time_to_green(data_dir)
            first.append(green)
            stops.append(stop)
            green, stop = time_to_green(data_dir)
            warm.append(green)
            stops.append(stop)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"cores: {os.cpu_count()}")
    print(f"runs: {args.runs}")
    print(
        f"first start to /healthz green (initdb included): median {statistics.median(first):.2f} s"
        f"  (min {min(first):.2f}, max {max(first):.2f})"
    )
    print(
        f"warm start to /healthz green:                    median {statistics.median(warm):.2f} s"
        f"  (min {min(warm):.2f}, max {max(warm):.2f})"
    )
    print(
        f"SIGTERM to clean stop:                           median {statistics.median(stops):.2f} s"
    )


if __name__ == "__main__":
    main()
