"""Suite-wide set-up: compile the solver kernel before any test times a solve."""

from __future__ import annotations

import pytest

from solver.kernel import warm_up


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernel() -> None:
    """numba compiles on first use (or loads its cache): do it once, before the tests that
    give solves a deadline, and write the cache the worker processes load."""
    warm_up()
