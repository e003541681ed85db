"""Soft assignments (:mod:`solver.stability`): the planned pickup, which assigned orders are
frozen (exactly at the horizon, horizon 0, absent riders, pinned orders), ``freeze`` on a
problem and on a spec, the orders a plan moves, the model's validation of the new fields, and
the checker's recomputation of the freeze and of the ``reassignment`` term."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from solver.check import check_plan
from solver.model import Order, OrderState, Problem, ProblemError
from solver.params import SolverParams
from solver.plan import Engine, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from solver.spec import ProblemSpec
from solver.stability import freeze, is_frozen, moved_orders, planned_pickup_s
from tests.solver.conftest import line_problem, order, rider

P, D = StopKind.PICKUP, StopKind.DROPOFF
NOW = 1_000
RIDERS = {"r1": 4, "r2": 4}  # rider id -> bag capacity


def params(horizon: int = 300, cost: float = 300.0) -> SolverParams:
    return SolverParams(freeze_horizon_s=horizon, reassignment_cost=cost)


def problem_of(*orders: Order, now: int = NOW) -> Problem:
    """Orders over five points on a line, riders r1 (at 0) and r2 (at 40)."""
    return line_problem([0, 10, 20, 30, 40], orders, [rider("r1", 0), rider("r2", 4)], now=now)


def served(oid: str) -> list[Visit]:
    return [(oid, P), (oid, D)]


# ---------------------------------------------------------------------- planned_pickup_s
@pytest.mark.parametrize(
    ("ready", "assigned_pickup", "expected"),
    [
        (NOW - 500, None, NOW),  # ready long ago: no plan picks it up before now
        (NOW, None, NOW),
        (NOW + 200, None, NOW + 200),  # not ready yet: its ready time
        (NOW + 200, NOW + 900, NOW + 900),  # the planned time wins, later ...
        (NOW + 200, NOW + 50, NOW + 50),  # ... or earlier than the ready time
        (NOW + 200, NOW - 100, NOW - 100),  # ... or in the past (a late rider)
    ],
)
def test_planned_pickup_is_the_assigned_time_else_the_earliest_possible(
    ready: int, assigned_pickup: int | None, expected: int
) -> None:
    o = order("a", 1, 2, ready=ready, assigned_rider_id="r1", assigned_pickup_s=assigned_pickup)
    assert planned_pickup_s(o, NOW) == expected


# ---------------------------------------------------------------------------- is_frozen
@pytest.mark.parametrize(
    ("horizon", "planned", "frozen"),
    [
        (300, NOW + 300, True),  # exactly at the horizon: frozen
        (300, NOW + 301, False),  # a second past it: not
        (300, NOW + 299, True),
        (300, NOW, True),
        (300, NOW - 600, True),  # planned in the past
        (1, NOW + 1, True),
        (1, NOW + 2, False),
        (0, NOW, False),  # horizon 0: none frozen, not even a pickup due now ...
        (0, NOW - 600, False),  # ... or overdue
    ],
)
def test_an_assigned_order_is_frozen_up_to_the_horizon_inclusive(
    horizon: int, planned: int, frozen: bool
) -> None:
    o = order("a", 1, 2, ready=NOW - 60, assigned_rider_id="r1", assigned_pickup_s=planned)
    assert is_frozen(o, NOW, params(horizon), RIDERS) is frozen


@pytest.mark.parametrize(("ready", "frozen"), [(NOW + 300, True), (NOW + 301, False)])
def test_without_a_planned_pickup_the_ready_time_meets_the_horizon(
    ready: int, frozen: bool
) -> None:
    o = order("a", 1, 2, ready=ready, assigned_rider_id="r1")
    assert is_frozen(o, NOW, params(300), RIDERS) is frozen


def test_without_a_planned_pickup_an_order_ready_long_ago_is_due_now() -> None:
    o = order("a", 1, 2, ready=NOW - 5_000, assigned_rider_id="r1")
    assert is_frozen(o, NOW, params(1), RIDERS)
    assert not is_frozen(o, NOW, params(0), RIDERS)


def test_an_order_assigned_to_an_absent_rider_is_never_frozen() -> None:
    o = order("a", 1, 2, ready=NOW, assigned_rider_id="gone", assigned_pickup_s=NOW)
    assert not is_frozen(o, NOW, params(10_000), RIDERS)
    assert not is_frozen(o, NOW, params(10_000), {})


def test_unassigned_and_pinned_orders_are_never_frozen() -> None:
    big = params(10_000)
    assert not is_frozen(order("a", 1, 2, ready=NOW), NOW, big, RIDERS)
    committed = order("c", 1, 2, state=OrderState.COMMITTED, rider_id="r1", assigned_rider_id="r1")
    onboard = order("b", None, 2, state=OrderState.ONBOARD, rider_id="r2", assigned_rider_id="r2")
    assert not is_frozen(committed, NOW, big, RIDERS)
    assert not is_frozen(onboard, NOW, big, RIDERS)


def test_an_order_larger_than_its_riders_bag_is_never_frozen() -> None:
    """Frozen means committed to the rider, and a rider cannot carry more than its bag: such
    an order must move (its assignment priced only)."""
    o = order("a", 1, 2, ready=NOW, assigned_rider_id="r2")
    assert is_frozen(o, NOW, params(), {"r2": 1})
    big = dataclasses.replace(o, size=2)
    assert not is_frozen(big, NOW, params(), {"r2": 1})
    assert is_frozen(big, NOW, params(), {"r2": 2})


# ------------------------------------------------------------------------------- freeze
def mixed_orders() -> tuple[Order, ...]:
    """One order of every kind, on five points: which ones the default horizon freezes is in
    :data:`FROZEN`."""
    return (
        order("free", 1, 2, ready=NOW),  # not assigned
        order("soon", 1, 3, ready=NOW, assigned_rider_id="r2"),  # frozen (ready now)
        order("edge", 2, 3, ready=NOW, assigned_rider_id="r1", assigned_pickup_s=NOW + 300),
        order("late", 2, 4, ready=NOW, assigned_rider_id="r1", assigned_pickup_s=NOW + 301),
        order("ghost", 3, 4, ready=NOW, assigned_rider_id="nobody"),  # absent rider
        order("c", 1, 4, state=OrderState.COMMITTED, rider_id="r1", assigned_rider_id="r1"),
        order("b", None, 1, state=OrderState.ONBOARD, rider_id="r2", picked_up_s=NOW - 10),
    )


FROZEN = {"soon": "r2", "edge": "r1"}


def assert_frozen_as_expected(before: tuple[Order, ...], after: tuple[Order, ...]) -> None:
    assert [o.id for o in after] == [o.id for o in before]
    for old, new in zip(before, after, strict=True):
        if old.id in FROZEN:
            assert new.state is OrderState.COMMITTED
            assert new.rider_id == FROZEN[old.id] == old.assigned_rider_id
            # everything else kept, the assignment included (it still counts as served)
            assert dataclasses.replace(new, state=old.state, rider_id=old.rider_id) == old
        else:
            assert new is old


def test_freeze_commits_frozen_orders_of_a_problem_to_their_rider() -> None:
    problem = problem_of(*mixed_orders())
    frozen = freeze(problem, params())
    assert isinstance(frozen, Problem)
    assert frozen is not problem
    assert_frozen_as_expected(problem.orders, frozen.orders)
    assert frozen.riders == problem.riders and frozen.now_s == problem.now_s
    assert frozen.time_s is problem.time_s and frozen.distance_m is problem.distance_m
    assert dict(frozen.order_index) == dict(problem.order_index)  # rebuilt, same
    # the original is untouched
    assert [o.state for o in problem.orders] == [o.state for o in mixed_orders()]


def test_freeze_commits_frozen_orders_of_a_spec_to_their_rider() -> None:
    problem = problem_of(*mixed_orders())
    spec = ProblemSpec.of_problem(problem)
    frozen = freeze(spec, params())
    assert isinstance(frozen, ProblemSpec)
    assert frozen is not spec and frozen.source is spec.source
    assert_frozen_as_expected(spec.orders, frozen.orders)
    # the spec's problem and the problem's freeze agree
    assert frozen.problem().orders == freeze(problem, params()).orders


@pytest.mark.parametrize("kind", ["problem", "spec"])
def test_freeze_is_idempotent(kind: str) -> None:
    problem = problem_of(*mixed_orders())
    target: Any = problem if kind == "problem" else ProblemSpec.of_problem(problem)
    once = freeze(target, params())
    assert once is not target
    assert freeze(once, params()) is once  # frozen orders are no longer open


@pytest.mark.parametrize("kind", ["problem", "spec"])
@pytest.mark.parametrize(
    "changes",
    [
        {"freeze_horizon_s": 0},  # none frozen
        {"freeze_horizon_s": 300, "now": NOW - 1_000},  # every planned pickup past the horizon
    ],
)
def test_freeze_returns_the_same_object_when_nothing_is_frozen(
    kind: str, changes: dict[str, int]
) -> None:
    problem = problem_of(*mixed_orders(), now=changes.get("now", NOW))
    target: Any = problem if kind == "problem" else ProblemSpec.of_problem(problem)
    assert freeze(target, params(changes["freeze_horizon_s"])) is target


def test_freeze_of_a_problem_without_assignments_is_the_same_object() -> None:
    problem = problem_of(order("a", 1, 2), order("b", 3, 4, ready=NOW))
    assert freeze(problem, params(10**9)) is problem


def test_freeze_leaves_orders_of_absent_riders_open() -> None:
    problem = problem_of(order("g", 1, 2, ready=NOW, assigned_rider_id="r9"))
    assert freeze(problem, params(10**9)) is problem


def test_a_huge_horizon_freezes_every_assigned_open_order_of_a_present_rider() -> None:
    frozen = freeze(problem_of(*mixed_orders()), params(10**9))
    states = {o.id: o.state for o in frozen.orders}
    assert states["late"] is OrderState.COMMITTED
    assert states["ghost"] is OrderState.OPEN and states["free"] is OrderState.OPEN


def test_a_start_loaded_assigned_order_is_never_frozen() -> None:
    """An open start-loaded order (no pickup, benchmarks) may be assigned (the model accepts
    it), but it has no pickup to plan: freeze leaves it open, its assignment only priced."""
    problem = problem_of(order("s", None, 2, ready=NOW, assigned_rider_id="r2"))
    assert freeze(problem, params()) is problem
    assert not is_frozen(problem.orders[0], NOW, params(), {"r2": 4})


# -------------------------------------------------------------------------- moved_orders
def test_moved_orders_on_own_rider_other_rider_none_and_absent_rider() -> None:
    orders = (
        order("own", 1, 2, assigned_rider_id="r1"),
        order("other", 1, 3, assigned_rider_id="r1"),
        order("dropped", 2, 3, assigned_rider_id="r2"),
        order("free", 2, 4),  # not assigned: never moved, routed or not
        order("free_out", 3, 4),
        order("ghost_routed", 3, 2, assigned_rider_id="gone"),
        order("ghost_out", 4, 1, assigned_rider_id="gone"),
        order("c", 1, 4, state=OrderState.COMMITTED, rider_id="r2", assigned_rider_id="r2"),
    )
    problem = problem_of(*orders)
    visits = {
        "r1": served("own") + served("free") + served("ghost_routed"),
        "r2": served("other") + served("c"),
    }
    out = [Unassigned(x, UnassignedReason.SHED) for x in ("dropped", "free_out", "ghost_out")]
    plan = build_plan(problem, params(0), visits, out, engine=Engine.GREEDY)
    moved = ["other", "dropped", "ghost_routed", "ghost_out"]  # in the orders' order
    assert moved_orders(problem.orders, plan.routes) == moved
    assert plan.stats.reassigned == 4
    assert plan.stats.objective_terms["reassignment"] == 4 * 300.0
    check = check_plan(problem, plan, params(0))
    assert check.ok, check.violations
    assert check.terms["reassignment"] == 4 * 300.0


def test_moved_orders_reads_the_dropoff_only_and_follows_the_orders_order() -> None:
    problem = problem_of(
        order("b", 1, 2, assigned_rider_id="r2"), order("a", 3, 4, assigned_rider_id="r2")
    )
    plan = build_plan(
        problem, params(0), {"r1": served("a") + served("b")}, [], engine=Engine.GREEDY
    )
    assert moved_orders(problem.orders, plan.routes) == ["b", "a"]
    assert moved_orders(problem.orders[::-1], plan.routes) == ["a", "b"]
    assert moved_orders(problem.orders, ()) == ["b", "a"]  # no routes: all out
    assert moved_orders((), plan.routes) == []


def test_a_plan_moving_nothing_costs_no_reassignment() -> None:
    problem = problem_of(
        order("a", 1, 2, assigned_rider_id="r1"), order("b", 3, 4, assigned_rider_id="r2")
    )
    plan = build_plan(
        problem, params(0), {"r1": served("a"), "r2": served("b")}, [], engine=Engine.GREEDY
    )
    assert moved_orders(problem.orders, plan.routes) == []
    assert plan.stats.reassigned == 0
    assert plan.stats.objective_terms["reassignment"] == 0.0
    assert check_plan(problem, plan, params(0)).ok


# ---------------------------------------------------------------------- the checker's view
def test_the_checker_holds_a_frozen_order_to_its_rider() -> None:
    """``soon`` is due for pickup now on r1: a plan serving it on r2 breaks the freeze, one
    leaving it out too; the same plans are fine with horizon 0 (and cost the move)."""
    problem = problem_of(order("soon", 1, 2, ready=NOW, assigned_rider_id="r1"))
    on_r2 = build_plan(problem, params(0), {"r2": served("soon")}, [], engine=Engine.GREEDY)
    out = build_plan(
        problem, params(0), {}, [Unassigned("soon", UnassignedReason.SHED)], engine=Engine.GREEDY
    )
    for plan in (on_r2, out):
        assert not check_plan(problem, plan, params(300)).ok
        loose = check_plan(problem, plan, params(0))
        assert loose.ok, loose.violations
        assert loose.terms["reassignment"] == 300.0
    on_r1 = build_plan(problem, params(300), {"r1": served("soon")}, [], engine=Engine.GREEDY)
    assert check_plan(problem, on_r1, params(300)).ok


def test_the_checker_recounts_stats_reassigned() -> None:
    problem = problem_of(order("a", 1, 2, assigned_rider_id="r1"))
    plan = build_plan(problem, params(0), {"r2": served("a")}, [], engine=Engine.GREEDY)
    assert check_plan(problem, plan, params(0)).ok
    wrong = dataclasses.replace(plan, stats=dataclasses.replace(plan.stats, reassigned=0))
    violations = check_plan(problem, wrong, params(0)).violations
    assert any("stats.reassigned" in v for v in violations), violations


def test_the_checker_prices_the_reassignment_term_in_the_objective() -> None:
    problem = problem_of(order("a", 1, 2, assigned_rider_id="r1"))
    plan = build_plan(problem, params(0, 300.0), {"r2": served("a")}, [], engine=Engine.GREEDY)
    # the same plan scored with another reassignment cost has a wrong objective
    assert check_plan(problem, plan, params(0, 300.0)).ok
    assert not check_plan(problem, plan, params(0, 1_000.0)).ok


# --------------------------------------------------------------------- model validation
def build_with(o: Order) -> None:
    line_problem([0, 10, 20], [order("x", 1, 2), o], [rider("r1", 0), rider("r2", 1)])


@pytest.mark.parametrize("kind", ["problem", "spec"])
@pytest.mark.parametrize(
    ("bad", "field", "value"),
    [
        (
            order("o", 1, 2, state=OrderState.COMMITTED, rider_id="r1", assigned_rider_id="r2"),
            "orders[1].assigned_rider_id",
            "r2",
        ),
        (
            order("o", None, 2, state=OrderState.ONBOARD, rider_id="r1", assigned_rider_id="zz"),
            "orders[1].assigned_rider_id",
            "zz",
        ),
        (order("o", 1, 2, assigned_rider_id=""), "orders[1].assigned_rider_id", ""),
        (
            order("o", 1, 2, state=OrderState.COMMITTED, rider_id="r1", assigned_rider_id=""),
            "orders[1].assigned_rider_id",
            "",
        ),
        (order("o", 1, 2, assigned_pickup_s=1_500), "orders[1].assigned_pickup_s", 1_500),
        (
            order("o", 1, 2, state=OrderState.COMMITTED, rider_id="r1", assigned_pickup_s=0),
            "orders[1].assigned_pickup_s",
            0,
        ),
    ],
)
def test_bad_assignments_name_the_field(kind: str, bad: Order, field: str, value: object) -> None:
    with pytest.raises(ProblemError) as info:
        if kind == "problem":
            build_with(bad)
        else:
            ProblemSpec(
                0, (order("x", 1, 2), bad), (rider("r1", 0), rider("r2", 1)), problem_source()
            )
    assert (info.value.field, info.value.value) == (field, value)
    assert str(info.value).startswith(f"{field}={value!r}: ")


def problem_source() -> Any:
    return ProblemSpec.of_problem(
        line_problem([0, 10, 20], [order("x", 1, 2)], [rider("r1", 0)])
    ).source


@pytest.mark.parametrize(
    "good",
    [
        order("o", 1, 2, assigned_rider_id="r1"),
        order("o", 1, 2, assigned_rider_id="absent", assigned_pickup_s=5),  # absent: allowed
        order("o", 1, 2, assigned_rider_id="r2", assigned_pickup_s=-100),
        order("o", 1, 2, state=OrderState.COMMITTED, rider_id="r1", assigned_rider_id="r1"),
        order("o", None, 2, state=OrderState.ONBOARD, rider_id="r2", assigned_rider_id="r2"),
        order("o", None, 2, assigned_rider_id="r1"),  # start-loaded and assigned
    ],
)
def test_valid_assignments_are_accepted(good: Order) -> None:
    build_with(good)
