"""Starting and stopping: a misconfiguration (a port in use, an unknown default campus) is
refused at start with one ``error:`` line and exit 2; on SIGTERM health answers NOT_SERVING
for ``drain_s`` while the server still answers, then it stops (exit 0); the admin service is
NOT_SERVING when the admin API is off; every log line is JSON with a time and a level, and
no admin token appears in it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from campus_maps import Campus, campus_ids
from server.admin import ADMIN_SERVICE_NAME
from server.app import SERVICE_NAME, create_server
from server.config import ConfigError, StartError
from tests.server.conftest import ROOT, make_config, start_serve

TOKEN = "drain-token-0123456789abcdef"
#: ``time`` of a log line: ISO 8601 in UTC, to the millisecond.
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def run_serve(
    tmp_path: Path, env: Mapping[str, str], *args: str, config: str = ""
) -> subprocess.CompletedProcess[str]:
    """``campus-dispatch serve`` that is expected to refuse to start."""
    path = tmp_path / "c.toml"
    path.write_text(config or '[server]\ncampuses = ["tiny"]\ndefault_campus = "tiny"\n')
    return subprocess.run(
        [sys.executable, "-m", "campus_dispatch", "serve", "--config", str(path), *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PORT": "0",
            "METRICS_PORT": "-1",
            "WORKERS": "1",
            "CAMPUS_DISPATCH_MAPS_DIR": str(tmp_path / "maps"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # never ready
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_grpc_port_in_use_is_refused_in_one_line(tmp_path: Path, busy_port: int) -> None:
    started = time.monotonic()
    line = one_error_line(run_serve(tmp_path, {}, "--port", str(busy_port)))
    assert line == (
        f"error: serve: gRPC port 127.0.0.1:{busy_port}: cannot listen (in use); stop what "
        "holds it or choose another with --port or PORT (0: any free port)"
    )
    line = one_error_line(run_serve(tmp_path, {"PORT": str(busy_port)}))
    assert f"gRPC port 127.0.0.1:{busy_port}: cannot listen (in use)" in line
    assert time.monotonic() - started < 60  # refused before loading anything


def test_a_metrics_port_in_use_is_refused_in_one_line(tmp_path: Path, busy_port: int) -> None:
    line = one_error_line(run_serve(tmp_path, {}, "--metrics-port", str(busy_port)))
    assert line == (
        f"error: serve: metrics port 127.0.0.1:{busy_port}: cannot listen (in use); stop what "
        "holds it or choose another with --metrics-port or METRICS_PORT (0: any free port, "
        "-1: no metrics endpoint)"
    )
    line = one_error_line(run_serve(tmp_path, {"METRICS_PORT": str(busy_port)}))
    assert f"metrics port 127.0.0.1:{busy_port}" in line


def test_an_address_that_cannot_be_listened_on_is_refused(tmp_path: Path) -> None:
    line = one_error_line(run_serve(tmp_path, {}, "--host", "192.0.2.1", "--port", "50999"))
    assert line.startswith("error: serve: gRPC port 192.0.2.1:50999: cannot listen (")


@pytest.mark.parametrize(
    "config",
    [
        "",  # the default: only the default campus is loaded at start
        '[server]\ncampuses = ["tiny"]\n',  # loaded at start: the default was swapped silently
    ],
)
def test_an_unknown_default_campus_is_refused_naming_the_known_ones(
    tmp_path: Path, config: str
) -> None:
    done = run_serve(tmp_path, {"CAMPUS": "harvard"}, config=config or "[server]\n")
    known = ", ".join(sorted({*campus_ids(), "tiny"}))
    assert one_error_line(done) == (
        "error: config: server.default_campus='harvard': unknown campus; known campuses: "
        f"{known} (set CAMPUS or [server] default_campus to one of them, or onboard it with "
        "`campus-dispatch campus add`)"
    )


def test_create_server_refuses_before_loading_anything(busy_port: int) -> None:
    with pytest.raises(StartError, match=re.escape(f"gRPC port 127.0.0.1:{busy_port}")):
        create_server(make_config(port=busy_port))
    with pytest.raises(StartError, match=re.escape(f"metrics port 127.0.0.1:{busy_port}")):
        create_server(make_config(metrics_port=busy_port))
    with pytest.raises(ConfigError, match=r"server\.default_campus='harvard': unknown campus"):
        create_server(make_config(campuses=(), default_campus="harvard"))


def test_the_admin_service_is_not_serving_when_the_admin_api_is_off(
    tiny_campus: Campus,
) -> None:
    svc = create_server(make_config(), campuses={"tiny": tiny_campus})
    try:
        with grpc.insecure_channel(svc.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status(name: str) -> int:
                ask = health_pb2.HealthCheckRequest(service=name)
                return int(health.Check(ask, timeout=5).status)

            assert status(SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING
            assert status("") == health_pb2.HealthCheckResponse.SERVING
            assert status(ADMIN_SERVICE_NAME) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        svc.stop(0.5)


def test_stop_drains_with_not_serving_while_still_answering(tiny_campus: Campus) -> None:
    svc = create_server(make_config(), campuses={"tiny": tiny_campus})
    stopper = threading.Thread(target=lambda: svc.stop(0.5, drain_s=30.0))
    with grpc.insecure_channel(svc.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        ask = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        stopper.start()
        deadline = time.monotonic() + 5
        while svc.stopping is False and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert health.Check(ask, timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not svc.wait(0.2)  # still draining
        svc.cut_drain()  # what a second SIGTERM does
        assert svc.wait(10)
    stopper.join(10)
    assert not stopper.is_alive()


def test_sigterm_shows_not_serving_to_a_health_poll_then_exits_0(tmp_path: Path) -> None:
    """The issue's reproduction: a health poll every 0.4 s saw SERVING, then UNAVAILABLE;
    with a drain of 1.5 s it sees NOT_SERVING in between. Every log line is JSON with a time
    and a level, and the admin token is in none of them."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[server]\ncampuses = ["tiny"]\ndefault_campus = "tiny"\ndrain_s = 1.5\n'
        "shutdown_grace_s = 1.0\n"
    )
    proc, line = start_serve(config, {"CAMPUS_DISPATCH_ADMIN_TOKEN": TOKEN})
    seen: list[str] = []
    try:
        found = re.search(r"ready on (127\.0\.0\.1:\d+)", line)
        assert found, line
        with grpc.insecure_channel(found.group(1)) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            ask = health_pb2.HealthCheckRequest(service="")

            def poll() -> str:
                try:
                    status = health.Check(ask, timeout=0.3).status
                    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)
                except grpc.RpcError as err:
                    return err.code().name

            seen.append(poll())
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            while proc.poll() is None and time.monotonic() - started < 20:
                seen.append(poll())
                time.sleep(0.4)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen[0] == "SERVING" and "NOT_SERVING" in seen, seen
    # SERVING until the signal lands, then NOT_SERVING (never SERVING again), then gone
    after = seen[seen.index("NOT_SERVING") :]
    assert "SERVING" not in after and after.count("NOT_SERVING") >= 2, seen
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert TOKEN not in log
    records = [json.loads(text) for text in log.splitlines() if text.strip()]
    assert records, log
    for record in records:
        assert ISO_TIME.fullmatch(record["time"]), record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
    events = [r.get("event") for r in records]
    assert "shutdown" in events and events[-1] == "stopped"
    shutdown = next(r for r in records if r.get("event") == "shutdown")
    assert shutdown["signal"] == "SIGTERM" and shutdown["drain_s"] == 1.5
