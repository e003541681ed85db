"""The locust interceptor reports every call (name, time, size, error) against a real
in-process server, and the round-robin channel spreads calls and survives a dead replica."""

from __future__ import annotations

import json

import grpc
import pytest

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus
from load.grpc_client import (
    LocustInterceptor,
    cluster_target,
    method_name,
    open_channel,
    service_config,
)
from load.slo import REJECTED, SHED, SOLVE, label_call
from server.app import Service, create_server
from tests.load.conftest import RecordingEvent
from tests.server.conftest import make_config, make_request


def _stub(address: str, event: RecordingEvent, **kwargs: object) -> pb_grpc.DispatchServiceStub:
    interceptor = LocustInterceptor(event, **kwargs)  # type: ignore[arg-type]
    return pb_grpc.DispatchServiceStub(open_channel(address, interceptors=[interceptor]))


def test_a_successful_call_is_reported_with_its_method_time_and_size(
    service: Service, tiny: Campus
) -> None:
    event = RecordingEvent()
    response = _stub(service.address, event).Solve(make_request(tiny), timeout=5)
    [call] = event.calls
    assert call["request_type"] == "grpc"
    assert call["name"] == "Solve"
    assert call["exception"] is None
    assert call["response"] == response
    assert call["response_length"] == response.ByteSize() > 0
    assert 0 < call["response_time"] < 5000  # milliseconds


def test_a_failed_call_is_reported_with_its_error_and_still_raised(
    service: Service, tiny: Campus
) -> None:
    event = RecordingEvent()
    request = make_request(tiny)
    request.campus_id = "atlantis"
    with pytest.raises(grpc.RpcError) as raised:
        _stub(service.address, event).Solve(request, timeout=5)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    [call] = event.calls
    assert call["name"] == "Solve"
    assert call["exception"].code() is grpc.StatusCode.NOT_FOUND
    assert call["response"] is None and call["response_length"] == 0
    assert call["response_time"] > 0


def test_other_methods_are_reported_by_their_name(service: Service) -> None:
    event = RecordingEvent()
    campuses = _stub(service.address, event).ListCampuses(pb.ListCampusesRequest(), timeout=5)
    assert [c.id for c in campuses.campuses] == ["tiny"]
    assert [c["name"] for c in event.calls] == ["ListCampuses"]


def test_the_dispatch_labeller_names_search_shed_rejected_and_errors(tiny: Campus) -> None:
    config = make_config(metrics_port=-1, rate_limit_per_s=0.01, rate_limit_burst=2)
    svc = create_server(config, campuses={"tiny": tiny})
    try:
        event = RecordingEvent()
        stub = _stub(svc.address, event, labeller=label_call)
        searched = stub.Solve(make_request(tiny, budget_ms=300), timeout=5)
        assert searched.stats.engine != pb.GREEDY
        hurried = make_request(tiny, budget_ms=1)  # no time to search: the server sheds
        shed = stub.Solve(hurried, timeout=5)
        assert shed.stats.engine == pb.GREEDY and shed.stats.shed_reason
        with pytest.raises(grpc.RpcError) as raised:  # burst of 2 used up
            stub.Solve(make_request(tiny), timeout=5)
        assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert [c["name"] for c in event.calls] == [SOLVE, SHED, REJECTED]
        assert [c["exception"] is None for c in event.calls] == [True, True, False]
    finally:
        svc.stop(0.5)


def _ok_calls(service: Service) -> float:
    value = service.metrics.registry.get_sample_value("dispatch_requests_total", {"code": "OK"})
    return value or 0.0


def test_round_robin_spreads_calls_and_fails_over_when_a_replica_dies(tiny: Campus) -> None:
    first, second = (
        create_server(make_config(metrics_port=-1), campuses={"tiny": tiny}) for _ in range(2)
    )
    try:
        target = cluster_target([first.address, second.address])
        channel = open_channel(target, retry_unavailable=2)
        stub = pb_grpc.DispatchServiceStub(channel)
        request = make_request(tiny, budget_ms=100)
        for _ in range(6):
            stub.Solve(request, timeout=5)
        assert _ok_calls(first) >= 1 and _ok_calls(second) >= 1
        assert _ok_calls(first) + _ok_calls(second) == 6
        second.stop(0)
        before = _ok_calls(first)
        for _ in range(4):  # every call is answered by the replica left
            assert stub.Solve(request, timeout=5).request_id == request.request_id
        assert _ok_calls(first) == before + 4
        channel.close()
    finally:
        first.stop(0.5)
        second.stop(0.5)


def test_cluster_target_and_service_config() -> None:
    assert cluster_target(["127.0.0.1:5000"]) == "127.0.0.1:5000"
    assert cluster_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(ValueError, match="'localhost' is not host:port"):
        cluster_target(["127.0.0.1:1", "localhost"])
    with pytest.raises(ValueError, match="at least one"):
        cluster_target([])
    config = json.loads(service_config(retry_unavailable=2))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["maxAttempts"] == 3 and policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert "methodConfig" not in json.loads(service_config())
    assert method_name("/campus_dispatch.v1.DispatchService/Solve") == "Solve"
    assert method_name(b"/pkg.Svc/ListCampuses") == "ListCampuses"
