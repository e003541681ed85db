"""The "can this order be served alone" screen: each reason with its one wording, the same in the
greedy and the OR-Tools engine."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.ortools import solve_ortools
from solver.engines.screen import AloneScreen
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Unassigned, UnassignedReason
from tests.solver.conftest import line_problem, order, random_problem, rider, travel_lateness

Why = UnassignedReason
ALONE = (Why.NO_RIDERS, Why.CAPACITY, Why.UNREACHABLE_IN_TIME)
"""The reasons of orders no rider can serve alone."""


def open_orders(problem: Problem) -> list[int]:
    return [o for o, x in enumerate(problem.orders) if x.state is OrderState.OPEN]


def screened(problem: Problem, params: SolverParams) -> AloneScreen:
    return AloneScreen(problem, params, open_orders(problem))


def both_engines(problem: Problem, params: SolverParams) -> tuple[Unassigned, ...]:
    """The unassigned orders of the greedy plan, after checking that both plans are valid and
    that OR-Tools (without the greedy reasons) leaves the same orders out for the same reasons."""
    greedy = solve_greedy(problem, params)
    ortools = solve_ortools(problem, params, time_limit_s=0.05)
    assert_valid_plan(problem, greedy, params)
    assert_valid_plan(problem, ortools, params)
    assert ortools.unassigned == greedy.unassigned
    return greedy.unassigned


# ------------------------------------------------------------------- each reason, one wording

ON_A_LINE = [0, 10, 20]

CASES = {
    "no riders": (
        line_problem(ON_A_LINE, [order("a", 1, 2)], []),
        travel_lateness(),
        Why.NO_RIDERS,
        "the problem has no riders",
    ),
    "every shift has ended": (
        line_problem(ON_A_LINE, [order("a", 1, 2)], [rider("r1", shift_end=50)], now=100),
        travel_lateness(),
        Why.NO_RIDERS,
        "every rider's shift has ended (now 100)",
    ),
    "capacity": (
        line_problem(ON_A_LINE, [order("a", 1, 2, size=5)], [rider("r1", capacity=3)]),
        travel_lateness(),
        Why.CAPACITY,
        "size 5 > largest rider capacity 3",
    ),
    "lateness cap": (
        line_problem(ON_A_LINE, [order("a", 1, 2, due=5)], [rider("r1")]),
        travel_lateness(max_lateness_s=14),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 15 s after due 5; "
        "breaks: lateness above the cap (15 s > cap 14 s)",
    ),
    "hierarchical due time": (
        line_problem(ON_A_LINE, [order("a", 1, 2, due=15)], [rider("r1")]),
        SolverParams(objective="hierarchical", vehicle_fixed_cost=1e6, unassigned_penalty=1e8),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 5 s after due 15; "
        "breaks: lateness above the cap (5 s > cap 0 s)",
    ),
    "shift end": (
        line_problem([0, 10, 40], [order("a", 1, 2)], [rider("r1", shift_end=39)]),
        travel_lateness(),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 0 s after due 10000; "
        "breaks: drop-off after the shift end (arrival 40 > shift end 39)",
    ),
    "pickup latest": (
        line_problem(ON_A_LINE, [order("a", 1, 2, pickup_latest_s=9)], [rider("r1")]),
        travel_lateness(),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 0 s after due 10000; "
        "breaks: pickup after pickup_latest_s (pickup 10 > latest 9)",
    ),
    "time in bag": (
        line_problem(ON_A_LINE, [order("a", 1, 2, max_in_bag_s=5)], [rider("r1")]),
        travel_lateness(),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 0 s after due 10000; "
        "breaks: time in bag above max_in_bag_s (10 s > max 5 s)",
    ),
    "return to the depot": (
        line_problem([0, 10, 30], [order("a", 1, 2)], [rider("r1", shift_end=50, end_location=0)]),
        travel_lateness(),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r1, drop-off 0 s after due 10000; "
        "breaks: return to the depot after the shift end (back 60 > shift end 50)",
    ),
    "the least late rider, every rule it breaks": (
        line_problem(
            [0, 10, 20, 5],
            [order("a", 1, 2, due=0, pickup_latest_s=4)],
            [rider("r1", 0), rider("r2", 3, shift_end=14)],
        ),
        travel_lateness(max_lateness_s=5),
        Why.UNREACHABLE_IN_TIME,
        "best alone: rider r2, drop-off 15 s after due 0; "
        "breaks: drop-off after the shift end (arrival 15 > shift end 14), "
        "lateness above the cap (15 s > cap 5 s), "
        "pickup after pickup_latest_s (pickup 5 > latest 4)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_reason_is_found_with_its_wording(case: str) -> None:
    problem, params, reason, detail = CASES[case]
    expected = Unassigned("a", reason, detail)
    assert screened(problem, params).reason(0) == expected
    assert both_engines(problem, params) == (expected,)


def test_the_capacity_is_the_whole_bag_not_what_the_onboard_orders_leave() -> None:
    # r1 carries c (size 2 of 3): a (size 2) fits after c's drop-off, so alone it is servable.
    onboard = order("c", None, 3, size=2, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem(
        [0, 10, 20, 5], [onboard, order("a", 1, 2, size=2)], [rider("r1", capacity=3)]
    )
    assert AloneScreen(problem, travel_lateness(), [1]).reason(1) is None
    assert both_engines(problem, travel_lateness()) == ()


def test_an_order_some_rider_can_serve_alone_has_no_screen_reason() -> None:
    problem = line_problem(ON_A_LINE, [order("a", 1, 2, due=5)], [rider("r1")])
    screen = screened(problem, travel_lateness(max_lateness_s=15))
    assert screen.reason(0) is None
    assert screen.late[0].tolist() == [15.0]


def test_not_profitable_wording() -> None:
    problem = line_problem([0, 10, 20, -30], [order("a", 1, 2)], [rider("r1"), rider("r2", 3)])
    params = travel_lateness(unassigned_penalty=19.0)
    screen = screened(problem, params)
    assert screen.cheapest_alone(0) == (20.0, 0)
    assert screen.left_out(0) == Unassigned(
        "a",
        Why.NOT_PROFITABLE,
        "cheapest service alone (rider r1) costs 20.0 > unassigned penalty 19",
    )
    (greedy,) = solve_greedy(problem, params).unassigned
    assert greedy == Unassigned(
        "a", Why.NOT_PROFITABLE, "cheapest insertion (rider r1) costs 20.0 > unassigned penalty 19"
    )
    (ortools,) = solve_ortools(problem, params, time_limit_s=0.05).unassigned
    assert ortools == screen.left_out(0)


def test_the_alone_cost_counts_every_term() -> None:
    # r1 at 0, a: 10 -> 20 ready at 15, closed route back to 0: 40 s (and m) of travel, 5 s of
    # waiting, delivered at 25: 15 s late and 25 s after now.
    problem = line_problem(
        ON_A_LINE, [order("a", 1, 2, ready=15, due=10)], [rider("r1", end_location=0)]
    )
    params = SolverParams(
        travel_cost_per_s=1.0,
        distance_cost_per_m=0.5,
        waiting_cost_per_s=2.0,
        lateness_cost_per_s=3.0,
        delivery_time_cost_per_s=0.25,
        vehicle_fixed_cost=7.0,
    )
    cost, r = screened(problem, params).cheapest_alone(0)
    assert r == 0
    assert cost == pytest.approx(40 + 0.5 * 40 + 2 * 5 + 3 * 15 + 0.25 * 25 + 7)


def test_no_feasible_insertion_wording() -> None:
    # The bag is full with c until its far drop-off; b alone would be in time.
    onboard = order("c", None, 3, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem(
        [0, 10, 20, 100], [onboard, order("b", 1, 2, due=20)], [rider("r1", 0, capacity=1)]
    )
    params = travel_lateness(max_lateness_s=0)
    screen = AloneScreen(problem, params, [1])
    alone = "feasible alone on 1 rider(s) (best: r1, 0 s late) but "
    assert screen.no_feasible_insertion(1, 3) == Unassigned(
        "b", Why.NO_FEASIBLE_INSERTION, alone + "at none of 3 positions in the current routes"
    )
    assert screen.left_out(1) == Unassigned(
        "b",
        Why.NO_FEASIBLE_INSERTION,
        alone + "the search found no place for it among the other orders",
    )
    assert solve_greedy(problem, params).unassigned == (screen.no_feasible_insertion(1, 3),)
    assert solve_ortools(problem, params, time_limit_s=0.05).unassigned == (screen.left_out(1),)


def test_no_orders_to_screen() -> None:
    problem = line_problem(ON_A_LINE, [order("a", 1, 2)], [])
    screen = AloneScreen(problem, travel_lateness(), [])
    assert screen.fits.shape == (0, 0)


# ------------------------------------------------------------------- greedy and OR-Tools agree

PARAMS = {
    "delivery": SolverParams(),
    "strict": travel_lateness(max_lateness_s=0, unassigned_penalty=2_000.0),
    "hierarchical": SolverParams(
        objective="hierarchical",
        vehicle_fixed_cost=1e6,
        distance_cost_per_m=1.0,
        unassigned_penalty=1e9,
    ),
}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_orders=st.integers(1, 6),
    n_riders=st.integers(0, 3),
    tight=st.booleans(),
    extras=st.booleans(),
    closed_share=st.sampled_from([0.0, 0.5, 1.0]),
    start_loaded_share=st.sampled_from([0.0, 0.3]),
    later_s=st.sampled_from([0, 0, 2_500]),
    oversize=st.booleans(),
    params=st.sampled_from(list(PARAMS.values())),
)
def test_greedy_and_ortools_give_the_same_reason_to_orders_no_rider_can_serve_alone(
    seed: int,
    n_orders: int,
    n_riders: int,
    tight: bool,
    extras: bool,
    closed_share: float,
    start_loaded_share: float,
    later_s: int,
    oversize: bool,
    params: SolverParams,
) -> None:
    drawn = random_problem(
        seed,
        n_orders=n_orders,
        n_riders=n_riders,
        pinned_share=0.3 if n_riders else 0.0,
        start_loaded_share=start_loaded_share,
        closed_share=closed_share,
        extras=extras,
        tight=tight,
    )
    orders = list(drawn.orders)
    if oversize and orders[0].state is OrderState.OPEN:
        orders[0] = dataclasses.replace(orders[0], size=6)  # capacities are 2 to 5
    problem = Problem.build(  # later_s on: (tight) shifts may all have ended
        now_s=drawn.now_s + later_s,
        orders=orders,
        riders=drawn.riders,
        time_s=drawn.time_s,
        distance_m=drawn.distance_m,
    )
    screen = screened(problem, params)
    alone = {
        problem.orders[o].id: why
        for o in open_orders(problem)
        if (why := screen.reason(o)) is not None
    }
    greedy = {u.order_id: u for u in solve_greedy(problem, params).unassigned}
    ortools = {u.order_id: u for u in solve_ortools(problem, params, time_limit_s=0.02).unassigned}
    for order_id, why in alone.items():
        assert greedy.get(order_id) == why
        assert ortools.get(order_id) == why
    for u in (*greedy.values(), *ortools.values()):
        assert u.reason not in ALONE or alone.get(u.order_id) == u
