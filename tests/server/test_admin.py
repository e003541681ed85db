"""The admin API and live configuration: tokens (none, wrong, right), all-or-nothing updates
with a diff, a lateness cost change that changes the next plan, reloads from the file (RPC and
SIGHUP) that keep the running config when the file is bad, and the ``admin`` commands."""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from api.client import AdminClient
from api.pb.campus_dispatch.v1 import admin_pb2 as apb
from api.pb.campus_dispatch.v1 import admin_pb2_grpc as apb_grpc
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from api.tokens import AdminToken
from campus_dispatch.cli import main
from campus_maps import Campus
from server.admin import ADMIN_SERVICE_NAME
from server.app import Service, create_server
from server.auth import AdminAuth
from server.config import config_to_toml
from tests.server.conftest import NOW, make_config, make_request, start_serve, violations

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ops-token-0123456789abcdef"
BASE = make_config()


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("admin") / "dispatch.toml"
    path.write_text(config_to_toml(BASE))
    return path


@pytest.fixture(scope="module")
def admin_service(tiny_campus: Campus, config_file: Path) -> Iterator[Service]:
    auth = AdminAuth([AdminToken("ops", TOKEN.encode())])
    svc = create_server(
        BASE, campuses={"tiny": tiny_campus}, config_path=config_file, auth=auth, env={}
    )
    yield svc
    svc.stop(0.5)


@pytest.fixture()
def service(admin_service: Service, config_file: Path) -> Iterator[Service]:
    """The admin service, put back to the starting configuration after the test."""
    yield admin_service
    config_file.write_text(config_to_toml(BASE))
    admin_service.live.reload(who="test teardown")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("client-id", "pytest"))


# ------------------------------------------------------------------------------ tokens
def test_update_needs_the_right_token(service: Service) -> None:
    request = apb.UpdateConfigRequest(settings={"solver.lateness_cost_per_s": "30"})
    version = service.live.version
    with grpc.insecure_channel(service.address) as channel:
        stub = apb_grpc.AdminServiceStub(channel)
        for metadata, words in (
            ((), "missing admin token"),
            ((("authorization", TOKEN),), "missing admin token"),  # no Bearer scheme
            (bearer("not-the-token-0123456789"), "wrong admin token"),
        ):
            with pytest.raises(grpc.RpcError) as err:
                stub.UpdateConfig(request, metadata=metadata, timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert words in (err.value.details() or "")
        assert service.config.solver.lateness_cost_per_s == 10.0  # nothing applied
        answer = stub.UpdateConfig(request, metadata=bearer(TOKEN), timeout=5)
    assert [(c.key, c.old_value, c.new_value) for c in answer.changes] == [
        ("solver.lateness_cost_per_s", "10.0", "30.0")
    ]
    assert answer.version == version + 1 and "token ops" in answer.changed_by
    assert "client pytest" in answer.changed_by
    assert service.config.solver.lateness_cost_per_s == 30.0
    assert service.servicer.config is service.live.current


def test_solve_needs_no_token_and_admin_is_registered(
    service: Service, tiny_campus: Campus
) -> None:
    with grpc.insecure_channel(service.address) as channel:
        response = pb_grpc.DispatchServiceStub(channel).Solve(
            make_request(tiny_campus, orders=3, riders=2, budget_ms=100), timeout=5
        )
        assert response.routes
        health = health_pb2_grpc.HealthStub(channel)
        ask = health_pb2.HealthCheckRequest(service=ADMIN_SERVICE_NAME)
        assert health.Check(ask, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        reply = next(
            reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        )
        names = {s.name for s in reply.list_services_response.service}
    assert {ADMIN_SERVICE_NAME, "campus_dispatch.v1.DispatchService"} <= names


def test_without_a_token_configured_the_admin_api_is_disabled(tiny_campus: Campus) -> None:
    svc = create_server(make_config(), campuses={"tiny": tiny_campus})
    try:
        with AdminClient(svc.address, TOKEN) as client, pytest.raises(grpc.RpcError) as err:
            client.get_config()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "admin API is disabled" in (err.value.details() or "")
    finally:
        svc.stop(0.5)


# ----------------------------------------------------------------------------- updates
def test_update_is_all_or_nothing_and_names_the_field(service: Service) -> None:
    version = service.live.version
    with AdminClient(service.address, TOKEN) as client:
        for settings, key, words in (
            (
                {"solver.lateness_cost_per_s": "30", "solver.max_lateness_s": "-5"},
                "solver.max_lateness_s",
                ">= 0",
            ),
            ({"solver.latenes_cost_per_s": "30"}, "solver.latenes_cost_per_s", "unknown"),
            ({"server.max_inflight": "lots"}, "server.max_inflight", "not a valid int"),
            ({"server.shedding": "1"}, "server.shedding", "true or false"),
            ({"server.workers": "4"}, "server.workers", "restart"),
            ({"server.default_campus": "northwestern"}, "server.default_campus", "loaded"),
            ({"solver.metaheuristic": "MAGIC"}, "solver.metaheuristic", "must be one of"),
        ):
            with pytest.raises(grpc.RpcError) as err:
                client.update_config(settings)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            bad = violations(err.value)
            assert key in bad and words in bad[key], bad
            assert "nothing applied" in (err.value.details() or "")
        assert service.config == BASE and service.live.version == version
        # a TOML document (as `tune` writes), a setting over it, a dry run, then for real
        toml = "[solver]\nlateness_cost_per_s = 40\nmetaheuristic = 'TABU_SEARCH'\n"
        dry = client.update_config({"server.max_inflight": "8"}, toml=toml, dry_run=True)
        assert dry.dry_run and len(dry.changes) == 3 and service.config == BASE
        done = client.update_config(
            {"server.max_inflight": "8"}, toml=toml, if_version=version, reason="lunch"
        )
        assert {c.key: c.new_value for c in done.changes} == {
            "solver.lateness_cost_per_s": "40.0",
            "solver.metaheuristic": '"TABU_SEARCH"',
            "server.max_inflight": "8",
        }
        assert "reason 'lunch'" in done.changed_by
        assert service.servicer.admission.config.max_inflight == 8
        with pytest.raises(grpc.RpcError) as err:  # stale version
            client.update_config({"server.max_inflight": "9"}, if_version=version)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        got = client.get_config()
    assert got.version == version + 1 and got.config_file == str(service.live.path)
    values = {s.key: s.value for s in got.settings}
    assert values["server.max_inflight"] == "8" and values["solver.lateness_cost_per_s"] == "40.0"
    assert {s.key for s in got.settings if s.restart_only} >= {"server.port", "server.workers"}
    assert "[solver]" in got.toml and "lateness_cost_per_s = 40.0" in got.toml


def _two_drop_offs(campus: Campus) -> tuple[pb.SolveRequest, int]:
    """One rider at a merchant with two orders to customers in opposite directions: dropping
    ``near`` first rides less, dropping ``tight`` first keeps its promise. Returns the request
    and how late ``tight`` is when ``near`` goes first (s)."""
    by_name = {p.name: p for p in campus.places()}
    merchant, near, tight = by_name["Deli Corner"], by_name["Maple Hall"], by_name["Bean There"]
    points = [(p.lat, p.lng) for p in (merchant, near, tight)]
    t = campus.matrix(points, "bike").time_s
    assert t[0, 1] + t[1, 2] < t[0, 2] + t[2, 1]  # near first is the shorter ride
    service_s = 60
    due_tight = 2 * service_s + int(t[0, 2]) + 30  # on time only if dropped first
    request = pb.SolveRequest(request_id="lateness", campus_id=campus.id)
    request.now.FromSeconds(NOW)
    request.time_budget.FromMilliseconds(400)
    request.riders.add(
        id="r", position=pb.LatLng(lat=merchant.lat, lng=merchant.lng), mode=pb.BIKE, capacity=2
    )
    for order_id, place, due in (("near", near, 3600), ("tight", tight, due_tight)):
        order = request.orders.add(
            id=order_id,
            pickup=pb.LatLng(lat=merchant.lat, lng=merchant.lng),
            dropoff=pb.LatLng(lat=place.lat, lng=place.lng),
        )
        order.due_time.FromSeconds(NOW + due)
        order.pickup_service.FromSeconds(service_s)
        order.dropoff_service.FromSeconds(service_s)
    late = 2 * service_s + int(t[0, 1] + service_s + t[1, 2]) - due_tight
    return request, late


def _drop_offs(response: pb.SolveResponse) -> list[str]:
    return [s.order_id for r in response.routes for s in r.stops if s.kind == pb.DROPOFF]


def test_a_lateness_cost_change_changes_the_next_plan(
    service: Service, tiny_campus: Campus
) -> None:
    request, late_s = _two_drop_offs(tiny_campus)
    assert late_s > 100
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        before = stub.Solve(request, timeout=5)
        assert _drop_offs(before) == ["tight", "near"] and before.stats.late_orders == 0
        with AdminClient(service.address, TOKEN) as client:
            client.update_config({"solver.lateness_cost_per_s": "0"})
        after = stub.Solve(request, timeout=5)
        assert _drop_offs(after) == ["near", "tight"] and after.stats.late_orders == 1
        with AdminClient(service.address, TOKEN) as client:
            client.update_config({"solver.lateness_cost_per_s": "10"})
        assert _drop_offs(stub.Solve(request, timeout=5)) == ["tight", "near"]


# ----------------------------------------------------------------------------- reloads
def test_reload_applies_the_file_and_a_bad_file_changes_nothing(
    service: Service, config_file: Path
) -> None:
    text = config_to_toml(BASE)
    with AdminClient(service.address, TOKEN) as client:
        config_file.write_text(
            text.replace("lateness_cost_per_s = 10.0", "lateness_cost_per_s = 25")
            .replace("max_inflight = 12", "max_inflight = 4")
            .replace("workers = 1", "workers = 3")
        )
        answer = client.reload_config(reason="new tuning")
        assert {c.key: c.new_value for c in answer.changes} == {
            "solver.lateness_cost_per_s": "25.0",
            "server.max_inflight": "4",
        }
        assert [(c.key, c.old_value, c.new_value) for c in answer.restart_required] == [
            ("server.workers", "1", "3")
        ]
        running = service.config
        assert running.solver.lateness_cost_per_s == 25.0 and running.workers == 1
        for bad, key in (
            (text.replace("max_inflight = 12", "max_inflight = 0"), "server.max_inflight"),
            (text + "\n[solvr]\nx = 1\n", "solvr"),
            (text.replace("[solver]", "[solver"), "<file>"),
        ):
            config_file.write_text(bad)
            with pytest.raises(grpc.RpcError) as err:
                client.reload_config()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert key in violations(err.value)
            assert service.config is running  # the running config stays
        config_file.unlink()
        with pytest.raises(grpc.RpcError) as err:
            client.reload_config()
        assert "no such file" in (err.value.details() or "")
    assert service.reload("SIGHUP") is None  # the signal path: logged, counted, no change
    assert service.config is running


def test_sighup_reloads_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "dispatch.toml"
    config.write_text('[server]\ncampuses = ["tiny"]\ndefault_campus = "tiny"\n')
    proc, line = start_serve(config, {"CAMPUS_DISPATCH_ADMIN_TOKEN": TOKEN})
    try:
        assert proc.stderr is not None
        found = re.search(r"ready on (127\.0\.0\.1:\d+)", line)
        assert found and "admin API on" in line, line
        with AdminClient(found.group(1), TOKEN) as client:
            assert client.get_config().version == 1
            config.write_text(config.read_text() + "\n[solver]\nlateness_cost_per_s = 45\n")
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            got = client.get_config()
            while got.version == 1 and time.monotonic() < deadline:
                time.sleep(0.05)
                got = client.get_config()
        assert got.version == 2
        assert {s.key: s.value for s in got.settings}["solver.lateness_cost_per_s"] == "45.0"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read()
        assert '"source": "SIGHUP"' in log
        assert '"solver.lateness_cost_per_s": [10.0, 45.0]' in log
    finally:
        if proc.poll() is None:
            proc.kill()


# --------------------------------------------------------------------------------- CLI
def test_admin_commands(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"ops {TOKEN}\n")
    common = ["--server", service.address, "--token-file", str(token_file)]
    assert main(["admin", "get", *common, "solver.lateness_cost_per_s"]) == 0
    assert capsys.readouterr().out == "solver.lateness_cost_per_s = 10.0\n"
    assert main(["admin", "update", *common, "solver.lateness_cost_per_s=20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"config version \d+: 1 change\(s\) by token ops, client cli", out)
    assert "solver.lateness_cost_per_s: 10.0 -> 20.0" in out
    chosen = tmp_path / "chosen.toml"
    chosen.write_text("[solver]\ndefault_budget_s = 0.5\n")
    assert main(["admin", "update", *common, "--file", str(chosen), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert main(["admin", "update", *common, "server.port=1"]) == 1
    assert "server.port: read only at start" in capsys.readouterr().err
    assert main(["admin", "update", *common, "solver.lateness_cost_per_s"]) == 2
    assert "expected table.key=value" in capsys.readouterr().err
    assert main(["admin", "reload", *common]) == 0
    assert "solver.lateness_cost_per_s: 20.0 -> 10.0" in capsys.readouterr().out
    assert main(["admin", "get", *common]) == 0
    assert "[server]" in capsys.readouterr().out
    wrong = tmp_path / "wrong"
    wrong.write_text("x" * 20)
    assert main(["admin", "get", "--server", service.address, "--token-file", str(wrong)]) == 1
    assert "UNAUTHENTICATED: wrong admin token" in capsys.readouterr().err


# ------------------------------------------------------------------------------- audit
def test_every_refusal_is_audited_without_the_token(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each refused admin call writes one warning line naming the call, who asked, the result
    and the error; the README's `admin update solver.lateness_cost_per_s=abc` among them."""
    caplog.set_level(logging.INFO, logger="campus_dispatch.admin")
    token_file = tmp_path / "token"
    token_file.write_text(f"ops {TOKEN}\n")
    common = ["--server", service.address, "--token-file", str(token_file)]

    logged: list[str] = []

    def audited() -> dict[str, object]:
        records = [r for r in caplog.records if r.name == "campus_dispatch.admin"]
        assert records and records[-1].levelno == logging.WARNING
        logged.extend(r.getMessage() for r in caplog.records)
        line = json.loads(records[-1].getMessage())
        caplog.clear()
        return line

    assert main(["admin", "update", *common, "solver.lateness_cost_per_s=abc"]) == 1
    line = audited()
    assert (line["event"], line["rpc"], line["result"]) == (
        "config_refused",
        "UpdateConfig",
        "invalid",
    )
    assert "solver.lateness_cost_per_s" in str(line["error"]) and "token ops" in str(line["who"])
    version = service.live.version
    with AdminClient(service.address, TOKEN) as client:
        for call, event, result in (
            (lambda: client.update_config({"solver.max_lateness_s": "-5"}), "config_refused", ""),
            (
                lambda: client.update_config({"solver.waiting_cost_per_s": "1"}, if_version=99),
                "config_refused",
                "version_conflict",
            ),
            (lambda: client.list_held("harvard"), "admin_refused", "not_found"),
            (lambda: client.review_orders(apb.VERDICT_RELEASE), "admin_refused", "invalid"),
            (lambda: client.set_guard_mode(99), "admin_refused", "invalid"),  # type: ignore[arg-type]
            (lambda: client.load_campus("harvard"), "campus_load", "not_found"),
        ):
            with pytest.raises(grpc.RpcError):
                call()
            line = audited()
            assert line["event"] == event and line["result"] == (result or "invalid"), line
            assert "token ops" in str(line["who"]), line
    with (
        AdminClient(service.address, "wrong-token-0123456789") as wrong,
        pytest.raises(grpc.RpcError),
    ):
        wrong.get_config()
    line = audited()
    assert (line["event"], line["rpc"], line["result"]) == ("admin_denied", "GetConfig", "denied")
    assert service.live.version == version  # nothing applied
    assert len(logged) >= 8
    assert not [m for m in logged if TOKEN in m or "wrong-token-0123456789" in m]
