"""Admission control: in-flight cap, per-client rate limits, the circuit breaker, and the choice
between an OR-Tools solve and shedding to the greedy plan under load."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from server.config import ServerConfig
from server.live import LiveConfig


class RejectedError(Exception):
    """The request is refused (RESOURCE_EXHAUSTED): ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, message: str, retry_after_s: float) -> None:
        self.reason, self.retry_after_s = reason, retry_after_s
        super().__init__(message)


@dataclass(eq=False)
class Slot:
    """A reserved solver worker (or a place in its queue) until :meth:`Admission.release`."""

    finish_by: float
    queued: bool


class Admission:
    """Decides, for each request, whether it may run at all and on which engine.

    Policy:

    * at most ``max_inflight`` requests are worked on at once; past it RESOURCE_EXHAUSTED;
    * a ``client-id`` sending faster than ``rate_limit_per_s`` (token bucket of
      ``rate_limit_burst``) gets RESOURCE_EXHAUSTED;
    * a request gets an OR-Tools worker if one is free, or if the earliest busy worker frees up
      soon enough that its solve still fits its budget (it then queues); otherwise, with
      ``shedding`` on, it is answered at once with the greedy plan and a shed reason;
    * at most ``max_greedy_inflight`` shed requests compute their greedy plan at once (they
      share the server process's GIL: more would only wait); past it RESOURCE_EXHAUSTED;
    * after ``breaker_failures`` worker overruns or crashes within ``breaker_window_s`` the
      breaker opens: every request goes to greedy for ``breaker_cooldown_s``.

    The thresholds are read from the live configuration at every decision, so an admin change
    of ``max_inflight``, the rate limit, ``shedding`` or the breaker applies at once.
    """

    def __init__(
        self,
        config: ServerConfig | LiveConfig,
        workers: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live = config if isinstance(config, LiveConfig) else LiveConfig(config)
        self.workers = workers
        self.clock = clock
        self._lock = threading.Lock()
        self._inflight = 0
        self._greedy = 0
        self._slots: list[Slot] = []
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

    def enter_greedy(self, shed_reason: str) -> None:
        """Admit a shed request to compute its greedy plan, or raise :class:`RejectedError`."""
        cfg = self.config
        with self._lock:
            if self._greedy >= cfg.max_greedy_inflight:
                raise RejectedError(
                    "greedy_overloaded",
                    f"overloaded: no solver worker in time ({shed_reason}) and "
                    f"{self._greedy} greedy plans in flight "
                    f"(max_greedy_inflight={cfg.max_greedy_inflight})",
                    cfg.retry_after_s,
                )
            self._greedy += 1

    def leave_greedy(self) -> None:
        """A shed request admitted by :meth:`enter_greedy` has its plan."""
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

    @property
    def queued(self) -> int:
        """Searches waiting for a worker: the reservations beyond one per worker."""
        with self._lock:
            return max(0, len(self._slots) - self.workers)

    # ----------------------------------------------------------------- engine
    def choose(self, budget_s: float, min_search_s: float) -> tuple[Slot | None, str]:
        """A worker slot for an OR-Tools solve of ``budget_s``, or ``(None, shed_reason)``."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            if now < self._open_until:
                return None, (
                    f"circuit breaker open after {cfg.breaker_failures} worker "
                    f"failures; greedy for {self._open_until - now:.0f} s more"
                )
            if len(self._slots) < self.workers:
                slot = Slot(now + budget_s, queued=False)
                self._slots.append(slot)
                return slot, ""
            # the k-th queued request gets the k-th earliest worker to free up
            finishes = sorted(s.finish_by for s in self._slots)
            start = finishes[len(self._slots) - self.workers]
            wait = max(0.0, start - now)
            if not cfg.shedding or wait + min_search_s <= budget_s:
                slot = Slot(start + (budget_s - wait), queued=True)
                self._slots.append(slot)
                return slot, ""
            return None, (
                f"all {self.workers} solver workers busy: expected wait {wait * 1000:.0f} ms "
                f"leaves no search in a {budget_s * 1000:.0f} ms budget"
            )

    def release(self, slot: Slot) -> None:
        """The OR-Tools solve of ``slot`` is over."""
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)

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
