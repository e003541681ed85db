"""Wall-clock budgets of a solve: a monotonic deadline and per-phase timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Budget:
    """A wall-clock budget measured on a monotonic clock, with phase timings.

    Parameters
    ----------
    seconds
        Length of the budget (s), counted from construction. Negative values count as 0.
    clock
        A monotonic clock in seconds: ``time.perf_counter`` (the clock of
        :func:`solver.engines.greedy.solve_greedy`'s ``deadline``) unless a test injects one.

    Examples
    --------
    >>> budget = Budget(1.0)
    >>> with budget.phase("greedy"):
    ...     pass
    >>> "greedy" in budget.phase_s and budget.remaining() <= 1.0
    True
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.seconds = max(0.0, float(seconds))
        self.started = clock()
        self.deadline = self.started + self.seconds
        self.phase_s: dict[str, float] = {}

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return self._clock() - self.started

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - self._clock())

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._clock() >= self.deadline

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body of a ``with`` block and add the seconds to ``phase_s[name]``.

        The time is recorded even when the body raises.
        """
        start = self._clock()
        try:
            yield
        finally:
            self.phase_s[name] = self.phase_s.get(name, 0.0) + (self._clock() - start)

    def record(self, name: str, seconds: float) -> None:
        """Add ``seconds`` measured elsewhere (e.g. in a worker) to ``phase_s[name]``."""
        self.phase_s[name] = self.phase_s.get(name, 0.0) + float(seconds)

    def __repr__(self) -> str:
        return f"Budget(seconds={self.seconds:.3f}, remaining={self.remaining():.3f})"
