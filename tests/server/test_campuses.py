"""One server, many campuses: campuses in the maps directory are served without a restart,
loaded on first use (memory-mapped when cached, built in the background otherwise: UNAVAILABLE
with a retry hint meanwhile, health SERVING), dropped least recently used past the caps, listed
with their loaded flag, and added or reloaded through the admin LoadCampus RPC."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

import server.campuses as campuses_module
from api.client import AdminClient
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from api.tokens import AdminToken
from campus_dispatch.cli import main
from campus_maps import MODES, Campus, load_campus
from campus_maps.config import DATA_DIR
from campus_maps.matrices import loaded_campuses
from server.app import SERVICE_NAME, Service, create_server
from server.auth import AdminAuth
from server.campuses import table_bytes
from solver.check import check_plan
from tests.server.conftest import make_config, make_request, plan_of_response
from tests.waiting import wait_until

TOKEN = "campus-token-0123456789abcdef"


def onboard(maps: Path, campus_id: str) -> Path:
    """Copy the bundled tiny campus into ``maps`` as ``campus_id`` (what ``campus add`` does)."""
    folder = maps / campus_id
    shutil.copytree(DATA_DIR / "tiny", folder)
    toml = folder / "campus.toml"
    text = re.sub(r'^id = "tiny"$', f'id = "{campus_id}"', toml.read_text(), flags=re.M)
    toml.write_text(text.replace("Tiny Test Campus", f"Tiny copy {campus_id}"))
    return folder


def build(maps: Path, cache: Path, campus_id: str) -> Campus:
    """Load ``campus_id`` once outside the server: its tables are then in ``cache``."""
    campus = load_campus(campus_id, maps_dir=maps, cache_dir=cache)
    for mode in MODES:
        campus.network(mode)
    campus.places()
    return campus


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def maps(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A maps directory with tiny2 and tiny3, their tables built in ``cache``."""
    folder = tmp_path_factory.mktemp("maps")
    for campus_id in ("tiny2", "tiny3"):
        onboard(folder, campus_id)
        build(folder, cache, campus_id)
    return folder


@pytest.fixture()
def start(
    tiny_campus: Campus, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Service]]:
    """Start servers on the tiny campus (loaded at start) with the module's table cache."""
    started: list[Service] = []
    monkeypatch.setenv("CAMPUS_DISPATCH_CACHE", str(cache))

    def make(maps: Path, *, auth: AdminAuth | None = None, **changes: object) -> Service:
        config = make_config(maps_dir=str(maps), **changes)
        svc = create_server(config, campuses={"tiny": tiny_campus}, auth=auth, env={})
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop(0.5)


def listed(stub: pb_grpc.DispatchServiceStub) -> dict[str, bool]:
    return {c.id: c.loaded for c in stub.ListCampuses(pb.ListCampusesRequest()).campuses}


def sample(svc: Service, name: str, **labels: str) -> float:
    return svc.metrics.registry.get_sample_value(name, labels) or 0.0


def solve_ok(svc: Service, stub: pb_grpc.DispatchServiceStub, campus: Campus) -> None:
    """A Solve on ``campus`` answered OK with a plan that passes the checker."""
    request = make_request(campus, orders=5, riders=2, budget_ms=200)
    response = stub.Solve(request, timeout=10)
    conversion, plan = plan_of_response(campus, svc, request, response)
    check = check_plan(conversion.problem, plan, svc.config.solver)
    assert check.ok, check.violations
    assert len(response.routes) == 2


def test_a_campus_in_the_maps_directory_is_served_and_listed(
    start: Callable[..., Service], maps: Path, cache: Path
) -> None:
    svc = start(maps)
    tiny2 = load_campus("tiny2", maps_dir=maps, cache_dir=cache)
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        assert listed(stub) == {"tiny": True, "tiny2": False, "tiny3": False}
        entry = {c.id: c for c in stub.ListCampuses(pb.ListCampusesRequest()).campuses}["tiny2"]
        assert entry.name == "Tiny copy tiny2 (made-up grid)" and not entry.is_default
        assert entry.HasField("southwest")  # its bounds are in the cache
        solve_ok(svc, stub, tiny2)
        assert listed(stub) == {"tiny": True, "tiny2": True, "tiny3": False}
    assert sample(svc, "dispatch_campus_loads_total", campus="tiny2", result="cached") == 1
    assert sample(svc, "dispatch_campuses_loaded") == 2
    assert sample(svc, "dispatch_campus_loaded_bytes") == table_bytes(tiny2) * 2


def test_least_recently_used_campuses_are_dropped_past_the_caps(
    start: Callable[..., Service], maps: Path, cache: Path
) -> None:
    svc = start(maps, max_loaded_campuses=2)
    tiny2, tiny3 = (load_campus(c, maps_dir=maps, cache_dir=cache) for c in ("tiny2", "tiny3"))
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        solve_ok(svc, stub, tiny2)
        solve_ok(svc, stub, tiny3)  # past 2: tiny2 goes, never tiny (the default)
        assert listed(stub) == {"tiny": True, "tiny2": False, "tiny3": True}
        assert sample(svc, "dispatch_campus_evictions_total") == 1
        assert "tiny2" not in loaded_campuses()  # the server process's copy is gone too
        solve_ok(svc, stub, tiny2)  # back from the cache; tiny3 goes
        assert listed(stub) == {"tiny": True, "tiny2": True, "tiny3": False}
        assert sample(svc, "dispatch_campus_loads_total", campus="tiny2", result="cached") == 2
        assert sample(svc, "dispatch_campus_evictions_total") == 2
        assert sample(svc, "dispatch_campuses_loaded") == 2
        # the byte cap, lowered live, applies at once: only the default campus fits
        svc.live.update({"server": {"max_loaded_bytes": table_bytes(tiny2)}}, who="pytest")
        assert listed(stub) == {"tiny": True, "tiny2": False, "tiny3": False}
        assert sample(svc, "dispatch_campus_loaded_bytes") == table_bytes(tiny2)
        solve_ok(svc, stub, tiny3)  # the campus just loaded stays even past the cap
        assert listed(stub)["tiny3"]


def test_a_campus_not_built_yet_is_unavailable_with_a_retry_hint_then_served(
    start: Callable[..., Service],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    maps = tmp_path / "maps"
    onboard(maps, "tiny4")
    cold = tmp_path / "cold-cache"  # nothing built: tiny4's tables are built by the server
    monkeypatch.setenv("CAMPUS_DISPATCH_CACHE", str(cold))
    gate, builds = threading.Event(), []
    ready = campuses_module._ready

    def held(campus: Campus) -> Campus:  # the background build waits for the test
        builds.append(campus.id)
        gate.wait(10)
        return ready(campus)

    monkeypatch.setattr(campuses_module, "_ready", held)
    svc = start(maps)
    tiny4 = build(maps, tmp_path / "elsewhere", "tiny4")  # for requests and checks only
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        request = make_request(tiny4, orders=3, riders=1)
        for _ in range(3):  # one build however often it is asked for
            with pytest.raises(grpc.RpcError) as err:
                stub.Solve(request, timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "tiny4" in (err.value.details() or "") and "loading" in err.value.details()
            status = rpc_status.from_call(err.value)
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert any(d.Unpack(retry) for d in status.details)
            assert retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9 > 0
        wait_until(lambda: bool(builds))  # the build runs on its own thread: it may start late
        assert builds == ["tiny4"]
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        solve_ok(svc, stub, svc.servicer.campuses["tiny"])  # other campuses are served meanwhile
        assert listed(stub)["tiny4"] is False
        gate.set()

        def served() -> bool:
            try:
                stub.Solve(request, timeout=5)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                return False
            return True

        wait_until(served)
        solve_ok(svc, stub, tiny4)
        assert listed(stub)["tiny4"] is True
    assert sample(svc, "dispatch_campus_loads_total", campus="tiny4", result="built") == 1
    assert sample(svc, "dispatch_rejected_total", reason="campus_loading") >= 3


def test_unknown_campus_is_not_found_and_names_the_known_ones(
    start: Callable[..., Service], maps: Path
) -> None:
    svc = start(maps)
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        request = make_request(svc.servicer.campuses["tiny"])
        request.campus_id = "atlantis"
        with pytest.raises(grpc.RpcError) as err:
            stub.Solve(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'atlantis'" in (err.value.details() or "")
    assert "tiny, tiny2, tiny3" in (err.value.details() or "")


def test_bundled_campuses_are_served_unless_turned_off(
    start: Callable[..., Service], maps: Path
) -> None:
    svc = start(maps, serve_bundled=True)
    with grpc.insecure_channel(svc.address) as channel:
        found = listed(pb_grpc.DispatchServiceStub(channel))
    assert {"northwestern", "uce_quito", "tiny", "tiny2", "tiny3"} <= set(found)
    assert found["tiny"] and not found["tiny2"]


def test_a_campus_onboarded_after_start_is_added_through_the_admin_api(
    start: Callable[..., Service],
    tmp_path: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    svc = start(maps, auth=AdminAuth([AdminToken("ops", TOKEN.encode())]))
    onboard(maps, "tiny5")  # `campus add` while the server runs
    tiny5 = build(maps, cache, "tiny5")
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        with AdminClient(svc.address, "wrong-token") as client, pytest.raises(grpc.RpcError) as err:
            client.load_campus("tiny5")
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with AdminClient(svc.address, TOKEN, client_id="ops-desk") as client:
            with pytest.raises(grpc.RpcError) as err:
                client.load_campus("atlantis")
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "tiny5" in (err.value.details() or "")
            with caplog.at_level("INFO", logger="campus_dispatch.admin"):
                answer = client.load_campus("tiny5", reason="onboarding")
            assert answer.campus_id == "tiny5" and answer.loaded, answer.detail
            assert "token ops, client ops-desk" in caplog.text and '"tiny5"' in caplog.text
            assert listed(stub)["tiny5"]
            first = svc.servicer.campuses["tiny5"]
            solve_ok(svc, stub, tiny5)
            again = client.load_campus("tiny5")
            assert again.loaded and again.detail == "already loaded"
            assert svc.servicer.campuses["tiny5"] is first
            assert client.load_campus("tiny5", reload=True).loaded  # `campus add --force`
            assert svc.servicer.campuses["tiny5"] is not first
            solve_ok(svc, stub, tiny5)
        # the new campus may become the default one now
        svc.live.update({"server": {"default_campus": "tiny5"}}, who="pytest")
    token_file = tmp_path / "token"
    token_file.write_text(f"ops {TOKEN}\n")
    common = ["--server", svc.address, "--token-file", str(token_file)]
    assert main(["admin", "load-campus", *common, "tiny5", "--reload"]) == 0
    assert "campus tiny5: loaded" in capsys.readouterr().out
    assert main(["admin", "load-campus", *common, "atlantis"]) == 1


def test_a_broken_campus_folder_fails_that_campus_only(
    start: Callable[..., Service], tmp_path: Path
) -> None:
    """A campus.toml of the wrong shape in the maps directory: its requests are
    FAILED_PRECONDITION naming the key (never INTERNAL), ListCampuses still lists every
    campus, and the other campuses are served."""
    maps = tmp_path / "maps"
    onboard(maps, "broken")
    toml = maps / "broken" / "campus.toml"
    toml.write_text(toml.read_text() + "\nsnap = 1\n")
    (maps / ".half.99.tmp").mkdir()  # an onboarding in progress is not a campus
    (maps / ".half.99.tmp" / "campus.toml").write_text('id = "half"\n')
    svc = start(maps)
    with grpc.insecure_channel(svc.address) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)
        request = make_request(svc.servicer.campuses["tiny"])
        request.campus_id = "broken"
        with pytest.raises(grpc.RpcError) as err:
            stub.Solve(request, timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "snap" in (err.value.details() or "")
        assert listed(stub) == {"tiny": True, "broken": False}
        solve_ok(svc, stub, svc.servicer.campuses["tiny"])
