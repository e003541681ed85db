"""The recorded requests shipped for the load tests are valid SolveRequests that the service
accepts (field validation and snapping on the Northwestern map), and the recorder writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import load_campus
from load.recorded import RECORDED, read_requests, record_requests
from server.config import ServerConfig
from server.convert import problem_from_request
from server.validate import validate_request

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "data"


def test_the_shipped_requests_pass_the_servers_validation() -> None:
    requests = read_requests(RECORDED)
    assert len(requests) >= 10
    assert len({r.request_id for r in requests}) == len(requests)
    campus = load_campus("northwestern")
    config = ServerConfig(campuses=("northwestern",))
    for request in requests:
        assert isinstance(request, pb.SolveRequest)
        assert request.campus_id == "northwestern"
        assert request.orders and request.riders
        assert validate_request(request, config) == [], request.request_id
        conversion = problem_from_request(request, campus, config)  # snaps every point
        assert len(conversion.problem.orders) == len(request.orders)
    sizes = [len(r.orders) for r in requests]
    assert max(sizes) >= 100 and min(sizes) <= 10  # the peak and the quiet start/end


def test_the_recorder_writes_what_the_replay_sends(tmp_path: Path) -> None:
    written = record_requests(SCENARIOS / "tiny-lunch.json", tmp_path, every=10)
    assert written and all(p.name.startswith("req-") for p in written)
    again = read_requests(tmp_path)
    assert [r.request_id for r in again] == [f"recorded-{k:05d}" for k in range(1, len(again) + 1)]
    assert {r.campus_id for r in again} == {"tiny"}
    assert all(validate_request(r, ServerConfig()) == [] for r in again)


def test_reading_a_missing_or_bad_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no recorded requests"):
        read_requests(tmp_path)
    (tmp_path / "req-00001.json").write_text('{"orders": "many"}')
    with pytest.raises(ValueError, match=r"req-00001\.json: not a SolveRequest"):
        read_requests(tmp_path)
