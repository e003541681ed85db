"""An in-process service on the tiny campus, port 0, over a real channel."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from campus_maps import Campus, load_campus
from server.app import Service, create_server
from server.config import ServerConfig
from server.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from server.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc

NOW = 1_700_000_000


@pytest.fixture(scope="session")
def tiny_campus() -> Campus:
    return load_campus("tiny")


def make_config(**changes: object) -> ServerConfig:
    base = ServerConfig(
        port=0, metrics_port=0, workers=1, campuses=("tiny",), default_campus="tiny"
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
