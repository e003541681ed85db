"""The command line: ``campus-dispatch solve`` against a server, ``serve`` and its SIGTERM drain."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format

from api.client import format_response, read_request
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_dispatch.cli import main
from campus_maps import Campus
from server.app import Service
from server.cli import campus_zone, solve_format
from tests.server.conftest import make_request, start_serve

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_solve_prints_json_and_table(
    service: Service, tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json_format.MessageToJson(make_request(tiny_campus, orders=4, riders=2)))
    assert main(["solve", str(path), "--server", service.address, "--format", "both"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    assert data["request_id"] == "req-0"
    assert "engine RUIN_RECREATE" in out and "DROPOFF" in out
    # the tiny campus is in UTC: every time of day says so
    stops = [line for line in out.splitlines() if "arrive" in line]
    assert stops and all(re.search(r"arrive \d\d:\d\d:\d\d UTC  leave", s) for s in stops)


def test_solve_into_a_pipe_prints_json_only(
    service: Service, tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is not a terminal (here, pytest's capture; in use, ``| jq``): JSON alone."""
    path = tmp_path / "request.json"
    path.write_text(json_format.MessageToJson(make_request(tiny_campus, orders=4, riders=2)))
    assert main(["solve", str(path), "--server", service.address]) == 0
    assert json.loads(capsys.readouterr().out)["request_id"] == "req-0"


def test_solve_on_a_terminal_prints_json_and_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert solve_format(None) == "both"
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert solve_format(None) == "json"
    assert solve_format("table") == "table"


def test_the_table_shows_times_in_the_campus_time_zone() -> None:
    """Northwestern is in Chicago: 17:05 UTC on a November day is 11:05 CST."""
    response = pb.SolveResponse()
    stop = response.routes.add(rider_id="r0").stops.add(order_id="o1", kind=pb.DROPOFF)
    stop.arrival_time.FromSeconds(1_700_000_000)  # 2023-11-14T22:13:20Z
    stop.departure_time.FromSeconds(1_700_000_060)
    table = format_response(response, tz=campus_zone("northwestern"))
    assert "arrive 16:13:20 CST  leave 16:14:20 CST" in table
    assert "arrive 22:13:20 UTC" in format_response(response, tz=campus_zone("tiny"))
    assert campus_zone("no-such-campus") is UTC


def test_solve_against_no_server_is_one_line_and_exit_1(
    tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json_format.MessageToJson(make_request(tiny_campus, orders=1, riders=1)))
    port = free_port()
    assert main(["solve", str(path), "--server", f"127.0.0.1:{port}", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: UNAVAILABLE: no server answered at 127.0.0.1:{port}")
    assert "campus-dispatch serve" in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_request_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["solve", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing.json'}: cannot read")
    bad = tmp_path / "bad.json"
    bad.write_text('{"orders": 3}')
    assert main(["solve", str(bad)]) == 2
    assert "not a SolveRequest in JSON" in capsys.readouterr().err


def test_solve_reports_bad_fields_naming_both_values(
    service: Service, tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = make_request(tiny_campus)
    request.orders[0].size = -1
    request.orders[1].due_time.FromSeconds(request.orders[1].ready_time.seconds - 60)
    path = tmp_path / "bad.json"
    path.write_text(json_format.MessageToJson(request))
    assert main(["solve", str(path), "--server", service.address]) == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "orders[0].size: -1 is negative" in err
    ready = datetime.fromtimestamp(request.orders[1].ready_time.seconds, UTC)
    due = ready - timedelta(seconds=60)
    assert (
        f"  orders[1].due_time: {due.isoformat()} is before ready_time {ready.isoformat()}\n" in err
    )
    assert "Traceback" not in err


def test_example_request_parses() -> None:
    request = read_request(ROOT / "examples" / "solve_request.json")
    assert request.campus_id == "northwestern" and len(request.orders) == 5
    assert request.orders[4].onboard_rider_id == "ben"


def test_serve_answers_sigterm_with_a_clean_exit(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\ncampuses = ["tiny"]\ndefault_campus = "tiny"\n')
    proc, _ = start_serve(config)
    try:
        proc.send_signal(signal.SIGTERM)
        started = time.perf_counter()
        assert proc.wait(timeout=20) == 0
        assert time.perf_counter() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
