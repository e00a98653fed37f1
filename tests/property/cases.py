"""Counts of the property and fuzz cases run, per entry point, for bench/fuzz.py.

Each example calls :func:`tick` with its entry point's name; failures are charged to the
entry points a failing test ticked. With ``CITYBOTS_FUZZ_REPORT`` set, the counts are
written there as JSON when the session ends."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import hypothesis

CASES: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()
_current: set[str] = set()

FUZZ = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "fuzz"


def tick(entry_point: str) -> None:
    CASES[entry_point] += 1
    _current.add(entry_point)


def examples(ci: int, fuzz: int = 10_000, *, scaled: bool = True) -> hypothesis.settings:
    """Settings for one test: ``ci`` examples in the ci profile, ``fuzz`` in the fuzz run
    (``FUZZ_EXAMPLES_SCALE`` scales the fuzz figure down when time is short)."""
    if not FUZZ:
        return hypothesis.settings(max_examples=ci)
    scale = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1")) if scaled else 1.0
    return hypothesis.settings(max_examples=max(ci, int(fuzz * scale)))


def test_started() -> None:
    _current.clear()


def test_failed() -> None:
    for entry_point in _current or {"(before any case)"}:
        FAILURES[entry_point] += 1


def write_report() -> None:
    path = os.environ.get("CITYBOTS_FUZZ_REPORT")
    if path:
        report = {
            name: {"cases": CASES[name], "failures": FAILURES[name]}
            for name in sorted(set(CASES) | set(FAILURES))
        }
        Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False))
