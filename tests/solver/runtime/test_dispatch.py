"""Tests of the dispatch wiring: greedy first, OR-Tools in the budget, fallbacks flagged."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.model import Order, OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, ShedReason
from solver.runtime.budget import Budget
from solver.runtime.dispatch import ZonePlan, plan_visits, solve, solve_zones
from solver.runtime.workers import SolverPool, WorkerCrashed, WorkerTimeout
from tests.solver.conftest import random_problem
from tests.waiting import wait_until

MARGIN_S = 0.5  # generous: the machine is shared and noisy


@pytest.fixture(scope="module")
def pool() -> Iterator[SolverPool]:
    with SolverPool(1) as solo:
        yield solo


class FailingPool:
    """Stands in for a pool whose worker overran or died."""

    size = 1

    def expected_wait_s(self) -> float:
        return 0.0

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def run(
        self,
        job: Callable[..., Any],
        payload: Any,
        *,
        time_limit_s: float,
        hard_timeout_s: float | None = None,
        wait_timeout_s: float | None = None,
    ) -> Any:
        self.calls += 1
        self.job = job
        raise self.error


def test_budget_records_phases_and_counts_down() -> None:
    clock = iter([10.0, 10.0, 10.5, 10.75, 11.0, 12.0]).__next__
    budget = Budget(1.0, clock=clock)
    with budget.phase("greedy"):
        pass
    assert budget.phase_s == {"greedy": 0.5}
    assert budget.remaining() == pytest.approx(0.25)
    assert budget.remaining() == 0.0
    assert budget.expired


ORTOOLS_PHASES = {"model_build", "first_solution", "search", "validate"}


@pytest.mark.parametrize(
    ("share", "phases", "engines"),
    [
        (1.0, {"ruin_recreate"}, {Engine.RUIN_RECREATE}),
        (0.5, {"ruin_recreate", *ORTOOLS_PHASES}, {Engine.RUIN_RECREATE, Engine.ORTOOLS}),
        (0.0, ORTOOLS_PHASES, {Engine.ORTOOLS}),
    ],
)
@pytest.mark.parametrize("seed", range(4))
def test_dispatch_returns_the_better_valid_plan(
    seed: int, share: float, phases: set[str], engines: set[Engine], params: SolverParams
) -> None:
    problem = random_problem(
        200 + seed, n_orders=20, n_riders=5, extras=seed % 2 == 0, closed_share=0.3
    )
    params = params.replace(ruin_recreate_share=share)
    plan = solve(problem, params, budget_s=0.3)
    assert_valid_plan(problem, plan, params)
    greedy = solve_greedy(problem, params)
    assert plan.stats.objective <= greedy.stats.objective + 1e-6
    assert plan.stats.shed is None
    assert plan.stats.engine in engines
    assert {"greedy", "engine", "total", *phases} <= set(plan.stats.phase_s)


def test_ruin_and_recreate_improves_on_greedy(params: SolverParams) -> None:
    problem = random_problem(210, n_orders=40, n_riders=8, pinned_share=0.2)
    greedy = solve_greedy(problem, params)
    plan = solve(problem, params.replace(ruin_recreate_share=1.0), budget_s=0.5)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine is Engine.RUIN_RECREATE
    assert plan.stats.objective < greedy.stats.objective


def test_budget_holds_in_process(params: SolverParams) -> None:
    problem = random_problem(300, n_orders=60, n_riders=20, pinned_share=0.2)
    started = time.perf_counter()
    plan = solve(problem, params, budget_s=0.3)
    assert time.perf_counter() - started <= 0.3 + MARGIN_S
    assert_valid_plan(problem, plan, params)


def test_budget_holds_with_a_pool(pool: SolverPool, params: SolverParams) -> None:
    problem = random_problem(301, n_orders=60, n_riders=20, pinned_share=0.2)
    started = time.perf_counter()
    plan = solve(problem, params, budget_s=0.3, pool=pool)
    assert time.perf_counter() - started <= 0.3 + MARGIN_S
    assert_valid_plan(problem, plan, params)


def test_tiny_budget_skips_the_search(params: SolverParams) -> None:
    problem = random_problem(302, n_orders=10, n_riders=3)
    plan = solve(problem, params, budget_s=0.001)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine is Engine.GREEDY
    assert plan.stats.shed is not None
    assert plan.stats.shed.reason is ShedReason.BUDGET_TOO_SMALL


@pytest.mark.parametrize(
    ("share", "engine", "shed"),
    [
        (0.5, Engine.RUIN_RECREATE, None),  # OR-Tools skipped, ruin-and-recreate still searches
        (0.0, Engine.GREEDY, ShedReason.TOO_MANY_ORDERS),  # nothing left to search with
    ],
)
def test_too_many_orders_skip_ortools(
    share: float, engine: Engine, shed: ShedReason | None
) -> None:
    params = SolverParams(ortools_max_orders=3, ruin_recreate_share=share)
    problem = random_problem(303, n_orders=10, n_riders=3, pinned_share=0.0)
    plan = solve(problem, params, budget_s=0.3)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine is engine
    assert (plan.stats.shed and plan.stats.shed.reason) is shed
    assert "model_build" not in plan.stats.phase_s


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (WorkerTimeout("late"), ShedReason.WORKER_OVERRUN),
        (WorkerCrashed("gone"), ShedReason.WORKER_CRASHED),
    ],
)
def test_worker_failures_fall_back_to_greedy(
    error: Exception, reason: ShedReason, params: SolverParams
) -> None:
    problem = random_problem(304, n_orders=12, n_riders=3)
    failing = FailingPool(error)
    plan = solve(problem, params, budget_s=0.5, pool=failing)  # type: ignore[arg-type]
    assert failing.calls == 1
    assert failing.job is solve_zones  # the whole dispatch runs in the worker
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine is Engine.GREEDY
    assert plan.stats.shed is not None and plan.stats.shed.reason is reason
    assert "greedy" in plan.stats.phase_s and "total" in plan.stats.phase_s


def test_a_failed_worker_s_early_greedy_plan_is_the_answer(params: SolverParams) -> None:
    problem = random_problem(307, n_orders=12, n_riders=3)
    early = solve_greedy(problem, params)
    error = WorkerTimeout("late")
    error.interims = (ZonePlan(0, early, searched=False, shed=None),)
    plan = solve(problem, params, budget_s=0.5, pool=FailingPool(error))  # type: ignore[arg-type]
    assert plan.routes == early.routes and plan.unassigned == early.unassigned
    assert plan.stats.shed is not None and plan.stats.shed.reason is ShedReason.WORKER_OVERRUN
    assert plan.stats.shed_reason == "worker_overrun: late"
    assert plan.stats.phase_s["greedy"] == early.stats.phase_s["greedy"]  # not computed again


def test_killed_worker_yields_flagged_greedy_and_the_pool_recovers(params: SolverParams) -> None:
    problem = random_problem(305, n_orders=20, n_riders=5)
    with SolverPool(1) as solo:
        (pid,) = solo.worker_pids
        killer = threading.Timer(0.3, os.kill, args=(pid, signal.SIGKILL))
        killer.start()
        plan = solve(problem, params, budget_s=1.5, pool=solo)
        killer.join()
        assert_valid_plan(problem, plan, params)
        assert plan.stats.engine is Engine.GREEDY
        assert plan.stats.shed is not None
        assert plan.stats.shed.reason is ShedReason.WORKER_CRASHED
        assert solo.restarts == 1
        until = time.monotonic() + 30
        while solo.idle_workers == 0:  # the replacement boots in the background
            assert time.monotonic() < until
            time.sleep(0.01)
        again = solve(problem, params, budget_s=0.3, pool=solo)
        assert_valid_plan(problem, again, params)
        assert again.stats.shed is None
        assert solo.restarts == 1


def test_previous_plan_seeds_the_next_solve(params: SolverParams) -> None:
    problem = random_problem(306, n_orders=16, n_riders=4, pinned_share=0.0)
    first = solve(problem, params, budget_s=0.3)
    # A minute later: two orders delivered (gone), one picked up (onboard now), one new order.
    delivered = {problem.orders[0].id, problem.orders[1].id}
    route = next(r for r in first.routes if len(r.stops) >= 2 and r.stops[0].kind.value == "pickup")
    picked = route.stops[0].order_id
    orders: list[Order] = []
    for o in problem.orders:
        if o.id in delivered and o.id != picked:
            continue
        if o.id == picked:
            o = dataclasses.replace(o, state=OrderState.ONBOARD, rider_id=route.rider_id)
        orders.append(o)
    orders.append(dataclasses.replace(problem.orders[2], id="new"))
    later = Problem.build(
        now_s=problem.now_s + 60,
        orders=orders,
        riders=problem.riders,
        time_s=problem.time_s,
        distance_m=problem.distance_m,
    )
    plan = solve(later, params, budget_s=0.3, previous=first)
    assert_valid_plan(later, plan, params)
    assert plan_visits(plan)  # every rider has an entry
    rider = plan.route_of(route.rider_id)
    assert rider is not None and picked in {s.order_id for s in rider.stops}


def test_a_request_that_could_not_search_after_waiting_is_shed_at_once(
    params: SolverParams,
) -> None:
    """The pool knows when its jobs should end: a request whose wait for a worker would leave
    no search is answered with greedy plans at once, not after waiting in vain."""
    problem = random_problem(308, n_orders=20, n_riders=5)
    with SolverPool(1) as solo:
        busy = threading.Thread(
            target=solve, args=(problem, params), kwargs={"budget_s": 1.5, "pool": solo}
        )
        busy.start()
        wait_until(lambda: solo.expected_wait_s() > 1.0, timeout_s=5.0)
        plan = solve(problem, params, budget_s=0.2, pool=solo)
        busy.join()
    assert_valid_plan(problem, plan, params)
    assert plan.stats.shed is not None and plan.stats.shed.reason is ShedReason.WORKERS_BUSY
    assert "expected wait" in plan.stats.shed.detail
    assert solo.expected_wait_s() == 0.0
