"""The command line: ``campus-dispatch solve`` against a server, ``serve`` and its SIGTERM drain."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from google.protobuf import json_format

from api.client import read_request
from campus_dispatch.cli import main
from campus_maps import Campus
from server.app import Service
from tests.server.conftest import make_request, start_serve

ROOT = Path(__file__).resolve().parents[2]


def test_solve_prints_json_and_table(
    service: Service, tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json_format.MessageToJson(make_request(tiny_campus, orders=4, riders=2)))
    assert main(["solve", str(path), "--server", service.address]) == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    assert data["request_id"] == "req-0"
    assert "engine RUIN_RECREATE" in out and "DROPOFF" in out


def test_solve_reports_bad_fields(
    service: Service, tiny_campus: Campus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = make_request(tiny_campus)
    request.orders[0].size = -1
    path = tmp_path / "bad.json"
    path.write_text(json_format.MessageToJson(request))
    assert main(["solve", str(path), "--server", service.address]) == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "orders[0].size: -1 is negative" in err


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
