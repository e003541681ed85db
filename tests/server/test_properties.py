"""Property tests of the service over generated SolveRequests, on every bundled campus: a valid
request (raw coordinates, every mode, committed and onboard orders, orders assigned to a rider
of the request, to one not in it or to their own committed rider, with or without a planned
pickup, tight and loose due times) is answered OK with a plan that passes the solver's checker
and accounts for every order once; an invalid one (bad numbers, empty, huge or non-UTF-8
strings, duplicate ids, unknown riders, an assigned rider other than the committed one, a
planned pickup without an assigned rider, due before ready, timestamps at the edges of their
range) is INVALID_ARGUMENT naming the field. Any other answer fails."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus, campus_ids, load_campus
from server.app import Service, create_server
from server.guard import SOLVE_METHOD
from server.validate import MAX_TEXT_BYTES, TIMESTAMP_SECONDS
from solver.check import check_plan
from tests.raw_points import PointPool, point_pool, raw_point
from tests.server.conftest import NOW, make_config, plan_of_response, violations

MODES = (pb.TRAVEL_MODE_UNSPECIFIED, pb.WALK, pb.BIKE, pb.EBIKE)
MAX_ORDERS, MAX_RIDERS = 40, 12
#: Requests per property test: (default run, behind the ``slow`` marker). ``FUZZ_REQUESTS``
#: sets the slow run's count (``make fuzz``).
DEPTHS = [
    pytest.param(25, id="quick"),
    pytest.param(int(os.environ.get("FUZZ_REQUESTS", "2500")), id="fuzz", marks=pytest.mark.slow),
]
#: Status codes seen by the slow fuzz runs, printed at the end of the module.
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def campuses() -> dict[str, Campus]:
    return {cid: load_campus(cid) for cid in campus_ids()}


@pytest.fixture(scope="module")
def service(campuses: dict[str, Campus]) -> Iterator[Service]:
    config = make_config(
        campuses=tuple(campuses), max_orders=MAX_ORDERS, max_riders=MAX_RIDERS, workers=1
    )
    svc = create_server(config, campuses=campuses)
    yield svc
    svc.stop(0.5)
    if TALLY:
        print(f"\nfuzz status codes: {dict(TALLY)}")


@pytest.fixture(scope="module")
def channel(service: Service) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def pools(campuses: dict[str, Campus]) -> dict[str, PointPool]:
    """Per campus: points every mode can use (bike edges, nodes of all networks)."""
    return {cid: point_pool(c, "bike", every_mode=True) for cid, c in campuses.items()}


def _at(ts: object, epoch_s: float) -> None:
    ts.FromNanoseconds(round(epoch_s * 1e9))  # type: ignore[attr-defined]


def drawn(examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings of these tests: ``examples`` requests, no deadline, the same draws
    every time in the default run (``derandomize``), random ones in the fuzz."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples < 100,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _latlng(p: tuple[float, float]) -> pb.LatLng:
    return pb.LatLng(lat=p[0], lng=p[1])


@st.composite
def valid_requests(draw: st.DrawFn, pools: dict[str, PointPool]) -> pb.SolveRequest:
    """A request the service must answer OK."""
    campus_id = draw(st.sampled_from(sorted(pools)))
    pool = pools[campus_id]
    req = pb.SolveRequest(request_id=f"prop-{draw(st.integers(0, 10**6))}")
    if draw(st.booleans()) or campus_id != "tiny":
        req.campus_id = campus_id
    has_now = draw(st.integers(0, 9)) > 0
    now = float(NOW) if has_now else time.time()
    if has_now:
        req.now.FromSeconds(NOW)
    req.time_budget.FromMilliseconds(draw(st.integers(20, 150)))
    n_riders = draw(st.integers(0, 6))
    capacity = {}
    for k in range(n_riders):
        r = req.riders.add(
            id=f"r{k}",
            position=_latlng(draw(raw_point(pool))),
            mode=draw(st.sampled_from(MODES)),
            capacity=draw(st.integers(0, 5)),
        )
        capacity[r.id] = r.capacity or 4
        start = now + draw(st.sampled_from([0, -300, 120, 900]))
        if draw(st.booleans()):
            _at(r.available_time, start)
        if draw(st.booleans()):
            _at(r.shift_end, start + draw(st.sampled_from([0, 600, 3600, 14400, 5 * 86400])))
    onboard_load = dict.fromkeys(capacity, 0)
    for k in range(draw(st.integers(0, 20))):
        o = req.orders.add(
            id=draw(st.sampled_from([f"o{k}", f"訂單-{k}", f"o {k}\t\u00e9"])),
            pickup=_latlng(draw(raw_point(pool))),
            dropoff=_latlng(draw(raw_point(pool))),
        )
        ready = now + draw(st.integers(-900, 1200))
        if draw(st.integers(0, 3)):
            _at(o.ready_time, ready)
        due = ready + draw(st.sampled_from([0, 60, 600, 1500, 3600, 6 * 86400]))
        _at(o.due_time, max(due, ready) if o.HasField("ready_time") else due)
        if draw(st.booleans()):
            o.pickup_service.FromSeconds(draw(st.integers(0, 300)))
        if draw(st.booleans()):
            o.dropoff_service.FromSeconds(draw(st.integers(0, 300)))
        if draw(st.booleans()):  # who ordered, when, where from, and a freshness limit
            o.customer_id = draw(st.sampled_from(["acct-1", "顧客-7", "", "a" * 128]))
            o.merchant_id = draw(st.sampled_from(["m-1", "商户", ""]))
            _at(o.placed_time, min(now, due) - draw(st.integers(0, 3600)))
            o.max_time_in_bag.FromSeconds(draw(st.sampled_from([1, 60, 600, 1800, 86400])))
            if draw(st.booleans()):  # when the account first ordered: now to decades ago
                ago = draw(st.sampled_from([0, 60, 3 * 86400, 400 * 86400, 30 * 365 * 86400]))
                _at(o.customer_since, now - ago)
        state = draw(st.sampled_from(["open", "open", "committed", "onboard"]))
        if state != "open" and capacity:
            rider = draw(st.sampled_from(sorted(capacity)))
            room = capacity[rider] - (onboard_load[rider] if state == "onboard" else 0)
            if room >= 1:
                o.size = draw(st.integers(0, room)) if room > 1 else draw(st.sampled_from([0, 1]))
                if state == "onboard":
                    o.onboard_rider_id = rider
                    onboard_load[rider] += o.size or 1
                else:
                    o.committed_rider_id = rider
                if draw(st.integers(0, 3)) == 0:  # the backend repeats the accepting rider
                    _assign(draw, o, rider, now)
                continue
        o.size = draw(st.integers(0, min(capacity.values(), default=3)))
        if draw(st.booleans()):  # on a rider's phone, not accepted yet (soft)
            riders = sorted(capacity)
            _assign(draw, o, draw(st.sampled_from([*riders, *riders, "logged-off", "騎手-9"])), now)
    return req


def _assign(draw: st.DrawFn, order: pb.Order, rider: str, now: float) -> None:
    """Assign ``order`` to ``rider``, sometimes with the pickup time of the answer that did:
    overdue, due within the freeze horizon, or later."""
    order.assigned_rider_id = rider
    if draw(st.booleans()):
        _at(
            order.assigned_pickup_time,
            now + draw(st.sampled_from([-1800, -60, 0, 120, 299, 301, 1200, 86400])),
        )
    if draw(st.booleans()):  # the ETA the student was shown: passed, soon, or later
        _at(order.quoted_dropoff_time, now + draw(st.sampled_from([-600, 0, 900, 3600])))


def _check_answer(
    service: Service,
    campuses: dict[str, Campus],
    request: pb.SolveRequest,
    response: pb.SolveResponse,
) -> None:
    """OK answers account for every order once and pass the checker on the request's problem."""
    ids = [o.id for o in request.orders]
    seen = [s.order_id for r in response.routes for s in r.stops if s.kind == pb.DROPOFF]
    seen += [u.order_id for u in response.unassigned]
    assert sorted(seen) == sorted(ids)
    pickups = [s.order_id for r in response.routes for s in r.stops if s.kind == pb.PICKUP]
    assert len(pickups) == len(set(pickups))
    assert response.request_id == request.request_id
    assert all(u.reason != pb.UNASSIGNED_REASON_UNSPECIFIED for u in response.unassigned)
    if not request.HasField("now"):
        return  # the server's clock: the problem cannot be rebuilt exactly here
    campus = campuses[request.campus_id or "tiny"]
    conversion, plan = plan_of_response(campus, service, request, response)
    check = check_plan(conversion.problem, plan, service.config.solver)
    assert check.ok, check.violations
    assert math.isfinite(response.stats.objective)


def _answer_checked(
    service: Service,
    campuses: dict[str, Campus],
    channel: grpc.Channel,
    request: pb.SolveRequest,
) -> pb.SolveResponse:
    """Solve a valid request: anything but OK fails; the answer is checked (see above)."""
    try:
        response = _call(channel, request)
    except grpc.RpcError as err:
        TALLY[err.code().name] += 1
        raise AssertionError(f"{err.code().name}: {err.details()} {violations(err)}") from err
    TALLY["OK"] += 1
    _check_answer(service, campuses, request, response)
    return response


def _call(channel: grpc.Channel, request: pb.SolveRequest | bytes) -> pb.SolveResponse:
    """Solve over the channel (bytes are sent as they are)."""
    if isinstance(request, bytes):
        raw = channel.unary_unary(SOLVE_METHOD, response_deserializer=pb.SolveResponse.FromString)
        return raw(request, timeout=20)
    return pb_grpc.DispatchServiceStub(channel).Solve(request, timeout=20)


@pytest.mark.parametrize("examples", DEPTHS)
def test_valid_requests_answer_ok_with_a_checked_plan(
    service: Service,
    campuses: dict[str, Campus],
    channel: grpc.Channel,
    pools: dict[str, PointPool],
    examples: int,
) -> None:
    @drawn(examples)
    @given(request=valid_requests(pools))
    def run(request: pb.SolveRequest) -> None:
        _answer_checked(service, campuses, channel, request)

    run()


@pytest.fixture(scope="module")
def zoned_service(campuses: dict[str, Campus]) -> Iterator[Service]:
    """A server that splits every request of 4+ open orders into zones of about 3."""
    config = make_config(campuses=tuple(campuses), max_orders=MAX_ORDERS, max_riders=MAX_RIDERS)
    solver = config.solver.replace(partition_min_orders=4, zone_orders=3)
    svc = create_server(config.replace(solver=solver), campuses=campuses)
    yield svc
    svc.stop(0.5)


@pytest.mark.parametrize("examples", DEPTHS)
def test_valid_requests_split_into_zones_answer_ok_with_a_checked_plan(
    zoned_service: Service,
    campuses: dict[str, Campus],
    pools: dict[str, PointPool],
    examples: int,
) -> None:
    """The partitioned path on the same raw inputs: zones, pinned orders with their riders,
    repeats, riders of every mode; the merged plan passes the checker."""
    split: list[int] = []
    with grpc.insecure_channel(zoned_service.address) as channel:

        @drawn(examples)
        @given(request=valid_requests(pools))
        def run(request: pb.SolveRequest) -> None:
            response = _answer_checked(zoned_service, campuses, channel, request)
            split.append(response.stats.zones)
            assert {r.zone for r in response.routes} <= set(range(response.stats.zones))

        run()
    assert max(split) > 1, "no drawn request was split into zones"


# ------------------------------------------------------------------------ invalid requests
@dataclass(frozen=True)
class Broken:
    """A request made invalid on purpose and the field the answer must name."""

    request: pb.SolveRequest | bytes
    field: str


Mutation = Callable[[st.DrawFn, pb.SolveRequest], str]
BAD_NUMBERS = [math.nan, math.inf, -math.inf, 90.0001, -180.5, 1e308]
LO, HI = TIMESTAMP_SECONDS


def _point_field(draw: st.DrawFn, req: pb.SolveRequest) -> tuple[pb.LatLng, str]:
    if req.riders and (not req.orders or draw(st.booleans())):
        k = draw(st.integers(0, len(req.riders) - 1))
        return req.riders[k].position, f"riders[{k}].position"
    k = draw(st.integers(0, len(req.orders) - 1))
    name = (
        "dropoff"
        if req.orders[k].onboard_rider_id
        else draw(st.sampled_from(["pickup", "dropoff"]))
    )
    return getattr(req.orders[k], name), f"orders[{k}].{name}"


def bad_number(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    point, where = _point_field(draw, req)
    name = draw(st.sampled_from(["lat", "lng"]))
    setattr(point, name, draw(st.sampled_from(BAD_NUMBERS)))
    return f"{where}.{name}"


def off_campus(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    point, where = _point_field(draw, req)
    point.lat, point.lng = draw(st.sampled_from([(0.0, 0.0), (42.0, -87.0), (-0.5, -78.0)]))
    return where


def _id_holder(draw: st.DrawFn, req: pb.SolveRequest) -> tuple[object, str]:
    if req.riders and (not req.orders or draw(st.booleans())):
        k = draw(st.integers(0, len(req.riders) - 1))
        return req.riders[k], f"riders[{k}].id"
    k = draw(st.integers(0, len(req.orders) - 1))
    return req.orders[k], f"orders[{k}].id"


def empty_id(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    holder, where = _id_holder(draw, req)
    holder.id = ""  # type: ignore[attr-defined]
    return where


def huge_text(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    text = draw(
        st.sampled_from(
            [
                "x" * (MAX_TEXT_BYTES + 1),
                "€" * (MAX_TEXT_BYTES // 3 + 1),  # 43 characters, 129 bytes
                "y" * 100_000,
                "\U0001f600" * 40,  # 160 bytes
            ]
        )
    )
    target = draw(
        st.sampled_from(["id", "request_id", "campus_id", "pinned", "account", "assigned"])
    )
    if target == "assigned" and req.orders:
        req.orders[0].assigned_rider_id = text
        return "orders[0].assigned_rider_id"
    if target == "account" and req.orders:
        name = draw(st.sampled_from(["customer_id", "merchant_id"]))
        setattr(req.orders[0], name, text)
        return f"orders[0].{name}"
    if target in ("id", "pinned") and not req.riders and not req.orders:
        target = "request_id"
    if target == "request_id":
        req.request_id = text
        return "request_id"
    if target == "campus_id":
        req.campus_id = text
        return "campus_id"
    if target == "pinned" and req.orders and req.riders:
        req.orders[0].committed_rider_id = text
        req.orders[0].ClearField("onboard_rider_id")
        return "orders[0].committed_rider_id"
    holder, where = _id_holder(draw, req)
    holder.id = text  # type: ignore[attr-defined]
    return where


def duplicate_id(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    if len(req.riders) >= 2 and (len(req.orders) < 2 or draw(st.booleans())):
        req.riders[1].id = req.riders[0].id
        return "riders[1].id"
    req.orders[1].id = req.orders[0].id
    return "orders[1].id"


def unknown_rider(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    k = draw(st.integers(0, len(req.orders) - 1))
    if draw(st.booleans()):
        req.orders[k].ClearField("committed_rider_id")
        req.orders[k].onboard_rider_id = "nobody"
        return f"orders[{k}].onboard_rider_id"
    req.orders[k].ClearField("onboard_rider_id")
    req.orders[k].committed_rider_id = "nobody"
    return f"orders[{k}].committed_rider_id"


def assigned_elsewhere(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    """A committed or onboard order assigned (soft) to another rider than its own."""
    k = draw(st.integers(0, len(req.orders) - 1))
    o = req.orders[k]
    if not (o.committed_rider_id or o.onboard_rider_id):
        o.committed_rider_id = req.riders[0].id
    own = o.committed_rider_id or o.onboard_rider_id
    others = [r.id for r in req.riders if r.id != own]
    o.assigned_rider_id = draw(st.sampled_from([*others, "logged-off", own + "x"]))
    return f"orders[{k}].assigned_rider_id"


def pickup_unassigned(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    """A planned pickup on an order assigned to no one."""
    k = draw(st.integers(0, len(req.orders) - 1))
    base = req.now.seconds if req.HasField("now") else int(time.time())
    req.orders[k].ClearField("assigned_rider_id")
    req.orders[k].assigned_pickup_time.FromSeconds(base + draw(st.sampled_from([-60, 0, 600])))
    return f"orders[{k}].assigned_pickup_time"


def due_before_ready(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    k = draw(st.integers(0, len(req.orders) - 1))
    o = req.orders[k]
    o.ready_time.FromSeconds(NOW + 600)
    o.due_time.FromSeconds(NOW + 600 - draw(st.integers(1, 3600)))
    return f"orders[{k}].due_time"


def edge_timestamp(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    seconds, nanos = draw(
        st.sampled_from(
            [(LO, 0), (HI, 999_999_999), (LO - 1, 0), (HI + 1, 0), (2**62, 0), (-(2**62), 0)]
            + [(NOW, -1), (NOW, 10**9), (0, 0), (NOW + 8 * 86400, 0), (NOW - 30 * 86400, 0)]
        )
    )
    k = draw(st.integers(0, len(req.orders) - 1)) if req.orders else None
    if k is None or (req.riders and draw(st.booleans())):
        r = draw(st.integers(0, len(req.riders) - 1))
        name = draw(st.sampled_from(["available_time", "shift_end"]))
        ts, where = getattr(req.riders[r], name), f"riders[{r}].{name}"
        req.riders[r].ClearField("shift_end" if name == "available_time" else "available_time")
    else:
        name = draw(
            st.sampled_from(
                ["ready_time", "due_time", "assigned_pickup_time", "quoted_dropoff_time"]
            )
        )
        ts, where = getattr(req.orders[k], name), f"orders[{k}].{name}"
        if name == "assigned_pickup_time":
            req.orders[k].assigned_rider_id = (
                req.orders[k].committed_rider_id or req.orders[k].onboard_rider_id or "logged-off"
            )
        elif name in ("ready_time", "due_time"):
            req.orders[k].ClearField("due_time" if name == "ready_time" else "ready_time")
    ts.seconds, ts.nanos = seconds, nanos
    return where


def future_customer(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    """An account whose first order is after the request's now (or not a Timestamp)."""
    k = draw(st.integers(0, len(req.orders) - 1))
    base = req.now.seconds if req.HasField("now") else int(time.time())
    seconds, nanos = draw(st.sampled_from([(base + 3600, 0), (base + 86400 * 30, 0), (HI + 1, 0)]))
    req.orders[k].customer_since.seconds, req.orders[k].customer_since.nanos = seconds, nanos
    return f"orders[{k}].customer_since"


def bad_now(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    req.now.seconds, req.now.nanos = draw(
        st.sampled_from([(HI + 1, 0), (LO - 1, 0), (NOW, -5), (NOW, 2 * 10**9)])
    )
    return "now"


def bad_duration(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    seconds, nanos = draw(
        st.sampled_from([(-1, 0), (0, -1), (10**12, 0), (5, -3), (-5, 3), (0, 10**9), (86401, 0)])
    )
    if not req.orders or draw(st.integers(0, 2)) == 0:
        req.time_budget.seconds, req.time_budget.nanos = (
            draw(st.sampled_from([(0, 0), (-1, 0), (61, 0), (10**9, 0)]))
            if draw(st.booleans())
            else (seconds, nanos)
        )
        return "time_budget"
    k = draw(st.integers(0, len(req.orders) - 1))
    name = draw(st.sampled_from(["pickup_service", "dropoff_service", "max_time_in_bag"]))
    if name == "max_time_in_bag" and draw(st.booleans()):
        seconds, nanos = 0, 0  # a freshness limit must be above 0
    span = getattr(req.orders[k], name)
    span.seconds, span.nanos = seconds, nanos
    return f"orders[{k}].{name}"


def bad_size(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    if req.riders and (not req.orders or draw(st.booleans())):
        k = draw(st.integers(0, len(req.riders) - 1))
        req.riders[k].capacity = draw(st.sampled_from([-1, -(2**31)]))
        return f"riders[{k}].capacity"
    k = draw(st.integers(0, len(req.orders) - 1))
    req.orders[k].size = draw(st.sampled_from([-1, -(2**31)] + ([2**31 - 1] if req.riders else [])))
    return f"orders[{k}].size"


def bad_mode(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    k = draw(st.integers(0, len(req.riders) - 1))
    req.riders[k].mode = draw(st.sampled_from([4, 99, -1]))  # type: ignore[assignment]
    return f"riders[{k}].mode"


def both_pinned(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    k = draw(st.integers(0, len(req.orders) - 1))
    req.orders[k].onboard_rider_id = req.riders[0].id
    req.orders[k].committed_rider_id = req.riders[0].id
    return f"orders[{k}].committed_rider_id"


def too_many(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    if draw(st.booleans()):
        for k in range(MAX_RIDERS + 1 - len(req.riders)):
            req.riders.add(id=f"extra-r{k}", position=req.riders[0].position)
        return "riders"
    for k in range(MAX_ORDERS + 1 - len(req.orders)):
        req.orders.add().CopyFrom(req.orders[0])
        req.orders[-1].id = f"extra-o{k}"
    return "orders"


def missing(draw: st.DrawFn, req: pb.SolveRequest) -> str:
    k = draw(st.integers(0, len(req.orders) - 1))
    name = draw(st.sampled_from(["due_time", "dropoff"]))
    req.orders[k].ClearField(name)
    return f"orders[{k}].{name}"


#: Each mutation with what the request needs for it: (riders, orders) at least.
MUTATIONS: list[tuple[Mutation, int, int]] = [
    (bad_number, 1, 0),
    (off_campus, 1, 0),
    (empty_id, 1, 0),
    (huge_text, 0, 0),
    (duplicate_id, 2, 0),
    (unknown_rider, 0, 1),
    (assigned_elsewhere, 1, 1),
    (pickup_unassigned, 0, 1),
    (due_before_ready, 0, 1),
    (edge_timestamp, 1, 0),
    (bad_now, 0, 0),
    (future_customer, 0, 1),
    (bad_duration, 0, 0),
    (bad_size, 1, 0),
    (bad_mode, 1, 0),
    (both_pinned, 1, 1),
    (too_many, 1, 1),
    (missing, 0, 1),
]


@st.composite
def broken_requests(draw: st.DrawFn, pools: dict[str, PointPool]) -> Broken:
    req = draw(valid_requests(pools))
    if draw(st.integers(0, 9)) == 0:  # bytes that are not valid UTF-8 in a string field
        req.request_id = "@@@@"
        data = req.SerializeToString().replace(b"@@@@", b"\xff\xfe\xc3\x28")
        return Broken(data, "request")
    usable = [
        m
        for m, riders, orders in MUTATIONS
        if len(req.riders) >= riders
        and len(req.orders) >= orders
        and (m is not duplicate_id or len(req.riders) >= 2 or len(req.orders) >= 2)
        and ((m is not bad_number and m is not off_campus) or req.riders or req.orders)
        and (m is not empty_id or req.riders or req.orders)
    ]
    mutation = draw(st.sampled_from(usable))
    return Broken(req, mutation(draw, req))


def _names(reported: str, broken: str) -> bool:
    """Whether the reported field names the broken one: itself, a part of it, or the whole it
    is part of (a longitude of 90.0001 is a valid degree, but puts the point off campus)."""
    return (
        reported == broken
        or f"{reported}.".startswith(f"{broken}.")
        or (f"{broken}.".startswith(f"{reported}."))
    )


@pytest.mark.parametrize("examples", DEPTHS)
def test_invalid_requests_are_invalid_argument_naming_the_field(
    service: Service, channel: grpc.Channel, pools: dict[str, PointPool], examples: int
) -> None:
    @drawn(examples)
    @given(broken=broken_requests(pools))
    def run(broken: Broken) -> None:
        try:
            response = _call(channel, broken.request)
        except grpc.RpcError as err:
            TALLY[err.code().name] += 1
            assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
            fields = violations(err)
            assert any(_names(f, broken.field) for f in fields), (
                broken.field,
                fields,
            )
            assert len(err.details() or "") < 4096  # a huge value is never echoed whole
            return
        TALLY["OK"] += 1
        raise AssertionError(
            f"answered OK, expected INVALID_ARGUMENT on {broken.field}: {response}"
        )

    run()
