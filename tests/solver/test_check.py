"""The plan checker: valid plans pass, hand-broken plans report the specific violation."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from solver.check import PlanCheck, PlanInvalid, assert_valid_plan, check_plan
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, Route, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan, objective_terms
from tests.solver.conftest import line_problem, order, rider

P, D = StopKind.PICKUP, StopKind.DROPOFF


def plan_of(
    problem: Problem,
    params: SolverParams,
    visits: Mapping[str, Sequence[Visit]],
    unassigned: Sequence[Unassigned] = (),
) -> Plan:
    """Time visit sequences with the shared route timing (no feasibility check there)."""
    return build_plan(problem, params, visits, unassigned, engine=Engine.GREEDY)


def base_problem(**rider_kw: object) -> Problem:
    """Two riders on a line; r1 serves a and b, r2 has c onboard."""
    return line_problem(
        [0, 10, 20, 30, 40, 50],
        [
            order("a", 1, 2, due=100),
            order("b", 3, 4, due=100),
            order("c", None, 4, due=100, state=OrderState.ONBOARD, rider_id="r2"),
        ],
        [rider("r1", 0, capacity=2, **rider_kw), rider("r2", 5, capacity=1)],  # type: ignore[arg-type]
    )


BASE_VISITS: dict[str, list[Visit]] = {
    "r1": [("a", P), ("a", D), ("b", P), ("b", D)],
    "r2": [("c", D)],
}


def replace_stop(plan: Plan, rider_id: str, pos: int, **changes: object) -> Plan:
    """A copy of ``plan`` with one stop's fields changed."""
    routes = []
    for route in plan.routes:
        if route.rider_id == rider_id:
            stops = list(route.stops)
            stops[pos] = dataclasses.replace(stops[pos], **changes)  # type: ignore[arg-type]
            route = dataclasses.replace(route, stops=tuple(stops))
        routes.append(route)
    return dataclasses.replace(plan, routes=tuple(routes))


def violations(problem: Problem, plan: Plan, params: SolverParams) -> str:
    """All violation messages of ``plan``, one per line."""
    return "\n".join(check_plan(problem, plan, params).violations)


def test_valid_plan_passes_and_recomputes_the_objective(params: SolverParams) -> None:
    problem = base_problem()
    plan = plan_of(problem, params, BASE_VISITS)
    check = assert_valid_plan(problem, plan, params)
    assert isinstance(check, PlanCheck)
    assert check.ok
    assert check.violations == ()
    # r1: 0 -> 10 -> 20 -> 30 -> 40 = 40 s; r2: 50 -> 40 = 10 s.
    assert check.terms["travel"] == 50.0
    assert check.objective == pytest.approx(plan.stats.objective)
    assert check.terms == pytest.approx(objective_terms(problem.now_s, params, plan.routes, 0))
    assert check.late_orders == 0


def test_wrong_arrival_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = replace_stop(plan_of(problem, params, BASE_VISITS), "r1", 1, arrival_s=21)
    text = violations(problem, plan, params)
    assert "rider r1 stop 1 (dropoff of a): arrival_s 21 != recomputed 20" in text


def test_wrong_start_and_departure_are_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = replace_stop(plan_of(problem, params, BASE_VISITS), "r1", 0, start_s=5, departure_s=5)
    text = violations(problem, plan, params)
    assert "start_s 5 != recomputed 10" in text
    assert "departure_s 5 != recomputed 10" in text
    assert "before the food is ready" not in text  # ready at 0


def test_pickup_before_ready_is_reported(params: SolverParams) -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, ready=30)], [rider("r1")])
    plan = replace_stop(plan_of(problem, params, {"r1": [("a", P), ("a", D)]}), "r1", 0, start_s=10)
    text = violations(problem, plan, params)
    assert "pickup starts at 10 before the food is ready (30)" in text
    assert "start_s 10 != recomputed 30" in text


def test_order_twice_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    visits = {"r1": BASE_VISITS["r1"], "r2": [("c", D), ("a", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order a has 2 drop-off stops (expected 1)" in text
    assert "order a is split over riders ['r1', 'r2']" in text


def test_order_missing_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    visits = {"r1": [("a", P), ("a", D)], "r2": [("c", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order b is neither routed nor unassigned" in text


def test_order_routed_and_unassigned_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    gone = [Unassigned("b", UnassignedReason.NOT_PROFITABLE)]
    text = violations(problem, plan_of(problem, params, BASE_VISITS, gone), params)
    assert "order b is routed and also listed as unassigned" in text


def test_pinned_order_moved_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    visits = {"r1": [*BASE_VISITS["r1"], ("c", D)], "r2": []}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order c is onboard on rider r2 but served by ['r1']" in text


def test_pinned_order_unassigned_or_missing_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    visits = {"r1": BASE_VISITS["r1"]}
    gone = [Unassigned("c", UnassignedReason.SHED)]
    text = violations(problem, plan_of(problem, params, visits, gone), params)
    assert "order c is onboard on rider r2 but listed as unassigned" in text
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order c is onboard on rider r2 but missing from the plan" in text


def test_committed_order_on_other_rider_is_reported(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("a", 1, 2, state=OrderState.COMMITTED, rider_id="r2")],
        [rider("r1"), rider("r2")],
    )
    text = violations(problem, plan_of(problem, params, {"r1": [("a", P), ("a", D)]}), params)
    assert "order a is committed on rider r2 but served by ['r1']" in text


def test_capacity_exceeded_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    problem = line_problem(
        [0, 10, 20, 30, 40],
        [order("a", 1, 3), order("b", 2, 4)],
        [rider("r1", capacity=1)],
    )
    visits = {"r1": [("a", P), ("b", P), ("a", D), ("b", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "rider r1 stop 1 (pickup of b): load 2 exceeds capacity 1" in text


def test_start_load_over_capacity_is_reported(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("a", None, 1, size=2), order("b", None, 2, size=2)],
        [rider("r1", capacity=3)],
    )
    visits = {"r1": [("a", D), ("b", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "rider r1: start load 4 exceeds capacity 3" in text


def test_drop_before_pickup_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    visits = {"r1": [("a", D), ("a", P), ("b", P), ("b", D)], "r2": [("c", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order a: drop-off (stop 0) before pickup (stop 1) on rider r1" in text


def test_wrong_objective_and_stats_are_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = plan_of(problem, params, BASE_VISITS)
    stats = dataclasses.replace(plan.stats, objective=plan.stats.objective + 1.0, late_orders=3)
    text = violations(problem, dataclasses.replace(plan, stats=stats), params)
    assert "stats.objective 51.0 != recomputed 50.0" in text
    assert "stats.late_orders 3 != recomputed 0" in text
    terms = dict(plan.stats.objective_terms, travel=7.0)
    stats = dataclasses.replace(plan.stats, objective_terms=terms)
    text = violations(problem, dataclasses.replace(plan, stats=stats), params)
    assert "stats.objective_terms['travel'] 7.0 != recomputed 50.0" in text


def test_objective_within_relative_tolerance_passes(params: SolverParams) -> None:
    problem = base_problem()
    plan = plan_of(problem, params, BASE_VISITS)
    stats = dataclasses.replace(plan.stats, objective=plan.stats.objective * (1 + 1e-9))
    assert check_plan(problem, dataclasses.replace(plan, stats=stats), params).ok


def test_wrong_route_totals_are_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = plan_of(problem, params, BASE_VISITS)
    routes = list(plan.routes)
    routes[0] = dataclasses.replace(routes[0], travel_time_s=41, distance_m=39.0, lateness_s=2)
    text = violations(problem, dataclasses.replace(plan, routes=tuple(routes)), params)
    assert "rider r1: route travel_time_s 41 != recomputed 40" in text
    assert "rider r1: route distance_m 39.0 != recomputed 40.0" in text
    assert "rider r1: route lateness_s 2 != recomputed 0" in text


def test_unknown_ids_and_duplicate_routes_are_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = plan_of(problem, params, BASE_VISITS)
    extra = (Route("ghost", ()), plan.routes[1])
    gone = (Unassigned("nope", UnassignedReason.SHED),)
    broken = dataclasses.replace(plan, routes=plan.routes + extra, unassigned=gone)
    text = violations(problem, broken, params)
    assert "route of unknown rider id 'ghost'" in text
    assert "rider r2 has more than one route" in text
    assert "unassigned lists unknown order id 'nope'" in text
    renamed = replace_stop(plan, "r2", 0, order_id="zzz")
    assert "unknown order id 'zzz'" in violations(problem, renamed, params)


def test_onboard_order_with_pickup_stop_is_reported(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("c", 1, 2, state=OrderState.ONBOARD, rider_id="r1")],
        [rider("r1")],
    )
    visits = {"r1": [("c", P), ("c", D)]}
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "order is onboard already, it has no pickup stop" in text


def test_wrong_location_is_reported(params: SolverParams) -> None:
    problem = base_problem()
    plan = replace_stop(plan_of(problem, params, BASE_VISITS), "r1", 0, location=3)
    assert "location 3 != order's location 1" in violations(problem, plan, params)


def test_leaving_before_the_rider_is_available_is_reported(params: SolverParams) -> None:
    problem = base_problem(available=100)
    plan = plan_of(problem, params, BASE_VISITS)
    early = replace_stop(plan, "r1", 0, arrival_s=10, start_s=10, departure_s=10)
    text = violations(problem, early, params)
    assert "means leaving before the rider can (departure at max(now, available) = 100" in text


def test_lateness_cap_and_hierarchical_due_are_reported() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, due=15)], [rider("r1")])
    visits = {"r1": [("a", P), ("a", D)]}
    loose = SolverParams(max_lateness_s=5)
    assert check_plan(problem, plan_of(problem, loose, visits), loose).ok
    tight = SolverParams(max_lateness_s=4)
    text = violations(problem, plan_of(problem, tight, visits), tight)
    assert "5 s late (drop-off at 20, due 15) exceeds max_lateness_s 4" in text
    hier = SolverParams(objective="hierarchical")
    text = violations(problem, plan_of(problem, hier, visits), hier)
    assert "due times are hard in hierarchical mode" in text


def test_pinned_orders_are_exempt_from_the_caps() -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("a", 1, 2, due=0, max_in_bag_s=1, state=OrderState.COMMITTED, rider_id="r1")],
        [rider("r1", shift_end=5)],
    )
    params = SolverParams(max_lateness_s=0)
    check = check_plan(problem, plan_of(problem, params, {"r1": [("a", P), ("a", D)]}), params)
    assert check.ok, check.violations
    assert check.late_orders == 1
    assert check.terms["lateness"] == 200.0


def test_delivery_time_is_counted_from_now_for_every_dropoff() -> None:
    problem = line_problem(
        [0, 10, 20, 30],
        [
            order("a", 1, 2),
            order("b", None, 3, state=OrderState.ONBOARD, rider_id="r1"),
        ],
        [rider("r1")],
        now=5,
    )
    params = SolverParams(delivery_time_cost_per_s=0.5)
    plan = plan_of(problem, params, {"r1": [("a", P), ("a", D), ("b", D)]})
    check = check_plan(problem, plan, params)
    assert check.ok, check.violations
    # the rider leaves at now = 5: a is dropped at 25 (20 s after now), b at 35 (30 s)
    assert check.terms["delivery"] == 0.5 * (20 + 30)
    assert check.objective == pytest.approx(30.0 + 25.0)


def test_max_in_bag_is_reported(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20, 30],
        [order("a", 1, 3, max_in_bag_s=25), order("b", 2, 2)],
        [rider("r1")],
    )
    visits = {"r1": [("a", P), ("b", P), ("b", D), ("a", D)]}
    assert check_plan(problem, plan_of(problem, params, visits), params).ok
    problem = line_problem(
        [0, 10, 20, 30],
        [order("a", 1, 3, max_in_bag_s=19), order("b", 2, 2)],
        [rider("r1")],
    )
    text = violations(problem, plan_of(problem, params, visits), params)
    assert "20 s in the bag (picked 10, arrives 30) exceeds max_in_bag_s 19" in text


def test_start_loaded_time_in_bag_runs_from_the_start(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10], [order("a", None, 1, max_in_bag_s=5)], [rider("r1", available=3)], now=2
    )
    text = violations(problem, plan_of(problem, params, {"r1": [("a", D)]}), params)
    assert "10 s in the bag (picked 3, arrives 13) exceeds max_in_bag_s 5" in text


def test_shift_end_pickup_latest_and_return_are_reported(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("a", 1, 2, pickup_latest_s=9)],
        [rider("r1", shift_end=15, end_location=0)],
    )
    text = violations(problem, plan_of(problem, params, {"r1": [("a", P), ("a", D)]}), params)
    assert "pickup starts at 10 after pickup_latest_s 9" in text
    assert "arrival 20 after the rider's shift end 15" in text
    assert "rider r1: returns to 0 at 40, after the shift end 15" in text


def test_dropoff_earliest_is_timing_and_checked(params: SolverParams) -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, dropoff_earliest_s=50)], [rider("r1")])
    plan = plan_of(problem, params, {"r1": [("a", P), ("a", D)]})
    check = check_plan(problem, plan, params)
    assert check.ok
    assert plan.routes[0].stops[1].start_s == 50
    assert check.terms["waiting"] == 0.0  # waiting_cost_per_s defaults to 0
    early = replace_stop(plan, "r1", 1, start_s=20)
    assert "drop-off starts at 20 before dropoff_earliest_s 50" in violations(
        problem, early, params
    )


def test_assert_valid_plan_raises_with_every_violation(params: SolverParams) -> None:
    problem = base_problem()
    plan = replace_stop(plan_of(problem, params, BASE_VISITS), "r1", 1, arrival_s=21)
    plan = dataclasses.replace(plan, stats=dataclasses.replace(plan.stats, objective=0.0))
    with pytest.raises(PlanInvalid) as caught:
        assert_valid_plan(problem, plan, params)
    assert isinstance(caught.value, AssertionError)
    assert len(caught.value.check.violations) == 2
    assert "arrival_s 21 != recomputed 20" in str(caught.value)
    assert "stats.objective 0.0 != recomputed 50.0" in str(caught.value)


def test_checker_shares_no_code_with_the_engines() -> None:
    source = Path(__file__).resolve().parents[2] / "solver" / "check.py"
    tree = ast.parse(source.read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & {"solver.routes", "solver.engines.greedy", "solver.engines.ortools"}
