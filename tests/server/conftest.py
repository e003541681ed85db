"""An in-process service on the tiny campus, port 0, over a real channel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus, load_campus
from server.app import Service, create_server
from server.config import ServerConfig
from server.convert import Conversion, plan_from_response, problem_from_request
from solver.plan import Plan

NOW = 1_700_000_000
ROOT = Path(__file__).resolve().parents[2]
#: A maps directory that holds no campus: test servers serve only the campuses they are given.
NO_MAPS = ROOT / "tests" / "server" / "no-maps"


@pytest.fixture(scope="session")
def tiny_campus() -> Campus:
    return load_campus("tiny")


def make_config(**changes: object) -> ServerConfig:
    base = ServerConfig(
        port=0,
        metrics_port=0,
        workers=1,
        campuses=("tiny",),
        default_campus="tiny",
        maps_dir=str(NO_MAPS),
        serve_bundled=False,
    )
    return base.replace(**changes)


@pytest.fixture(scope="module")
def service(tiny_campus: Campus) -> Iterator[Service]:
    svc = create_server(make_config(), campuses={"tiny": tiny_campus})
    yield svc
    svc.stop(0.5)


@pytest.fixture(scope="module")
def stub(service: Service) -> Iterator[pb_grpc.DispatchServiceStub]:
    with grpc.insecure_channel(service.address) as channel:
        yield pb_grpc.DispatchServiceStub(channel)


def make_request(
    campus: Campus, *, orders: int = 6, riders: int = 3, budget_ms: int = 300, seed: int = 0
) -> pb.SolveRequest:
    """A valid request on ``campus``: merchants and customers at its places."""
    import random

    rng = random.Random(seed)
    places = campus.places()
    food = [p for p in places if p.kind.value == "food"]
    req = pb.SolveRequest(request_id=f"req-{seed}", campus_id=campus.id)
    req.now.FromSeconds(NOW)
    req.time_budget.FromMilliseconds(budget_ms)
    for k in range(riders):
        p = rng.choice(places)
        req.riders.add(
            id=f"r{k}", position=pb.LatLng(lat=p.lat, lng=p.lng), mode=pb.BIKE, capacity=3
        )
    for k in range(orders):
        a, b = rng.choice(food), rng.choice(places)
        o = req.orders.add(
            id=f"o{k}",
            pickup=pb.LatLng(lat=a.lat, lng=a.lng),
            dropoff=pb.LatLng(lat=b.lat, lng=b.lng),
        )
        o.ready_time.FromSeconds(NOW + rng.randint(0, 300))
        o.due_time.FromSeconds(NOW + 1500 + rng.randint(0, 600))
    return req


def plan_of_response(
    campus: Campus, service: Service, request: pb.SolveRequest, response: pb.SolveResponse
) -> tuple[Conversion, Plan]:
    """Rebuild the solver plan the response describes, timed by the solver's own rules."""
    conversion = problem_from_request(request, campus, service.config)
    plan = plan_from_response(conversion.problem, service.config.solver, response)
    return conversion, plan


def violations(err: grpc.RpcError) -> dict[str, str]:
    """Field -> description of the google.rpc.BadRequest detail of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None
    out = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def start_serve(
    config: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``campus-dispatch serve --config config`` in a subprocess (any free port, no metrics,
    one worker, ``env`` added); returns it once ready, with its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "campus_dispatch", "serve", "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, "PORT": "0", "METRICS_PORT": "-1", "WORKERS": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not re.search(r"ready on 127\.0\.0\.1:\d+", line):
        proc.kill()
        raise AssertionError(f"serve did not start: {line!r}")
    return proc, line
