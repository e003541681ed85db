"""The SLO gate on synthetic run statistics: a slow run and an erroring run fail, a good run
passes, RESOURCE_EXHAUSTED shedding is reported but never counted as an error."""

from __future__ import annotations

import math

import grpc
import pytest

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from load.slo import (
    REJECTED,
    SHED,
    SOLVE,
    CallRecorder,
    RunStats,
    Slo,
    check_slo,
    label_call,
    percentile_ms,
    run_stats_from_entries,
)

SLO = Slo(budget_ms=200, margin_ms=50, max_error_ratio=0.01)


def _latencies(fast: int, slow: int, *, fast_ms: float = 210, slow_ms: float = 400) -> dict:
    return {fast_ms: fast, slow_ms: slow}


def test_a_good_run_passes() -> None:
    stats = RunStats(answered=990, shed=10, latency_ms=_latencies(1000, 0), duration_s=100)
    verdict = check_slo(stats, SLO)
    assert verdict.ok and verdict.exit_code == 0
    assert verdict.summary().startswith("SLO PASS")
    assert stats.throughput == pytest.approx(10.0)


def test_p99_over_budget_plus_margin_fails() -> None:
    stats = RunStats(answered=1000, latency_ms=_latencies(980, 20), duration_s=100)  # p99 400
    verdict = check_slo(stats, SLO)
    assert not verdict.ok and verdict.exit_code == 1
    assert verdict.failures == ("p99 latency 400 ms > 250 ms",)
    assert "SLO FAIL: p99 latency 400 ms > 250 ms" in verdict.summary()


def test_p99_just_inside_the_limit_passes() -> None:
    stats = RunStats(answered=1000, latency_ms=_latencies(990, 10, slow_ms=250))
    assert check_slo(stats, SLO).ok  # exactly budget + margin is allowed


def test_errors_over_the_threshold_fail() -> None:
    stats = RunStats(
        answered=970,
        errors={"DEADLINE_EXCEEDED": 20, "UNAVAILABLE": 10},
        latency_ms=_latencies(1000, 0),
        duration_s=60,
    )
    verdict = check_slo(stats, SLO)
    assert stats.error_ratio == pytest.approx(0.03)
    assert verdict.failures == ("error ratio 3.00% > 1.00% (30 of 1000 calls failed)",)


def test_resource_exhausted_is_shedding_not_an_error() -> None:
    stats = RunStats(
        answered=500, shed=200, rejected=300, latency_ms=_latencies(700, 0), duration_s=10
    )
    verdict = check_slo(stats, SLO)
    assert verdict.ok
    assert stats.error_ratio == 0 and stats.rejected_ratio == pytest.approx(0.3)
    assert stats.shed_ratio == pytest.approx(0.2)
    assert "200 answered greedy (20.0%), 300 rejected RESOURCE_EXHAUSTED (30.0%)" in (
        verdict.summary()
    )
    assert verdict.to_dict()["stats"]["rejected"] == 300


def test_a_run_without_answers_fails() -> None:
    verdict = check_slo(RunStats(answered=0, rejected=50), SLO)
    assert verdict.failures == ("no call was answered",)


def test_every_failure_is_named() -> None:
    stats = RunStats(answered=90, errors={"INTERNAL": 10}, latency_ms=_latencies(50, 50))
    assert len(check_slo(stats, SLO).failures) == 3  # latency, error ratio, INTERNAL


def test_one_internal_fails_the_run_below_the_error_ratio() -> None:
    stats = RunStats(answered=999, errors={"INTERNAL": 1}, latency_ms=_latencies(999, 0))
    assert stats.error_ratio < SLO.max_error_ratio
    assert check_slo(stats, SLO).failures == ("1 calls answered INTERNAL (a bug, at any ratio)",)
    ok = RunStats(answered=999, errors={"UNAVAILABLE": 1}, latency_ms=_latencies(999, 0))
    assert check_slo(ok, SLO).ok


def test_percentiles_of_a_histogram() -> None:
    histogram = {float(ms): 1 for ms in range(1, 101)}
    assert percentile_ms(histogram, 50) == 50
    assert percentile_ms(histogram, 99) == 99
    assert percentile_ms(histogram, 100) == 100
    assert math.isnan(percentile_ms({}, 99))
    with pytest.raises(ValueError, match="q=101"):
        percentile_ms(histogram, 101)


def test_run_stats_from_rows_named_by_the_labeller() -> None:
    rows = [
        (SOLVE, 80, 0, {200.0: 80}),
        (SHED, 15, 0, {60.0: 15}),
        (REJECTED, 30, 30, {1.0: 30}),  # fast refusals: not in the latency
        ("Solve (error: DEADLINE_EXCEEDED)", 5, 5, {700.0: 5}),
        ("ListCampuses", 3, 0, {2.0: 3}),
    ]
    stats = run_stats_from_entries(rows, duration_s=10)
    assert (stats.answered, stats.shed, stats.rejected) == (80, 15, 30)
    assert stats.errors == {"DEADLINE_EXCEEDED": 5}
    assert stats.requests == 130
    assert stats.latency_ms == {200.0: 80, 60.0: 15, 700.0: 5}
    assert stats.p(99) == 700
    assert stats.throughput == pytest.approx(9.5)


class _Error(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def test_label_call_by_outcome() -> None:
    searched = pb.SolveResponse(stats=pb.SolveStats(engine=pb.RUIN_RECREATE))
    shed = pb.SolveResponse(stats=pb.SolveStats(engine=pb.GREEDY, shed_reason="workers busy"))
    greedy_best = pb.SolveResponse(stats=pb.SolveStats(engine=pb.GREEDY))
    assert label_call("Solve", searched, None) == SOLVE
    assert label_call("Solve", shed, None) == SHED
    assert label_call("Solve", greedy_best, None) == SOLVE  # not shed: nothing to search
    exhausted = _Error(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert label_call("Solve", None, exhausted) == REJECTED
    late = _Error(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert label_call("Solve", None, late) == "Solve (error: DEADLINE_EXCEEDED)"
    assert label_call("ListCampuses", None, late) == "ListCampuses (error: DEADLINE_EXCEEDED)"
    assert label_call("ListCampuses", pb.ListCampusesResponse(), None) == "ListCampuses"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_ms": -1}, "budget_ms=-1"),
        ({"budget_ms": 200, "max_error_ratio": 2}, "max_error_ratio=2"),
        ({"budget_ms": 200, "percentile": 0}, "percentile=0"),
    ],
)
def test_bad_slo_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Slo(**kwargs)


def test_bad_run_stats_are_named() -> None:
    with pytest.raises(ValueError, match="shed=-1"):
        RunStats(answered=1, shed=-1)
    with pytest.raises(ValueError, match=r"errors\['INTERNAL'\]=-2"):
        RunStats(answered=1, errors={"INTERNAL": -2})


def test_the_call_recorder_keeps_milliseconds_and_outcomes() -> None:
    calls = CallRecorder()
    for ms in (1041.0, 1049.4, 1052.0):  # locust would round all three to 1000 or 1100
        calls.on_request(name=SOLVE, response_time=ms, request_type="grpc", exception=None)
    calls.on_request(name=SHED, response_time=80.2, exception=None)
    calls.on_request(name=REJECTED, response_time=0.7, exception=RuntimeError("exhausted"))
    calls.on_request(name="Solve (error: UNAVAILABLE)", response_time=3.0, exception=OSError())
    stats = calls.stats()
    assert (stats.answered, stats.shed, stats.rejected) == (3, 1, 1)
    assert stats.errors == {"UNAVAILABLE": 1}
    assert stats.latency_ms == {1041.0: 1, 1049.0: 1, 1052.0: 1, 80.0: 1, 3.0: 1}
    assert stats.p(99) == 1052
    assert not check_slo(stats, Slo(budget_ms=1000, max_error_ratio=0.5)).ok
    assert stats.duration_s >= 1.05  # from the slowest call's start to the last call's end
    calls.reset()
    assert calls.stats().requests == 0
