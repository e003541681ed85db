"""Admission policy with a fake clock: queue or shed, in-flight cap, rate limit, breaker."""

from __future__ import annotations

import pytest

from server.admission import Admission, RejectedError
from server.config import ServerConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_free_worker_then_queue_then_shed() -> None:
    clock = Clock()
    adm = Admission(ServerConfig(), workers=2, clock=clock)
    a, _ = adm.choose(1.0, 0.05)
    b, _ = adm.choose(1.0, 0.05)
    assert a is not None and b is not None and not a.queued
    clock.now += 0.9  # both workers free up in 0.1 s: a 1 s request can wait for one
    c, reason = adm.choose(1.0, 0.05)
    assert c is not None and c.queued and reason == ""
    assert adm.queued == 1
    d, reason = adm.choose(0.12, 0.05)  # the next worker frees at ~0.1 s: no search left
    assert d is None
    assert "all 2 solver workers busy" in reason and "120 ms budget" in reason
    adm.release(a)  # the queued request takes a's worker: still none free
    assert adm.queued == 0
    assert adm.choose(0.12, 0.05)[0] is None
    adm.release(b)
    e, _ = adm.choose(0.12, 0.05)
    assert e is not None


def test_without_shedding_requests_queue() -> None:
    adm = Admission(ServerConfig(shedding=False), workers=1, clock=Clock())
    assert adm.choose(1.0, 0.05)[0] is not None
    slot, reason = adm.choose(0.1, 0.05)
    assert slot is not None and slot.queued and reason == ""


def test_greedy_cap_rejects_shed_requests_past_it() -> None:
    adm = Admission(ServerConfig(max_greedy_inflight=2), workers=1, clock=Clock())
    adm.enter_greedy("all 1 solver workers busy")
    adm.enter_greedy("all 1 solver workers busy")
    assert adm.greedy_inflight == 2
    with pytest.raises(RejectedError) as err:
        adm.enter_greedy("all 1 solver workers busy")
    assert err.value.reason == "greedy_overloaded"
    assert "max_greedy_inflight=2" in str(err.value) and "workers busy" in str(err.value)
    assert err.value.retry_after_s == ServerConfig().retry_after_s
    adm.leave_greedy()
    adm.enter_greedy("again")
    assert adm.greedy_inflight == 2


def test_inflight_cap_and_rate_limit() -> None:
    clock = Clock()
    adm = Admission(
        ServerConfig(max_inflight=2, rate_limit_per_s=1.0, rate_limit_burst=3), 1, clock
    )
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
    adm = Admission(cfg, workers=2, clock=clock)
    adm.record_failure()
    clock.now += 20.0  # the first failure leaves the window
    adm.record_failure()
    adm.record_failure()
    assert not adm.breaker_open
    adm.record_failure()
    assert adm.breaker_open
    slot, reason = adm.choose(1.0, 0.05)
    assert slot is None and "circuit breaker open" in reason
    clock.now += 30.0
    assert not adm.breaker_open
    assert adm.choose(1.0, 0.05)[0] is not None
