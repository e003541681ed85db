"""Admission control: per-client rate limits, the in-flight caps (requests, and greedy plans
computed in the server process) and the circuit breaker. Which engine answers a request is
decided in one place, the solver's runtime (:func:`solver.runtime.dispatch.solve`)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from server.config import ServerConfig
from server.live import LiveConfig
from solver.plan import Shed, ShedReason


class RejectedError(Exception):
    """The request is refused (RESOURCE_EXHAUSTED): ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, message: str, retry_after_s: float) -> None:
        self.reason, self.retry_after_s = reason, retry_after_s
        super().__init__(message)


class Admission:
    """Decides, for each request, whether it may run at all.

    Policy:

    * at most ``max_inflight`` requests are worked on at once; past it RESOURCE_EXHAUSTED;
    * a ``client-id`` sending faster than ``rate_limit_per_s`` (token bucket of
      ``rate_limit_burst``) gets RESOURCE_EXHAUSTED;
    * at most ``max_greedy_inflight`` shed requests compute greedy plans in the server process
      at once (they share its GIL: more would only wait); past it RESOURCE_EXHAUSTED
      (:meth:`greedy_slot`, which the runtime calls around such plans);
    * after ``breaker_failures`` worker overruns or crashes within ``breaker_window_s`` the
      breaker opens (:attr:`breaker_open`): the servicer then asks for greedy plans only,
      for ``breaker_cooldown_s``.

    The thresholds are read from the live configuration at every decision, so an admin change
    of ``max_inflight``, the rate limit or the breaker applies at once.
    """

    def __init__(
        self,
        config: ServerConfig | LiveConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live = config if isinstance(config, LiveConfig) else LiveConfig(config)
        self.clock = clock
        self._lock = threading.Lock()
        self._inflight = 0
        self._greedy = 0
        self._failures: deque[float] = deque()
        self._open_until = 0.0
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def config(self) -> ServerConfig:
        """The configuration in force now."""
        return self.live.current

    # ------------------------------------------------------------------ gates
    def enter(self, client_id: str) -> None:
        """Admit a request or raise :class:`RejectedError` (rate limit, in-flight cap)."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            if cfg.rate_limit_per_s > 0:
                tokens, last = self._buckets.get(client_id, (float(cfg.rate_limit_burst), now))
                tokens = min(
                    float(cfg.rate_limit_burst), tokens + (now - last) * cfg.rate_limit_per_s
                )
                if tokens < 1.0:
                    self._buckets[client_id] = (tokens, now)
                    wait = (1.0 - tokens) / cfg.rate_limit_per_s
                    raise RejectedError(
                        "rate_limited",
                        f"client {client_id!r} exceeds {cfg.rate_limit_per_s:g} requests/s",
                        wait,
                    )
                self._buckets[client_id] = (tokens - 1.0, now)
            if self._inflight >= cfg.max_inflight:
                raise RejectedError(
                    "overloaded",
                    f"{self._inflight} requests in flight (max_inflight={cfg.max_inflight})",
                    cfg.retry_after_s,
                )
            self._inflight += 1

    def leave(self) -> None:
        """A request admitted by :meth:`enter` is done."""
        with self._lock:
            self._inflight -= 1

    @contextmanager
    def greedy_slot(self, shed: Shed) -> Iterator[None]:
        """Hold a place among the greedy plans in flight for a request shed for ``shed``, or
        raise :class:`RejectedError` past ``max_greedy_inflight``."""
        cfg = self.config
        with self._lock:
            if self._greedy >= cfg.max_greedy_inflight:
                raise RejectedError(
                    "greedy_overloaded",
                    f"overloaded: no solver worker in time ({shed}) and "
                    f"{self._greedy} greedy plans in flight "
                    f"(max_greedy_inflight={cfg.max_greedy_inflight})",
                    cfg.retry_after_s,
                )
            self._greedy += 1
        try:
            yield
        finally:
            with self._lock:
                self._greedy -= 1

    @property
    def greedy_inflight(self) -> int:
        """Shed requests computing their greedy plan."""
        return self._greedy

    @property
    def inflight(self) -> int:
        """Requests being worked on."""
        return self._inflight

    # ---------------------------------------------------------------- breaker
    def record_failure(self) -> None:
        """A worker overran its budget or crashed (may open the breaker)."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            self._failures.append(now)
            while self._failures and self._failures[0] < now - cfg.breaker_window_s:
                self._failures.popleft()
            if len(self._failures) >= cfg.breaker_failures:
                self._open_until = now + cfg.breaker_cooldown_s
                self._failures.clear()

    @property
    def breaker_open(self) -> bool:
        """Whether every request currently goes to greedy."""
        return self.clock() < self._open_until

    def breaker_shed(self) -> Shed | None:
        """The shed decision while the breaker is open (``None`` when closed)."""
        now = self.clock()
        if now >= self._open_until:
            return None
        return Shed(
            ShedReason.BREAKER_OPEN,
            f"circuit breaker open after {self.config.breaker_failures} worker failures; "
            f"greedy for {self._open_until - now:.0f} s more",
        )
