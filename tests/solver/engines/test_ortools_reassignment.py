"""Soft assignments in the OR-Tools engine: the reassignment cost is priced exactly (a move to
another rider, or out of the plan), frozen orders stay on their rider, and every plan is valid
with its ``reassignment`` term and ``stats.reassigned`` right."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.ortools import _build_layout, _build_model, _model_compatible, solve_ortools
from solver.engines.search import plan_visits
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind
from solver.routes import Visit, build_plan
from solver.stability import freeze, moved_orders
from tests.solver.conftest import line_problem, order, random_problem, rider, travel_lateness

LIMIT_S = 0.1


def served_by(plan: Plan, order_id: str) -> str | None:
    """The rider whose route drops ``order_id`` off (None: left out)."""
    for route in plan.routes:
        if any(s.order_id == order_id and s.kind is StopKind.DROPOFF for s in route.stops):
            return route.rider_id
    return None


def with_assignments(problem: Problem, assigned: dict[str, str | None]) -> Problem:
    """``problem`` with ``assigned_rider_id`` set on the orders named in ``assigned``."""
    orders = tuple(
        dataclasses.replace(o, assigned_rider_id=assigned[o.id]) if o.id in assigned else o
        for o in problem.orders
    )
    return dataclasses.replace(problem, orders=orders)


def two_riders(gap: float, **order_kw: object) -> Problem:
    """Rider A at 0, rider B at ``gap``; order X picked up 10 m past B and dropped 10 m further
    on, assigned to A: A serves it for ``gap + 20``, B for 20."""
    return line_problem(
        [0, gap, gap + 10, gap + 20],
        [order("X", 2, 3, assigned_rider_id="A", **order_kw)],
        [rider("A", 0), rider("B", 1)],
    )


# ------------------------------------------------------------------------ kept or moved
@pytest.mark.parametrize("scale", [1.0, 2.0])
@pytest.mark.parametrize(
    ("gap", "rider_id", "objective", "moved"),
    [
        (250, "A", 270, 0),  # B saves 250 < 300: kept on A
        (350, "B", 320, 1),  # B saves 350 > 300: moved, paying 300
    ],
)
def test_an_assigned_order_moves_only_when_the_saving_beats_the_cost(
    gap: float, rider_id: str, objective: float, moved: int, scale: float
) -> None:
    problem = two_riders(gap)
    params = travel_lateness(reassignment_cost=300.0, freeze_horizon_s=0, cost_scale=scale)
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    check = assert_valid_plan(problem, plan, params)
    assert served_by(plan, "X") == rider_id
    assert plan.stats.objective == pytest.approx(objective)
    assert plan.stats.reassigned == moved
    assert check.terms["reassignment"] == 300.0 * moved
    # the greedy engine (the kernel's exact pricing) makes the same call
    assert served_by(solve_greedy(problem, params), "X") == rider_id


def test_without_a_reassignment_cost_the_cheapest_rider_serves() -> None:
    problem = two_riders(250)
    params = travel_lateness(reassignment_cost=0.0, freeze_horizon_s=0)
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert served_by(plan, "X") == "B"
    assert plan.stats.reassigned == 1  # counted, priced at 0
    assert plan.stats.objective == pytest.approx(20)


def test_the_dimension_is_added_only_when_an_assignment_is_priced() -> None:
    plain = two_riders(250)
    unassigned = with_assignments(plain, {"X": None})
    absent = with_assignments(plain, {"X": "nobody"})
    priced = travel_lateness(freeze_horizon_s=0)
    free = travel_lateness(reassignment_cost=0.0, freeze_horizon_s=0)
    for problem, params, expected in [
        (plain, priced, True),
        (plain, free, False),
        (unassigned, priced, False),
        (absent, priced, False),  # a constant cost: nothing to model
    ]:
        model = _build_model(problem, params, _build_layout(problem))
        assert ("Reassign" in model.routing.GetAllDimensionNames()) is expected


# ------------------------------------------------------------------------ left out
@pytest.mark.parametrize(
    ("assigned", "rider_id", "objective", "moved"),
    [
        # serving on A costs 1150; leaving out 1000, + 300 when assigned to a known rider
        (None, None, 1000, 0),  # 1150 > 1000: left out
        ("A", "A", 1150, 0),  # 1150 < 1000 + 300: the move out costs too much
        ("B", None, 1300, 1),  # on A 1150 + 300 > out 1000 + 300 (B is far away)
        ("nobody", None, 1300, 1),  # absent rider: moved whatever, so as if not assigned
    ],
)
def test_leaving_an_assigned_order_out_pays_the_reassignment_cost_too(
    assigned: str | None, rider_id: str | None, objective: float, moved: int
) -> None:
    problem = line_problem(
        [0, -5_000, 575, 1_150],
        [order("X", 2, 3, assigned_rider_id=assigned)],
        [rider("A", 0), rider("B", 1)],
    )
    params = travel_lateness(
        unassigned_penalty=1_000.0, reassignment_cost=300.0, freeze_horizon_s=0
    )
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert served_by(plan, "X") == rider_id
    assert plan.stats.objective == pytest.approx(objective)
    assert plan.stats.reassigned == moved
    greedy = solve_greedy(problem, params)
    assert served_by(greedy, "X") == rider_id
    assert greedy.stats.objective == pytest.approx(objective)


# ------------------------------------------------------------------------ frozen
def test_a_frozen_order_stays_on_its_rider_whatever_it_costs() -> None:
    problem = two_riders(2_000, assigned_pickup_s=100)  # B saves 2000 >> 300
    params = travel_lateness(freeze_horizon_s=300)
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, plan, params)
    assert served_by(plan, "X") == "A"
    assert plan.stats.reassigned == 0
    # a warm start made before the freeze, with the order on B, does not move it either
    initial: dict[str, list[Visit]] = {"B": [("X", StopKind.PICKUP), ("X", StopKind.DROPOFF)]}
    assert _model_compatible(freeze(problem, params), initial) == {}  # not the whole start lost
    warm = solve_ortools(problem, params, time_limit_s=LIMIT_S, initial=initial)
    assert_valid_plan(problem, warm, params)
    assert served_by(warm, "X") == "A"
    # beyond the horizon it is only priced, and moves
    later = dataclasses.replace(params, freeze_horizon_s=50)
    moved = solve_ortools(problem, later, time_limit_s=LIMIT_S)
    assert_valid_plan(problem, moved, later)
    assert served_by(moved, "X") == "B"
    assert moved.stats.reassigned == 1


# ------------------------------------------------------------------------ properties
def assign_randomly(problem: Problem, seed: int, pickup_times: bool) -> Problem:
    """Open orders assigned at random: to a rider of the problem, to an absent one, or none."""
    rng = np.random.default_rng(seed)
    names = [r.id for r in problem.riders] + ["gone"]
    orders = []
    for o in problem.orders:
        if o.state is OrderState.OPEN and rng.random() < 0.7:
            planned = problem.now_s + int(rng.integers(-120, 1_200)) if pickup_times else None
            o = dataclasses.replace(
                o, assigned_rider_id=str(rng.choice(names)), assigned_pickup_s=planned
            )
        orders.append(o)
    return dataclasses.replace(problem, orders=tuple(orders))


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_orders=st.integers(1, 10),
    n_riders=st.integers(1, 4),
    extras=st.booleans(),
    tight=st.booleans(),
    pickup_times=st.booleans(),
    cost=st.sampled_from([0.0, 50.0, 300.0, 5_000.0]),
    horizon=st.sampled_from([0, 300, 900]),
    scale=st.sampled_from([1.0, 2.0]),
    warm=st.booleans(),
)
def test_plans_with_random_assignments_are_valid(
    seed: int,
    n_orders: int,
    n_riders: int,
    extras: bool,
    tight: bool,
    pickup_times: bool,
    cost: float,
    horizon: int,
    scale: float,
    warm: bool,
) -> None:
    problem = random_problem(
        seed,
        n_orders=n_orders,
        n_riders=n_riders,
        pinned_share=0.2,
        closed_share=0.3,
        extras=extras,
        tight=tight,
    )
    problem = assign_randomly(problem, seed, pickup_times)
    params = SolverParams(reassignment_cost=cost, freeze_horizon_s=horizon, cost_scale=scale)
    initial = plan_visits(solve_greedy(problem, params)) if warm else None
    plan = solve_ortools(problem, params, time_limit_s=0.05, initial=initial)
    check = assert_valid_plan(problem, plan, params)  # the term and stats.reassigned included
    assert plan.stats.reassigned == len(moved_orders(problem.orders, plan.routes))
    assert check.terms["reassignment"] == pytest.approx(cost * plan.stats.reassigned)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_orders=st.integers(2, 10),
    n_riders=st.integers(2, 4),
    horizon=st.sampled_from([0, 300]),
)
def test_with_a_huge_cost_no_assigned_order_leaves_a_warm_start(
    seed: int, n_orders: int, n_riders: int, horizon: int
) -> None:
    # Orders assigned where a plan put them (the others: absent rider or none), a cost far
    # above anything a move could save; OR-Tools, exact here (no delivery-time cost), keeps
    # every assignment and does no worse than the warm start.
    problem = random_problem(seed, n_orders=n_orders, n_riders=n_riders, pinned_share=0.2)
    params = travel_lateness(reassignment_cost=1e7, freeze_horizon_s=horizon)
    start = solve_greedy(problem, params)
    rng = np.random.default_rng(seed)
    assigned: dict[str, str | None] = {}
    for o in problem.orders:
        if o.state is OrderState.OPEN:
            on = served_by(start, o.id)
            assigned[o.id] = on if on is not None else str(rng.choice(["gone", ""])) or None
    problem = with_assignments(problem, assigned)
    initial = plan_visits(start)
    warm = build_plan(problem, params, initial, start.unassigned, engine=Engine.GREEDY)
    assert warm.stats.reassigned == sum(1 for a in assigned.values() if a == "gone")
    plan = solve_ortools(problem, params, time_limit_s=LIMIT_S, initial=initial)
    check = assert_valid_plan(problem, plan, params)
    for order_id, rider_id in assigned.items():
        if rider_id is not None and rider_id != "gone":
            assert served_by(plan, order_id) == rider_id, order_id
    assert plan.stats.reassigned == warm.stats.reassigned
    assert check.objective <= warm.stats.objective + 1e-6 * warm.stats.objective
