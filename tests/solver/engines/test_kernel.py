"""The compiled kernel: exact insertion prices, route costs and the undo of a move."""

from __future__ import annotations

import numpy as np
import pytest

from solver.check import check_plan
from solver.engines import kernel as k
from solver.engines.greedy import solve_greedy
from solver.model import Order, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from tests.solver.conftest import random_problem

P, D = StopKind.PICKUP, StopKind.DROPOFF

PARAMS = [
    SolverParams(),
    SolverParams(waiting_cost_per_s=0.5, distance_cost_per_m=0.01, vehicle_fixed_cost=100),
    SolverParams(objective="hierarchical", vehicle_fixed_cost=1e4, distance_cost_per_m=1.0),
    SolverParams(delivery_time_cost_per_s=2.0, waiting_cost_per_s=0.5),
    SolverParams(delivery_time_cost_per_s=1.0, lateness_cost_per_s=0.0),
    SolverParams(  # the benchmarks': edge costs only (prices without timing the tail)
        objective="hierarchical",
        vehicle_fixed_cost=1e4,
        distance_cost_per_m=1.0,
        travel_cost_per_s=0.0,
        lateness_cost_per_s=0.0,
    ),
]
IDS = ["delivery", "all-terms", "hierarchical", "delivery-time", "delivery-time-only", "edges"]


def mixed_problem(seed: int, n_orders: int = 8, tight: bool = False) -> Problem:
    """A random problem with every kind of order and rider: pinned, start-loaded, closed
    routes, two profiles and the benchmark extras."""
    return random_problem(
        seed,
        n_orders=n_orders,
        n_riders=3,
        n_profiles=2,
        pinned_share=0.3,
        start_loaded_share=0.2,
        closed_share=0.5,
        extras=True,
        tight=tight,
    )


def problems() -> list[Problem]:
    return [mixed_problem(seed, tight=seed % 2 == 0) for seed in range(6)]


def load(problem: Problem, params: SolverParams, visits: dict[str, list[Visit]]) -> tuple:
    """The kernel's problem and a state holding ``visits``."""
    p = k.compile_problem(problem, params)
    s = k.new_state(p)
    rows = np.full_like(s[0], -1)
    lens = np.zeros_like(s[1])
    for r, rider in enumerate(problem.riders):
        codes = [
            2 * problem.order_index[oid] + (k.PICK if kind is P else k.DROP)
            for oid, kind in visits.get(rider.id, [])
        ]
        rows[r, : len(codes)] = codes
        lens[r] = len(codes)
    k.load_routes(p, s, rows, lens)
    return p, s


def visits_of(problem: Problem, params: SolverParams) -> dict[str, list[Visit]]:
    plan = solve_greedy(problem, params)
    return {r.rider_id: [(s.order_id, s.kind) for s in r.stops] for r in plan.routes}


def brute_force(
    problem: Problem, params: SolverParams, current: dict[str, list[Visit]], oid: str
) -> float:
    """The cheapest valid insertion of ``oid`` into ``current`` (judged by the checker)."""
    victim = problem.orders[problem.order_index[oid]]
    routed = {v[0] for vs in current.values() for v in vs}
    others = [
        Unassigned(x.id, UnassignedReason.SHED)
        for x in problem.orders
        if x.id not in routed and x.id != oid
    ]
    base = build_plan(problem, params, current, others, engine=Engine.GREEDY)
    best = float("inf")
    for rider_id, visits in current.items():
        n = len(visits)
        for i in range(n + 1 if victim.pickup is not None else 1):
            for j in range(i, n + 1):
                trial = list(visits)
                trial.insert(j, (oid, D))
                if victim.pickup is not None:
                    trial.insert(i, (oid, P))
                plan = build_plan(
                    problem, params, {**current, rider_id: trial}, others, engine=Engine.GREEDY
                )
                if check_plan(problem, plan, params).ok:
                    best = min(best, plan.stats.objective - base.stats.objective)
    return best


def kernel_price(
    problem: Problem, params: SolverParams, current: dict[str, list[Visit]], oid: str
) -> tuple[float, int]:
    """The kernel's (price, route) of inserting ``oid`` into ``current``."""
    p, s = load(problem, params, current)
    active = np.ones(len(problem.riders), dtype=np.bool_)
    price, r, _, _ = k.best_insertion(p, s, problem.order_index[oid], active, 0.0)
    return price, r


@pytest.mark.parametrize("params", PARAMS, ids=IDS)
def test_each_price_is_the_cheapest_valid_insertion(params: SolverParams) -> None:
    """Take each open order out of a greedy plan; the kernel's price of putting it back equals
    a brute force over every position of every route, judged by the checker."""
    checked = 0
    for problem in problems():
        plan_visits = visits_of(problem, params)
        for victim in problem.orders:
            if victim.is_pinned:
                continue
            current = {r: [v for v in vs if v[0] != victim.id] for r, vs in plan_visits.items()}
            best = brute_force(problem, params, current, victim.id)
            price, r = kernel_price(problem, params, current, victim.id)
            if best == float("inf"):
                assert r == -1, (victim.id, price)
            else:
                assert price == pytest.approx(best), (victim.id, price, best)
            checked += 1
    assert checked > 30


def test_a_pickup_made_earlier_by_a_non_metric_matrix_is_still_checked() -> None:
    """Inserting o first makes q's pickup earlier (S -> P -> D -> A is shorter than S -> A);
    x's ready time absorbs it, so x departs as before, but q's time in bag grows past its
    limit: the kernel must not stop timing at x and take that position."""
    far = 50
    t = np.full((6, 6), far, dtype=np.int64)
    np.fill_diagonal(t, 0)
    # S=0, A=1, X=2, B=3, P=4, D=5
    for a, b, v in [(0, 1, 10), (1, 2, 2), (2, 3, 5), (0, 4, 1), (4, 5, 0), (5, 1, 1)]:
        t[a, b] = v
    orders = [
        Order("q", 1, 3, ready_s=0, due_s=10_000, max_in_bag_s=15),
        Order("x", 2, 3, ready_s=20, due_s=10_000),
        Order("o", 4, 5, ready_s=0, due_s=10_000),
    ]
    problem = Problem.build(
        now_s=0, orders=orders, riders=[Rider("r1", 0, 0, 100_000, 10)], time_s=t
    )
    params = SolverParams(delivery_time_cost_per_s=0.0, lateness_cost_per_s=0.0)
    current: dict[str, list[Visit]] = {"r1": [("q", P), ("x", P), ("q", D), ("x", D)]}
    best = brute_force(problem, params, current, "o")
    price, _ = kernel_price(problem, params, current, "o")
    assert best < float("inf")
    assert price == pytest.approx(best)


@pytest.mark.parametrize("params", [x for x in PARAMS if x.waiting_cost_per_s == 0.0])
def test_pruned_prices_are_exact_on_metric_matrices(params: SolverParams) -> None:
    """The search's detour bound skips no cheaper position when the matrices are metric (the
    test problems' times are rounded up Euclidean distances) and waiting is free."""
    compared = 0
    for problem in problems():
        plan_visits = visits_of(problem, params)
        active = np.ones(len(problem.riders), dtype=np.bool_)
        for victim in problem.orders:
            if victim.is_pinned:
                continue
            current = {r: [v for v in vs if v[0] != victim.id] for r, vs in plan_visits.items()}
            p, s = load(problem, params, current)
            o = problem.order_index[victim.id]
            exact = k.best_insertion(p, s, o, active, 0.0, False)
            pruned = k.best_insertion(p, s, o, active, 0.0, True)
            assert pruned[0] == pytest.approx(exact[0]), (victim.id, exact, pruned)
            compared += 1
    assert compared > 30


@pytest.mark.parametrize("params", PARAMS, ids=IDS)
def test_route_costs_are_the_plan_objective(params: SolverParams) -> None:
    for problem in problems():
        plan = solve_greedy(problem, params)
        p, s = load(problem, params, visits_of(problem, params))
        unassigned = params.unassigned_penalty * len(plan.unassigned)
        assert k.total_cost(p, s) + unassigned == pytest.approx(plan.stats.objective)


def test_undo_puts_the_routes_back_exactly() -> None:
    params = SolverParams()
    problem = problems()[1]
    p, s = load(problem, params, visits_of(problem, params))
    before = [a.copy() for a in s]
    snap = k.new_snap(s)
    movable = p[0][:, k.O_OPEN] == 1
    neigh = np.tile(np.arange(len(problem.orders)), (len(problem.orders), 1))
    out = np.empty(2 * len(problem.orders) + 1, dtype=np.int64)
    k.seed_rng(3)
    seed = int(np.flatnonzero(movable & (s[3][: len(problem.orders)] >= 0))[0])
    n_out = k.ruin(p, s, snap, neigh, movable, seed, 5.0, 10.0, 2.0, out)
    assert n_out > 0
    assert all(s[3][o] == -1 for o in out[:n_out])
    k.undo(p, s, snap)
    route, rlen = s[0], s[1]
    np.testing.assert_array_equal(rlen, before[1])
    for r in range(len(problem.riders)):
        np.testing.assert_array_equal(route[r, : rlen[r]], before[0][r, : rlen[r]])
    for a, b in zip(before[2:9], s[2:9], strict=True):  # costs, where, times, loads
        np.testing.assert_array_equal(a, b)
