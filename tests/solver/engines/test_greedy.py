"""The greedy engine on hand-made problems: optimal answers, binding constraints, reasons."""

from __future__ import annotations

import time

import numpy as np
import pytest

import solver.engines.greedy as greedy
from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, UnassignedReason
from solver.routes import Visit
from tests.solver.conftest import line_problem, order, random_problem, rider, travel_lateness

P, D = StopKind.PICKUP, StopKind.DROPOFF


def solve(problem: Problem, params: SolverParams | None = None, **kw: object) -> Plan:
    """Solve greedily and insist that the checker accepts the plan."""
    params = params or travel_lateness()
    plan = solve_greedy(problem, params, **kw)  # type: ignore[arg-type]
    assert_valid_plan(problem, plan, params)
    return plan


def sequence(plan: Plan, rider_id: str) -> list[tuple[str, str]]:
    """The (order id, kind) visits of ``rider_id``'s route."""
    route = plan.route_of(rider_id)
    assert route is not None
    return [(s.order_id, s.kind.value) for s in route.stops]


def reasons(plan: Plan) -> dict[str, UnassignedReason]:
    return {u.order_id: u.reason for u in plan.unassigned}


def visits_of(plan: Plan) -> dict[str, list[Visit]]:
    return {r.rider_id: [(s.order_id, s.kind) for s in r.stops] for r in plan.routes}


# ---------------------------------------------------------------- known optimal plans


def test_two_orders_in_a_row_on_a_line() -> None:
    problem = line_problem(
        [0, 10, 20, 30, 40], [order("a", 1, 2), order("b", 3, 4)], [rider("r1", 0)]
    )
    plan = solve(problem)
    assert sequence(plan, "r1") == [
        ("a", "pickup"),
        ("a", "dropoff"),
        ("b", "pickup"),
        ("b", "dropoff"),
    ]
    route = plan.route_of("r1")
    assert route is not None
    assert [s.arrival_s for s in route.stops] == [10, 20, 30, 40]
    assert [s.load_after for s in route.stops] == [1, 0, 1, 0]
    assert plan.stats.objective == 40.0
    assert plan.stats.engine is Engine.GREEDY
    assert "greedy" in plan.stats.phase_s


def test_nested_orders_are_batched() -> None:
    # a: 10 -> 50 and b: 12 -> 48 share the ride: 0 -> 10 -> 12 -> 48 -> 50 is optimal (50 s).
    problem = line_problem(
        [0, 10, 12, 48, 50], [order("a", 1, 4), order("b", 2, 3)], [rider("r1", 0)]
    )
    plan = solve(problem)
    assert sequence(plan, "r1") == [
        ("a", "pickup"),
        ("b", "pickup"),
        ("b", "dropoff"),
        ("a", "dropoff"),
    ]
    route = plan.route_of("r1")
    assert route is not None
    assert [s.arrival_s for s in route.stops] == [10, 12, 48, 50]
    assert route.travel_time_s == 50


def test_service_times_and_waiting_at_the_merchant() -> None:
    problem = line_problem(
        [0, 10, 20],
        [order("a", 1, 2, ready=25, pickup_service_s=5, dropoff_service_s=7)],
        [rider("r1", 0)],
    )
    params = SolverParams(waiting_cost_per_s=2.0)
    plan = solve(problem, params)
    route = plan.route_of("r1")
    assert route is not None
    (pick, drop) = route.stops
    assert (pick.arrival_s, pick.start_s, pick.departure_s) == (10, 25, 30)
    assert (drop.arrival_s, drop.start_s, drop.departure_s) == (40, 40, 47)
    assert route.waiting_s == 15
    assert plan.stats.objective_terms["waiting"] == 30.0


def test_delivery_time_cost_sends_a_second_rider_instead_of_bundling() -> None:
    # a: 0 -> -40 and b: 0 -> 40; r1 waits at the merchant, r2 is 50 m away. Bundling both on
    # r1 rides 120 s and delivers at 40 and 120 s (sum 160); sending r2 for b rides 130 s and
    # delivers at 40 and 90 s (sum 130). Travel alone bundles; a delivery-time cost splits.
    problem = line_problem(
        [0, -40, 40, 50],
        [order("a", 0, 1), order("b", 0, 2)],
        [rider("r1", 0), rider("r2", 3)],
    )
    bundled = solve(problem, travel_lateness())
    assert not sequence(bundled, "r2")
    assert bundled.stats.objective_terms["delivery"] == 0.0
    split = solve(problem, SolverParams(delivery_time_cost_per_s=1.0))
    assert sequence(split, "r1") == [("a", "pickup"), ("a", "dropoff")]
    assert sequence(split, "r2") == [("b", "pickup"), ("b", "dropoff")]
    assert split.stats.objective_terms["delivery"] == 40.0 + 90.0
    assert split.stats.objective == 130.0 + 130.0


def test_nearest_rider_takes_the_order() -> None:
    problem = line_problem(
        [0, 10, 20, 100], [order("a", 1, 2)], [rider("far", 3), rider("near", 0)]
    )
    plan = solve(problem)
    assert sequence(plan, "near") == [("a", "pickup"), ("a", "dropoff")]
    assert sequence(plan, "far") == []


def test_profiles_change_the_travel_times() -> None:
    # Rider "bike" is twice as fast: it gets the order although it starts a bit further away.
    riders = [rider("walk", 0, profile=0), rider("bike", 3, profile=1)]
    problem = line_problem([10, 20, 40, 0], [order("a", 1, 2, due=25)], riders, speeds=(1.0, 2.0))
    plan = solve(problem, SolverParams(lateness_cost_per_s=0.0))
    assert sequence(plan, "bike") == [("a", "pickup"), ("a", "dropoff")]


# ---------------------------------------------------------------- each constraint binds


def test_capacity_binds() -> None:
    orders = [order("a", 1, 3), order("b", 2, 4)]
    positions = [0, 10, 11, 50, 51]
    roomy = solve(line_problem(positions, orders, [rider("r1", 0, capacity=2)]))
    tight = solve(line_problem(positions, orders, [rider("r1", 0, capacity=1)]))
    roomy_route, tight_route = roomy.route_of("r1"), tight.route_of("r1")
    assert roomy_route is not None and tight_route is not None
    assert roomy_route.travel_time_s == 51
    assert max(s.load_after for s in roomy_route.stops) == 2
    assert max(s.load_after for s in tight_route.stops) == 1
    assert tight_route.travel_time_s > 51


def test_ready_time_binds() -> None:
    def drop_time(ready: int) -> int:
        problem = line_problem([0, 10, 20], [order("a", 1, 2, ready=ready)], [rider("r1", 0)])
        route = solve(problem).route_of("r1")
        assert route is not None
        return route.stops[1].arrival_s

    assert drop_time(0) == 20
    assert drop_time(100) == 110


def test_lateness_cap_binds() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, due=5)], [rider("r1", 0)])
    plan = solve(problem, SolverParams(max_lateness_s=15))
    assert plan.stats.late_orders == 1
    assert plan.stats.objective_terms["lateness"] == 150.0
    plan = solve(problem, SolverParams(max_lateness_s=14))
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}
    assert "15 s after due 5" in plan.unassigned[0].detail


def test_max_in_bag_binds() -> None:
    # Batching a (10 -> 40) with b (20 -> 45) costs nothing extra, but b's 10 s of handover at
    # its pickup keeps a 40 s in the bag; with a 35 s limit a must not wait for b.
    def plan_for(limit: int | None) -> Plan:
        orders = [
            order("a", 1, 3, due=1_000, max_in_bag_s=limit),
            order("b", 2, 4, due=2_000, pickup_service_s=10),
        ]
        return solve(line_problem([0, 10, 20, 40, 45], orders, [rider("r1", 0)]))

    free = plan_for(None).route_of("r1")
    assert free is not None
    assert [s.order_id + s.kind.value[0] for s in free.stops] == ["ap", "bp", "ad", "bd"]
    limited = plan_for(35)
    route = limited.route_of("r1")
    assert route is not None
    stops = {(s.order_id, s.kind): s for s in route.stops}
    assert stops["a", D].arrival_s - stops["a", P].departure_s <= 35
    assert route.travel_time_s > free.travel_time_s


def test_shift_end_binds() -> None:
    orders = [order("a", 1, 2)]
    positions = [0, 10, 40]
    plan = solve(line_problem(positions, orders, [rider("r1", 0, shift_end=40)]))
    assert sequence(plan, "r1") == [("a", "pickup"), ("a", "dropoff")]
    plan = solve(line_problem(positions, orders, [rider("r1", 0, shift_end=39)]))
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}
    assert "drop-off after the shift end" in plan.unassigned[0].detail
    two = [rider("r1", 0, shift_end=39), rider("r2", 0, shift_end=3_600)]
    plan = solve(line_problem(positions, orders, two))
    assert sequence(plan, "r2") == [("a", "pickup"), ("a", "dropoff")]


def test_pinning_binds() -> None:
    riders = [rider("r1", 0), rider("r2", 3)]
    positions = [0, 10, 20, 100]
    plan = solve(line_problem(positions, [order("a", 1, 2)], riders))
    assert sequence(plan, "r1") == [("a", "pickup"), ("a", "dropoff")]
    committed = order("a", 1, 2, state=OrderState.COMMITTED, rider_id="r2")
    plan = solve(line_problem(positions, [committed], riders))
    assert sequence(plan, "r2") == [("a", "pickup"), ("a", "dropoff")]
    assert sequence(plan, "r1") == []


def test_pickup_latest_binds() -> None:
    def plan_for(latest: int) -> Plan:
        problem = line_problem(
            [0, 10, 20, 30, 40],
            [order("a", 1, 2, due=50), order("b", 3, 4, due=100, pickup_latest_s=latest)],
            [rider("r1", 0), rider("r2", 4)],
        )
        return solve(problem)

    # r1 picks b up after a at 30; with pickup_latest 29, r2 (10 s from b's merchant) must.
    assert sequence(plan_for(30), "r1")[2:] == [("b", "pickup"), ("b", "dropoff")]
    assert sequence(plan_for(29), "r2") == [("b", "pickup"), ("b", "dropoff")]
    problem = line_problem([0, 10, 20], [order("b", 1, 2, pickup_latest_s=9)], [rider("r1", 0)])
    plan = solve(problem)
    assert reasons(plan) == {"b": UnassignedReason.UNREACHABLE_IN_TIME}
    assert "pickup after pickup_latest_s" in plan.unassigned[0].detail


def test_dropoff_earliest_binds() -> None:
    def drop(earliest: int | None) -> tuple[int, int]:
        problem = line_problem(
            [0, 10, 20], [order("a", 1, 2, dropoff_earliest_s=earliest)], [rider("r1", 0)]
        )
        route = solve(problem).route_of("r1")
        assert route is not None
        return route.stops[1].arrival_s, route.stops[1].start_s

    assert drop(None) == (20, 20)
    assert drop(60) == (20, 60)


def test_closed_route_binds() -> None:
    orders = [order("a", 1, 2)]
    positions = [0, 10, 30]
    plan = solve(line_problem(positions, orders, [rider("r1", 0, shift_end=50)]))
    assert sequence(plan, "r1") == [("a", "pickup"), ("a", "dropoff")]
    closed = [rider("r1", 0, shift_end=50, end_location=0)]
    plan = solve(line_problem(positions, orders, closed))
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}
    assert "return to the depot after the shift end" in plan.unassigned[0].detail
    closed = [rider("r1", 0, shift_end=60, end_location=0)]
    plan = solve(line_problem(positions, orders, closed))
    route = plan.route_of("r1")
    assert route is not None
    assert route.travel_time_s == 60  # the return leg counts


def test_hierarchical_due_binds() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, due=15)], [rider("r1", 0)])
    plan = solve(problem, travel_lateness())
    assert plan.stats.late_orders == 1
    plan = solve(
        problem,
        SolverParams(objective="hierarchical", vehicle_fixed_cost=1e6, unassigned_penalty=1e8),
    )
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}


def test_vehicle_cost_packs_orders_onto_fewer_riders() -> None:
    orders = [order("a", 1, 2), order("b", 3, 4)]
    positions = [0, 10, 20, 100, 110, 90]
    riders = [rider("r1", 0), rider("r2", 5)]
    spread = solve(line_problem(positions, orders, riders))
    assert sum(1 for r in spread.routes if r.stops) == 2
    params = SolverParams(vehicle_fixed_cost=1_000.0)
    packed = solve(line_problem(positions, orders, riders), params)
    assert sum(1 for r in packed.routes if r.stops) == 1


# ---------------------------------------------------------------- pinned orders


def test_onboard_orders_are_never_dropped() -> None:
    # The onboard order is hopelessly late and its rider's shift is over: it is still routed.
    onboard = order("c", None, 2, due=-1_000, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem([0, 10, 500], [onboard], [rider("r1", 0, shift_end=10)], now=0)
    plan = solve(problem, travel_lateness(max_lateness_s=0))
    assert sequence(plan, "r1") == [("c", "dropoff")]
    assert plan.unassigned == ()
    assert plan.stats.late_orders == 1


def test_committed_orders_stay_on_their_rider_even_when_late() -> None:
    committed = order("a", 1, 2, due=0, state=OrderState.COMMITTED, rider_id="r2")
    problem = line_problem(
        [0, 10, 20, 1_000], [committed, order("b", 1, 2)], [rider("r1", 0), rider("r2", 3)]
    )
    plan = solve(problem, travel_lateness(max_lateness_s=0))
    route = plan.route_of("r2")
    assert route is not None
    drop = next(s for s in route.stops if s.order_id == "a" and s.kind is D)
    assert drop.lateness_s == 1_000  # 990 s to the merchant, 10 s to the customer
    assert ("a", "pickup") in sequence(plan, "r2")


def test_pinned_orders_share_capacity_with_open_ones() -> None:
    # r1 carries c (size 2 of 3); the open order (size 2) fits only after c's drop-off.
    onboard = order("c", None, 3, size=2, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem(
        [0, 10, 20, 5], [onboard, order("a", 1, 2, size=2)], [rider("r1", 0, capacity=3)]
    )
    plan = solve(problem)
    assert sequence(plan, "r1") == [("c", "dropoff"), ("a", "pickup"), ("a", "dropoff")]


# ---------------------------------------------------------------- unassigned reasons


def test_reason_capacity() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, size=5)], [rider("r1", capacity=3)])
    plan = solve(problem)
    assert reasons(plan) == {"a": UnassignedReason.CAPACITY}
    assert plan.unassigned[0].detail == "size 5 > largest rider capacity 3"


def test_reason_no_riders() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2)], [])
    plan = solve(problem)
    assert reasons(plan) == {"a": UnassignedReason.NO_RIDERS}
    ended = line_problem(
        [0, 10, 20], [order("a", 1, 2)], [rider("r1", available=0, shift_end=50)], now=100
    )
    plan = solve(ended)
    assert reasons(plan) == {"a": UnassignedReason.NO_RIDERS}
    assert "shift has ended" in plan.unassigned[0].detail


def test_reason_unreachable_in_time() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2, due=0)], [rider("r1", 0), rider("r2", 1)])
    plan = solve(problem, SolverParams(max_lateness_s=5))
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}
    detail = plan.unassigned[0].detail
    assert "best alone: rider r2, drop-off 10 s after due 0" in detail
    assert "lateness above the cap" in detail


def test_reason_not_profitable() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2)], [rider("r1", 0)])
    plan = solve(problem, travel_lateness(unassigned_penalty=19.0))
    assert reasons(plan) == {"a": UnassignedReason.NOT_PROFITABLE}
    assert "costs 20.0 > unassigned penalty 19" in plan.unassigned[0].detail
    plan = solve(problem, travel_lateness(unassigned_penalty=20.0))
    assert plan.unassigned == ()


def test_reason_no_feasible_insertion() -> None:
    # The bag is full with c until its far drop-off; b alone would be in time.
    onboard = order("c", None, 3, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem(
        [0, 10, 20, 100], [onboard, order("b", 1, 2, due=20)], [rider("r1", 0, capacity=1)]
    )
    plan = solve(problem, travel_lateness(max_lateness_s=0))
    assert reasons(plan) == {"b": UnassignedReason.NO_FEASIBLE_INSERTION}
    assert "feasible alone on 1 rider(s)" in plan.unassigned[0].detail


def test_reason_shed_when_the_deadline_has_passed() -> None:
    onboard = order("c", None, 2, state=OrderState.ONBOARD, rider_id="r1")
    problem = line_problem(
        [0, 10, 20], [onboard, order("a", 1, 2), order("b", 1, 2)], [rider("r1", 0)]
    )
    plan = solve(problem, deadline=time.perf_counter() - 1.0)
    assert reasons(plan) == {"a": UnassignedReason.SHED, "b": UnassignedReason.SHED}
    assert sequence(plan, "r1") == [("c", "dropoff")]
    plan = solve(problem, deadline=time.perf_counter() + 60.0)
    assert plan.unassigned == ()


def test_every_reason_is_a_reason_and_orders_appear_once() -> None:
    problem = random_problem(7, n_orders=30, n_riders=3, tight=True, extras=True)
    plan = solve(problem)
    routed = {s.order_id for r in plan.routes for s in r.stops}
    gone = [u.order_id for u in plan.unassigned]
    assert len(gone) == len(set(gone))
    assert routed.isdisjoint(gone)
    assert routed | set(gone) == {o.id for o in problem.orders}
    assert all(isinstance(u.reason, UnassignedReason) and u.detail for u in plan.unassigned)


# ---------------------------------------------------------------- start-loaded orders


def test_start_loaded_orders_fill_the_bag_from_the_start() -> None:
    orders = [order("a", None, 1, size=2), order("b", None, 2, size=2)]
    problem = line_problem([0, 10, 20], orders, [rider("r1", 0, capacity=3), rider("r2", 0)])
    plan = solve(problem)
    for route in plan.routes:
        assert len(route.stops) == 1  # 2 + 2 > 3: r1 cannot carry both from the start


# ---------------------------------------------------------------- initial routes


def test_initial_plan_is_kept_when_still_valid() -> None:
    problem = random_problem(3, n_orders=20, n_riders=4, extras=True, pinned_share=0.3)
    params = SolverParams()
    first = solve(problem, params)
    again = solve(problem, params, initial=visits_of(first))
    assert visits_of(again) == visits_of(first)
    assert again.stats.objective == pytest.approx(first.stats.objective)


def test_initial_plan_is_repaired() -> None:
    onboard = order("c", None, 2, state=OrderState.ONBOARD, rider_id="r2")
    problem = line_problem(
        [0, 10, 20, 30],
        [onboard, order("a", 1, 2, due=20), order("b", 1, 3)],
        [rider("r1", 0), rider("r2", 0)],
        now=0,
    )
    initial: dict[str, list[Visit]] = {
        "r1": [("gone", P), ("c", D), ("b", D), ("b", P), ("a", P), ("a", D)],
        "ghost": [("a", P)],
    }
    plan = solve(problem, SolverParams(), initial=initial)
    assert ("c", "dropoff") in sequence(plan, "r2")
    kept = [v for v in sequence(plan, "r1") if v[0] == "a"]
    assert kept == [("a", "pickup"), ("a", "dropoff")]
    assert plan.unassigned == ()


def test_initial_orders_that_became_infeasible_are_reinserted_or_dropped() -> None:
    positions = [0, 10, 20]
    orders = [order("a", 1, 2, due=100)]
    initial: dict[str, list[Visit]] = {"r1": [("a", P), ("a", D)]}
    later = line_problem(positions, orders, [rider("r1", 0), rider("r2", 1)], now=200)
    plan = solve(later, SolverParams(max_lateness_s=100), initial=initial)
    assert reasons(plan) == {"a": UnassignedReason.UNREACHABLE_IN_TIME}
    plan = solve(later, SolverParams(max_lateness_s=115), initial=initial)
    assert sequence(plan, "r2") == [("a", "pickup"), ("a", "dropoff")]


def test_unknown_ordering_is_rejected() -> None:
    problem = line_problem([0, 10, 20], [order("a", 1, 2)], [rider("r1", 0)])
    with pytest.raises(ValueError, match="ordering"):
        solve_greedy(problem, SolverParams(), ordering="random")


@pytest.mark.parametrize("ordering", greedy.ORDERINGS)
def test_every_ordering_gives_valid_plans(ordering: str) -> None:
    problem = random_problem(11, n_orders=25, n_riders=5, pinned_share=0.2, extras=True)
    solve(problem, SolverParams(), ordering=ordering)


def test_no_orders_and_no_riders() -> None:
    empty = Problem.build(now_s=0, orders=[], riders=[], time_s=np.zeros((1, 1, 1)))
    plan = solve(empty)
    assert plan.routes == () and plan.unassigned == ()
    idle = line_problem([0], [], [rider("r1", 0)])
    plan = solve(idle)
    assert plan.stats.objective == 0.0


def test_a_pinned_order_that_fits_nowhere_still_respects_the_capacity() -> None:
    """Every position of committed c breaks a rule: after b's drop-off, open order a gets late
    and the rider back after the shift end; before it, the bag holds b and c (capacity 1).
    c goes where the capacity holds (a is taken out), not at the cheapest position ignoring it
    (first, with b still in the bag)."""
    positions = [0, 10, 20, 5]
    orders = [
        order("a", 3, 1, due=40),
        order("b", None, 2, state=OrderState.ONBOARD, rider_id="r1"),
        order("c", 3, 1, state=OrderState.COMMITTED, rider_id="r1"),
    ]
    problem = line_problem(
        positions, orders, [rider("r1", 0, capacity=1, shift_end=50, end_location=0)]
    )
    initial: dict[str, list[Visit]] = {"r1": [("b", D), ("a", P), ("a", D)]}
    plan = solve(problem, travel_lateness(max_lateness_s=0), initial=initial)
    assert sequence(plan, "r1")[:3] == [("b", "dropoff"), ("c", "pickup"), ("c", "dropoff")]
    assert "a" in reasons(plan)
