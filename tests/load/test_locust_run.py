"""The locustfile end to end, headless in a subprocess (locust monkey-patches the process it
runs in) against an in-process server: a good run exits 0 with its CSV, HTML and SLO JSON; a run
whose calls fail exits 1. Also the config writer the replica driver uses."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from google.protobuf import json_format

from campus_maps import Campus
from load.servers import dump_toml, write_config
from server.app import Service
from server.config import ConfigError
from tests.server.conftest import make_request

ROOT = Path(__file__).resolve().parents[2]


def _write_requests(folder: Path, tiny: Campus, campus_id: str = "tiny") -> Path:
    folder.mkdir()
    for seed in range(3):
        request = make_request(tiny, orders=4, riders=2, seed=seed)
        request.campus_id = campus_id
        (folder / f"req-{seed:05d}.json").write_text(json_format.MessageToJson(request))
    return folder


def _locust(service: Service, requests: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "load" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--host",
        service.address,
        "--shape",
        "soak",
        "--shape-users",
        "2",
        "--shape-seconds",
        "4",
        "--pacing-s",
        "0.5",
        "--budget-ms",
        "300",
        # the latency gate is the benchmark's business (tests/load/test_slo.py covers the
        # checker): a loaded CI machine must not fail the run on p99 alone
        "--slo-margin-ms",
        "5000",
        "--requests-dir",
        str(requests),
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "report.html"),
        "--slo-json",
        str(out / "slo.json"),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_good_run_passes_the_slo_and_writes_its_report(
    service: Service, tiny: Campus, tmp_path: Path
) -> None:
    run = _locust(service, _write_requests(tmp_path / "requests", tiny), tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    verdict = json.loads((tmp_path / "slo.json").read_text())
    assert verdict["ok"] and verdict["stats"]["requests"] >= 4
    assert verdict["stats"]["error_ratio"] == 0
    assert "SLO PASS" in run.stdout
    stats_csv = (tmp_path / "locust_stats.csv").read_text()
    assert "grpc,Solve," in stats_csv
    assert (tmp_path / "report.html").stat().st_size > 1000


def test_a_run_whose_calls_fail_exits_non_zero(
    service: Service, tiny: Campus, tmp_path: Path
) -> None:
    requests = _write_requests(tmp_path / "requests", tiny, campus_id="atlantis")
    run = _locust(service, requests, tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    verdict = json.loads((tmp_path / "slo.json").read_text())
    assert not verdict["ok"]
    assert set(verdict["stats"]["errors"]) == {"NOT_FOUND"}
    assert "SLO FAIL" in run.stdout


def test_replica_config_round_trips_and_is_checked(tmp_path: Path) -> None:
    tables = {"server": {"port": 0, "shedding": False, "campuses": ["tiny"], "host": "127.0.0.1"}}
    assert tomllib.loads(dump_toml(tables)) == tables
    path = write_config(tmp_path / "c.toml", {"port": 0, "shedding": False})
    written = tomllib.loads(path.read_text())
    assert written["server"]["shedding"] is False and "solver" in written
    with pytest.raises(ConfigError, match=r"server\.max_inflight"):
        write_config(tmp_path / "bad.toml", {"max_inflight": 0})
