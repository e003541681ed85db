"""Tests of the ruin-and-recreate search: valid plans, never worse, fewer riders, pinning kept."""

from __future__ import annotations

import time

import pytest

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.improve import ImproveConfig, improve_visits
from solver.engines.search import plan_visits, search_plan
from solver.params import SolverParams
from solver.plan import Engine, Plan
from tests.solver.conftest import assert_pinned_kept, random_problem

HIERARCHICAL = SolverParams(
    objective="hierarchical",
    vehicle_fixed_cost=1e5,
    distance_cost_per_m=1.0,
    travel_cost_per_s=0.0,
    lateness_cost_per_s=0.0,
    unassigned_penalty=1e7,
)

CASES = [
    dict(pinned_share=0.3),
    dict(extras=True, pinned_share=0.2),
    dict(start_loaded_share=0.3, closed_share=0.5),
    dict(n_profiles=2, tight=True, extras=True),
    dict(non_metric=True, closed_share=1.0),
]


def riders_used(plan: Plan) -> int:
    return sum(1 for route in plan.routes if route.stops)


@pytest.mark.parametrize("objective", ["delivery", "delivery-time", "hierarchical"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_improved_visits_give_valid_plans_never_worse(
    case: int, objective: str, params: SolverParams
) -> None:
    params = {
        "hierarchical": HIERARCHICAL,
        "delivery-time": params.replace(delivery_time_cost_per_s=1.0),
    }.get(objective, params)
    problem = random_problem(400 + case, n_orders=24, n_riders=6, **CASES[case])  # type: ignore[arg-type]
    greedy = solve_greedy(problem, params)
    visits, stats = improve_visits(
        problem, params, plan_visits(greedy), deadline=time.perf_counter() + 0.15
    )
    plan = solve_greedy(problem, params, initial=visits)
    assert_valid_plan(problem, plan, params)
    assert_pinned_kept(problem, plan)
    assert plan.stats.objective <= greedy.stats.objective + 1e-6
    assert stats["iterations"] > 0
    assert ("eliminate" in stats) == (objective == "hierarchical")


@pytest.mark.parametrize("seed", [431, 435, 440])
def test_route_elimination_frees_riders(seed: int) -> None:
    # 20 orders and 8 riders with room to spare: the greedy opens a rider or two too many.
    problem = random_problem(seed, n_orders=20, n_riders=8, pinned_share=0.0)
    greedy = solve_greedy(problem, HIERARCHICAL)
    visits, _ = improve_visits(
        problem, HIERARCHICAL, plan_visits(greedy), deadline=time.perf_counter() + 0.3
    )
    plan = solve_greedy(problem, HIERARCHICAL, initial=visits)
    assert_valid_plan(problem, plan, HIERARCHICAL)
    assert len(plan.unassigned) <= len(greedy.unassigned)
    assert riders_used(plan) < riders_used(greedy)


def test_annealing_finds_a_cheaper_delivery_plan(params: SolverParams) -> None:
    problem = random_problem(432, n_orders=30, n_riders=6, pinned_share=0.2)
    greedy = solve_greedy(problem, params)
    visits, stats = improve_visits(
        problem, params, plan_visits(greedy), deadline=time.perf_counter() + 0.3
    )
    plan = solve_greedy(problem, params, initial=visits)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.objective < greedy.stats.objective
    assert "eliminate" not in stats  # no fixed cost per rider: nothing to gain by freeing one


def test_search_stops_at_its_deadline(params: SolverParams) -> None:
    problem = random_problem(433, n_orders=40, n_riders=8)
    greedy = solve_greedy(problem, params)
    started = time.perf_counter()
    improve_visits(problem, params, plan_visits(greedy), deadline=started + 0.1)
    assert time.perf_counter() - started < 0.1 + 0.1  # one iteration past the deadline at most


def test_search_plan_hands_over_to_ortools(params: SolverParams) -> None:
    problem = random_problem(434, n_orders=16, n_riders=4, extras=True)
    greedy = solve_greedy(problem, params)
    plan = search_plan(
        problem,
        params.replace(ruin_recreate_share=0.5),
        time_limit_s=0.4,
        initial=plan_visits(greedy),
        reasons={u.order_id: u for u in greedy.unassigned},
    )
    assert_valid_plan(problem, plan, params)
    assert plan.stats.engine in (Engine.RUIN_RECREATE, Engine.ORTOOLS)
    assert {"ruin_recreate", "model_build", "search"} <= set(plan.stats.phase_s)
    assert plan.stats.objective <= greedy.stats.objective + 1e-6


def test_an_empty_plan_is_left_alone(params: SolverParams) -> None:
    problem = random_problem(435, n_orders=0, n_riders=3)
    visits, _ = improve_visits(
        problem, params, {}, deadline=time.perf_counter() + 0.05, config=ImproveConfig()
    )
    assert all(not v for v in visits.values())
