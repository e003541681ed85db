"""The reassignment cost in the engines: the greedy and the in-process search keep an assigned
order on its rider unless a move saves more than ``reassignment_cost``, report the term and
``stats.reassigned`` right, reproduce the plans without assignments at cost 0, never move a
frozen order, and the kernel's insertion price of an assigned order is the exact change of
the objective."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.check import assert_valid_plan, check_plan
from solver.engines import kernel as k
from solver.engines.greedy import ORDERINGS, solve_greedy
from solver.engines.improve import improve_visits
from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from solver.runtime.dispatch import solve
from solver.spec import ProblemSpec
from solver.stability import freeze, is_frozen
from tests.solver.engines.test_kernel import brute_force, load, mixed_problem
from tests.solver.test_properties import Case, assert_covers_every_order_once
from tests.solver.test_properties import cases as property_cases

P, D = StopKind.PICKUP, StopKind.DROPOFF
FAR = 20_000  # travel time between the pieces of unrelated pairs: never worth it
RIDE = 50  # pickup -> drop-off of every pair order
OWN = 500  # assigned rider -> pickup
RC = 300.0


def params(**changes: Any) -> SolverParams:
    """Travel and lateness priced (no delivery-time cost, so an order's price is the ride to
    its pickup plus RIDE), reassignment cost RC, nothing frozen unless changed."""
    base: dict[str, Any] = {
        "delivery_time_cost_per_s": 0.0,
        "reassignment_cost": RC,
        "freeze_horizon_s": 0,
        "min_search_s": 0.005,
    }
    return SolverParams(**{**base, **changes})


def pairs_problem(
    gaps: list[int],
    *,
    own: int = OWN,
    pickups: list[int | None] | None = None,
    other_first: bool = False,
    now: int = 0,
) -> Problem:
    """One order per gap, each with two riders of its own: ``a<i>``, the one it is assigned
    to, ``own`` s from its pickup, and ``b<i>``, ``gap`` s nearer. Pieces of different pairs
    are FAR apart, so the best plan decides each pair alone: move ``o<i>`` to ``b<i>`` iff
    ``gap`` exceeds the reassignment cost."""
    n = 4 * len(gaps)
    t = np.full((n, n), FAR, dtype=np.int64)
    np.fill_diagonal(t, 0)
    orders, riders = [], []
    for i, gap in enumerate(gaps):
        pick, drop, a, b = 4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3
        t[pick, drop] = RIDE
        t[a, pick] = own
        t[b, pick] = own - gap
        pair = [Rider(f"a{i}", a, now, now + 100_000, 4), Rider(f"b{i}", b, now, now + 100_000, 4)]
        riders += pair[::-1] if other_first else pair
        orders.append(
            Order(
                f"o{i}",
                pick,
                drop,
                ready_s=now,
                due_s=now + 100_000,
                assigned_rider_id=f"a{i}",
                assigned_pickup_s=None if pickups is None else pickups[i],
            )
        )
    return Problem.build(now_s=now, orders=orders, riders=riders, time_s=t)


def served_by(plan: Plan) -> dict[str, str]:
    """Rider of each routed order (by its drop-off)."""
    return {s.order_id: r.rider_id for r in plan.routes for s in r.stops if s.kind is D}


def expected(gaps: list[int], cost: float = RC, own: int = OWN) -> tuple[dict[str, str], float]:
    """The best plan of :func:`pairs_problem`: rider by order, and the travel it takes."""
    riders = {f"o{i}": f"b{i}" if g > cost else f"a{i}" for i, g in enumerate(gaps)}
    travel = sum(own - g if g > cost else own for g in gaps) + RIDE * len(gaps)
    return riders, float(travel)


def assert_scored(
    plan: Plan, problem: Problem, prm: SolverParams, travel: float, moves: int
) -> None:
    """Valid by the checker, with this travel and this many moves priced and counted."""
    check = assert_valid_plan(problem, plan, prm)
    terms = plan.stats.objective_terms
    assert terms["travel"] == pytest.approx(travel)
    assert terms["reassignment"] == pytest.approx(prm.reassignment_cost * moves)
    assert plan.stats.reassigned == moves
    assert plan.stats.objective == pytest.approx(sum(terms.values()))
    assert check.terms["reassignment"] == pytest.approx(terms["reassignment"])
    assert check.objective == pytest.approx(plan.stats.objective)


def keep_all(problem: Problem, prm: SolverParams) -> Plan:
    """The plan serving every order on its assigned rider."""
    visits = {o.assigned_rider_id or "": [(o.id, P), (o.id, D)] for o in problem.orders}
    return build_plan(problem, prm, visits, [], engine=Engine.GREEDY)


def move_all(problem: Problem, prm: SolverParams) -> Plan:
    """The plan serving every pair order on the other rider of its pair."""
    visits = {f"b{o.id[1:]}": [(o.id, P), (o.id, D)] for o in problem.orders}
    return build_plan(problem, prm, visits, [], engine=Engine.GREEDY)


def visits_of(plan: Plan) -> dict[str, list[Visit]]:
    return {r.rider_id: [(s.order_id, s.kind) for s in r.stops] for r in plan.routes}


# ------------------------------------------------------------------- (a) greedy, exact gaps
GAPS = [0, 100, 290, 299, 301, 310, 450, 480]


@pytest.mark.parametrize("other_first", [False, True], ids=["assigned-first", "other-first"])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_greedy_moves_an_assigned_order_only_when_it_saves_more_than_the_cost(
    other_first: bool, ordering: str
) -> None:
    problem = pairs_problem(GAPS, other_first=other_first)
    prm = params()
    plan = solve_greedy(problem, prm, ordering=ordering)
    riders, travel = expected(GAPS)
    assert served_by(plan) == riders
    assert_scored(plan, problem, prm, travel, moves=sum(g > RC for g in GAPS))


@pytest.mark.parametrize(
    ("cost", "moves"), [(0.0, 7), (50.0, 7), (200.0, 6), (305.0, 3), (1_000.0, 0), (1e7, 0)]
)
def test_the_threshold_follows_the_reassignment_cost(cost: float, moves: int) -> None:
    problem = pairs_problem(GAPS)
    prm = params(reassignment_cost=cost)
    plan = solve_greedy(problem, prm)
    riders, travel = expected(GAPS, cost)
    assert served_by(plan) == riders
    assert moves == sum(g > cost for g in GAPS)
    assert_scored(plan, problem, prm, travel, moves=moves)


def test_an_assignment_keeps_an_order_the_penalty_alone_would_drop() -> None:
    """Leaving an assigned order out costs the penalty plus the move: served on its rider for
    1 250 it stays (< 1 000 + 300); unassigned, the same order is left out (> 1 000)."""
    prm = params(unassigned_penalty=1_000.0)
    kept = pairs_problem([0], own=1_200)
    plan = solve_greedy(kept, prm)
    assert served_by(plan) == {"o0": "a0"}
    assert_scored(plan, kept, prm, 1_250.0, moves=0)
    free = Problem.build(
        now_s=0,
        orders=[dataclasses.replace(kept.orders[0], assigned_rider_id=None)],
        riders=kept.riders,
        time_s=kept.time_s,
    )
    assert [u.order_id for u in solve_greedy(free, prm).unassigned] == ["o0"]


def test_an_assigned_order_left_out_pays_the_penalty_and_the_move() -> None:
    prm = params(unassigned_penalty=1_000.0)
    problem = pairs_problem([0], own=1_400)  # 1 450 > 1 000 + 300 on either rider
    plan = solve_greedy(problem, prm)
    assert served_by(plan) == {}
    (left,) = plan.unassigned
    assert left.reason is UnassignedReason.NOT_PROFITABLE
    assert "1300" in left.detail, left.detail  # what leaving it out costs
    assert plan.stats.objective_terms["unassigned"] == 1_000.0
    assert_scored(plan, problem, prm, 0.0, moves=1)
    assert plan.stats.objective == pytest.approx(1_300.0)


def test_an_order_assigned_to_an_absent_rider_goes_to_the_cheapest_and_pays_the_move() -> None:
    base = pairs_problem([100, 200])
    orders = [dataclasses.replace(o, assigned_rider_id="gone") for o in base.orders]
    problem = Problem.build(now_s=0, orders=orders, riders=base.riders, time_s=base.time_s)
    prm = params(freeze_horizon_s=10**6)  # an absent rider freezes nothing
    plan = solve_greedy(problem, prm)
    assert served_by(plan) == {"o0": "b0", "o1": "b1"}
    assert_scored(plan, problem, prm, float(OWN - 100 + OWN - 200 + 2 * RIDE), moves=2)


def test_a_tie_costs_the_same_whichever_rider_takes_it() -> None:
    """A move saving exactly the cost is neutral: either plan, same objective."""
    for other_first in (False, True):
        problem = pairs_problem([300], other_first=other_first)
        plan = solve_greedy(problem, params())
        assert plan.stats.objective == pytest.approx(OWN + RIDE)
        assert_valid_plan(problem, plan, params())


# ---------------------------------------------------- (b) the in-process search, warm-started
SEARCH_GAPS = [0, 150, 290, 299, 301, 310, 450]


@pytest.mark.parametrize("start", ["keep-all", "move-all"])
@pytest.mark.parametrize("kind", ["problem", "spec"])
def test_the_search_moves_an_order_only_when_it_saves_more_than_the_cost(
    start: str, kind: str
) -> None:
    """Warm-started from a plan keeping every order on its rider (which the greedy repair
    keeps: every move below comes from the search), or moving every one."""
    problem = pairs_problem(SEARCH_GAPS)
    prm = params()
    previous = (keep_all if start == "keep-all" else move_all)(problem, prm)
    warm = solve_greedy(problem, prm, initial=visits_of(previous))
    assert served_by(warm) == served_by(previous)  # the search's start is the previous plan
    target = problem if kind == "problem" else ProblemSpec.of_problem(problem)
    plan = solve(target, prm, budget_s=0.4, previous=previous)
    assert plan.stats.engine is Engine.RUIN_RECREATE
    riders, travel = expected(SEARCH_GAPS)
    assert served_by(plan) == riders
    assert_scored(plan, problem, prm, travel, moves=sum(g > RC for g in SEARCH_GAPS))
    assert plan.stats.objective < previous.stats.objective


def test_the_search_weighs_a_move_against_the_cost_when_orders_share_a_rider() -> None:
    """a is assigned to r1, b to r2; r2 serves a before b for 11 s more (31 s instead of 20),
    r1 rides 410 s for it: moving a to r2 saves 399 > RC. With a cost of 500 it stays."""
    # points: 0 r1, 1 r2, 2 a's pickup, 3 a's drop-off, 4 b's pickup, 5 b's drop-off
    t = np.full((6, 6), FAR, dtype=np.int64)
    np.fill_diagonal(t, 0)
    t[0, 2] = 400
    t[2, 3] = 10
    t[1, 4] = 10
    t[4, 5] = 10
    t[1, 2] = 10
    t[3, 4] = 1
    t[4, 2] = 11
    t[3, 5] = 11
    orders = [
        Order("a", 2, 3, ready_s=0, due_s=10**5, assigned_rider_id="r1"),
        Order("b", 4, 5, ready_s=0, due_s=10**5, assigned_rider_id="r2"),
    ]
    riders = [Rider("r1", 0, 0, 10**5, 4), Rider("r2", 1, 0, 10**5, 4)]
    problem = Problem.build(now_s=0, orders=orders, riders=riders, time_s=t)
    for cost, on_r2 in ((RC, {"a", "b"}), (500.0, {"b"})):
        prm = params(reassignment_cost=cost)
        visits = {"r1": [("a", P), ("a", D)], "r2": [("b", P), ("b", D)]}
        previous = build_plan(problem, prm, visits, [], engine=Engine.GREEDY)
        plan = solve(problem, prm, budget_s=0.3, previous=previous)
        assert {o for o, r in served_by(plan).items() if r == "r2"} == on_r2, cost
        assert_valid_plan(problem, plan, prm)
        assert plan.stats.reassigned == (1 if "a" in on_r2 else 0)


# ------------------------------------------------------ (c) cost 0 is the old behaviour
def strip_assignments(problem: Problem) -> Problem:
    orders = [
        dataclasses.replace(o, assigned_rider_id=None, assigned_pickup_s=None)
        for o in problem.orders
    ]
    return dataclasses.replace(problem, orders=tuple(orders))


def assign_randomly(problem: Problem, rng: np.random.Generator) -> Problem:
    """Each open order with a pickup assigned to a random present rider, an absent one, or
    none, with a random planned pickup (start-loaded orders: an absent rider or none, see
    ``test_stability``'s known bug); pinned orders sometimes repeat their rider."""
    ids = [r.id for r in problem.riders]
    orders = []
    for o in problem.orders:
        roll = rng.random()
        if o.is_pinned:
            orders.append(dataclasses.replace(o, assigned_rider_id=o.rider_id) if roll < 0.3 else o)
            continue
        choices: list[str | None] = [None, "absent"]
        if o.pickup is not None:
            choices += ids
        who = choices[int(rng.integers(0, len(choices)))]
        planned = None
        if who is not None and rng.random() < 0.6:
            planned = problem.now_s + int(rng.integers(-600, 1_500))
        orders.append(dataclasses.replace(o, assigned_rider_id=who, assigned_pickup_s=planned))
    return dataclasses.replace(problem, orders=tuple(orders))


@settings(max_examples=30, deadline=None)
@given(case=property_cases(), seed=st.integers(0, 2**31 - 1))
def test_cost_zero_and_no_freeze_give_the_plan_without_assignments(case: Any, seed: int) -> None:
    problem = assign_randomly(case.problem, np.random.default_rng(seed))
    # (no dispatch horizon either: an assigned order is never tentative, a free one may be)
    prm = case.params.replace(reassignment_cost=0.0, freeze_horizon_s=0, dispatch_horizon_s=0)
    with_ = solve_greedy(problem, prm, ordering=case.ordering)
    without = solve_greedy(strip_assignments(problem), prm, ordering=case.ordering)
    assert with_.routes == without.routes
    assert with_.unassigned == without.unassigned
    assert with_.stats.objective == pytest.approx(without.stats.objective)
    assert with_.stats.objective_terms["reassignment"] == 0.0
    assert without.stats.reassigned == 0


def test_a_tie_keeps_the_assigned_rider_even_at_cost_zero() -> None:
    """Three alike riders at one point: the order stays on the rider it is assigned to, even
    when moving is free (the kernel prices its own rider first, so only a strictly cheaper
    one takes it); assigned to an absent rider it goes to the first."""
    t = np.array([[0, 10, 20], [10, 0, 10], [20, 10, 0]])
    riders = [Rider(f"r{k}", 0, 0, 10**5, 4) for k in range(3)]
    base = Order("o", 1, 2, ready_s=0, due_s=10**5)
    for who in ("r0", "r1", "r2", "absent"):
        assigned = dataclasses.replace(base, assigned_rider_id=who)
        problem = Problem.build(now_s=0, orders=[assigned], riders=riders, time_s=t)
        plan = solve_greedy(problem, params(reassignment_cost=0.0))
        assert served_by(plan) == {"o": who if who != "absent" else "r0"}, who
        moved = solve_greedy(problem, params())
        assert served_by(moved) == {"o": who if who != "absent" else "r0"}, who


# ------------------------------------------------------------- (d) random problems, checked
@st.composite
def assigned_cases(draw: st.DrawFn, min_riders: int = 0) -> Case:
    """The random problems of ``tests/solver/test_properties.py`` (its parameter sets too),
    with random assignments, reassignment costs and freeze horizons."""
    case = draw(property_cases(min_riders))
    problem = assign_randomly(case.problem, np.random.default_rng(draw(st.integers(0, 2**32))))
    prm = case.params.replace(
        reassignment_cost=draw(st.sampled_from([0.0, 40.0, 300.0, 5_000.0])),
        freeze_horizon_s=draw(st.sampled_from([0, 120, 300, 1_200])),
        min_search_s=0.005,
    )
    return Case(problem, prm, case.ordering)


def assert_frozen_kept(problem: Problem, plan: Plan, prm: SolverParams) -> None:
    ids = {r.id: r.capacity for r in problem.riders}
    by = served_by(plan)
    for o in problem.orders:
        if is_frozen(o, problem.now_s, prm, ids):
            assert by.get(o.id) == o.assigned_rider_id, o
            route = plan.route_of(o.assigned_rider_id or "")
            assert route is not None
            assert [s.kind for s in route.stops if s.order_id == o.id] == [P, D]


def assert_reassigned_counted(problem: Problem, plan: Plan, prm: SolverParams) -> None:
    by = served_by(plan)
    moved = sum(
        1 for o in problem.orders if o.assigned_rider_id and by.get(o.id) != o.assigned_rider_id
    )
    assert plan.stats.reassigned == moved
    assert plan.stats.objective_terms["reassignment"] == pytest.approx(
        prm.reassignment_cost * moved
    )


@settings(max_examples=60, deadline=None)
@given(assigned_cases())
def test_greedy_plans_with_assignments_are_valid_and_priced_right(case: Case) -> None:
    plan = solve_greedy(case.problem, case.params, ordering=case.ordering)
    check = assert_valid_plan(case.problem, plan, case.params)
    assert_covers_every_order_once(case.problem, plan)
    assert_frozen_kept(case.problem, plan, case.params)
    assert_reassigned_counted(case.problem, plan, case.params)
    assert plan.stats.objective == pytest.approx(check.objective, rel=1e-9, abs=1e-6)
    for name, value in check.terms.items():
        assert plan.stats.objective_terms[name] == pytest.approx(value, rel=1e-9, abs=1e-6), name


@settings(max_examples=20, deadline=None)
@given(assigned_cases(min_riders=1), st.booleans())
def test_searched_plans_with_assignments_are_valid(case: Case, warm: bool) -> None:
    greedy = solve_greedy(case.problem, case.params)
    previous = greedy if warm else None
    plan = solve(case.problem, case.params, budget_s=0.05, previous=previous)
    check = assert_valid_plan(case.problem, plan, case.params)
    assert_covers_every_order_once(case.problem, plan)
    assert_frozen_kept(case.problem, plan, case.params)
    assert_reassigned_counted(case.problem, plan, case.params)
    assert plan.stats.objective == pytest.approx(check.objective, rel=1e-9, abs=1e-6)
    # the search starts from the greedy plan (the same one, cold or warm) and keeps its best
    slack = 1e-6 * max(1.0, abs(greedy.stats.objective))
    assert plan.stats.objective <= greedy.stats.objective + slack


@settings(max_examples=20, deadline=None)
@given(assigned_cases(min_riders=1))
def test_the_ruin_and_recreate_never_returns_worse_visits(case: Case) -> None:
    """``improve_visits`` (elimination when riders have a fixed cost, then annealing) keeps
    its best state by an objective with the moves and the out costs in it: the plan of the
    visits it returns is valid and never worse than the greedy plan it started from."""
    problem = freeze(case.problem, case.params)  # as every caller hands it over
    greedy = solve_greedy(problem, case.params)
    visits, _ = improve_visits(
        problem, case.params, visits_of(greedy), deadline=time.perf_counter() + 0.03, seed=1
    )
    routed = {v[0] for vs in visits.values() for v in vs}
    out = [Unassigned(o.id, UnassignedReason.SHED) for o in problem.orders if o.id not in routed]
    plan = build_plan(problem, case.params, visits, out, engine=Engine.RUIN_RECREATE)
    assert_valid_plan(case.problem, plan, case.params)
    assert_covers_every_order_once(case.problem, plan)
    slack = 1e-6 * max(1.0, abs(greedy.stats.objective))
    assert plan.stats.objective <= greedy.stats.objective + slack


# ------------------------------------------------------- (e) the kernel's insertion price
def kernel_problem(seed: int, n_orders: int, tight: bool) -> Problem:
    problem = mixed_problem(seed, n_orders, tight)
    return assign_randomly(problem, np.random.default_rng(seed + 1))


KERNEL_PARAMS = {
    "delivery": params(delivery_time_cost_per_s=1.0),
    "all-terms": params(waiting_cost_per_s=0.5, distance_cost_per_m=0.01, vehicle_fixed_cost=100),
    "cheap-moves": params(reassignment_cost=7.5, delivery_time_cost_per_s=2.0),
    "dear-moves": params(reassignment_cost=50_000.0, unassigned_penalty=10_000.0),
}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_orders=st.integers(1, 9),
    tight=st.booleans(),
    name=st.sampled_from(sorted(KERNEL_PARAMS)),
)
def test_the_insertion_price_is_the_change_of_the_objective(
    seed: int, n_orders: int, tight: bool, name: str
) -> None:
    """Take each open order out of the greedy routes: ``best_insertion``'s price equals
    ``total_cost`` after ``insert_at`` minus before (moves included), and what the order costs
    out (:func:`kernel.out_cost`) is the penalty plus the move when it is assigned."""
    prm = KERNEL_PARAMS[name]
    problem = kernel_problem(seed, n_orders, tight)
    plan = solve_greedy(problem, prm)
    current = visits_of(plan)
    rc, pen = prm.reassignment_cost, prm.unassigned_penalty
    active = np.ones(len(problem.riders), dtype=np.bool_)
    for victim in problem.orders:
        if victim.is_pinned:
            continue
        o = problem.order_index[victim.id]
        rest = {r: [v for v in vs if v[0] != victim.id] for r, vs in current.items()}
        p, s = load(problem, prm, rest)
        out = np.flatnonzero((p[0][:, k.O_OPEN] == 1) & (s[3][: len(problem.orders)] < 0))
        routes_before = float(k.total_cost(p, s))
        before = routes_before + float(k.outs_cost(p, out))
        assert k.out_cost(p, o) == (pen if victim.assigned_rider_id is None else pen + rc)
        price, r, i, j = k.best_insertion(p, s, o, active, 0.0)
        if victim.assigned_rider_id is not None:
            mine = problem.rider_index.get(victim.assigned_rider_id, k.ASG_ABSENT)
            assert p[0][o, k.O_ASG] == mine
        if r < 0:
            continue
        bad, _ = k.insert_at(p, s, r, o, i, j)
        assert bad < 0, (victim.id, bad)
        assert s[3][o] == r
        routes_after = float(k.total_cost(p, s))
        after = routes_after + float(k.outs_cost(p, out[out != o]))
        assert routes_after - routes_before == pytest.approx(price, rel=1e-9, abs=1e-6)
        assert after - before == pytest.approx(price - k.out_cost(p, o), rel=1e-9, abs=1e-6)
        moved = victim.assigned_rider_id is not None and (
            problem.riders[r].id != victim.assigned_rider_id
        )
        assert k.moving_cost(p[0], p[2], o, r) == (rc if moved else 0.0)


@pytest.mark.parametrize("name", sorted(KERNEL_PARAMS))
def test_the_insertion_price_is_the_cheapest_valid_insertion_by_the_checker(name: str) -> None:
    """Against a brute force over every position judged by the checker: its base plan leaves
    the victim out of the routes but not in the unassigned list, so an assigned victim's move
    is already in the base (``reassignment``) and the brute force is the kernel's price less
    the cost; the kernel's price is over the timed routes with the move."""
    prm = KERNEL_PARAMS[name]
    checked = assigned = 0
    for seed in range(4):
        problem = kernel_problem(seed, 7, seed % 2 == 0)
        current = visits_of(solve_greedy(problem, prm))
        for victim in problem.orders:
            if victim.is_pinned:
                continue
            rest = {r: [v for v in vs if v[0] != victim.id] for r, vs in current.items()}
            best = brute_force(problem, prm, rest, victim.id)
            p, s = load(problem, prm, rest)
            active = np.ones(len(problem.riders), dtype=np.bool_)
            price, r, _, _ = k.best_insertion(p, s, problem.order_index[victim.id], active, 0.0)
            if best == float("inf"):
                assert r == -1, (victim.id, price)
                continue
            extra = prm.reassignment_cost if victim.assigned_rider_id is not None else 0.0
            assert price == pytest.approx(best + extra), (victim.id, price, best)
            checked += 1
            assigned += victim.assigned_rider_id is not None
    assert checked > 10 and assigned > 3


# ------------------------------------------------------------------ (f) frozen orders stay
def frozen_problem() -> Problem:
    """o0's rider a0 is 6 000 s away, b0 next to the pickup (5 990 s cheaper); the pickup is
    planned 100 s from now, within the default 300 s horizon. o1 is the same, planned later."""
    return pairs_problem([5_990, 5_990], own=6_000, pickups=[100, 10_000])


@pytest.mark.parametrize("how", ["greedy", "solve", "solve-from-moved", "solve-from-dropped"])
def test_a_frozen_order_is_never_moved_or_dropped(how: str) -> None:
    problem = frozen_problem()
    prm = params(freeze_horizon_s=300, unassigned_penalty=1_000.0)
    if how == "greedy":
        plan = solve_greedy(problem, prm)
    else:
        if how == "solve":
            previous = None
        elif how == "solve-from-moved":
            previous = move_all(problem, prm.replace(freeze_horizon_s=0))
        else:
            previous = build_plan(problem, prm, {}, [], engine=Engine.GREEDY)
        plan = solve(problem, prm, budget_s=0.2, previous=previous)
    # o0 is frozen: kept on a0 even though serving it costs 6 050 > penalty + move (1 300);
    # o1 is not: the move pays
    assert served_by(plan) == {"o0": "a0", "o1": "b1"}
    assert_scored(plan, problem, prm, float(6_000 + 10 + 2 * RIDE), moves=1)


def test_a_frozen_order_stays_even_when_its_rider_serves_it_late() -> None:
    """Frozen means committed: the lateness cap no longer applies (its rider arrives 6 000 s
    after the due time), where the open order would be left out or moved."""
    base = frozen_problem()
    orders = [dataclasses.replace(base.orders[0], due_s=200), base.orders[1]]
    problem = dataclasses.replace(base, orders=tuple(orders))
    prm = params(freeze_horizon_s=300, max_lateness_s=600)
    for plan in (solve_greedy(problem, prm), solve(problem, prm, budget_s=0.2)):
        assert served_by(plan)["o0"] == "a0"
        check = assert_valid_plan(problem, plan, prm)
        assert "o0" in {s.order_id for r in plan.routes for s in r.stops if s.lateness_s > 0}
        assert check.late_orders >= 1


def test_a_frozen_order_keeps_its_state_open_in_the_problem_passed() -> None:
    problem = frozen_problem()
    solve_greedy(problem, params(freeze_horizon_s=300))
    solve(problem, params(freeze_horizon_s=300), budget_s=0.05)
    assert [o.state for o in problem.orders] == [OrderState.OPEN, OrderState.OPEN]


def test_a_plan_moving_a_frozen_order_is_rejected_by_the_checker() -> None:
    problem = frozen_problem()
    moved = move_all(problem, params())
    assert check_plan(problem, moved, params()).ok  # fine with nothing frozen
    assert not check_plan(problem, moved, params(freeze_horizon_s=300)).ok


@pytest.mark.parametrize("how", ["greedy", "solve"])
def test_a_start_loaded_assigned_order_is_priced_not_frozen(how: str) -> None:
    """A start-loaded order (no pickup, benchmarks) has no pickup to plan: it is never frozen,
    its assignment only priced; solving such a problem works and the plan is valid."""
    base = frozen_problem()
    orders = [dataclasses.replace(base.orders[0], pickup=None), base.orders[1]]
    problem = dataclasses.replace(base, orders=tuple(orders))  # a valid problem
    prm = params(freeze_horizon_s=300)
    plan = solve_greedy(problem, prm) if how == "greedy" else solve(problem, prm, budget_s=0.1)
    assert_valid_plan(problem, plan, prm)  # the checker does not hold it to a0 either
    served = served_by(plan)
    moved = [o.id for o in problem.orders if served.get(o.id) != o.assigned_rider_id]
    assert plan.stats.reassigned == len(moved)
