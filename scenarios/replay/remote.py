"""Replays through the gRPC service: a snapshot as a SolveRequest, the service as a policy, and
the recorder that writes the requests a replay sends (for load tests)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from api.client import DispatchClient, RpcError, status_name
from api.codec import ENGINES, MODES, STOP_KINDS, duration_of, epoch_of, seconds_of, timestamp_at
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from scenarios.replay.policies import Decision, Flag, Snapshot
from solver.model import OrderState
from solver.plan import StopKind
from solver.routes import Visit


def _enum_name(enum: EnumTypeWrapper, number: int, prefix: str) -> str:
    """The lower-case name of a proto enum number without its prefix (``GUARD_ACTION_FLAG``:
    ``flag``); ``""`` for an UNSPECIFIED value, the number as text for one this code does not
    know (a newer server)."""
    try:
        name = str(enum.Name(number))
    except ValueError:
        return str(number)
    name = name.removeprefix(prefix).lower()
    return "" if name == "unspecified" else name


def guard_of_response(response: pb.SolveResponse) -> tuple[int, dict[str, Flag], frozenset[str]]:
    """What the storm guard said in ``response``: the campus's storm level (0-3), the flagged
    orders by id (:class:`~scenarios.replay.policies.Flag`; the first entry of an order named
    twice) and the orders held (unassigned QUARANTINED)."""
    flagged: dict[str, Flag] = {}
    for f in response.flagged:
        flagged.setdefault(
            f.order_id,
            Flag(
                _enum_name(pb.GuardAction, f.action, "GUARD_ACTION_"),
                _enum_name(pb.Detector, f.detector, "DETECTOR_"),
                f.evidence,
            ),
        )
    held = frozenset(u.order_id for u in response.unassigned if u.reason == pb.QUARANTINED)
    return int(response.stats.storm_level), flagged, held


def request_from_snapshot(
    snapshot: Snapshot, campus_id: str, *, budget_s: float, request_id: str = ""
) -> pb.SolveRequest:
    """The SolveRequest the order backend would send for this snapshot (campus scenarios).

    Times go on the real clock (``snapshot.epoch_s`` + scenario seconds); committed and
    onboard orders name their rider, assigned orders (on a rider's phone, not accepted yet) the
    rider they are assigned to and the pickup time planned then; riders carry position, mode,
    capacity, when they are free and their shift end. What the backend knows of who ordered
    (:class:`~scenarios.replay.policies.OrderSource`) goes along: the account, when the order
    was placed, the merchant, and since when the account orders on the platform
    (``customer_since``, when known).
    """
    problem, points, epoch = snapshot.problem, snapshot.points, snapshot.epoch_s

    def latlng(location: int) -> pb.LatLng:
        lat, lng = points[location]
        return pb.LatLng(lat=float(lat), lng=float(lng))

    request = pb.SolveRequest(
        campus_id=campus_id,
        now=timestamp_at(epoch + problem.now_s),
        time_budget=duration_of(budget_s),
        request_id=request_id,
    )
    for r in problem.riders:
        request.riders.add(
            id=r.id,
            position=latlng(r.location),
            mode=MODES.to_proto(snapshot.rider_modes[r.id]),
            capacity=r.capacity,
            available_time=timestamp_at(epoch + r.available_s),
            shift_end=timestamp_at(epoch + r.shift_end_s),
        )
    for o in problem.orders:
        out = request.orders.add(
            id=o.id,
            dropoff=latlng(o.dropoff),
            ready_time=timestamp_at(epoch + o.ready_s),
            due_time=timestamp_at(epoch + o.due_s),
            size=o.size,
            pickup_service=duration_of(o.pickup_service_s),
            dropoff_service=duration_of(o.dropoff_service_s),
        )
        if o.pickup is not None:
            out.pickup.CopyFrom(latlng(o.pickup))
        if o.max_in_bag_s is not None:
            out.max_time_in_bag.CopyFrom(duration_of(o.max_in_bag_s))
        source = snapshot.customers.get(o.id)
        if source is not None:
            out.customer_id = source.account
            out.merchant_id = source.merchant_id
            out.placed_time.CopyFrom(timestamp_at(epoch + source.placed_s))
            if source.account_since_s is not None:
                out.customer_since.CopyFrom(timestamp_at(epoch + source.account_since_s))
        if o.state is OrderState.ONBOARD:
            out.onboard_rider_id = o.rider_id or ""
        elif o.state is OrderState.COMMITTED:
            out.committed_rider_id = o.rider_id or ""
        if o.assigned_rider_id is not None:
            out.assigned_rider_id = o.assigned_rider_id
            if o.assigned_pickup_s is not None:
                out.assigned_pickup_time.CopyFrom(timestamp_at(epoch + o.assigned_pickup_s))
        if o.quoted_dropoff_s is not None:
            out.quoted_dropoff_time.CopyFrom(timestamp_at(epoch + o.quoted_dropoff_s))
    return request


class GrpcService:
    """The dispatch service at ``address`` as a replay policy (campus scenarios only).

    Each batch is one Solve call with ``budget_s`` and a deadline of ``budget_s +
    deadline_margin_s``; RESOURCE_EXHAUSTED or any other error leaves the riders on the plan
    they have (the batch is counted as rejected, with the status code). Orders the replay
    pushed to a rider go as ``assigned_rider_id`` with their planned pickup: the service
    keeps them there unless moving one pays more than its reassignment cost.
    """

    replans_freely = False  # the service keeps assigned orders unless moving pays
    enforces_lateness_cap = True

    def __init__(
        self,
        address: str,
        campus_id: str,
        budget_s: float,
        *,
        deadline_margin_s: float = 1.0,
        client_id: str = "replay",
        name: str = "service",
    ) -> None:
        self.client = DispatchClient(address, client_id=client_id)
        self.campus_id = campus_id
        self.budget_s = budget_s
        self.deadline_margin_s = deadline_margin_s
        self.name = name
        self._ids = itertools.count(1)

    def dispatch(self, snapshot: Snapshot) -> Decision:
        request = request_from_snapshot(
            snapshot,
            self.campus_id,
            budget_s=self.budget_s,
            request_id=f"replay-{snapshot.problem.now_s}-{next(self._ids)}",
        )
        began = time.perf_counter()
        try:
            response = self.client.solve(request, timeout_s=self.budget_s + self.deadline_margin_s)
        except RpcError as err:
            return Decision(
                {}, "none", rejected=status_name(err), phase_s={"rpc": time.perf_counter() - began}
            )
        visits: dict[str, list[Visit]] = {
            route.rider_id: [(s.order_id, STOP_KINDS.from_proto(s.kind)) for s in route.stops]
            for route in response.routes
        }
        eta_s = {  # the service's drop-off ETAs, back on the scenario clock
            s.order_id: round(epoch_of(s.arrival_time) - snapshot.epoch_s)
            for route in response.routes
            for s in route.stops
            if s.HasField("arrival_time") and STOP_KINDS.from_proto(s.kind) is StopKind.DROPOFF
        }
        tentative = frozenset(
            s.order_id for route in response.routes for s in route.stops if s.tentative
        )
        stats = response.stats
        level, flagged, held = guard_of_response(response)
        return Decision(
            visits,
            ENGINES.from_proto(stats.engine).value
            if ENGINES.has_proto(stats.engine)
            else "unknown",
            shed_reason=stats.shed_reason,
            phase_s={
                "rpc": time.perf_counter() - began,
                "matrix": seconds_of(stats.matrix_time),
                "solve": seconds_of(stats.solve_time),
                "total": seconds_of(stats.total_time),
            },
            storm_level=level,
            flagged=flagged,
            held=held,
            eta_s=eta_s,
            tentative=tentative,
        )

    def close(self) -> None:
        self.client.close()


class RequestRecorder:
    """Writes each snapshot of a campus replay as a SolveRequest JSON file into ``folder``
    (``req-00001.json`` …), every ``every``-th batch, at most ``limit`` files."""

    def __init__(
        self,
        folder: str | Path,
        campus_id: str,
        budget_s: float,
        *,
        every: int = 1,
        limit: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.campus_id = campus_id
        self.budget_s = budget_s
        self.every = max(1, every)
        self.limit = limit
        self.seen = 0
        self.written: list[Path] = []

    def __call__(self, snapshot: Snapshot) -> None:
        self.seen += 1
        if (self.seen - 1) % self.every or (
            self.limit is not None and len(self.written) >= self.limit
        ):
            return
        k = len(self.written) + 1
        request = request_from_snapshot(
            snapshot, self.campus_id, budget_s=self.budget_s, request_id=f"recorded-{k:05d}"
        )
        path = self.folder / f"req-{k:05d}.json"
        path.write_text(json_format.MessageToJson(request, preserving_proto_field_name=True))
        self.written.append(path)
