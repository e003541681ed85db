"""The latency and error SLO of a load run: how each call is counted (answered by the search, shed
to greedy, rejected with RESOURCE_EXHAUSTED, failed), run statistics, and the pass/fail check."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb

#: Report names of the Solve outcomes (one row each in locust's statistics).
SOLVE = "Solve"
SHED = "Solve (shed: greedy)"
REJECTED = "Solve (shed: rejected)"
ERROR_PREFIX = "Solve (error: "


def label_call(method: str, response: Message | None, error: grpc.RpcError | None) -> str:
    """The report name of a finished call (a :data:`load.grpc_client.Labeller`).

    Solve calls are split by outcome: answered by the search (``Solve``), answered at once with
    the greedy plan because the server shed the search (engine GREEDY with a shed reason:
    ``Solve (shed: greedy)``), refused with RESOURCE_EXHAUSTED (``Solve (shed: rejected)``),
    or failed with another status (``Solve (error: DEADLINE_EXCEEDED)``). A GREEDY answer
    without a shed reason (nothing left to improve, or greedy was best) is a normal answer.
    Other methods keep their name, with the status code on failure.
    """
    if error is not None:
        code = error.code().name if callable(getattr(error, "code", None)) else "UNKNOWN"
        if method == SOLVE and code == "RESOURCE_EXHAUSTED":
            return REJECTED
        return f"{method} (error: {code})"
    if (
        method == SOLVE
        and isinstance(response, pb.SolveResponse)
        and response.stats.engine == pb.GREEDY
        and response.stats.shed_reason
    ):
        return SHED
    return method


def percentile_ms(histogram: Mapping[float, int], q: float) -> float:
    """The ``q``-th percentile (0-100) of a latency histogram {milliseconds: count}: the
    smallest latency with at least q % of the calls at or below it (nan when empty)."""
    if not 0 <= q <= 100:
        raise ValueError(f"q={q}: must be in [0, 100]")
    total = sum(histogram.values())
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


@dataclass(frozen=True)
class RunStats:
    """What a load run did, by outcome (built from locust's statistics or by hand).

    Attributes
    ----------
    answered
        Solve calls answered by the search.
    shed
        Solve calls answered with the greedy plan because the server shed the search.
    rejected
        Solve calls refused with RESOURCE_EXHAUSTED (overload or rate limit).
    errors
        Failed calls by status code (everything else that is not OK).
    latency_ms
        Latency histogram {ms: calls} of every call except the rejected ones.
    duration_s
        Wall time the calls were made in (throughput = calls / duration).
    """

    answered: int
    shed: int = 0
    rejected: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    latency_ms: Mapping[float, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("answered", "shed", "rejected"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        for code, count in self.errors.items():
            if count < 0:
                raise ValueError(f"errors[{code!r}]={count}: must be >= 0")
        if self.duration_s < 0 or not math.isfinite(self.duration_s):
            raise ValueError(f"duration_s={self.duration_s}: must be a finite number >= 0")

    @property
    def failed(self) -> int:
        """Calls that failed (not counting RESOURCE_EXHAUSTED)."""
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        """Every call made."""
        return self.answered + self.shed + self.rejected + self.failed

    @property
    def error_ratio(self) -> float:
        """Failed calls over all calls (RESOURCE_EXHAUSTED is shedding, not an error)."""
        return self.failed / self.requests if self.requests else 0.0

    @property
    def shed_ratio(self) -> float:
        """Calls answered with greedy because of load, over all calls."""
        return self.shed / self.requests if self.requests else 0.0

    @property
    def rejected_ratio(self) -> float:
        """Calls refused with RESOURCE_EXHAUSTED, over all calls."""
        return self.rejected / self.requests if self.requests else 0.0

    @property
    def throughput(self) -> float:
        """Answers (search or greedy) per second."""
        return (self.answered + self.shed) / self.duration_s if self.duration_s > 0 else 0.0

    def p(self, q: float) -> float:
        """The ``q``-th latency percentile in ms (rejected calls excluded)."""
        return percentile_ms(self.latency_ms, q)

    def summary(self) -> str:
        """One line: calls by outcome, throughput and latency."""
        errors = ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items())) or "none"
        return (
            f"{self.requests} calls in {self.duration_s:.0f} s: {self.answered} searched, "
            f"{self.shed} shed to greedy ({self.shed_ratio:.1%}), {self.rejected} rejected "
            f"RESOURCE_EXHAUSTED ({self.rejected_ratio:.1%}), errors: {errors}; "
            f"{self.throughput:.1f} answers/s, p50 {self.p(50):.0f} ms, p99 {self.p(99):.0f} ms"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "requests": self.requests,
            "answered": self.answered,
            "shed": self.shed,
            "rejected": self.rejected,
            "errors": dict(self.errors),
            "duration_s": round(self.duration_s, 3),
            "throughput_per_s": round(self.throughput, 3),
            "shed_ratio": round(self.shed_ratio, 4),
            "rejected_ratio": round(self.rejected_ratio, 4),
            "error_ratio": round(self.error_ratio, 4),
            "p50_ms": None if math.isnan(self.p(50)) else self.p(50),
            "p99_ms": None if math.isnan(self.p(99)) else self.p(99),
        }


@dataclass(frozen=True)
class Slo:
    """The service level a run must keep.

    Attributes
    ----------
    budget_ms
        The time budget sent with each request.
    margin_ms
        How far past the budget p99 may go (transport, conversion, queueing).
    max_error_ratio
        Largest share of failed calls (RESOURCE_EXHAUSTED not counted).
    percentile
        The latency percentile held to ``budget_ms + margin_ms``.
    """

    budget_ms: float
    margin_ms: float = 50.0
    max_error_ratio: float = 0.01
    percentile: float = 99.0

    def __post_init__(self) -> None:
        for name in ("budget_ms", "margin_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value}: must be a finite number >= 0")
        if not 0 <= self.max_error_ratio <= 1:
            raise ValueError(f"max_error_ratio={self.max_error_ratio}: must be in [0, 1]")
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile={self.percentile}: must be in (0, 100]")

    @property
    def latency_limit_ms(self) -> float:
        """The latency the percentile must stay under."""
        return self.budget_ms + self.margin_ms


@dataclass(frozen=True)
class SloVerdict:
    """The result of :func:`check_slo`: ``ok``, and why not."""

    slo: Slo
    stats: RunStats
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the run kept the SLO."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when the run kept the SLO, 1 when not."""
        return 0 if self.ok else 1

    def summary(self) -> str:
        """The verdict, the figures it was decided on, and the shedding next to them."""
        s, slo = self.stats, self.slo
        head = "SLO PASS" if self.ok else "SLO FAIL: " + "; ".join(self.failures)
        q = f"p{slo.percentile:g}"
        return "\n".join(
            [
                head,
                f"  {q} {s.p(slo.percentile):.0f} ms (limit {slo.latency_limit_ms:.0f} ms ="
                f" budget {slo.budget_ms:.0f} + margin {slo.margin_ms:.0f});"
                f" errors {s.error_ratio:.2%} (limit {slo.max_error_ratio:.2%})",
                f"  shed: {s.shed} answered greedy ({s.shed_ratio:.1%}), {s.rejected} rejected"
                f" RESOURCE_EXHAUSTED ({s.rejected_ratio:.1%}); not errors, reported apart",
                "  " + s.summary(),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready verdict."""
        return {
            "ok": self.ok,
            "failures": list(self.failures),
            "slo": asdict(self.slo),
            "stats": self.stats.to_dict(),
        }


def check_slo(stats: RunStats, slo: Slo) -> SloVerdict:
    """Decide whether a run kept ``slo``: it fails when no call got an answer, when the latency
    percentile (rejected calls excluded) is over budget + margin, when the error ratio
    (RESOURCE_EXHAUSTED excluded) is over its limit, or when any call answered INTERNAL (a bug,
    whatever the ratio). Shedding never fails it; it is reported."""
    failures = []
    if stats.answered + stats.shed == 0:
        failures.append("no call was answered")
    else:
        latency = stats.p(slo.percentile)
        if latency > slo.latency_limit_ms:
            failures.append(
                f"p{slo.percentile:g} latency {latency:.0f} ms > {slo.latency_limit_ms:.0f} ms"
            )
    if stats.errors.get("INTERNAL"):
        failures.append(f"{stats.errors['INTERNAL']} calls answered INTERNAL (a bug, at any ratio)")
    if stats.error_ratio > slo.max_error_ratio:
        failures.append(
            f"error ratio {stats.error_ratio:.2%} > {slo.max_error_ratio:.2%}"
            f" ({stats.failed} of {stats.requests} calls failed)"
        )
    return SloVerdict(slo, stats, tuple(failures))


def run_stats_from_entries(
    entries: Iterable[tuple[str, int, int, Mapping[float, int]]], duration_s: float
) -> RunStats:
    """RunStats from per-name rows ``(name, calls, failures, latency histogram)``, e.g. from
    :class:`CallRecorder`. Rows of other methods are ignored
    unless they failed (a failed call is an error whatever its method)."""
    answered = shed = rejected = 0
    errors: Counter[str] = Counter()
    latency: Counter[float] = Counter()
    for name, calls, failures, histogram in entries:
        if name == REJECTED:
            rejected += calls
            continue
        if name == SOLVE:
            answered += calls - failures
        elif name == SHED:
            shed += calls - failures
        elif name.endswith(")") and " (error: " in name:
            errors[name.rsplit(" (error: ", 1)[1][:-1]] += calls
        else:  # another method's answers (not part of the SLO) or unlabelled failures
            if failures:
                errors[name] += failures
            continue
        latency.update(histogram)
    return RunStats(answered, shed, rejected, dict(errors), dict(latency), duration_s)


class CallRecorder:
    """Tallies calls by report name with latencies to the millisecond: a listener for locust's
    request event (``events.request.add_listener(recorder.on_request)``). Locust's own
    statistics round latencies over 100 ms to 10 ms and over 1 s to 100 ms, too coarse to hold
    a 1 s budget to + 50 ms; the report files still come from locust."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[int, int, Counter[float]]] = {}
        self._first_start: float | None = None
        self._last_end: float | None = None

    def on_request(
        self, name: str, response_time: float, exception: object = None, **_kwargs: Any
    ) -> None:
        """Count one finished call (locust's request event keywords)."""
        now = time.monotonic()
        start = now - response_time / 1000
        self._first_start = start if self._first_start is None else min(self._first_start, start)
        self._last_end = now
        calls, failures, histogram = self._rows.get(name, (0, 0, Counter()))
        histogram[float(round(response_time))] += 1
        self._rows[name] = (calls + 1, failures + (exception is not None), histogram)

    def reset(self) -> None:
        """Forget every call so far (start of a measured step)."""
        self._rows.clear()
        self._first_start = self._last_end = None

    def stats(self, duration_s: float | None = None) -> RunStats:
        """The calls so far as RunStats; ``duration_s`` defaults to the span from the first
        call's start to the last call's end."""
        if duration_s is None:
            ends = (self._first_start, self._last_end)
            duration_s = ends[1] - ends[0] if ends[0] is not None and ends[1] is not None else 0.0
        rows = [(name, c, f, dict(h)) for name, (c, f, h) in self._rows.items()]
        return run_stats_from_entries(rows, duration_s)
