"""The replay behaves as a real order backend (issue 18): a planned order is pushed to its rider
at once (sent back as ``assigned_rider_id`` with the planned pickup and the first quoted ETA),
committed once the rider has had it for the accept delay, taken off the phone when a plan leaves
it out; an order the plan marks tentative is not pushed; a policy re-planning freely gets none
of this."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from scenarios.model import Geometry, Point, Scenario, ScenarioOrder, ScenarioRider
from scenarios.replay.policies import Decision, Snapshot
from scenarios.replay.simulate import ReplayConfig, replay
from scenarios.replay.travel import EuclideanTravel
from solver.model import Order, OrderState
from solver.plan import StopKind
from tests.scenarios.replay.test_simulate import PARAMS


@dataclass
class Scripted:
    """A fake policy: the one order on ``riders[k]`` at call k (the last one after), marked
    tentative at the calls in ``tentative_at``; it records the order as each snapshot sent it."""

    riders: tuple[str, ...]
    tentative_at: frozenset[int] = frozenset()
    replans_freely: bool = False
    name: str = "scripted"
    enforces_lateness_cap: bool = False
    seen: list[Order] = field(default_factory=list)

    def dispatch(self, snapshot: Snapshot) -> Decision:
        (order,) = snapshot.problem.orders
        k = len(self.seen)
        self.seen.append(order)
        rider = order.rider_id or self.riders[min(k, len(self.riders) - 1)]
        visits = [(order.id, StopKind.DROPOFF)]
        if order.state is not OrderState.ONBOARD:
            visits.insert(0, (order.id, StopKind.PICKUP))
        later = frozenset({order.id}) if k in self.tentative_at else frozenset()
        return Decision({rider: visits}, self.name, eta_s={order.id: 3000 + k}, tentative=later)

    def close(self) -> None:
        return None


def scenario() -> Scenario:
    """Two riders whose shifts start at 1200 (a planned rider is not under way before then,
    so only the backend's rules pin the order), one order ready at 1500."""
    return Scenario(
        name="backend",
        geometry=Geometry("euclidean", metres_per_minute=60.0),
        riders=(
            ScenarioRider("r1", 1200, 7200, Point(0, 0), "bike", 2),
            ScenarioRider("r2", 1200, 7200, Point(0, 1800), "bike", 2),
        ),
        orders=(ScenarioOrder("a", 0, Point(0, 900), Point(0, 1500), 1500, 3600),),
    )


def run(policy: Scripted, accept_delay_s: int = 60) -> None:
    config = ReplayConfig(batch_interval_s=30, accept_delay_s=accept_delay_s)
    replay(scenario(), EuclideanTravel(60.0), policy, PARAMS, config)


def test_a_pushed_order_is_assigned_then_committed_after_the_accept_delay() -> None:
    policy = Scripted(("r1",))
    run(policy, accept_delay_s=60)
    first, second, third = policy.seen[:3]
    assert (first.state, first.assigned_rider_id, first.quoted_dropoff_s) == (
        OrderState.OPEN,
        None,
        None,
    )
    # pushed at t=0: assigned at t=30 with the planned pickup arrival and the first ETA
    assert (second.state, second.assigned_rider_id) == (OrderState.OPEN, "r1")
    assert second.assigned_pickup_s is not None and second.quoted_dropoff_s == 3000
    # accepted 60 s after the push: committed (hard) from t=60 on
    assert (third.state, third.rider_id) == (OrderState.COMMITTED, "r1")
    assert third.quoted_dropoff_s == 3000  # the first ETA stays the promise


def test_a_move_restarts_the_accept_delay() -> None:
    policy = Scripted(("r1", "r2", "r2"))
    run(policy, accept_delay_s=60)
    states = [(o.state, o.rider_id or o.assigned_rider_id) for o in policy.seen[:4]]
    assert states == [
        (OrderState.OPEN, None),
        (OrderState.OPEN, "r1"),  # pushed to r1 at 0; moved to r2 at 30
        (OrderState.OPEN, "r2"),  # r2 has had it 30 s
        (OrderState.COMMITTED, "r2"),  # 60 s: r2 accepted
    ]


def test_a_tentative_order_is_not_pushed_until_a_plan_no_longer_marks_it() -> None:
    policy = Scripted(("r1", "r2", "r1", "r1"), tentative_at=frozenset({0, 1}))
    run(policy)
    seen = policy.seen
    assert [o.assigned_rider_id for o in seen[:4]] == [None, None, None, "r1"]
    assert all(o.state is OrderState.OPEN for o in seen[:4])
    assert seen[1].quoted_dropoff_s == 3000  # quoted while tentative: the student sees it


@pytest.mark.parametrize("tentative", [frozenset(), frozenset({0, 1, 2})])
def test_a_policy_re_planning_freely_gets_no_assignment(tentative: frozenset[int]) -> None:
    policy = Scripted(("r1", "r2"), tentative_at=tentative, replans_freely=True)
    run(policy)
    for o in policy.seen:
        assert o.assigned_rider_id is None and o.quoted_dropoff_s is None
    # before the shifts start no rider is under way: nothing commits it (no accept rule)
    assert all(o.state is OrderState.OPEN for o in policy.seen[:10])
