"""Property tests: greedy and searched plans of random problems are valid, every order once."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import assert_valid_plan
from solver.engines.greedy import ORDERINGS, solve_greedy
from solver.engines.search import plan_visits, search_plan
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Plan
from tests.solver.conftest import random_problem

PARAMS = {
    "delivery": SolverParams(),
    "all-terms": SolverParams(
        waiting_cost_per_s=0.3, distance_cost_per_m=0.02, vehicle_fixed_cost=50.0
    ),
    "strict": SolverParams(max_lateness_s=0, unassigned_penalty=2_000.0),
    "hierarchical": SolverParams(
        objective="hierarchical",
        vehicle_fixed_cost=1e6,
        distance_cost_per_m=1.0,
        unassigned_penalty=1e9,
    ),
}


@dataclass(frozen=True)
class Case:
    """One drawn problem and its parameters."""

    problem: Problem
    params: SolverParams
    ordering: str


@st.composite
def cases(draw: st.DrawFn, min_riders: int = 0) -> Case:
    n_riders = draw(st.integers(min_riders, 5))
    problem = random_problem(
        draw(st.integers(0, 2**31 - 1)),
        n_orders=draw(st.integers(0, 14)),
        n_riders=n_riders,
        n_profiles=draw(st.integers(1, 3)),
        pinned_share=draw(st.sampled_from([0.0, 0.2, 0.5])) if n_riders else 0.0,
        start_loaded_share=draw(st.sampled_from([0.0, 0.3])),
        closed_share=draw(st.sampled_from([0.0, 0.5, 1.0])),
        extras=draw(st.booleans()),
        non_metric=draw(st.booleans()),
        tight=draw(st.booleans()),
    )
    return Case(
        problem, PARAMS[draw(st.sampled_from(sorted(PARAMS)))], draw(st.sampled_from(ORDERINGS))
    )


def assert_covers_every_order_once(problem: Problem, plan: Plan) -> None:
    routed = [s.order_id for r in plan.routes for s in r.stops if s.kind.value == "dropoff"]
    gone = [u.order_id for u in plan.unassigned]
    assert sorted(routed + gone) == sorted(o.id for o in problem.orders)
    pinned = {o.id for o in problem.orders if o.is_pinned}
    assert pinned.isdisjoint(gone)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_greedy_plans_are_valid(case: Case) -> None:
    plan = solve_greedy(case.problem, case.params, ordering=case.ordering)
    check = assert_valid_plan(case.problem, plan, case.params)
    assert_covers_every_order_once(case.problem, plan)
    assert check.objective == plan.stats.objective or abs(
        check.objective - plan.stats.objective
    ) <= 1e-6 * max(1.0, abs(check.objective))


@settings(max_examples=30, deadline=None)
@given(cases())
def test_reoptimising_from_the_own_plan_never_gets_worse(case: Case) -> None:
    first = solve_greedy(case.problem, case.params)
    again = solve_greedy(case.problem, case.params, initial=plan_visits(first))
    assert_valid_plan(case.problem, again, case.params)
    assert again.stats.objective <= first.stats.objective + 1e-6 * max(1.0, first.stats.objective)


@settings(max_examples=30, deadline=None)
@given(cases(), st.integers(0, 2**31 - 1))
def test_initial_plans_of_another_problem_are_repaired(case: Case, seed: int) -> None:
    """Warm start from the plan of a different random problem with the same ids."""
    other = random_problem(
        seed,
        n_orders=len(case.problem.orders) + 2,
        n_riders=len(case.problem.riders),
        pinned_share=0.3 if case.problem.riders else 0.0,
    )
    stale = plan_visits(solve_greedy(other, SolverParams()))
    plan = solve_greedy(case.problem, case.params, initial=stale)
    assert_valid_plan(case.problem, plan, case.params)
    assert_covers_every_order_once(case.problem, plan)


@settings(max_examples=25, deadline=None)
@given(cases(), st.sampled_from([0.0, 0.5, 1.0]))
def test_searched_plans_are_valid_and_never_worse(case: Case, share: float) -> None:
    params = case.params.replace(ruin_recreate_share=share)
    greedy = solve_greedy(case.problem, params)
    plan = search_plan(
        case.problem,
        params,
        time_limit_s=0.05,
        initial=plan_visits(greedy),
        reasons={u.order_id: u for u in greedy.unassigned},
        ortools=share < 1.0,
    )
    assert_valid_plan(case.problem, plan, params)
    assert_covers_every_order_once(case.problem, plan)
    assert plan.stats.objective <= greedy.stats.objective + 1e-6 * max(1.0, greedy.stats.objective)
