"""The search phase: a plan's visits seed another engine unchanged, the rebuild reserve grows
with the problem, the search never returns a plan worse than the one it started from (and a
valid one) within its budget, OR-Tools runs only when its share of the time pays for its model,
and the tasks a worker runs."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.ortools import estimate_overhead_s
from solver.engines.search import TASKS, estimate_rebuild_s, plan_visits, run_task, search_plan
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, Unassigned
from solver.routes import build_plan
from tests.solver.conftest import line_problem, order, random_problem, rider

#: Slack (s) on top of a time limit for a loaded 2-core machine (process scheduling, GC).
WALL_SLACK_S = 1.0


def greedy_start(problem: Problem, params: SolverParams) -> tuple[Plan, dict[str, Unassigned]]:
    greedy = solve_greedy(problem, params)
    reasons = {u.order_id: u for u in greedy.unassigned}
    return greedy, reasons


def routed_ids(plan: Plan) -> set[str]:
    return {s.order_id for r in plan.routes for s in r.stops}


# ------------------------------------------------------------------------ plan_visits
def test_a_plans_visits_rebuild_the_same_routes() -> None:
    problem = random_problem(5, n_orders=10, n_riders=3, pinned_share=0.3, closed_share=0.5)
    params = SolverParams()
    plan = solve_greedy(problem, params)
    visits = plan_visits(plan)
    assert list(visits) == [r.id for r in problem.riders]  # every rider, idle ones too
    for route in plan.routes:
        assert visits[route.rider_id] == [(s.order_id, s.kind) for s in route.stops]
    again = build_plan(problem, params, visits, plan.unassigned, engine=Engine.GREEDY)
    assert again.routes == plan.routes
    assert again.stats.objective == pytest.approx(plan.stats.objective)


def test_the_rebuild_reserve_is_positive_and_grows_with_the_orders() -> None:
    sizes = [0, 10, 100, 400]
    reserves = [
        estimate_rebuild_s(random_problem(1, n_orders=n, n_riders=2, pinned_share=0.0))
        for n in sizes
    ]
    assert reserves[0] > 0
    assert reserves == sorted(reserves) and len(set(reserves)) == len(reserves)
    assert reserves[-1] < 0.1  # a small part of any budget worth searching


# ---------------------------------------------------------------------------- search_plan
@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_orders=st.integers(1, 14),
    tight=st.booleans(),
    fixed_cost=st.sampled_from([0.0, 200.0]),
)
def test_the_search_is_never_worse_than_its_start_and_stays_valid(
    seed: int, n_orders: int, tight: bool, fixed_cost: float
) -> None:
    problem = random_problem(
        seed, n_orders=n_orders, n_riders=3, pinned_share=0.2, closed_share=0.3, tight=tight
    )
    params = SolverParams(vehicle_fixed_cost=fixed_cost)
    greedy, reasons = greedy_start(problem, params)
    began = time.perf_counter()
    plan = search_plan(
        problem, params, time_limit_s=0.05, initial=plan_visits(greedy), reasons=reasons, seed=seed
    )
    spent = time.perf_counter() - began
    check = assert_valid_plan(problem, plan, params)
    assert check.objective <= greedy.stats.objective + 1e-6 * max(1.0, greedy.stats.objective)
    assert plan.stats.engine is Engine.RUIN_RECREATE  # default share 1.0: no OR-Tools
    assert set(plan.stats.phase_s) == {"ruin_recreate"}
    assert spent <= 0.05 + WALL_SLACK_S
    routed = routed_ids(plan)
    assert routed | {u.order_id for u in plan.unassigned} == {o.id for o in problem.orders}
    assert {o.id for o in problem.orders if o.is_pinned} <= routed


def test_or_tools_runs_after_ruin_and_recreate_when_its_share_pays() -> None:
    problem = random_problem(11, n_orders=12, n_riders=3, pinned_share=0.2)
    params = SolverParams(ruin_recreate_share=0.4)
    limit = 0.4
    assert limit * 0.6 >= params.min_search_s + estimate_overhead_s(problem)  # the rule's premise
    greedy, reasons = greedy_start(problem, params)
    began = time.perf_counter()
    plan = search_plan(
        problem, params, time_limit_s=limit, initial=plan_visits(greedy), reasons=reasons
    )
    assert time.perf_counter() - began <= limit + WALL_SLACK_S
    check = assert_valid_plan(problem, plan, params)
    assert check.objective <= greedy.stats.objective + 1e-6 * max(1.0, greedy.stats.objective)
    # OR-Tools ran (its phases are reported whichever plan wins); the better plan is kept,
    # OR-Tools' on ties
    assert {"ruin_recreate", "model_build", "search"} <= set(plan.stats.phase_s)
    assert plan.stats.engine in (Engine.ORTOOLS, Engine.RUIN_RECREATE)


@pytest.mark.parametrize(
    "share, limit, ortools",
    [
        (0.4, 0.4, False),  # the caller's size rule says no
        (0.99, 0.4, True),  # OR-Tools' share (4 ms) cannot cover its model
        (0.4, 0.02, True),  # too small a budget for both
    ],
)
def test_or_tools_does_not_run_when_it_cannot(share: float, limit: float, ortools: bool) -> None:
    problem = random_problem(12, n_orders=10, n_riders=3, pinned_share=0.0)
    params = SolverParams(ruin_recreate_share=share)
    greedy, _ = greedy_start(problem, params)
    plan = search_plan(
        problem, params, time_limit_s=limit, initial=plan_visits(greedy), ortools=ortools
    )
    assert plan.stats.engine is Engine.RUIN_RECREATE
    assert set(plan.stats.phase_s) == {"ruin_recreate"}
    assert_valid_plan(problem, plan, params)


def test_an_empty_problem_and_idle_riders_give_an_empty_plan() -> None:
    problem = random_problem(0, n_orders=0, n_riders=2)
    params = SolverParams()
    plan = search_plan(problem, params, time_limit_s=0.02, initial={})
    assert all(not r.stops for r in plan.routes) and plan.unassigned == ()
    assert plan.stats.objective == 0.0


def test_orders_the_initial_plan_left_out_are_offered_again() -> None:
    """The search's visits become a plan through the greedy engine, which re-inserts what
    the visits do not hold: from nobody's visits, orders that any rider can serve on time
    (short line, loose due times, roomy bags) are all served."""
    problem = line_problem(
        [0, 100, 200, 300, 400, 500],
        [order("a", 1, 2), order("b", 3, 4), order("c", 5, 0)],
        [rider("r0", 0), rider("r1", 2), rider("r2", 4)],
    )
    params = SolverParams()
    plan = search_plan(problem, params, time_limit_s=0.05, initial={})
    assert_valid_plan(problem, plan, params)
    assert plan.unassigned == () and routed_ids(plan) == {"a", "b", "c"}


# ------------------------------------------------------------------------------ run_task
def test_tasks_run_their_engine() -> None:
    problem = random_problem(31, n_orders=8, n_riders=3, pinned_share=0.2)
    params = SolverParams(ruin_recreate_share=0.5)
    greedy, reasons = greedy_start(problem, params)
    initial = plan_visits(greedy)
    assert TASKS == ("ortools", "search", "ruin_recreate")
    engines = {
        task: run_task(task, problem, params, time_limit_s=0.3, initial=initial, reasons=reasons)
        for task in TASKS
    }
    cold = run_task("search", problem, params, time_limit_s=0.3, initial=None)
    assert engines["ortools"].stats.engine is Engine.ORTOOLS
    assert engines["ruin_recreate"].stats.engine is Engine.RUIN_RECREATE
    assert engines["search"].stats.engine in (Engine.RUIN_RECREATE, Engine.ORTOOLS)
    assert cold.stats.engine is Engine.ORTOOLS  # no initial plan: OR-Tools from scratch
    for plan in [*engines.values(), cold]:
        assert_valid_plan(problem, plan, params)
    for task in ("search", "ruin_recreate"):  # both start from the greedy plan
        assert engines[task].stats.objective <= greedy.stats.objective + 1e-6


def test_an_unknown_task_is_refused() -> None:
    problem = random_problem(0, n_orders=1, n_riders=1)
    with pytest.raises(ValueError, match=r"task='vroom': must be one of"):
        run_task("vroom", problem, SolverParams(), time_limit_s=0.1, initial={})
