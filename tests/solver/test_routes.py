"""Timing visit sequences: a route's times follow the model's rules stop by stop (travel, ready
times, service, earliest drop-offs, lateness, loads), a hand-timed route, the start load, the
objective's terms, and plans whose numbers the independent checker recomputes exactly, for any
visit sequences (feasible or not)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import TERM_NAMES, assert_valid_plan, check_plan
from solver.engines.greedy import solve_greedy
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Route, Shed, ShedReason, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan, build_route, objective_terms, start_load
from tests.solver.conftest import line_problem, order, random_problem, rider

ALL_TERMS = SolverParams(
    waiting_cost_per_s=0.3,
    distance_cost_per_m=0.02,
    vehicle_fixed_cost=50.0,
    unassigned_penalty=5_000.0,
)


def random_visits(
    problem: Problem, seed: int, route_share: float = 0.7
) -> tuple[dict[str, list[Visit]], list[Unassigned]]:
    """Visit sequences that honour only precedence and pinning (capacity, windows and shifts
    may well be broken): pinned orders on their rider, ``route_share`` of the open orders on a
    random rider, the rest unassigned; stops shuffled, each pickup before its drop-off."""
    rng = np.random.default_rng(seed)
    tokens: dict[str, list[Visit]] = {r.id: [] for r in problem.riders}
    unassigned: list[Unassigned] = []
    for o in problem.orders:
        if o.is_pinned:
            rider_id = o.rider_id
        elif problem.riders and rng.random() < route_share:
            rider_id = problem.riders[int(rng.integers(len(problem.riders)))].id
        else:
            unassigned.append(Unassigned(o.id, UnassignedReason.NO_FEASIBLE_INSERTION))
            continue
        assert rider_id is not None
        if o.state is not OrderState.ONBOARD and o.pickup is not None:
            tokens[rider_id].append((o.id, StopKind.PICKUP))
        tokens[rider_id].append((o.id, StopKind.DROPOFF))
    visits: dict[str, list[Visit]] = {}
    for rider_id, seq in tokens.items():
        order_ids = [v[0] for v in seq]
        perm = [order_ids[k] for k in rng.permutation(len(order_ids))]
        seen: set[str] = set()
        out: list[Visit] = []
        for oid in perm:  # the first time an order comes up is its pickup (if it has one)
            has_pickup = (oid, StopKind.PICKUP) in seq
            kind = StopKind.PICKUP if has_pickup and oid not in seen else StopKind.DROPOFF
            seen.add(oid)
            out.append((oid, kind))
        visits[rider_id] = out
    return visits, unassigned


def assert_timed_by_the_rules(problem: Problem, route: Route, visits: Sequence[Visit]) -> None:
    """Every number of ``route`` follows the model's timing rules from the previous stop."""
    r = problem.riders[problem.rider_index[route.rider_id]]
    assert [(s.order_id, s.kind) for s in route.stops] == list(visits)
    times = problem.time_s[r.profile]
    clock, here = problem.start_time(r), r.location
    load = start_load(problem, r, visits)
    waiting = lateness = 0
    for stop in route.stops:
        o = problem.orders[problem.order_index[stop.order_id]]
        assert stop.location == (o.pickup if stop.kind is StopKind.PICKUP else o.dropoff)
        assert stop.arrival_s == clock + int(times[here, stop.location])
        assert stop.start_s >= stop.arrival_s
        if stop.kind is StopKind.PICKUP:
            assert stop.start_s == max(stop.arrival_s, o.ready_s)  # no handover before ready
            assert stop.departure_s == stop.start_s + o.pickup_service_s
            assert stop.lateness_s == 0
            load += o.size
        else:
            earliest = o.dropoff_earliest_s
            assert stop.start_s == max(stop.arrival_s, earliest or stop.arrival_s)
            assert stop.departure_s == stop.start_s + o.dropoff_service_s
            assert stop.lateness_s == max(0, stop.start_s - o.due_s)
            load -= o.size
        assert stop.load_after == load
        waiting += stop.start_s - stop.arrival_s
        lateness += stop.lateness_s
        clock, here = stop.departure_s, stop.location
    assert route.waiting_s == waiting and route.lateness_s == lateness


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n_riders = draw(st.integers(0, 4))
    return random_problem(
        draw(st.integers(0, 2**31 - 1)),
        n_orders=draw(st.integers(0, 10)),
        n_riders=n_riders,
        n_profiles=draw(st.integers(1, 3)),
        pinned_share=draw(st.sampled_from([0.0, 0.4])) if n_riders else 0.0,
        start_loaded_share=draw(st.sampled_from([0.0, 0.3])),
        closed_share=draw(st.sampled_from([0.0, 0.5])),
        extras=draw(st.booleans()),
        non_metric=draw(st.booleans()),
    )


# --------------------------------------------------------------------- any visit sequences
@settings(max_examples=40, deadline=None)
@given(problems(), st.integers(0, 2**31 - 1), st.sampled_from(["delivery", "all", "hier"]))
def test_the_checker_recomputes_every_number_of_any_plan(
    problem: Problem, seed: int, which: str
) -> None:
    """build_plan and the checker share no code: whatever the sequences (broken rules
    included), they agree on every time, load, total and objective term."""
    params = {
        "delivery": SolverParams(),
        "all": ALL_TERMS,
        "hier": SolverParams(
            objective="hierarchical", vehicle_fixed_cost=1e4, distance_cost_per_m=1.0
        ),
    }[which]
    visits, unassigned = random_visits(problem, seed)
    plan = build_plan(problem, params, visits, unassigned, engine=Engine.GREEDY)
    check = check_plan(problem, plan, params)
    mismatches = [v for v in check.violations if "!= recomputed" in v or "neither" in v]
    assert mismatches == []
    assert math.isclose(plan.stats.objective, check.objective, rel_tol=1e-9, abs_tol=1e-6)
    assert set(plan.stats.objective_terms) == set(TERM_NAMES)
    for name in TERM_NAMES:
        assert math.isclose(
            plan.stats.objective_terms[name], check.terms[name], rel_tol=1e-9, abs_tol=1e-6
        )
    assert plan.stats.objective == pytest.approx(sum(plan.stats.objective_terms.values()))
    assert plan.stats.late_orders == check.late_orders
    assert [r.rider_id for r in plan.routes] == [r.id for r in problem.riders]
    for route in plan.routes:
        assert_timed_by_the_rules(problem, route, visits[route.rider_id])


@settings(max_examples=15, deadline=None)
@given(problems())
def test_greedy_visits_rebuilt_are_a_valid_plan_obeying_windows(problem: Problem) -> None:
    params = SolverParams()
    greedy = solve_greedy(problem, params)
    visits = {r.rider_id: [(s.order_id, s.kind) for s in r.stops] for r in greedy.routes}
    plan = build_plan(problem, params, visits, greedy.unassigned, engine=Engine.GREEDY)
    assert plan.routes == greedy.routes
    assert_valid_plan(problem, plan, params)
    for route in plan.routes:
        r = problem.riders[problem.rider_index[route.rider_id]]
        for stop in route.stops:
            o = problem.orders[problem.order_index[stop.order_id]]
            if o.is_pinned:
                continue
            assert stop.arrival_s <= r.shift_end_s
            if stop.kind is StopKind.DROPOFF:
                assert stop.start_s <= o.due_s + params.max_lateness_s
            elif o.pickup_latest_s is not None:
                assert stop.start_s <= o.pickup_latest_s


# ------------------------------------------------------------------------ by hand
def test_a_route_timed_by_hand() -> None:
    """Locations at 0, 100 and 300 m, 1 m/s. The rider leaves 0 at now=10; food at 100 is
    ready at 150 (wait 40 s), handed over in 10 s; the customer at 300 is reached 200 s later
    (arrival 360, due 300: 60 s late), handover 20 s."""
    problem = line_problem(
        [0, 100, 300],
        [order("a", 1, 2, ready=150, due=300, pickup_service_s=10, dropoff_service_s=20)],
        [rider("r", 0, available=5)],
        now=10,
    )
    route = build_route(
        problem, problem.riders[0], [("a", StopKind.PICKUP), ("a", StopKind.DROPOFF)]
    )
    pick, drop = route.stops
    assert (pick.arrival_s, pick.start_s, pick.departure_s, pick.load_after) == (110, 150, 160, 1)
    assert (drop.arrival_s, drop.start_s, drop.departure_s, drop.load_after) == (360, 360, 380, 0)
    assert (pick.lateness_s, drop.lateness_s) == (0, 60)
    assert (route.travel_time_s, route.distance_m, route.waiting_s, route.lateness_s) == (
        300,
        300.0,
        40,
        60,
    )
    assert route.end_s == 380


def test_a_late_available_rider_and_an_earliest_drop_off() -> None:
    """Available at 50 (after now=0): leaves then; the drop-off may not start before 400."""
    problem = line_problem(
        [0, 100],
        [order("a", None, 1, due=1_000, dropoff_earliest_s=400)],
        [rider("r", 0, available=50)],
    )
    [stop] = build_route(problem, problem.riders[0], [("a", StopKind.DROPOFF)]).stops
    assert (stop.arrival_s, stop.start_s, stop.load_after) == (150, 400, 0)


def test_a_closed_route_rides_back_only_when_it_has_stops() -> None:
    problem = line_problem(
        [0, 100, 250],
        [order("a", 1, 2)],
        [rider("r", 0, end_location=0), rider("idle", 1, end_location=0)],
    )
    route = build_route(
        problem, problem.riders[0], [("a", StopKind.PICKUP), ("a", StopKind.DROPOFF)]
    )
    assert route.travel_time_s == 100 + 150 + 250 and route.distance_m == 500.0
    assert route.end_s == 250  # the ride back is counted, not a stop
    empty = build_route(problem, problem.riders[1], [])
    assert empty.stops == () and empty.travel_time_s == 0 and empty.distance_m == 0.0
    assert empty.end_s is None


def test_the_start_load_counts_onboard_and_served_start_loaded_orders() -> None:
    problem = line_problem(
        [0, 10, 20, 30],
        [
            order("bag", None, 1, size=2, state=OrderState.ONBOARD, rider_id="r"),
            order("vrptw", None, 2, size=3),
            order("other", None, 3, size=5),
            order("open", 1, 2, size=7),
        ],
        [rider("r", capacity=20), rider("s", capacity=20)],
    )
    r, s = problem.riders
    assert start_load(problem, r, []) == 2
    assert start_load(problem, r, [("bag", StopKind.DROPOFF), ("vrptw", StopKind.DROPOFF)]) == 5
    assert start_load(problem, s, [("other", StopKind.DROPOFF)]) == 5
    assert start_load(problem, s, [("open", StopKind.PICKUP), ("open", StopKind.DROPOFF)]) == 0


# ----------------------------------------------------------------------- the objective
def test_objective_terms_price_each_quantity_by_its_weight() -> None:
    problem = line_problem(
        [0, 100, 300],
        [order("a", 1, 2, ready=150, due=300), order("b", 1, 2)],
        [rider("r", 0), rider("idle", 0)],
        now=0,
    )
    seq: list[Visit] = [("a", StopKind.PICKUP), ("a", StopKind.DROPOFF)]
    routes = [
        build_route(problem, problem.riders[0], seq),
        build_route(problem, problem.riders[1], []),
    ]
    params = SolverParams(
        travel_cost_per_s=2.0,
        distance_cost_per_m=0.5,
        waiting_cost_per_s=3.0,
        lateness_cost_per_s=7.0,
        delivery_time_cost_per_s=0.25,
        unassigned_penalty=1_000.0,
        vehicle_fixed_cost=11.0,
        reassignment_cost=13.0,
    )
    terms = objective_terms(problem.now_s, params, routes, 1, 2)
    # travel 300 s / 300 m, waiting 50 s (at 100 at 100 s, ready 150), drop-off at 350: 50 late
    assert terms == {
        "travel": 2.0 * 300,
        "distance": 0.5 * 300,
        "waiting": 3.0 * 50,
        "lateness": 7.0 * 50,
        "delivery": 0.25 * 350,
        "unassigned": 1_000.0,
        "vehicles": 11.0,  # the idle rider costs nothing
        "reassignment": 13.0 * 2,  # two assigned orders moved off their rider
        "eta_delay": 0.0,  # no ETA quoted
    }
    hier = params.replace(objective="hierarchical", unassigned_penalty=1e6)
    assert objective_terms(problem.now_s, hier, routes, 1)["delivery"] == 0.0
    assert objective_terms(50, params, routes, 0)["delivery"] == 0.25 * 300  # counted from now


def test_build_plan_keeps_rider_order_unassigned_stats_and_shed() -> None:
    problem = line_problem(
        [0, 100, 300],
        [order("a", 1, 2, due=100), order("b", 1, 2)],
        [rider("first", 0), rider("second", 2)],
    )
    gone = [Unassigned("b", UnassignedReason.CAPACITY, "too big")]
    shed = Shed(ShedReason.BUDGET_TOO_SMALL, "5 ms left")
    plan = build_plan(
        problem,
        SolverParams(),
        {"second": [("a", StopKind.PICKUP), ("a", StopKind.DROPOFF)], "ghost": []},
        gone,
        engine=Engine.RUIN_RECREATE,
        phase_s={"greedy": 0.01},
        shed=shed,
    )
    assert [r.rider_id for r in plan.routes] == ["first", "second"]  # unknown ids ignored
    assert plan.routes[0].stops == () and len(plan.routes[1].stops) == 2
    assert plan.unassigned == tuple(gone)
    assert plan.stats.engine is Engine.RUIN_RECREATE and plan.stats.shed == shed
    assert plan.stats.phase_s == {"greedy": 0.01}
    assert plan.stats.late_orders == 1  # from 300 m: pickup at 200 s, drop-off at 400 s, due 100
    assert plan.stats.objective == pytest.approx(sum(plan.stats.objective_terms.values()))
    assert plan.stats.objective_terms["unassigned"] == SolverParams().unassigned_penalty
