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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    cases.test_started()
    outcome = yield
    if outcome.excinfo is not None:
        cases.test_failed()


def pytest_sessionfinish(session: pytest.Session) -> None:
    cases.write_report()
