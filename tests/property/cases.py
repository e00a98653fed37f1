"""Counts of the property and fuzz cases run, per entry point, for bench/fuzz.py.

A case is one input fed to an entry point and checked for its clear answer. Cheap entry
points take one input per hypothesis example; expensive ones (the bots end to end, the
HTTP entry points, CSV imports) take a batch per example, fed concurrently and each
checked, so that their per-example costs (a round trip, a log-in window, a file) are
paid once per batch. Tests call :func:`tick` with their entry point's name and the
number of inputs checked; failures are charged to the entry points a failing test
entered. With ``CITYBOTS_FUZZ_REPORT`` set, the counts are written there as JSON when
the session ends."""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import hypothesis
from hypothesis import strategies as st

CASES: Counter[str] = Counter()
FAILURES: Counter[str] = Counter()
_current: set[str] = set()

FUZZ = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "fuzz"

T = TypeVar("T")


def enter(entry_point: str) -> None:
    """A test starts feeding this entry point (a failure before its first tick is its)."""
    _current.add(entry_point)


def tick(entry_point: str, count: int = 1) -> None:
    """``count`` inputs were fed to the entry point and their answers checked."""
    CASES[entry_point] += count
    _current.add(entry_point)


def _fuzz_target(fuzz: int, scaled: bool) -> float:
    scale = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1")) if scaled else 1.0
    return fuzz * scale


def examples(
    ci: int, fuzz: int = 10_000, *, batch: int = 1, scaled: bool = True
) -> hypothesis.settings:
    """Settings for one test: ``ci`` examples in the ci profile; in the fuzz run enough
    examples of ``batch`` inputs each for ``fuzz`` inputs (``FUZZ_EXAMPLES_SCALE``
    scales the fuzz figure down when time is short)."""
    if not FUZZ:
        return hypothesis.settings(max_examples=ci)
    return hypothesis.settings(max_examples=max(ci, math.ceil(_fuzz_target(fuzz, scaled) / batch)))


def batches(inputs: st.SearchStrategy[T], *, fuzz: int, ci: int = 4) -> st.SearchStrategy[list[T]]:
    """A batch of inputs for one example: exactly ``fuzz`` of them in the fuzz run (so
    that :func:`examples` with the same ``batch`` reaches its figure), one to ``ci`` in
    the ci profile (small, and shrinking to a single input)."""
    if FUZZ:
        return st.lists(inputs, min_size=fuzz, max_size=fuzz)
    return st.lists(inputs, min_size=1, max_size=ci)


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


async def check_all(inputs: Sequence[T], check: Callable[[T], Awaitable[object]]) -> None:
    """Check every input of a batch at once; a failure is raised (after all are done)
    with its input and how many others failed attached."""
    results = await asyncio.gather(*(check(i) for i in inputs), return_exceptions=True)
    failed = [(i, r) for i, r in zip(inputs, results, strict=True) if isinstance(r, BaseException)]
    if failed:
        first_input, error = failed[0]
        error.add_note(f"input: {first_input!r}")
        error.add_note(f"{len(failed)} of the batch's {len(inputs)} inputs failed")
        raise error


async def feed(
    entry_point: str, inputs: Sequence[T], check: Callable[[T], Awaitable[object]]
) -> None:
    """Feed every input of a batch to the entry point at once, each checked by ``check``;
    counted when all passed."""
    enter(entry_point)
    await check_all(inputs, check)
    tick(entry_point, len(inputs))
