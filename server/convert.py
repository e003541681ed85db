"""Proto ⇄ solver model: the only module that knows both. Snaps points through campus_maps; the
travel matrices are not built here but where they are used (per zone, in a solver worker), from
the snapped points (:class:`campus_maps.CampusMatrices`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from api.codec import (
    ENGINES,
    MODES,
    SHED_REASONS,
    STOP_KINDS,
    UNASSIGNED_REASONS,
    EnumMap,
    duration_of,
    epoch_of,
    seconds_of,
    timestamp_at,
)
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import MODES as MODE_ORDER
from campus_maps import Campus, CampusMatrices, OutsideServiceAreaError, SnappedPoints
from server.config import ServerConfig
from server.validate import InvalidRequestError, Violation
from solver.model import Order, OrderState, Problem
from solver.params import SolverParams
from solver.plan import Plan, Unassigned, UnassignedReason
from solver.routes import build_plan
from solver.spec import ProblemBuilder, ProblemSpec
from storm import Action, Detector, GuardReview, IncomingOrder, StormLevel

#: The storm guard's values on the wire.
GUARD_ACTIONS: EnumMap[Action, pb.GuardAction] = EnumMap(
    {action: pb.GuardAction.Value(f"GUARD_ACTION_{action.name}") for action in Action}
)
DETECTORS: EnumMap[Detector, pb.Detector] = EnumMap(
    {detector: pb.Detector.Value(f"DETECTOR_{detector.name}") for detector in Detector}
)
STORM_LEVELS: EnumMap[StormLevel, pb.StormLevel] = EnumMap(
    {level: pb.StormLevel.Value(f"STORM_LEVEL_{level.name}") for level in StormLevel}
)


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

    def without(self, order_ids: frozenset[str]) -> Conversion:
        """The same request without these orders (held back by the storm guard)."""
        if not order_ids:
            return self
        spec = self.spec
        kept = tuple(o for o in spec.orders if o.id not in order_ids)
        return dataclasses.replace(
            self, spec=ProblemSpec(spec.now_s, kept, spec.riders, spec.source)
        )


def guard_orders(request: pb.SolveRequest, now: float) -> list[IncomingOrder]:
    """What the storm guard reads of a validated request's orders (times in epoch seconds)."""
    return [
        IncomingOrder(
            id=o.id,
            customer=o.customer_id,
            placed_s=epoch_of(o.placed_time) if o.HasField("placed_time") else None,
            lat=o.dropoff.lat,
            lng=o.dropoff.lng,
            customer_since_s=epoch_of(o.customer_since) if o.HasField("customer_since") else None,
            open=not (o.onboard_rider_id or o.committed_rider_id),
        )
        for o in request.orders
    ]


def held_plan(plan: Plan, review: GuardReview, orders: Sequence[Order] = ()) -> Plan:
    """``plan`` with the orders the guard holds back as unassigned QUARANTINED (their detail
    is the detector's evidence); those of ``orders`` (the request's, held ones included) that
    are assigned to a rider count as reassigned (left out)."""
    held = [
        Unassigned(v.order_id, UnassignedReason.QUARANTINED, f"{v.detector.value}: {v.evidence}")
        for v in review.verdicts
        if v.action is Action.QUARANTINE
    ]
    if not held:
        return plan
    ids = {u.order_id for u in held}
    moved = sum(1 for o in orders if o.id in ids and o.assigned_rider_id is not None)
    stats = dataclasses.replace(plan.stats, reassigned=plan.stats.reassigned + moved)
    return dataclasses.replace(plan, unassigned=(*plan.unassigned, *held), stats=stats)


def rider_mode(rider: pb.Rider, config: ServerConfig) -> str:
    """The travel mode of ``rider`` (the configured default when unset)."""
    return MODES.from_proto(rider.mode, config.default_mode)


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
    now = (
        epoch_of(request.now) if request.HasField("now") else (time.time() if now is None else now)
    )

    def rel(ts: Timestamp) -> int:
        return round(epoch_of(ts) - now)

    build: ProblemBuilder[tuple[float, float]] = ProblemBuilder(MODE_ORDER)
    for k, r in enumerate(request.riders):
        available = rel(r.available_time) if r.HasField("available_time") else 0
        build.add_rider(
            r.id,
            (r.position.lat, r.position.lng),
            rider_mode(r, config),
            available_s=available,
            shift_end_s=rel(r.shift_end) if r.HasField("shift_end") else config.default_shift_s,
            capacity=r.capacity or config.default_capacity,
            user=f"riders[{k}].position",
        )
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
        build.add_order(
            o.id,
            None if onboard else (o.pickup.lat, o.pickup.lng),
            (o.dropoff.lat, o.dropoff.lng),
            pickup_user=f"orders[{k}].pickup",
            dropoff_user=f"orders[{k}].dropoff",
            ready_s=rel(o.ready_time) if o.HasField("ready_time") else 0,
            due_s=rel(o.due_time),
            size=o.size or 1,
            pickup_service_s=round(seconds_of(o.pickup_service))
            if o.HasField("pickup_service")
            else config.default_pickup_service_s,
            dropoff_service_s=round(seconds_of(o.dropoff_service))
            if o.HasField("dropoff_service")
            else config.default_dropoff_service_s,
            max_in_bag_s=round(seconds_of(o.max_time_in_bag))
            if o.HasField("max_time_in_bag")
            else None,
            state=state,
            rider_id=o.onboard_rider_id or o.committed_rider_id or None,
            # soft: on this rider's phone (on a committed or onboard order, its own rider)
            assigned_rider_id=o.assigned_rider_id or None,
            assigned_pickup_s=rel(o.assigned_pickup_time)
            if o.assigned_rider_id and o.HasField("assigned_pickup_time")
            else None,
            quoted_dropoff_s=rel(o.quoted_dropoff_time)
            if o.HasField("quoted_dropoff_time")
            else None,
        )
    modes = build.modes
    points = np.array(build.keys, dtype=np.float64).reshape(-1, 2)
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
            if isinstance(err, OutsideServiceAreaError):
                detail += f" (limit 0 m: {service_area_extent(campus)})"
            for field in build.users(err.index):
                violations.append(Violation(field, f"({err.lat:.6f}, {err.lng:.6f}) {detail}"))
    if violations:
        raise InvalidRequestError(sorted(violations, key=lambda v: v.field))
    source = CampusMatrices(campus, modes, snapped, points=points)
    return Conversion(build.spec(0, source), now, points, modes, time.perf_counter() - started)


def service_area_extent(campus: Campus) -> str:
    """Where the points of a request must lie, for messages: the campus and the bounding box of
    its service area."""
    west, south, east, north = campus.service_area.bounds  # (lng, lat) polygon
    return (
        f"every point must lie inside the service area of campus {campus.id!r}, within lat "
        f"{south:.5f} to {north:.5f}, lng {west:.5f} to {east:.5f}"
    )


def response_from_plan(
    plan: Plan,
    conversion: Conversion,
    request: pb.SolveRequest,
    *,
    solve_s: float,
    total_s: float,
    review: GuardReview | None = None,
) -> pb.SolveResponse:
    """The SolveResponse of ``plan`` (times back on the request's clock), with the storm
    guard's flags and level when it reviewed the request."""
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
                kind=STOP_KINDS.to_proto(stop.kind),
                location=pb.LatLng(lat=float(lat), lng=float(lng)),
                arrival_time=timestamp_at(now + stop.arrival_s),
                departure_time=timestamp_at(now + stop.departure_s),
                lateness=duration_of(stop.lateness_s),
                tentative=stop.tentative,
            )
    for u in plan.unassigned:
        response.unassigned.add(
            order_id=u.order_id, reason=UNASSIGNED_REASONS.to_proto(u.reason), detail=u.detail
        )
    stats = response.stats
    stats.engine = (
        ENGINES.to_proto(plan.stats.engine)
        if plan.stats.engine in ENGINES.values()
        else pb.ENGINE_UNSPECIFIED
    )
    stats.shed_reason = plan.stats.shed_reason
    if plan.stats.shed is not None:
        stats.shed = SHED_REASONS.to_proto(plan.stats.shed.reason)
    stats.zones = plan.stats.zones
    stats.matrix_time.CopyFrom(duration_of(conversion.matrix_s))
    stats.solve_time.CopyFrom(duration_of(solve_s))
    stats.total_time.CopyFrom(duration_of(total_s))
    stats.objective = float(plan.stats.objective)
    stats.late_orders = plan.stats.late_orders
    stats.reassigned_orders = plan.stats.reassigned
    if review is not None:
        stats.storm_level = STORM_LEVELS.to_proto(review.level)
        for v in review.verdicts:
            response.flagged.add(
                order_id=v.order_id,
                action=GUARD_ACTIONS.to_proto(v.action),
                detector=DETECTORS.to_proto(v.detector),
                evidence=v.evidence,
            )
    return response


def plan_from_response(problem: Problem, params: SolverParams, response: pb.SolveResponse) -> Plan:
    """The solver plan a response describes, timed again by the solver's own rules (to check
    an answer against the request's problem, in tests and benchmarks)."""
    visits = {
        r.rider_id: [(s.order_id, STOP_KINDS.from_proto(s.kind)) for s in r.stops]
        for r in response.routes
    }
    unassigned = [
        Unassigned(u.order_id, UNASSIGNED_REASONS.from_proto(u.reason)) for u in response.unassigned
    ]
    engine = ENGINES.from_proto(response.stats.engine)
    return build_plan(problem, params, visits, unassigned, engine=engine)
