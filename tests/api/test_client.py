"""The Python clients: requests read from JSON, a readable table of the answer that mentions every
stop and every unassigned order, JSON dumps, status names of failed calls (a closed port is
UNAVAILABLE), and the admin client's token and client id reaching the server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from api.client import (
    AdminClient,
    DispatchClient,
    dumps,
    format_change,
    format_response,
    read_request,
    request_from_json,
    response_to_dict,
    status_name,
)
from api.codec import duration_of, timestamp_at
from api.pb.campus_dispatch.v1 import admin_pb2 as apb
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.tokens import AdminToken
from campus_maps import Campus, load_campus
from server.app import Service, create_server
from server.auth import AdminAuth
from server.config import config_to_toml
from tests.server.conftest import NOW, make_config, make_request

TOKEN = "client-test-token-0123456789"


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


@pytest.fixture(scope="module")
def service(tiny: Campus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One in-process server with the admin API on (a token), on the tiny campus."""
    config = make_config()
    path = tmp_path_factory.mktemp("client") / "dispatch.toml"
    path.write_text(config_to_toml(config))
    auth = AdminAuth([AdminToken("ops", TOKEN.encode())])
    svc = create_server(config, campuses={"tiny": tiny}, config_path=path, auth=auth, env={})
    yield svc
    svc.stop(0.5)


def closed_port() -> int:
    """A local port nothing listens on (bound once to find it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lines_of(stop_line_kind: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith(stop_line_kind)]


# -------------------------------------------------------------------------- status names
def test_a_call_to_a_closed_port_is_unavailable() -> None:
    with (
        DispatchClient(f"127.0.0.1:{closed_port()}") as client,
        pytest.raises(grpc.RpcError) as err,
    ):
        client.list_campuses(timeout_s=5.0)
    assert status_name(err.value) == "UNAVAILABLE"


def test_an_error_without_a_status_code_is_unknown() -> None:
    assert status_name(grpc.RpcError()) == "UNKNOWN"


def test_a_closed_client_refuses_calls() -> None:
    client = DispatchClient(f"127.0.0.1:{closed_port()}")
    client.close()
    with pytest.raises(ValueError, match="closed channel"):
        client.list_campuses(timeout_s=1.0)


# --------------------------------------------------------------------- requests from JSON
def test_requests_read_back_from_json_in_both_field_spellings(tiny: Campus, tmp_path: Path) -> None:
    request = make_request(tiny, orders=3, riders=2)
    for proto_names in (True, False):
        text = json_format.MessageToJson(request, preserving_proto_field_name=proto_names)
        assert request_from_json(text) == request
        path = tmp_path / f"request-{proto_names}.json"
        path.write_text(text)
        assert read_request(path) == request
        assert read_request(str(path)) == request


def test_a_request_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(json_format.ParseError, match="no_such_field"):
        request_from_json('{"campus_id": "tiny", "no_such_field": 1}')


# -------------------------------------------------------------------- reading an answer
def hand_response() -> pb.SolveResponse:
    """An answer with a busy rider (one stop late), an idle rider, two unassigned orders and a
    shed reason: everything the table has a line for."""
    response = pb.SolveResponse(request_id="hand")
    busy = response.routes.add(rider_id="r-busy", travel_time=duration_of(420.0), distance_m=1234.0)
    for order_id, kind, arrive, late in (
        ("o-1", pb.PICKUP, 60, 0),
        ("o-2", pb.PICKUP, 180, 0),
        ("o-1", pb.DROPOFF, 300, 0),
        ("o-2", pb.DROPOFF, 480, 95),
    ):
        busy.stops.add(
            order_id=order_id,
            kind=kind,
            location=pb.LatLng(lat=42.0, lng=-87.0),
            arrival_time=timestamp_at(NOW + arrive),
            departure_time=timestamp_at(NOW + arrive + 30),
            lateness=duration_of(late),
        )
    response.routes.add(rider_id="r-idle")
    response.unassigned.add(order_id="o-far", reason=pb.UNREACHABLE_IN_TIME, detail="too far")
    response.unassigned.add(order_id="o-big", reason=pb.CAPACITY, detail="size 9")
    response.stats.engine = pb.GREEDY
    response.stats.shed_reason = "workers_busy: no idle worker"
    response.stats.objective = 4321.0
    response.stats.late_orders = 1
    return response


def test_the_table_has_a_line_per_stop_and_per_unassigned_order() -> None:
    response = hand_response()
    text = format_response(response)
    stops = lines_of("PICKUP", text) + lines_of("DROPOFF", text)
    assert len(stops) == sum(len(r.stops) for r in response.routes)
    for stop in response.routes[0].stops:
        assert any(stop.order_id in line and pb.StopKind.Name(stop.kind) in line for line in stops)
    assert "rider r-busy: 4 stops, 420 s riding, 1234 m" in text
    assert "idle riders: r-idle" in text and "rider r-idle:" not in text
    assert "unassigned o-far: UNREACHABLE_IN_TIME too far" in text
    assert "unassigned o-big: CAPACITY size 9" in text
    assert "engine GREEDY (shed: workers_busy: no idle worker)" in text
    late = [line for line in stops if "late" in line]
    assert len(late) == 1 and "o-2" in late[0] and "late 95 s" in late[0]


def test_the_stats_line_shows_reassigned_orders_only_when_some_moved() -> None:
    response = hand_response()
    assert "reassigned" not in format_response(response)
    response.stats.reassigned_orders = 2
    assert "late orders 1, reassigned orders 2, matrix" in format_response(response)


def test_times_in_the_table_are_the_stops_times_of_day() -> None:
    response = hand_response()
    first = response.routes[0].stops[0]
    line = lines_of("PICKUP", format_response(response))[0]
    assert f"arrive {first.arrival_time.ToDatetime():%H:%M:%S}" in line
    assert f"leave {first.departure_time.ToDatetime():%H:%M:%S}" in line


def test_dumps_is_the_response_as_json_with_proto_field_names() -> None:
    response = hand_response()
    data = json.loads(dumps(response))
    assert data == response_to_dict(response)
    assert data["routes"][0]["rider_id"] == "r-busy" and "riderId" not in data["routes"][0]
    again = json_format.ParseDict(data, pb.SolveResponse())
    assert again == response


def test_format_change_lists_changes_and_pending_restarts() -> None:
    change = apb.ConfigChangeResponse(
        changes=[
            apb.SettingChange(key="solver.lateness_cost_per_s", old_value="10.0", new_value="30.0")
        ],
        restart_required=[apb.SettingChange(key="server.port", old_value="0", new_value="9")],
        version=3,
        changed_by="token ops",
    )
    text = format_change(change)
    assert text.splitlines()[0] == "config version 3: 1 change(s) by token ops"
    assert "solver.lateness_cost_per_s: 10.0 -> 30.0" in text
    assert "server.port: 9 in the file, 0 running (restart to apply)" in text
    change.dry_run = True
    assert format_change(change).startswith("dry run, nothing applied")


# ------------------------------------------------------------------- against a server
def test_a_solved_answer_reads_as_a_table(service: Service, tiny: Campus) -> None:
    request = make_request(tiny, orders=5, riders=2, budget_ms=150, seed=3)
    with DispatchClient(service.address, client_id="pytest-client") as client:
        response = client.solve(request, timeout_s=10.0)
        campuses = client.list_campuses()
    assert [c.id for c in campuses.campuses] == ["tiny"]
    assert response.request_id == request.request_id
    text = format_response(response)
    stops = lines_of("PICKUP", text) + lines_of("DROPOFF", text)
    assert len(stops) == sum(len(r.stops) for r in response.routes)
    for route in response.routes:
        if route.stops:
            assert f"rider {route.rider_id}: {len(route.stops)} stops" in text
        else:
            assert route.rider_id in text.split("idle riders: ", 1)[1]
    for u in response.unassigned:
        assert f"unassigned {u.order_id}: " in text
    routed = {s.order_id for r in response.routes for s in r.stops}
    assert routed | {u.order_id for u in response.unassigned} == {o.id for o in request.orders}


def test_a_bad_request_fails_with_invalid_argument(service: Service, tiny: Campus) -> None:
    request = make_request(tiny, orders=2, riders=1)
    request.orders[1].id = request.orders[0].id
    with DispatchClient(service.address) as client, pytest.raises(grpc.RpcError) as err:
        client.solve(request)
    assert status_name(err.value) == "INVALID_ARGUMENT"


def test_the_admin_client_sends_its_token_and_client_id(service: Service) -> None:
    with AdminClient(service.address, TOKEN, client_id="pytest-admin") as admin:
        config = admin.get_config()
        answer = admin.update_config(
            {"solver.lateness_cost_per_s": "25"}, dry_run=True, if_version=config.version
        )
    assert answer.dry_run and answer.version == config.version  # nothing applied
    assert [(c.key, c.new_value) for c in answer.changes] == [
        ("solver.lateness_cost_per_s", "25.0")
    ]
    assert "token ops" in answer.changed_by and "client pytest-admin" in answer.changed_by
    assert service.live.current.solver.lateness_cost_per_s == 10.0


def test_the_admin_client_without_a_token_is_unauthenticated(service: Service) -> None:
    with AdminClient(service.address, "") as admin:
        assert admin.metadata == ()
        with pytest.raises(grpc.RpcError) as err:
            admin.get_config()
    assert status_name(err.value) == "UNAUTHENTICATED"
