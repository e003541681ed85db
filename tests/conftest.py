"""Suite-wide set-up: compile the solver kernel before any test times a solve."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from solver.engines.kernel import warm_up

#: Loggers of the service whose INTERNAL answers and errors fail the test that caused them.
WATCHED_LOGGERS = ("campus_dispatch.access", "campus_dispatch.server", "campus_dispatch.admin")


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernel() -> None:
    """numba compiles on first use (or loads its cache): do it once, before the tests that
    give solves a deadline, and write the cache the worker processes load."""
    warm_up()


class _InternalWatch(logging.Handler):
    """Collects what the in-process servers of a test answered INTERNAL (their access log
    lines) and every error they logged."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR or '"status": "INTERNAL"' in message:
            self.seen.append(f"{record.name} {record.levelname}: {message[:500]}")


@pytest.fixture(autouse=True)
def _no_internal(request: pytest.FixtureRequest) -> Iterator[None]:
    """An INTERNAL answer is a bug: any test whose servers answered one, or logged an error,
    fails, unless it is marked ``internal_expected`` (it provokes one on purpose)."""
    watch = _InternalWatch()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(watch)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(watch)
            logger.setLevel(level)
    if watch.seen and request.node.get_closest_marker("internal_expected") is None:
        pytest.fail("the server answered INTERNAL or logged an error:\n" + "\n".join(watch.seen))
