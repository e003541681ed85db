"""Dispatch policies of the replay: every policy answers each order at most once, pinned orders
on their rider, in plans the checker accepts; the baseline sends the nearest idle rider, one
order per trip, oldest order first, never past a shift; the search policies are never worse
than the plan being executed; policies by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.replay.policies import (
    POLICIES,
    Decision,
    DispatchSearch,
    GreedyInsertion,
    NearestIdleRider,
    Snapshot,
    make_policy,
)
from solver.check import check_plan
from solver.engines.greedy import solve_greedy
from solver.engines.search import plan_visits
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from tests.solver.conftest import line_problem, order, random_problem, rider

PARAMS = SolverParams()
P, D = StopKind.PICKUP, StopKind.DROPOFF


def snapshot(problem: Problem, current: Mapping[str, Sequence[Visit]] | None = None) -> Snapshot:
    """The dispatcher's view of ``problem``: points on a plane, one bike profile per index."""
    points = np.column_stack([np.arange(problem.num_locations, dtype=np.float64)] * 2)
    modes = tuple(("bike", "walk", "ebike")[: problem.num_profiles])
    return Snapshot(
        problem=problem,
        points=points,
        modes=modes,
        rider_modes={r.id: modes[r.profile] for r in problem.riders},
        current=dict(current or {}),
        xy=points,
    )


def decision_plan(problem: Problem, decision: Decision) -> Plan:
    routed = {oid for seq in decision.visits.values() for oid, _ in seq}
    left = [
        Unassigned(o.id, UnassignedReason.NO_FEASIBLE_INSERTION)
        for o in problem.orders
        if o.id not in routed
    ]
    return build_plan(problem, PARAMS, decision.visits, left, engine=Engine.GREEDY)


def assert_answers_each_order_once(problem: Problem, decision: Decision) -> None:
    """Each order is on at most one rider, with exactly its remaining stops, pickup first;
    pinned orders are on their rider; only known riders get visits."""
    assert set(decision.visits) <= {r.id for r in problem.riders}
    where: dict[str, str] = {}
    for rider_id, seq in decision.visits.items():
        assert len(seq) == len(set(seq)), f"{rider_id} visits a stop twice"
        for oid, _ in seq:
            assert where.setdefault(oid, rider_id) == rider_id, f"{oid} is split over riders"
        for oid in {oid for oid, _ in seq}:
            o = problem.orders[problem.order_index[oid]]
            kinds = [k for v, k in seq if v == oid]
            needs_pickup = o.state is not OrderState.ONBOARD and o.pickup is not None
            assert kinds == ([P, D] if needs_pickup else [D]), (oid, kinds)
    for o in problem.orders:
        if o.is_pinned:
            assert where.get(o.id) == o.rider_id, f"pinned {o.id} left its rider"


def assert_checker_accepts(problem: Problem, decision: Decision, lateness_cap: bool) -> None:
    violations = check_plan(problem, decision_plan(problem, decision), PARAMS).violations
    if not lateness_cap:  # the baseline does not promise it
        violations = tuple(v for v in violations if "exceeds max_lateness_s" not in v)
    assert violations == ()


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """Meal-like problems (no start-loaded orders or depots: the replay has none), with or
    without the plan being executed (the greedy plan of the same problem)."""
    problem = random_problem(
        draw(st.integers(0, 2**31 - 1)),
        n_orders=draw(st.integers(0, 10)),
        n_riders=draw(st.integers(1, 4)),
        n_profiles=draw(st.integers(1, 2)),
        pinned_share=draw(st.sampled_from([0.0, 0.3])),
        tight=draw(st.booleans()),
    )
    current = plan_visits(solve_greedy(problem, PARAMS)) if draw(st.booleans()) else {}
    return snapshot(problem, current)


# --------------------------------------------------------------------- every policy
def baseline_view(snap: Snapshot) -> Snapshot:
    """The view a policy that keeps its assignments gets in a replay: every order of the plan
    being executed is committed (or onboard), and every pinned order is in that plan (here:
    the pinned orders' stops of the greedy plan, in a feasible order)."""
    problem = snap.problem
    pinned = {o.id for o in problem.orders if o.is_pinned}
    executed = plan_visits(solve_greedy(problem, PARAMS))
    current = {r: [v for v in seq if v[0] in pinned] for r, seq in executed.items()}
    return dataclasses.replace(snap, current=current)


@settings(max_examples=15, deadline=None)
@given(snapshots())
def test_the_baseline_and_greedy_answer_each_order_once(snap: Snapshot) -> None:
    for policy in (NearestIdleRider(), GreedyInsertion(PARAMS)):
        view = baseline_view(snap) if isinstance(policy, NearestIdleRider) else snap
        decision = policy.dispatch(view)
        assert_answers_each_order_once(snap.problem, decision)
        assert_checker_accepts(snap.problem, decision, policy.enforces_lateness_cap)
        assert decision.engine == policy.name and not decision.rejected
        policy.close()


@settings(max_examples=4, deadline=None)
@given(snapshots())
def test_the_dispatch_search_answers_each_order_once_and_is_no_worse(snap: Snapshot) -> None:
    policy = DispatchSearch(PARAMS, 0.05)
    try:
        decision = policy.dispatch(snap)
    finally:
        policy.close()
    problem = snap.problem
    assert_answers_each_order_once(problem, decision)
    assert_checker_accepts(problem, decision, lateness_cap=True)
    assert decision.engine in ("greedy", "ruin_recreate", "ortools")
    assert "total" in decision.phase_s
    if snap.current:  # warm-started from the plan being executed: never worse than it
        executed = build_plan(problem, PARAMS, snap.current, [], engine=Engine.GREEDY)
        planned = {oid for seq in snap.current.values() for oid, _ in seq}
        left = [o for o in problem.orders if o.id not in planned]
        before = executed.stats.objective + PARAMS.unassigned_penalty * len(left)
        assert decision_plan(problem, decision).stats.objective <= before + 1e-6


# ------------------------------------------------------------------------ the baseline
def line(
    riders: Sequence[tuple[str, int, int]],
    orders: Sequence[tuple[str, int, int, int]],
    positions: Sequence[float] = (0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000),
) -> Problem:
    """Riders (id, location, shift end) and orders (id, pickup, drop-off, ready) on a line of
    points 100 m apart, 1 m/s."""
    return line_problem(
        positions,
        [order(oid, p, d, ready=ready) for oid, p, d, ready in orders],
        [rider(rid, loc, shift_end=end) for rid, loc, end in riders],
    )


def test_the_nearest_idle_rider_gets_the_order() -> None:
    problem = line([("far", 0, 10_000), ("near", 10, 10_000)], [("o", 8, 5, 0)])
    decision = NearestIdleRider().dispatch(snapshot(problem))
    assert decision.visits == {"far": [], "near": [("o", P), ("o", D)]}


def test_a_busy_rider_is_not_idle_and_keeps_its_plan() -> None:
    problem = line_problem(
        [0, 100, 200, 300, 400, 500, 600, 700, 800, 900],
        [order("a", 1, 2, state=OrderState.COMMITTED, rider_id="busy"), order("b", 8, 9)],
        [rider("busy", 8), rider("idle", 0)],
    )
    current = {"busy": [("a", P), ("a", D)]}
    decision = NearestIdleRider().dispatch(snapshot(problem, current))
    assert decision.visits["busy"] == [("a", P), ("a", D)]  # its plan, nothing added
    assert decision.visits["idle"] == [("b", P), ("b", D)]  # though 800 m away


def test_one_order_per_trip_oldest_first() -> None:
    problem = line([("r", 0, 10_000)], [("late", 1, 2, 300), ("early", 1, 2, 100)])
    decision = NearestIdleRider().dispatch(snapshot(problem))
    assert decision.visits == {"r": [("early", P), ("early", D)]}  # "late" waits, no bundling


def test_a_rider_whose_shift_ends_first_is_skipped() -> None:
    """The near rider would deliver at 100 + 800 = 900 s, after its shift end at 850 s."""
    problem = line([("near", 1, 850), ("far", 0, 5_000)], [("o", 2, 10, 0)])
    decision = NearestIdleRider().dispatch(snapshot(problem))
    assert decision.visits == {"near": [], "far": [("o", P), ("o", D)]}
    alone = line([("near", 1, 850)], [("o", 2, 10, 0)])
    assert NearestIdleRider().dispatch(snapshot(alone)).visits == {"near": []}
    on_time = line([("near", 1, 900)], [("o", 2, 10, 0)])  # arriving at the shift end is fine
    assert NearestIdleRider().dispatch(snapshot(on_time)).visits == {"near": [("o", P), ("o", D)]}


def test_an_order_too_big_for_the_bag_waits() -> None:
    problem = line_problem(
        [0, 100, 200], [order("big", 1, 2, size=3)], [rider("small", 0, capacity=2)]
    )
    assert NearestIdleRider().dispatch(snapshot(problem)).visits == {"small": []}


def test_pinned_orders_missing_from_the_plan_are_added_to_their_rider() -> None:
    problem = line_problem(
        [0, 100, 200, 300],
        [
            order("bag", None, 3, state=OrderState.ONBOARD, rider_id="r"),
            order("promised", 1, 2, state=OrderState.COMMITTED, rider_id="r"),
            order("new", 1, 2),
        ],
        [rider("r", 0), rider("s", 0)],
    )
    decision = NearestIdleRider().dispatch(snapshot(problem))
    # the rider's plan (none), then what is missing in the problem's order
    assert decision.visits["r"] == [("bag", D), ("promised", P), ("promised", D)]
    assert decision.visits["s"] == [("new", P), ("new", D)]  # r is not idle
    current = {"r": [("promised", P)]}  # heading to the merchant
    decision = NearestIdleRider().dispatch(snapshot(problem, current))
    assert decision.visits["r"] == [("promised", P), ("bag", D), ("promised", D)]


# ------------------------------------------------------------------------ by name
def test_policies_by_name_and_what_they_promise() -> None:
    made = [make_policy(name, PARAMS, 0.05) for name in POLICIES]
    try:
        assert [p.name for p in made] == list(POLICIES)
        assert [p.replans_freely for p in made] == [False, False, False, True, False]
        assert [p.enforces_lateness_cap for p in made] == [False, True, True, True, True]
        search, free, ortools = made[2], made[3], made[4]
        assert isinstance(search, DispatchSearch) and isinstance(ortools, DispatchSearch)
        assert isinstance(free, DispatchSearch)
        assert search.params == PARAMS and search.budget_s == 0.05 and search.pool is None
        assert ortools.params == dataclasses.replace(PARAMS, ruin_recreate_share=0.0)
        # the reference of plan stability: moves free, nothing frozen
        assert free.params == dataclasses.replace(PARAMS, reassignment_cost=0.0, freeze_horizon_s=0)
    finally:
        for p in made:
            p.close()


@pytest.mark.parametrize(
    "name, engines",
    [
        ("search", {"greedy", "ruin_recreate"}),  # default share 1.0: no OR-Tools
        ("ortools", {"greedy", "ortools"}),  # share 0: no ruin-and-recreate
    ],
)
def test_the_search_policies_answer_with_their_engines(name: str, engines: set[str]) -> None:
    """Greedy stands when the search finds nothing better (OR-Tools cannot price the
    delivery-time cost); otherwise the engine of each policy's own search answers."""
    problem = random_problem(4, n_orders=8, n_riders=3, pinned_share=0.2)
    policy = make_policy(name, PARAMS, 0.15)
    try:
        decision = policy.dispatch(snapshot(problem))
    finally:
        policy.close()
    assert decision.engine in engines and not decision.shed_reason
    assert_answers_each_order_once(problem, decision)
    assert_checker_accepts(problem, decision, lateness_cap=True)


def test_closing_twice_is_harmless() -> None:
    policy = DispatchSearch(PARAMS, 0.05)
    policy.close()
    policy.close()
    assert policy.pool is None


@pytest.mark.parametrize("name", ["nearest", "greedy"])
def test_nothing_to_do_gives_empty_sequences(name: str) -> None:
    problem = line([("a", 0, 1_000), ("b", 3, 1_000)], [])
    decision = make_policy(name, PARAMS, 0.05).dispatch(snapshot(problem))
    assert all(not seq for seq in decision.visits.values())
