"""Hypothesis profiles for the property tests: ``ci`` (the default: a few hundred
examples per test, derandomised so every run tries the same cases) and ``fuzz`` (10,000
per entry point, random, failures kept in the example database), chosen by
``HYPOTHESIS_PROFILE``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.property import cases

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "fuzz",
    max_examples=10_000,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

if cases.FUZZ:
    # A fuzz example carries a batch of up to 50 inputs (tests/property/cases.py), but
    # hypothesis caps what one example may draw at BUFFER_SIZE (8 KiB of choices): each
    # input would get a fiftieth of a lone input's room, and a batch holding one big input
    # would be an overrun, thrown away (lab pushes: 388 thrown away for 60 run). The
    # batch gets the room of its inputs together. Read at run time by ConjectureData.
    from hypothesis.internal.conjecture import engine

    engine.BUFFER_SIZE = 64 * 8 * 1024


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    cases.test_started()
    outcome = yield
    if outcome.excinfo is not None:
        cases.test_failed()


def pytest_sessionfinish(session: pytest.Session) -> None:
    cases.write_report()
