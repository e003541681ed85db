"""Deferred orders (the storm guard's suspicious ones) are planned last, only with the riders
the other orders leave idle; those no left-over rider takes are DEPRIORITISED."""

from __future__ import annotations

import pytest

from solver.check import assert_valid_plan
from solver.model import OrderState
from solver.params import SolverParams
from solver.plan import UnassignedReason
from solver.runtime.dispatch import solve
from solver.spec import ProblemSpec
from tests.solver.runtime.test_partition import storm

PARAMS = SolverParams()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deferred_orders_only_take_riders_left_idle(seed: int) -> None:
    problem, xy = storm(seed, 40, 12, pinned=0.0)
    deferred = frozenset(f"o{k}" for k in range(0, 40, 4))
    plan = solve(ProblemSpec.of_problem(problem, xy), PARAMS, budget_s=0.5, deferred=deferred)
    assert_valid_plan(problem, plan, PARAMS)
    for route in plan.routes:
        kinds = {s.order_id in deferred for s in route.stops}
        assert len(kinds) <= 1, f"rider {route.rider_id} mixes deferred and other orders"
    legit = solve(
        ProblemSpec(
            0,
            tuple(o for o in problem.orders if o.id not in deferred),
            problem.riders,
            ProblemSpec.of_problem(problem, xy).source,
        ),
        PARAMS,
        budget_s=0.5,
    )
    assert (
        plan.num_routed
        - sum(
            1
            for r in plan.routes
            for s in r.stops
            if s.order_id in deferred and s.kind.value == "dropoff"
        )
        >= legit.num_routed - 2
    )  # the other orders are served as if the deferred did not exist
    assert "deferred" in plan.stats.phase_s


def test_with_no_rider_left_over_deferred_orders_are_deprioritised_with_a_reason() -> None:
    problem, xy = storm(3, 30, 3, pinned=0.0)
    deferred = frozenset(f"o{k}" for k in range(10))
    plan = solve(ProblemSpec.of_problem(problem, xy), PARAMS, budget_s=0.5, deferred=deferred)
    assert_valid_plan(problem, plan, PARAMS)
    assert all(r.stops for r in plan.routes)  # every rider busy with the other orders
    reasons = {u.order_id: u for u in plan.unassigned}
    assert set(reasons) >= deferred
    for order_id in deferred:
        assert reasons[order_id].reason is UnassignedReason.DEPRIORITISED
        assert "none was left" in reasons[order_id].detail


def test_deferred_ids_of_accepted_orders_are_ignored() -> None:
    problem, xy = storm(4, 30, 6, pinned=0.5)
    accepted = {o.id for o in problem.orders if o.state is not OrderState.OPEN}
    plan = solve(
        ProblemSpec.of_problem(problem, xy), PARAMS, budget_s=0.3, deferred=frozenset(accepted)
    )
    assert_valid_plan(problem, plan, PARAMS)
    assert "deferred" not in plan.stats.phase_s
