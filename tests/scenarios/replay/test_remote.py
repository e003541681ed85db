"""Replays through the gRPC service: a snapshot as the SolveRequest the order backend would send
(valid, and converted back into the same orders and riders), the recorder that writes every
n-th request up to a limit, and the service as a replay policy (answering, and unreachable)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from api.codec import epoch_of
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import Campus, load_campus
from scenarios.replay.policies import Snapshot, make_policy
from scenarios.replay.remote import GrpcService, RequestRecorder, request_from_snapshot
from scenarios.replay.simulate import ReplayConfig, replay
from scenarios.replay.travel import CampusTravel
from server.convert import problem_from_request
from server.validate import validate_request
from solver.model import OrderState
from solver.plan import StopKind
from tests.scenarios.replay.test_simulate import (
    PARAMS,
    assert_conserved,
    assert_no_teleport,
    short_tiny,
)
from tests.server.conftest import make_config


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


@pytest.fixture(scope="module")
def snapshots(tiny: Campus) -> list[Snapshot]:
    """Every batch a greedy replay of the first ten tiny-lunch orders dispatched (open,
    committed and onboard orders; riders on bikes and e-bikes)."""
    seen: list[Snapshot] = []
    config = ReplayConfig(batch_interval_s=60)
    replay(
        short_tiny(10),
        CampusTravel(tiny),
        make_policy("greedy", PARAMS, 0.05),
        PARAMS,
        config,
        record=seen.append,
    )
    return seen


def states(snapshot: Snapshot) -> set[OrderState]:
    return {o.state for o in snapshot.problem.orders}


# ------------------------------------------------------------------ request_from_snapshot
def test_the_snapshots_hold_every_kind_of_order(snapshots: list[Snapshot]) -> None:
    """The premise of the tests below: some batch has open, committed and onboard orders."""
    assert len(snapshots) > 10
    assert any(states(s) == set(OrderState) for s in snapshots)
    assert all(s.epoch_s > 0 for s in snapshots)


def test_a_snapshot_request_is_valid_and_converts_back_to_the_same_problem(
    tiny: Campus, snapshots: list[Snapshot]
) -> None:
    config = make_config()
    for snapshot in snapshots:
        problem, now = snapshot.problem, snapshot.problem.now_s
        request = request_from_snapshot(snapshot, "tiny", budget_s=0.25, request_id="snap")
        assert (request.campus_id, request.request_id) == ("tiny", "snap")
        assert request.time_budget.ToMilliseconds() == 250
        assert epoch_of(request.now) == snapshot.epoch_s + now
        assert validate_request(request, config) == [], now

        conversion = problem_from_request(request, tiny, config)
        back = conversion.problem
        assert back.now_s == 0  # the converted clock is seconds since the request's now
        assert [r.id for r in back.riders] == [r.id for r in problem.riders]
        for mine, theirs in zip(problem.riders, back.riders, strict=True):
            assert conversion.modes[theirs.profile] == snapshot.rider_modes[mine.id]
            assert theirs.capacity == mine.capacity
            assert theirs.available_s == mine.available_s - now
            assert theirs.shift_end_s == mine.shift_end_s - now
            assert tuple(conversion.points[theirs.location]) == tuple(
                snapshot.points[mine.location]
            )
        assert [o.id for o in back.orders] == [o.id for o in problem.orders]
        for mine, theirs in zip(problem.orders, back.orders, strict=True):
            assert (theirs.state, theirs.rider_id) == (mine.state, mine.rider_id), mine.id
            assert theirs.assigned_rider_id == mine.assigned_rider_id, mine.id
            assert theirs.assigned_pickup_s == (
                None if mine.assigned_pickup_s is None else mine.assigned_pickup_s - now
            )
            assert theirs.ready_s == mine.ready_s - now
            assert theirs.due_s == mine.due_s - now
            assert theirs.size == mine.size
            assert theirs.pickup_service_s == mine.pickup_service_s
            assert theirs.dropoff_service_s == mine.dropoff_service_s
            assert theirs.max_in_bag_s == mine.max_in_bag_s
            assert tuple(conversion.points[theirs.dropoff]) == tuple(snapshot.points[mine.dropoff])
            if mine.state is OrderState.ONBOARD:
                assert not request.orders[back.order_index[mine.id]].HasField("pickup")
                assert theirs.pickup is None
            else:
                assert mine.pickup is not None and theirs.pickup is not None
                assert tuple(conversion.points[theirs.pickup]) == tuple(
                    snapshot.points[mine.pickup]
                )


def test_pinned_orders_name_their_rider_in_the_right_field(snapshots: list[Snapshot]) -> None:
    snapshot = next(s for s in snapshots if states(s) == set(OrderState))
    request = request_from_snapshot(snapshot, "tiny", budget_s=0.1)
    for mine, sent in zip(snapshot.problem.orders, request.orders, strict=True):
        expected = {
            OrderState.OPEN: ("", ""),
            OrderState.COMMITTED: (mine.rider_id, ""),
            OrderState.ONBOARD: ("", mine.rider_id),
        }[mine.state]
        assert (sent.committed_rider_id, sent.onboard_rider_id) == expected


def assigned(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` as the backend sees it once answers have gone out: open orders on a rider's
    phone (a rider of the batch, or one logged off since), some with the pickup time planned
    then; committed and onboard orders assigned to their own rider."""
    problem, riders = snapshot.problem, [r.id for r in snapshot.problem.riders]
    orders = []
    for k, o in enumerate(problem.orders):
        if o.is_pinned:
            o = dataclasses.replace(o, assigned_rider_id=o.rider_id)
        elif k % 3 != 2:
            rider = riders[k % len(riders)] if k % 3 == 0 else "logged-off"
            pickup = problem.now_s + 60 * k if k % 2 == 0 else None
            o = dataclasses.replace(o, assigned_rider_id=rider, assigned_pickup_s=pickup)
        if k % 3 == 0:  # the first ETA shown to the student, any state
            o = dataclasses.replace(o, quoted_dropoff_s=problem.now_s + 600 + k)
        orders.append(o)
    return dataclasses.replace(snapshot, problem=dataclasses.replace(problem, orders=tuple(orders)))


def test_assigned_orders_name_their_rider_and_planned_pickup(
    tiny: Campus, snapshots: list[Snapshot]
) -> None:
    snapshot = assigned(next(s for s in snapshots if states(s) == set(OrderState)))
    request = request_from_snapshot(snapshot, "tiny", budget_s=0.1)
    problem = snapshot.problem
    assert any(o.assigned_pickup_s is not None for o in problem.orders)
    assert any(o.assigned_rider_id == "logged-off" for o in problem.orders)
    for mine, sent in zip(problem.orders, request.orders, strict=True):
        assert sent.assigned_rider_id == (mine.assigned_rider_id or ""), mine.id
        if mine.assigned_pickup_s is None:
            assert not sent.HasField("assigned_pickup_time"), mine.id
        else:
            assert epoch_of(sent.assigned_pickup_time) == snapshot.epoch_s + mine.assigned_pickup_s
        if mine.quoted_dropoff_s is None:
            assert not sent.HasField("quoted_dropoff_time"), mine.id
        else:
            assert epoch_of(sent.quoted_dropoff_time) == snapshot.epoch_s + mine.quoted_dropoff_s
    config = make_config()
    assert validate_request(request, config) == []
    back = problem_from_request(request, tiny, config).problem
    for mine, theirs in zip(problem.orders, back.orders, strict=True):
        assert theirs.assigned_rider_id == mine.assigned_rider_id
        quoted = mine.quoted_dropoff_s  # the server's clock starts at the request's now
        assert theirs.quoted_dropoff_s == (None if quoted is None else quoted - problem.now_s)
        expected = mine.assigned_pickup_s
        assert theirs.assigned_pickup_s == (None if expected is None else expected - problem.now_s)


# ------------------------------------------------------------------------- RequestRecorder
def test_recorded_requests_are_valid_solve_requests(tiny: Campus, tmp_path: Path) -> None:
    scenario = short_tiny(8)
    recorder = RequestRecorder(tmp_path / "requests", "tiny", 0.2, limit=5)
    travel = CampusTravel(tiny)
    config = ReplayConfig(batch_interval_s=60)
    replay(scenario, travel, make_policy("greedy", PARAMS, 0.05), PARAMS, config, record=recorder)
    assert 1 <= len(recorder.written) <= 5
    for path in recorder.written:
        request = json_format.Parse(path.read_text(), pb.SolveRequest())
        assert request.campus_id == "tiny" and request.orders and request.riders
        assert validate_request(request, make_config()) == []


@pytest.mark.parametrize(("every", "limit"), [(1, None), (3, 4), (10, None), (7, 100), (0, 2)])
def test_the_recorder_writes_every_nth_snapshot_up_to_the_limit(
    snapshots: list[Snapshot], tmp_path: Path, every: int, limit: int | None
) -> None:
    folder = tmp_path / "deep" / "requests"
    recorder = RequestRecorder(folder, "tiny", 0.3, every=every, limit=limit)
    assert folder.is_dir()  # made up front
    for snapshot in snapshots:
        recorder(snapshot)
    step = max(1, every)
    chosen = snapshots[::step][:limit]
    assert recorder.seen == len(snapshots)
    assert [p.name for p in recorder.written] == [
        f"req-{k:05d}.json" for k in range(1, len(chosen) + 1)
    ]
    assert sorted(folder.iterdir()) == recorder.written
    for k, (path, snapshot) in enumerate(zip(recorder.written, chosen, strict=True), 1):
        request = json_format.Parse(path.read_text(), pb.SolveRequest())
        assert request.request_id == f"recorded-{k:05d}"
        assert epoch_of(request.now) == snapshot.epoch_s + snapshot.problem.now_s
        assert request.time_budget.ToMilliseconds() == 300
        assert [o.id for o in request.orders] == [o.id for o in snapshot.problem.orders]


# ----------------------------------------------------------------------------- GrpcService
@pytest.fixture(scope="module")
def service(tiny: Campus) -> Iterator[str]:
    from server.app import create_server

    svc = create_server(make_config(), campuses={"tiny": tiny})
    yield svc.address
    svc.stop(0.5)


def test_replay_through_the_grpc_service(tiny: Campus, service: str) -> None:
    scenario = short_tiny(8)
    travel = CampusTravel(tiny)
    policy = GrpcService(service, "tiny", 0.1)
    config = ReplayConfig(batch_interval_s=120, check_plans=True)
    try:
        result = replay(scenario, travel, policy, PARAMS, config)
    finally:
        policy.close()
    assert_conserved(scenario, result)
    assert_no_teleport(scenario, result, travel)
    assert {b.engine for b in result.batches} <= {"greedy", "ruin_recreate", "ortools"}
    assert not any(b.rejected for b in result.batches)
    assert sum(1 for o in result.orders if o.delivered) >= 6


@pytest.mark.parametrize("soft", [False, True], ids=["plain", "assigned"])
def test_the_service_answers_a_decision_covering_the_orders(
    service: str, snapshots: list[Snapshot], soft: bool
) -> None:
    snapshot = next(s for s in snapshots if states(s) == set(OrderState))
    if soft:
        snapshot = assigned(snapshot)
    policy = GrpcService(service, "tiny", 0.2)
    try:
        decision = policy.dispatch(snapshot)
    finally:
        policy.close()
    assert decision.rejected == "" and decision.shed_reason == ""
    assert decision.engine in {"greedy", "ruin_recreate", "ortools"}
    assert set(decision.phase_s) == {"rpc", "matrix", "solve", "total"}
    assert decision.phase_s["rpc"] >= decision.phase_s["total"] > 0
    where = {
        (order_id, kind): rider_id
        for rider_id, visits in decision.visits.items()
        for order_id, kind in visits
    }
    assert set(decision.visits) <= {r.id for r in snapshot.problem.riders}
    for order in snapshot.problem.orders:
        dropoff = where.get((order.id, StopKind.DROPOFF))
        assert dropoff is not None, f"{order.id} ({order.state.value}) is not served"
        if order.state is OrderState.ONBOARD:
            assert (order.id, StopKind.PICKUP) not in where
        else:
            assert where.get((order.id, StopKind.PICKUP)) == dropoff
        if order.is_pinned:
            assert dropoff == order.rider_id


def closed_port() -> int:
    """A port on the loopback that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_service_gives_a_rejected_decision(snapshots: list[Snapshot]) -> None:
    policy = GrpcService(f"127.0.0.1:{closed_port()}", "tiny", 0.1, deadline_margin_s=2.0)
    try:
        decision = policy.dispatch(snapshots[0])
    finally:
        policy.close()
    assert decision.rejected == "UNAVAILABLE"
    assert decision.visits == {} and decision.engine == "none"
    assert set(decision.phase_s) == {"rpc"} and decision.phase_s["rpc"] < 2.0


def test_a_snapshot_request_says_who_ordered_when_and_from_which_merchant(
    snapshots: list[Snapshot],
) -> None:
    scenario = {o.id: o for o in short_tiny(10).orders}
    sent = 0
    for snapshot in snapshots:
        request = request_from_snapshot(snapshot, "tiny", budget_s=0.1)
        for order in request.orders:
            source = scenario[order.id]
            assert order.customer_id == source.account
            assert order.merchant_id == source.merchant_id
            assert epoch_of(order.placed_time) == snapshot.epoch_s + source.placed_s
            assert order.HasField("max_time_in_bag") == (source.max_in_bag_s is not None)
            sent += 1
    assert sent and any(o.account for o in scenario.values())
