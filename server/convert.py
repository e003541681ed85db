"""Proto ⇄ solver model: the only module that knows both. Snaps points through campus_maps; the
travel matrices are not built here but where they are used (per zone, in a solver worker), from
the snapped points (:class:`campus_maps.CampusMatrices`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from campus_maps import Campus, CampusMatrices, SnappedPoints
from server.config import ServerConfig
from server.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from server.validate import InvalidRequestError, Violation
from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, Plan, ShedReason, StopKind, Unassigned, UnassignedReason
from solver.routes import build_plan
from solver.spec import ProblemSpec

MODE_NAMES = {pb.WALK: "walk", pb.BIKE: "bike", pb.EBIKE: "ebike"}
ENGINES = {
    Engine.ORTOOLS: pb.ORTOOLS,
    Engine.GREEDY: pb.GREEDY,
    Engine.RUIN_RECREATE: pb.RUIN_RECREATE,
}
STOP_KINDS = {StopKind.PICKUP: pb.PICKUP, StopKind.DROPOFF: pb.DROPOFF}
REASONS = {reason: pb.UnassignedReason.Value(reason.name) for reason in UnassignedReason}
SHED_REASONS = {reason: pb.ShedReason.Value(f"SHED_{reason.name}") for reason in ShedReason}


@dataclass(frozen=True)
class Conversion:
    """A request turned into a solver problem spec, with what is needed to answer it.

    Attributes
    ----------
    spec
        The solver problem before its matrices; its clock is seconds since ``now``
        (``now_s = 0``).
    now
        The request's "now" in epoch seconds.
    points
        ``(n, 2)`` lat/lng of each location index.
    modes
        Travel mode of each profile index.
    matrix_s
        Seconds spent checking and snapping the points (the matrices are built by the
        solver, inside its solve time).
    """

    spec: ProblemSpec
    now: float
    points: np.ndarray
    modes: tuple[str, ...]
    matrix_s: float

    @cached_property
    def problem(self) -> Problem:
        """The whole problem, every matrix built here (for checks and offline use)."""
        return self.spec.problem()


def _epoch(ts: Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


def timestamp_at(epoch_s: float) -> Timestamp:
    """A protobuf Timestamp of ``epoch_s`` (s since the epoch, nanosecond resolution)."""
    ts = Timestamp()
    ts.FromNanoseconds(round(epoch_s * 1e9))
    return ts


def duration_of(seconds: float) -> Duration:
    """A protobuf Duration of ``seconds``."""
    d = Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def rider_mode(rider: pb.Rider, config: ServerConfig) -> str:
    """The travel mode of ``rider`` (the configured default when unset)."""
    return MODE_NAMES.get(rider.mode, config.default_mode)


def problem_from_request(
    request: pb.SolveRequest, campus: Campus, config: ServerConfig, *, now: float | None = None
) -> Conversion:
    """Build the solver problem of a validated request.

    Raises
    ------
    InvalidRequestError
        A point is outside the campus or too far from a rider mode's network (each such point
        is reported with the fields that use it).
    """
    started = time.perf_counter()
    now = _epoch(request.now) if request.HasField("now") else (time.time() if now is None else now)

    def rel(ts: Timestamp) -> int:
        return round(_epoch(ts) - now)

    index: dict[tuple[float, float], int] = {}
    users: list[list[str]] = []

    def locate(point: pb.LatLng, field: str) -> int:
        key = (point.lat, point.lng)
        if key not in index:
            index[key] = len(index)
            users.append([])
        users[index[key]].append(field)
        return index[key]

    modes_by_rider = [rider_mode(r, config) for r in request.riders]
    modes = tuple(m for m in ("walk", "bike", "ebike") if m in modes_by_rider)
    riders = []
    for k, r in enumerate(request.riders):
        available = rel(r.available_time) if r.HasField("available_time") else 0
        shift_end = rel(r.shift_end) if r.HasField("shift_end") else config.default_shift_s
        riders.append(
            Rider(
                id=r.id,
                location=locate(r.position, f"riders[{k}].position"),
                available_s=available,
                shift_end_s=max(shift_end, available),
                capacity=r.capacity or config.default_capacity,
                profile=modes.index(modes_by_rider[k]),
            )
        )
    orders = []
    for k, o in enumerate(request.orders):
        onboard = bool(o.onboard_rider_id)
        committed = bool(o.committed_rider_id)
        state = (
            OrderState.ONBOARD
            if onboard
            else OrderState.COMMITTED
            if committed
            else OrderState.OPEN
        )
        pickup = None if onboard else locate(o.pickup, f"orders[{k}].pickup")
        orders.append(
            Order(
                id=o.id,
                pickup=pickup,
                dropoff=locate(o.dropoff, f"orders[{k}].dropoff"),
                ready_s=rel(o.ready_time) if o.HasField("ready_time") else 0,
                due_s=rel(o.due_time),
                size=o.size or 1,
                pickup_service_s=round(o.pickup_service.ToNanoseconds() / 1e9)
                if o.HasField("pickup_service")
                else config.default_pickup_service_s,
                dropoff_service_s=round(o.dropoff_service.ToNanoseconds() / 1e9)
                if o.HasField("dropoff_service")
                else config.default_dropoff_service_s,
                state=state,
                rider_id=o.onboard_rider_id or o.committed_rider_id or None,
            )
        )
    points = np.array(list(index), dtype=np.float64).reshape(-1, 2)
    violations: list[Violation] = []
    reported: set[int] = set()
    snapped: dict[str, SnappedPoints] = {}
    for mode in modes or (config.default_mode,):
        snap, errors = campus.snap_or_errors(points, mode)
        if snap is not None:
            snapped[mode] = snap
        for err in errors:
            assert err.index is not None
            if err.index in reported:
                continue
            reported.add(err.index)
            detail = err.describe()
            if "network" in detail:
                detail = detail.replace("rider network", f"{mode} network")
            for field in users[err.index]:
                violations.append(Violation(field, f"({err.lat:.6f}, {err.lng:.6f}) {detail}"))
    if violations:
        raise InvalidRequestError(sorted(violations, key=lambda v: v.field))
    source = CampusMatrices(campus, modes, snapped, points=points)
    spec = ProblemSpec(now_s=0, orders=tuple(orders), riders=tuple(riders), source=source)
    return Conversion(spec, now, points, modes, time.perf_counter() - started)


def response_from_plan(
    plan: Plan,
    conversion: Conversion,
    request: pb.SolveRequest,
    *,
    solve_s: float,
    total_s: float,
) -> pb.SolveResponse:
    """The SolveResponse of ``plan`` (times back on the request's clock)."""
    now, points = conversion.now, conversion.points
    response = pb.SolveResponse(request_id=request.request_id)
    for route in plan.routes:
        out = response.routes.add(
            rider_id=route.rider_id,
            travel_time=duration_of(route.travel_time_s),
            distance_m=float(route.distance_m),
            zone=route.zone,
        )
        for stop in route.stops:
            lat, lng = points[stop.location]
            out.stops.add(
                order_id=stop.order_id,
                kind=STOP_KINDS[stop.kind],
                location=pb.LatLng(lat=float(lat), lng=float(lng)),
                arrival_time=timestamp_at(now + stop.arrival_s),
                departure_time=timestamp_at(now + stop.departure_s),
                lateness=duration_of(stop.lateness_s),
            )
    for u in plan.unassigned:
        response.unassigned.add(order_id=u.order_id, reason=REASONS[u.reason], detail=u.detail)
    stats = response.stats
    stats.engine = ENGINES.get(plan.stats.engine, pb.ENGINE_UNSPECIFIED)
    stats.shed_reason = plan.stats.shed_reason
    if plan.stats.shed is not None:
        stats.shed = SHED_REASONS[plan.stats.shed.reason]
    stats.zones = plan.stats.zones
    stats.matrix_time.CopyFrom(duration_of(conversion.matrix_s))
    stats.solve_time.CopyFrom(duration_of(solve_s))
    stats.total_time.CopyFrom(duration_of(total_s))
    stats.objective = float(plan.stats.objective)
    stats.late_orders = plan.stats.late_orders
    return response


def plan_from_response(problem: Problem, params: SolverParams, response: pb.SolveResponse) -> Plan:
    """The solver plan a response describes, timed again by the solver's own rules (to check
    an answer against the request's problem, in tests and benchmarks)."""
    visits = {
        r.rider_id: [
            (s.order_id, StopKind.PICKUP if s.kind == pb.PICKUP else StopKind.DROPOFF)
            for s in r.stops
        ]
        for r in response.routes
    }
    unassigned = [
        Unassigned(u.order_id, UnassignedReason[pb.UnassignedReason.Name(u.reason)])
        for u in response.unassigned
    ]
    engine = {v: k for k, v in ENGINES.items()}[response.stats.engine]
    return build_plan(problem, params, visits, unassigned, engine=engine)
