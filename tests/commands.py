"""The `citybots` command in a child process, as the deployment runs it."""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CITYBOTS = (sys.executable, "-m", "citybots.cli")


def run_citybots(
    *args: str,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 180,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`citybots <args>` run to its end, its output and errors kept apart as text; a
    failing command is returned, not raised (tests read its exit code)."""
    return subprocess.run(
        [*CITYBOTS, *args], env=env, cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start_citybots(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`citybots <args>` started and left running, its output and errors in one text pipe."""
    return subprocess.Popen(
        [*CITYBOTS, *args], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
