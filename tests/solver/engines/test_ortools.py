"""Tests of the OR-Tools engine: known optima, warm starts, pinned orders and every rule."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import pytest

from solver.check import assert_valid_plan, check_plan
from solver.engines.greedy import solve_greedy
from solver.engines.ortools import solve_ortools
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from solver.runtime.dispatch import plan_visits
from tests.solver.conftest import (
    assert_pinned_kept,
    line_problem,
    order,
    random_problem,
    rider,
    travel_lateness,
)

LIMIT_S = 0.2


def sequence(plan: Plan, rider_id: str) -> list[tuple[str, str]]:
    """The (order id, pickup/dropoff) visits of ``rider_id``'s route."""
    route = plan.route_of(rider_id)
    assert route is not None
    return [(s.order_id, s.kind.value) for s in route.stops]


def used_riders(plan: Plan) -> int:
    return sum(1 for r in plan.routes if r.stops)


# ----------------------------------------------------------------------------- known optima


def test_one_rider_interleaves_two_orders_on_a_line(params: SolverParams) -> None:
    # Rider at 0; A: 10 -> 30, B: 20 -> 40. Best: pick A, pick B, drop A, drop B = 40 s.
    problem = line_problem(
        [0, 10, 20, 30, 40], [order("A", 1, 3), order("B", 2, 4)], [rider("r", 0)]
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.objective == 40
    assert sequence(plan, "r") == [
        ("A", "pickup"),
        ("B", "pickup"),
        ("A", "dropoff"),
        ("B", "dropoff"),
    ]


def test_capacity_one_forces_one_order_at_a_time(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 20, 30, 40], [order("A", 1, 3), order("B", 2, 4)], [rider("r", 0, capacity=1)]
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    # pick A (10), drop A (30), pick B (20), drop B (40): 10 + 20 + 10 + 20.
    assert plan.stats.objective == 60
    assert [v[1] for v in sequence(plan, "r")] == ["pickup", "dropoff", "pickup", "dropoff"]


def test_each_rider_takes_the_order_next_to_it(params: SolverParams) -> None:
    problem = line_problem(
        [0, 100, 1, 2, 101, 102],
        [order("A", 2, 3), order("B", 4, 5)],
        [rider("r0", 0), rider("r1", 1)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.objective == 4
    assert sequence(plan, "r0") == [("A", "pickup"), ("A", "dropoff")]
    assert sequence(plan, "r1") == [("B", "pickup"), ("B", "dropoff")]


def test_urgent_order_first_even_when_its_food_is_ready_later(params: SolverParams) -> None:
    # A (ready at 0) lies east, B west and due at 50: serving A first makes B ~200 s late.
    problem = line_problem(
        [0, 10, -10, 20, -20],
        [order("A", 1, 3, due=5_000), order("B", 2, 4, ready=5, due=50)],
        [rider("r", 0)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert sequence(plan, "r")[0] == ("B", "pickup")
    assert plan.stats.objective == 60  # 10 + 10 + 30 + 10 s, nobody late


def test_lateness_is_priced_against_travel(params: SolverParams) -> None:
    # Going to B first costs 20 s more travel but saves A 100 s of lateness (x10).
    problem = line_problem(
        [0, 5, 15, 100, -100],
        [order("A", 1, 2, due=30), order("B", 3, 4, due=10_000)],
        [rider("r", 0)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert sequence(plan, "r")[:2] == [("A", "pickup"), ("A", "dropoff")]
    assert plan.stats.late_orders == 0


def test_waits_at_the_first_merchant_only_when_the_rules_allow(params: SolverParams) -> None:
    # A (10 -> 30, at most 100 s in the bag) and B (20 -> 25, food ready at 200). Picking A,
    # then waiting at B's merchant keeps A 200 s in the bag; OR-Tools must not "wait at A's
    # merchant instead": the rules time a route as early as possible.
    problem = line_problem(
        [0, 10, 20, 30, 25],
        [order("A", 1, 3, max_in_bag_s=100), order("B", 2, 4, ready=200)],
        [rider("r", 0)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert not plan.unassigned
    assert plan.stats.objective == 45  # A: 10 + 20, then B: 10 + 5


def test_hierarchical_uses_fewest_riders_and_makes_due_times_hard() -> None:
    params = SolverParams(
        objective="hierarchical",
        vehicle_fixed_cost=1e6,
        travel_cost_per_s=0.0,
        distance_cost_per_m=1.0,
        unassigned_penalty=1e8,
    )
    problem = line_problem(
        [0, 10, 20, 30, 40, 500],
        [order("A", 1, 3), order("B", 2, 4), order("C", 1, 5, due=100)],
        [rider("r0", 0), rider("r1", 0)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert used_riders(plan) == 1
    assert [u.order_id for u in plan.unassigned] == ["C"]  # 500 m away, due at 100
    assert plan.unassigned[0].reason is UnassignedReason.UNREACHABLE_IN_TIME
    assert plan.stats.objective == 1e6 + 40 + params.unassigned_penalty


def test_start_loaded_orders_on_a_closed_route(params: SolverParams) -> None:
    # Depot at 0; two start-loaded orders to 10 and -10; capacity 1 fits only one of them.
    problem = line_problem(
        [0, 10, -10],
        [order("A", None, 1), order("B", None, 2)],
        [rider("r", 0, capacity=1, end_location=0)],
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert plan.num_routed == 1 and len(plan.unassigned) == 1
    assert plan.stats.objective == 20 + params.unassigned_penalty
    bigger = line_problem(
        [0, 10, -10],
        [order("A", None, 1), order("B", None, 2)],
        [rider("r", 0, capacity=2, end_location=0)],
    )
    plan = solve_ortools(bigger, params, time_limit_s=LIMIT_S)
    assert_valid_plan(bigger, plan, params)
    assert plan.stats.objective == 40 and not plan.unassigned


def test_only_the_fast_profile_makes_it_in_time() -> None:
    params = travel_lateness(max_lateness_s=0)
    problem = line_problem(
        [0, 100, 300],
        [order("A", 1, 2, due=160)],
        [rider("walker", 0, profile=0), rider("cyclist", 0, profile=1)],
        speeds=(1.0, 2.0),
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert sequence(plan, "cyclist") == [("A", "pickup"), ("A", "dropoff")]
    assert plan.stats.objective == 150


def test_unprofitable_order_is_left_out_with_that_reason() -> None:
    params = SolverParams(unassigned_penalty=50.0)
    problem = line_problem(
        [0, 10, 20, 1_000, 1_100], [order("A", 1, 2), order("far", 3, 4)], [rider("r", 0)]
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert [(u.order_id, u.reason) for u in plan.unassigned] == [
        ("far", UnassignedReason.NOT_PROFITABLE)
    ]


def test_reasons_given_by_the_caller_are_kept(params: SolverParams) -> None:
    problem = line_problem(
        [0, 10, 5_000], [order("A", 1, 2, due=100)], [rider("r", 0)]
    )  # unreachable: 5 000 s away, due at 100 + 1 800
    given = Unassigned("A", UnassignedReason.SHED, "from greedy")
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S, reasons={"A": given})
    assert plan.unassigned == (given,)
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert plan.unassigned[0].reason is UnassignedReason.UNREACHABLE_IN_TIME


def test_plan_stats_name_the_engine_and_its_phases(params: SolverParams) -> None:
    problem = random_problem(3, n_orders=8, n_riders=3)
    plan = solve_ortools(problem, params, time_limit_s=0.1)
    assert plan.stats.engine is Engine.ORTOOLS
    assert {"model_build", "first_solution", "search"} <= set(plan.stats.phase_s)


def test_no_orders_and_no_riders(params: SolverParams) -> None:
    empty = line_problem([0, 1], [], [rider("r", 0)])
    plan = solve_ortools(empty, params, time_limit_s=0.1)
    assert_valid_plan(empty, plan, params)
    assert plan.num_routed == 0
    nobody = line_problem([0, 1, 2], [order("A", 1, 2)], [])
    plan = solve_ortools(nobody, params, time_limit_s=0.1)
    assert_valid_plan(nobody, plan, params)
    assert plan.unassigned[0].reason is UnassignedReason.NO_RIDERS


# ----------------------------------------------------------------------------- brute force


def _sequences(visits: Sequence[Visit]) -> Iterator[list[Visit]]:
    """Every ordering of ``visits`` with each pickup before its drop-off."""
    for perm in itertools.permutations(visits):
        seen: set[str] = set()
        ok = True
        for order_id, kind in perm:
            if kind is StopKind.PICKUP:
                seen.add(order_id)
            elif (order_id, StopKind.PICKUP) in visits and order_id not in seen:
                ok = False
                break
        if ok:
            yield list(perm)


def brute_force(problem: Problem, params: SolverParams) -> float:
    """The best objective of any checker-valid plan (tiny problems only)."""
    riders = [r.id for r in problem.riders]
    best = math.inf
    for choice in itertools.product([None, *riders], repeat=len(problem.orders)):
        if any(
            o.is_pinned and c != o.rider_id for o, c in zip(problem.orders, choice, strict=True)
        ):
            continue
        per_rider: dict[str, list[Visit]] = {r: [] for r in riders}
        unassigned = []
        for o, c in zip(problem.orders, choice, strict=True):
            if c is None:
                unassigned.append(Unassigned(o.id, UnassignedReason.NO_FEASIBLE_INSERTION))
                continue
            if o.state is not OrderState.ONBOARD and o.pickup is not None:
                per_rider[c].append((o.id, StopKind.PICKUP))
            per_rider[c].append((o.id, StopKind.DROPOFF))
        if len(problem.orders) - len(unassigned) and best < params.unassigned_penalty * len(
            unassigned
        ):
            continue
        for seqs in itertools.product(*(list(_sequences(per_rider[r])) for r in riders)):
            visits = dict(zip(riders, seqs, strict=True))
            plan = build_plan(problem, params, visits, unassigned, engine=Engine.GREEDY)
            if plan.stats.objective < best and check_plan(problem, plan, params).ok:
                best = plan.stats.objective
    return best


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_on_tiny_problems(seed: int, params: SolverParams) -> None:
    problem = random_problem(
        seed, n_orders=3, n_riders=2, n_profiles=1 + seed % 2, pinned_share=0.3, tight=seed % 2 == 1
    )
    plan = solve_ortools(problem, params, time_limit_s=0.3)
    assert_valid_plan(problem, plan, params)
    assert plan.stats.objective == pytest.approx(brute_force(problem, params))


# ----------------------------------------------------------------------------- against greedy


@pytest.mark.parametrize("seed", range(8))
def test_warm_start_never_loses_to_greedy(seed: int, params: SolverParams) -> None:
    problem = random_problem(
        seed,
        n_orders=16,
        n_riders=4,
        n_profiles=1 + seed % 3,
        extras=seed % 2 == 0,
        tight=seed % 4 == 1,
        closed_share=0.3 * (seed % 3 == 0),
        start_loaded_share=0.2 * (seed % 2),
    )
    greedy = solve_greedy(problem, params)
    plan = solve_ortools(
        problem,
        params,
        time_limit_s=0.15,
        initial=plan_visits(greedy),
        reasons={u.order_id: u for u in greedy.unassigned},
    )
    assert_valid_plan(problem, plan, params)
    assert plan.stats.objective <= greedy.stats.objective + 1e-6


# ----------------------------------------------------------------------------- pinned orders


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_pinned_orders_stay_on_their_rider(seed: int, warm: bool, params: SolverParams) -> None:
    problem = random_problem(
        seed, n_orders=14, n_riders=3, pinned_share=0.6, tight=seed % 2 == 1, extras=True
    )
    initial = plan_visits(solve_greedy(problem, params)) if warm else None
    plan = solve_ortools(problem, params, time_limit_s=0.1, initial=initial)
    assert_valid_plan(problem, plan, params)
    assert_pinned_kept(problem, plan)


def test_hopelessly_late_onboard_orders_are_still_delivered(params: SolverParams) -> None:
    # The notes' trap: mandatory onboard drop-offs made first-solution strategies fail. These
    # are long overdue, past the lateness cap, on a rider whose shift is over, with open orders
    # around; a cold solve must still deliver every one of them on their rider.
    onboard = [
        order(f"ob{k}", None, 5 + k, ready=0, due=10, state=OrderState.ONBOARD, rider_id="r0")
        for k in range(3)
    ]
    committed = order("c", 2, 3, due=20, state=OrderState.COMMITTED, rider_id="r1")
    open_orders = [order("A", 1, 4, due=6_000), order("B", 2, 1, due=6_000)]
    problem = line_problem(
        [0, 300, 600, 900, 1_200, 3_000, 3_300, 3_600],
        [*onboard, committed, *open_orders],
        [
            rider("r0", 0, shift_end=100, capacity=3, end_location=0),
            rider("r1", 0, shift_end=5_000),
        ],
        now=2_000,
    )
    for initial in (None, plan_visits(solve_greedy(problem, params))):
        plan = solve_ortools(problem, params, time_limit_s=LIMIT_S, initial=initial)
        assert_valid_plan(problem, plan, params)
        assert_pinned_kept(problem, plan)
        assert not (plan.route_of("r0") or plan.routes[0]).stops[-1].order_id.startswith("A")


# ----------------------------------------------------------------------------- every rule


CASES = [
    dict(n_profiles=3, extras=True),
    dict(start_loaded_share=0.3, closed_share=0.5),
    dict(tight=True, extras=True, pinned_share=0.4),
    dict(non_metric=True, extras=True),
    dict(closed_share=1.0, tight=True, pinned_share=0.5),
    dict(n_profiles=2, start_loaded_share=0.2, extras=True, tight=True, closed_share=0.3),
]


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(3))
def test_every_rule_holds_on_random_problems(seed: int, case: int, warm: bool) -> None:
    problem = random_problem(100 + seed, n_orders=14, n_riders=4, **CASES[case])  # type: ignore[arg-type]
    for params in (
        SolverParams(waiting_cost_per_s=0.5, cost_scale=2.0),
        SolverParams(
            objective="hierarchical",
            vehicle_fixed_cost=1e5,
            distance_cost_per_m=1.0,
            unassigned_penalty=1e7,
        ),
    ):
        initial = plan_visits(solve_greedy(problem, params)) if warm else None
        plan = solve_ortools(problem, params, time_limit_s=0.05, initial=initial)
        assert_valid_plan(problem, plan, params)
        assert_pinned_kept(problem, plan)
