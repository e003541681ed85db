"""The gRPC service end to end: plans pass the solver's checker, budgets and deadlines hold,
overload sheds or refuses (never INTERNAL), a killed worker heals, bad input is named."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from api.client import format_response
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus, load_campus
from server.app import SERVICE_NAME, Service, create_server
from server.convert import problem_from_request
from server.guard import SOLVE_METHOD
from server.validate import InvalidRequestError
from solver.check import check_plan
from solver.params import SolverParams
from tests.conftest import _InternalWatch
from tests.server.conftest import NOW, make_config, make_request, plan_of_response, violations
from tests.waiting import wait_until

#: Engines of an answer whose search ran (ruin-and-recreate, then OR-Tools if configured).
SEARCHED = (pb.RUIN_RECREATE, pb.ORTOOLS)


def test_generated_modules_import() -> None:
    assert pb.DESCRIPTOR.package == "campus_dispatch.v1"
    assert SERVICE_NAME == "campus_dispatch.v1.DispatchService"
    assert hasattr(pb_grpc, "DispatchServiceStub")


def test_solve_plan_passes_checker_and_covers_every_order(
    service: Service, stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    request = make_request(tiny_campus, orders=8, riders=3)
    request.orders[0].onboard_rider_id = "r1"
    request.orders[1].committed_rider_id = "r2"
    response = stub.Solve(request, timeout=5)
    assert response.request_id == request.request_id
    conversion, plan = plan_of_response(tiny_campus, service, request, response)
    check = check_plan(conversion.problem, plan, service.config.solver)
    assert check.ok, check.violations
    assert response.stats.objective == pytest.approx(check.objective)
    seen = [s.order_id for r in response.routes for s in r.stops if s.kind == pb.DROPOFF]
    seen += [u.order_id for u in response.unassigned]
    assert sorted(seen) == sorted(o.id for o in request.orders)
    # ETAs are the solver's times on the request's clock
    by_rider = {r.rider_id: r for r in plan.routes}
    for route in response.routes:
        for stop, mine in zip(route.stops, by_rider[route.rider_id].stops, strict=True):
            assert stop.arrival_time.ToSeconds() == NOW + mine.arrival_s
    assert {s.order_id for r in response.routes if r.rider_id == "r1" for s in r.stops} >= {"o0"}
    assert response.stats.engine in SEARCHED
    assert response.stats.total_time.ToNanoseconds() > 0


def test_budget_and_deadline_hold(stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus) -> None:
    request = make_request(tiny_campus, orders=10, riders=3, budget_ms=3000)
    started = time.perf_counter()
    response = stub.Solve(request, timeout=0.6)  # the deadline is tighter than the budget
    assert time.perf_counter() - started < 0.6
    assert response.stats.total_time.ToNanoseconds() < 0.6e9
    request.time_budget.FromMilliseconds(200)
    started = time.perf_counter()
    stub.Solve(request, timeout=5)
    assert time.perf_counter() - started < 0.2 + 0.15


def test_concurrent_clients_above_capacity_shed_never_fail(tiny_campus: Campus) -> None:
    svc = create_server(make_config(max_inflight=6), campuses={"tiny": tiny_campus})
    results: list[object] = []
    try:
        with grpc.insecure_channel(svc.address) as channel:
            stub = pb_grpc.DispatchServiceStub(channel)

            def call(k: int) -> None:
                try:
                    results.append(
                        stub.Solve(make_request(tiny_campus, budget_ms=400, seed=k), timeout=5)
                    )
                except grpc.RpcError as err:
                    results.append(err.code())

            threads = [threading.Thread(target=call, args=(k,)) for k in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        svc.stop(0.5)
    codes = [r for r in results if isinstance(r, grpc.StatusCode)]
    answers = [r for r in results if isinstance(r, pb.SolveResponse)]
    assert len(results) == 10
    assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED}
    shed = [a for a in answers if a.stats.engine == pb.GREEDY]
    assert shed and all(a.stats.shed_reason for a in shed)
    assert any(a.stats.engine in SEARCHED for a in answers)


def test_killed_worker_still_answers_and_pool_heals(tiny_campus: Campus) -> None:
    svc = create_server(make_config(), campuses={"tiny": tiny_campus})
    try:
        with grpc.insecure_channel(svc.address) as channel:
            stub = pb_grpc.DispatchServiceStub(channel)
            box: list[pb.SolveResponse] = []
            request = make_request(tiny_campus, orders=10, budget_ms=3000)
            caller = threading.Thread(target=lambda: box.append(stub.Solve(request, timeout=10)))
            caller.start()
            time.sleep(0.8)
            for pid in svc.pool.worker_pids:
                os.kill(pid, signal.SIGKILL)
            caller.join()
            assert box and box[0].stats.engine == pb.GREEDY
            assert "crash" in box[0].stats.shed_reason
            assert svc.pool.wait_idle(60.0)  # the pool heals: a fresh worker, warm and idle
            assert svc.pool.restarts == 1
            url = f"http://127.0.0.1:{svc.metrics_port}/metrics"
            text = urllib.request.urlopen(url).read().decode()
            assert "dispatch_worker_restarts_total 1.0" in text.splitlines()
            again = stub.Solve(make_request(tiny_campus, budget_ms=300, seed=4), timeout=10)
            assert again.stats.engine in SEARCHED
    finally:
        svc.stop(0.5)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda r: setattr(r.orders[1], "id", "o0"), "orders[1].id", "duplicate"),
        (lambda r: setattr(r.riders[1], "id", "r0"), "riders[1].id", "duplicate"),
        (
            lambda r: setattr(r.orders[0].dropoff, "lat", float("nan")),
            "orders[0].dropoff.lat",
            "nan",
        ),
        (lambda r: setattr(r.riders[0].position, "lng", 200.0), "riders[0].position.lng", "200"),
        (
            lambda r: r.orders[0].due_time.FromSeconds(NOW - 10_000),
            "orders[0].due_time",
            "before ready",
        ),
        (lambda r: setattr(r.orders[0], "size", -2), "orders[0].size", "negative"),
        (lambda r: setattr(r.riders[0], "capacity", -1), "riders[0].capacity", "negative"),
        (
            lambda r: setattr(r.orders[0], "onboard_rider_id", "ghost"),
            "orders[0].onboard_rider_id",
            "unknown rider",
        ),
        (lambda r: setattr(r.orders[0], "size", 9), "orders[0].size", "every rider"),
        (lambda r: r.orders[0].ClearField("due_time"), "orders[0].due_time", "required"),
        (
            lambda r: setattr(r.orders[0].dropoff, "lng", 10.5),
            "orders[0].dropoff",
            "outside the campus",
        ),
    ],
)
def test_bad_input_names_the_field(
    stub: pb_grpc.DispatchServiceStub,
    tiny_campus: Campus,
    mutate: Callable[[pb.SolveRequest], object],
    field: str,
    words: str,
) -> None:
    request = make_request(tiny_campus)
    mutate(request)
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = violations(err.value)
    assert field in bad, bad
    assert words in bad[field]


def test_unknown_campus_and_size_caps(
    service: Service, stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    request = make_request(tiny_campus)
    request.campus_id = "atlantis"
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "atlantis" in err.value.details()
    big = make_request(tiny_campus, orders=service.config.max_orders + 1, riders=1)
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(big, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_orders=2000" in violations(err.value)["orders"]


def test_shed_requests_past_the_greedy_cap_get_resource_exhausted(
    tiny_campus: Campus, monkeypatch: pytest.MonkeyPatch
) -> None:
    import solver.runtime.dispatch

    release = threading.Event()
    real_greedy = solver.runtime.dispatch.solve_greedy

    def held_greedy(*args: object, **kwargs: object) -> object:
        release.wait(10)  # the shed request holds its greedy slot until released
        return real_greedy(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solver.runtime.dispatch, "solve_greedy", held_greedy)  # in the server only
    svc = create_server(make_config(max_greedy_inflight=1), campuses={"tiny": tiny_campus})
    results: dict[str, object] = {}
    try:
        with grpc.insecure_channel(svc.address) as channel:
            stub = pb_grpc.DispatchServiceStub(channel)

            def call(name: str, budget_ms: int) -> None:
                try:
                    request = make_request(tiny_campus, budget_ms=budget_ms)
                    results[name] = stub.Solve(request, timeout=15)
                except grpc.RpcError as err:
                    results[name] = err

            busy = threading.Thread(target=call, args=("search", 1500))
            busy.start()  # takes the only worker for 1.5 s
            time.sleep(0.3)
            shed = threading.Thread(target=call, args=("shed", 200))
            shed.start()  # no worker in time: greedy, held
            wait_until(lambda: svc.servicer.admission.greedy_inflight == 1, timeout_s=5.0)
            call("refused", 200)  # no worker in time and the greedy cap is full
            release.set()
            for thread in (busy, shed):
                thread.join(timeout=15)
    finally:
        svc.stop(0.5)
    refused = results["refused"]
    assert isinstance(refused, grpc.RpcError)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_greedy_inflight=1" in (refused.details() or "")
    status = rpc_status.from_call(refused)
    retry = error_details_pb2.RetryInfo()
    assert status is not None and status.details[0].Unpack(retry)
    answer = results["shed"]
    assert isinstance(answer, pb.SolveResponse) and answer.stats.engine == pb.GREEDY
    assert isinstance(results["search"], pb.SolveResponse)


def test_rate_limit_per_client(tiny_campus: Campus) -> None:
    svc = create_server(
        make_config(rate_limit_per_s=0.5, rate_limit_burst=2), campuses={"tiny": tiny_campus}
    )
    try:
        with grpc.insecure_channel(svc.address) as channel:
            stub = pb_grpc.DispatchServiceStub(channel)
            request = make_request(tiny_campus, budget_ms=50)
            for _ in range(2):
                stub.Solve(request, timeout=5, metadata=(("client-id", "a"),))
            with pytest.raises(grpc.RpcError) as err:
                stub.Solve(request, timeout=5, metadata=(("client-id", "a"),))
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            status = rpc_status.from_call(err.value)
            retry = error_details_pb2.RetryInfo()
            assert status is not None and status.details[0].Unpack(retry)
            assert retry.retry_delay.ToNanoseconds() > 0
            stub.Solve(request, timeout=5, metadata=(("client-id", "b"),))  # others unaffected
    finally:
        svc.stop(0.5)


def test_health_reflection_metrics_and_drain(
    service: Service, stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    stub.Solve(make_request(tiny_campus, budget_ms=100), timeout=5)
    with grpc.insecure_channel(service.address) as channel:
        health_stub = health_pb2_grpc.HealthStub(channel)
        ask = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        assert health_stub.Check(ask).status == health_pb2.HealthCheckResponse.SERVING
        campuses = stub.ListCampuses(pb.ListCampusesRequest())
        assert [c.id for c in campuses.campuses] == ["tiny"] and campuses.campuses[0].is_default
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics")
            .read()
            .decode()
        )
        assert "dispatch_solve_latency_seconds_bucket" in text
        assert 'dispatch_requests_total{code="OK"}' in text
        service.drain()
        assert health_stub.Check(ask).status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_point_off_the_network_names_field_and_distance(
    service: Service, tiny_campus: Campus
) -> None:
    strict = load_campus("tiny", overrides={"snap": {"max_distance_m": 20.0}})
    request = make_request(tiny_campus)
    request.orders[2].dropoff.lat = 10.0 + 0.5 * 0.000898  # the middle of a block
    request.orders[2].dropoff.lng = 10.0 + 2.5 * 0.000912
    with pytest.raises(InvalidRequestError) as err:
        problem_from_request(request, strict, service.config)
    by_field = {v.field: v for v in err.value.violations}
    violation = by_field["orders[2].dropoff"]
    assert "too far from the bike network" in violation.description
    assert "(limit 20 m)" in violation.description


def test_text_over_128_bytes_is_refused_with_its_length(
    stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    request = make_request(tiny_campus)
    request.orders[1].id = "x" * 100_000
    request.riders[0].id = "€" * 43  # 43 characters, 129 bytes of UTF-8
    request.request_id = "r" * 129
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = violations(err.value)
    assert "is 100000 bytes of UTF-8" in bad["orders[1].id"]
    assert "at most 128 bytes" in bad["orders[1].id"]
    assert "is 129 bytes of UTF-8" in bad["riders[0].id"]
    assert "is 129 bytes" in bad["request_id"]
    assert len(err.value.details()) < 2000  # the 100,000 characters are not echoed
    request = make_request(tiny_campus)
    request.orders[0].id = "€" * 42  # 126 bytes: accepted
    assert stub.Solve(request, timeout=5).request_id == request.request_id


def test_times_and_durations_out_of_range_are_named(
    stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    request = make_request(tiny_campus)
    request.orders[0].due_time.seconds = 2**62  # not a valid Timestamp at all
    request.orders[1].ready_time.FromSeconds(-62_135_596_800)  # year 1: valid, far from now
    request.orders[2].pickup_service.seconds = 10**12
    request.riders[0].shift_end.FromSeconds(NOW + 8 * 86400)
    request.time_budget.FromSeconds(3600)
    request.orders[3].due_time.seconds = 253_402_300_799  # the last valid instant
    request.orders[3].due_time.nanos = 999_999_999
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(request, timeout=5)
    bad = violations(err.value)
    assert "is not a valid Timestamp" in bad["orders[0].due_time"]
    assert "0001-01-01T00:00:00+00:00 is" in bad["orders[1].ready_time"]
    assert "within 7 days of now" in bad["orders[1].ready_time"]
    assert "is not a valid Duration" in bad["orders[2].pickup_service"]
    assert "+8.0 days from now" in bad["riders[0].shift_end"]
    assert "more than 60 s" in bad["time_budget"]
    assert "9999-12-31T23:59:59+00:00 is" in bad["orders[3].due_time"]


def test_undecodable_bytes_are_invalid_argument(service: Service, tiny_campus: Campus) -> None:
    request = make_request(tiny_campus)
    request.orders[0].id = "@@"
    data = request.SerializeToString().replace(b"@@", b"\xc3\x28")  # not UTF-8
    with grpc.insecure_channel(service.address) as channel:
        raw = channel.unary_unary(SOLVE_METHOD, response_deserializer=pb.SolveResponse.FromString)
        with pytest.raises(grpc.RpcError) as err:
            raw(data, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must be valid UTF-8" in violations(err.value)["request"]
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\x0a\xff\xff\xff", timeout=5)  # a truncated message
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics").read()
    assert b'dispatch_requests_total{code="INVALID_ARGUMENT"}' in text


def test_request_over_max_request_bytes_is_refused_by_grpc(tiny_campus: Campus) -> None:
    svc = create_server(make_config(max_request_bytes=4096), campuses={"tiny": tiny_campus})
    try:
        with grpc.insecure_channel(svc.address) as channel:
            stub = pb_grpc.DispatchServiceStub(channel)
            request = make_request(tiny_campus, orders=100)
            assert request.ByteSize() > 4096
            with pytest.raises(grpc.RpcError) as err:
                stub.Solve(request, timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in (err.value.details() or "")
            assert stub.Solve(make_request(tiny_campus, orders=3), timeout=5).routes
    finally:
        svc.stop(0.5)


@pytest.mark.internal_expected
def test_an_internal_error_is_logged_and_caught_by_the_suite(
    service: Service,
    stub: pb_grpc.DispatchServiceStub,
    tiny_campus: Campus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suite's INTERNAL watch (tests/conftest.py) sees what this test provokes on purpose."""
    import server.servicer

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.servicer, "problem_from_request", broken)
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(make_request(tiny_campus), timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    watch = _InternalWatch()
    access = logging.getLogger("campus_dispatch.access")
    access.addHandler(watch)
    try:
        with pytest.raises(grpc.RpcError):
            stub.Solve(make_request(tiny_campus), timeout=5)
    finally:
        access.removeHandler(watch)
    assert watch.seen and '"status": "INTERNAL"' in watch.seen[0]


# ---------------------------------------------------------------- soft assignments
def _rider_of(response: pb.SolveResponse) -> dict[str, str]:
    """Order id -> the rider whose route drops it off."""
    return {
        s.order_id: r.rider_id for r in response.routes for s in r.stops if s.kind == pb.DROPOFF
    }


def _assigned_request(
    tiny_campus: Campus, seed: int, rider: str, pickup_in_s: int
) -> pb.SolveRequest:
    """One order on ``rider``'s phone, its pickup planned ``pickup_in_s`` from now; rider r0
    waits at the merchant, r1 is elsewhere."""
    request = make_request(tiny_campus, orders=1, riders=2, seed=seed)
    request.riders[0].position.CopyFrom(request.orders[0].pickup)
    request.orders[0].assigned_rider_id = rider
    request.orders[0].assigned_pickup_time.FromSeconds(NOW + pickup_in_s)
    return request


def _checked(
    service: Service, tiny_campus: Campus, request: pb.SolveRequest, response: pb.SolveResponse
) -> None:
    conversion, plan = plan_of_response(tiny_campus, service, request, response)
    check = check_plan(conversion.problem, plan, service.config.solver)
    assert check.ok, check.violations
    assert response.stats.objective == pytest.approx(check.objective)
    assert response.stats.reassigned_orders == plan.stats.reassigned


@pytest.fixture
def costly_moves(tiny_campus: Campus) -> Iterator[tuple[Service, pb_grpc.DispatchServiceStub]]:
    """A server whose moves cost 300 (the positions below are chosen around that price)."""
    solver = SolverParams().replace(reassignment_cost=300.0)
    svc = create_server(make_config(solver=solver), campuses={"tiny": tiny_campus})
    try:
        with grpc.insecure_channel(svc.address) as channel:
            yield svc, pb_grpc.DispatchServiceStub(channel)
    finally:
        svc.stop(0.5)


def test_an_assigned_order_stays_on_its_rider_unless_it_must_or_moving_pays(
    costly_moves: tuple[Service, pb_grpc.DispatchServiceStub], tiny_campus: Campus
) -> None:
    """Kept on r1 although r0 waits at the merchant (the move would save less than the
    reassignment cost, 300); moved when it saves more, unless its pickup is due within the
    freeze horizon (300 s); moved, and counted, when its rider is not in the request."""
    service, stub = costly_moves
    scrape = service.metrics.registry.get_sample_value
    labels = {"campus": "tiny"}
    before = scrape("dispatch_reassigned_orders_total", labels) or 0.0
    cost = service.config.solver.reassignment_cost

    kept = _assigned_request(tiny_campus, seed=1, rider="r1", pickup_in_s=1200)
    response = stub.Solve(kept, timeout=5)
    assert _rider_of(response) == {"o0": "r1"}
    assert response.stats.reassigned_orders == 0
    assert "reassigned" not in format_response(response)
    _checked(service, tiny_campus, kept, response)

    moved = _assigned_request(tiny_campus, seed=2, rider="r1", pickup_in_s=1200)
    response = stub.Solve(moved, timeout=5)
    assert _rider_of(response) == {"o0": "r0"}
    assert response.stats.reassigned_orders == 1
    _checked(service, tiny_campus, moved, response)
    moved.orders[0].ClearField("assigned_rider_id")
    moved.orders[0].ClearField("assigned_pickup_time")
    free = stub.Solve(moved, timeout=5)  # the same plan, without the move's price
    assert response.stats.objective == pytest.approx(free.stats.objective + cost)

    frozen = _assigned_request(tiny_campus, seed=2, rider="r1", pickup_in_s=120)
    response = stub.Solve(frozen, timeout=5)
    assert _rider_of(response) == {"o0": "r1"}
    assert response.stats.reassigned_orders == 0
    _checked(service, tiny_campus, frozen, response)

    gone = _assigned_request(tiny_campus, seed=1, rider="logged-off", pickup_in_s=60)
    response = stub.Solve(gone, timeout=5)
    assert _rider_of(response)["o0"] in {"r0", "r1"}
    assert response.stats.reassigned_orders == 1
    assert "late orders 0, reassigned orders 1, matrix" in format_response(response)
    _checked(service, tiny_campus, gone, response)

    assert scrape("dispatch_reassigned_orders_total", labels) == before + 2


def test_bad_soft_assignments_name_the_field_and_the_values(
    stub: pb_grpc.DispatchServiceStub, tiny_campus: Campus
) -> None:
    request = make_request(tiny_campus)
    request.orders[0].committed_rider_id = "r0"
    request.orders[0].assigned_rider_id = "r2"
    request.orders[1].assigned_pickup_time.FromSeconds(NOW + 600)  # no assigned rider
    request.orders[2].assigned_rider_id = "r1"
    request.orders[2].assigned_pickup_time.seconds = 2**62  # not a Timestamp
    request.orders[3].assigned_rider_id = "z" * 129
    request.orders[4].assigned_rider_id = "nobody-here"  # fine: a rider not in the request
    with pytest.raises(grpc.RpcError) as err:
        stub.Solve(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = violations(err.value)
    assert set(bad) == {
        "orders[0].assigned_rider_id",
        "orders[1].assigned_pickup_time",
        "orders[2].assigned_pickup_time",
        "orders[3].assigned_rider_id",
    }
    assert bad["orders[0].assigned_rider_id"].startswith(
        "'r2' differs from committed_rider_id 'r0'"
    )
    assert "without assigned_rider_id" in bad["orders[1].assigned_pickup_time"]
    assert (
        f"seconds={2**62}, nanos=0 is not a valid Timestamp"
        in bad["orders[2].assigned_pickup_time"]
    )
    assert "is 129 bytes of UTF-8" in bad["orders[3].assigned_rider_id"]
