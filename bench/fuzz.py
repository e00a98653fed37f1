"""The fuzz run: tests/property with the ``fuzz`` hypothesis profile (10,000 cases per
entry point, random, failures kept in .hypothesis/), then a table of the cases run and
the failures per entry point.

    .venv/bin/python bench/fuzz.py [--scale 1.0] [--bots-scale 0.1] [-k EXPR] [--json]

``--scale`` multiplies every fuzz figure (0.1 for a quick run; a test never runs fewer
examples than in the ci profile); ``--bots-scale`` does so for the bots' end-to-end test
alone (``FUZZ_BOT_EXAMPLES`` in the environment sets its count directly).

A case is one input fed to an entry point and checked. The expensive entry points (the
bots end to end, the HTTP API and panel forms, CSV imports) take a batch of inputs per
hypothesis example, sent at once and each checked (tests/property/cases.py), so a case
costs a few milliseconds of the server's work instead of a round trip's wait.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--bots-scale", type=float, default=None)
    parser.add_argument("-k", default="", help="pytest -k expression, to fuzz a subset")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "fuzz.json"
        env = dict(os.environ)
        env.update(
            {
                "HYPOTHESIS_PROFILE": "fuzz",
                "FUZZ_EXAMPLES_SCALE": str(args.scale),
                "CITYBOTS_FUZZ_REPORT": str(report),
            }
        )
        if args.bots_scale is not None:
            env["FUZZ_BOT_EXAMPLES"] = str(int(10_000 * args.bots_scale))
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--timeout=0",
            "--hypothesis-show-statistics",
            "tests/property",
        ]
        if args.k:
            command += ["-k", args.k]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env, check=False)
        seconds = time.perf_counter() - started
        counts = json.loads(report.read_text()) if report.exists() else {}
    if args.json:
        print(json.dumps({"nproc": os.cpu_count(), "seconds": seconds, "entry_points": counts}))
        return result.returncode
    width = max((len(name) for name in counts), default=20)
    print(f"\nfuzz run on {os.cpu_count()} cores (nproc), {seconds / 60:.1f} minutes")
    print(f"{'entry point':<{width}}  {'cases':>8}  {'failures':>8}")
    for name, figures in counts.items():
        print(f"{name:<{width}}  {figures['cases']:>8,}  {figures['failures']:>8}")
    total = sum(f["cases"] for f in counts.values())
    failed = sum(f["failures"] for f in counts.values())
    print(f"{'total':<{width}}  {total:>8,}  {failed:>8}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
