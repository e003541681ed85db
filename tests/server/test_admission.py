"""Admission policy with a fake clock: greedy cap, in-flight cap, rate limit, breaker."""

from __future__ import annotations

import contextlib

import pytest

from server.admission import Admission, RejectedError
from server.config import ServerConfig
from solver.plan import Shed, ShedReason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_greedy_cap_rejects_shed_requests_past_it() -> None:
    adm = Admission(ServerConfig(max_greedy_inflight=2), clock=Clock())
    busy = Shed(ShedReason.WORKERS_BUSY, "no idle solver worker in time")
    with contextlib.ExitStack() as held:
        held.enter_context(adm.greedy_slot(busy))
        held.enter_context(adm.greedy_slot(busy))
        assert adm.greedy_inflight == 2
        with pytest.raises(RejectedError) as err, adm.greedy_slot(busy):
            pass
    assert err.value.reason == "greedy_overloaded"
    assert "max_greedy_inflight=2" in str(err.value) and "workers_busy" in str(err.value)
    assert err.value.retry_after_s == ServerConfig().retry_after_s
    assert adm.greedy_inflight == 0  # released, also when the plan raised
    with pytest.raises(ValueError), adm.greedy_slot(busy):
        raise ValueError("a failed plan")
    assert adm.greedy_inflight == 0


def test_inflight_cap_and_rate_limit() -> None:
    clock = Clock()
    adm = Admission(ServerConfig(max_inflight=2, rate_limit_per_s=1.0, rate_limit_burst=3), clock)
    adm.enter("a")
    adm.enter("b")
    with pytest.raises(RejectedError) as err:
        adm.enter("c")
    assert err.value.reason == "overloaded" and "max_inflight=2" in str(err.value)
    adm.leave()
    adm.leave()
    for _ in range(2):  # client a has used 1 of its 3 tokens
        adm.enter("a")
        adm.leave()
    with pytest.raises(RejectedError) as err:
        adm.enter("a")
    assert err.value.reason == "rate_limited"
    assert err.value.retry_after_s == pytest.approx(1.0)
    clock.now += 1.0  # one token back
    adm.enter("a")
    adm.leave()


def test_breaker_opens_after_repeated_failures_and_closes_after_cooldown() -> None:
    clock = Clock()
    cfg = ServerConfig(breaker_failures=3, breaker_window_s=10.0, breaker_cooldown_s=30.0)
    adm = Admission(cfg, clock=clock)
    adm.record_failure()
    clock.now += 20.0  # the first failure leaves the window
    adm.record_failure()
    adm.record_failure()
    assert not adm.breaker_open
    adm.record_failure()
    assert adm.breaker_open
    shed = adm.breaker_shed()
    assert shed is not None and shed.reason is ShedReason.BREAKER_OPEN
    assert "circuit breaker open after 3 worker failures; greedy for 30 s more" in str(shed)
    clock.now += 30.0
    assert not adm.breaker_open and adm.breaker_shed() is None
