"""Field-by-field validation of a SolveRequest, before any solve: every bad field is reported."""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.config import ServerConfig
from server.pb.campus_dispatch.v1 import dispatch_pb2 as pb


@dataclass(frozen=True)
class Violation:
    """One bad field: its path in the request (``orders[3].due_time``) and what is wrong."""

    field: str
    description: str


class InvalidRequestError(ValueError):
    """The request has bad fields (INVALID_ARGUMENT with a BadRequest detail)."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        head = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"{len(violations)} invalid field(s): {head}{more}")


def _seconds(ts: object) -> float:
    return float(ts.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


def _check_latlng(out: list[Violation], where: str, point: pb.LatLng, present: bool) -> None:
    if not present:
        out.append(Violation(where, "required"))
        return
    for name, value, bound in (("lat", point.lat, 90.0), ("lng", point.lng, 180.0)):
        if not math.isfinite(value) or abs(value) > bound:
            out.append(
                Violation(
                    f"{where}.{name}", f"{value!r} is not a valid degree in [-{bound:g}, {bound:g}]"
                )
            )


def _check_duration(out: list[Violation], where: str, message: object, present: bool) -> None:
    if present and message.ToNanoseconds() < 0:  # type: ignore[attr-defined]
        out.append(Violation(where, f"{message.ToNanoseconds() / 1e9:g} s is negative"))  # type: ignore[attr-defined]


def validate_request(request: pb.SolveRequest, config: ServerConfig) -> list[Violation]:
    """Every problem with the request's fields (empty list: valid). Snapping is checked later,
    once the campus is known (see :mod:`server.convert`)."""
    out: list[Violation] = []
    if len(request.orders) > config.max_orders:
        out.append(
            Violation(
                "orders",
                f"{len(request.orders)} orders exceed the cap max_orders={config.max_orders}",
            )
        )
    if len(request.riders) > config.max_riders:
        out.append(
            Violation(
                "riders",
                f"{len(request.riders)} riders exceed the cap max_riders={config.max_riders}",
            )
        )
    if out:
        return out  # do not walk a request that is too large
    if request.HasField("time_budget") and request.time_budget.ToNanoseconds() <= 0:
        out.append(
            Violation("time_budget", f"{request.time_budget.ToNanoseconds() / 1e9:g} s must be > 0")
        )
    now = _seconds(request.now) if request.HasField("now") else None

    riders: dict[str, pb.Rider] = {}
    first: dict[str, int] = {}  # rider id -> its index in the request
    for k, rider in enumerate(request.riders):
        where = f"riders[{k}]"
        if not rider.id:
            out.append(Violation(f"{where}.id", "required"))
        elif rider.id in riders:
            out.append(Violation(f"{where}.id", f"duplicate rider id {rider.id!r}"))
        else:
            riders[rider.id] = rider
            first[rider.id] = k
        _check_latlng(out, f"{where}.position", rider.position, rider.HasField("position"))
        if rider.mode not in pb.TravelMode.values():
            out.append(Violation(f"{where}.mode", f"{rider.mode} is not a TravelMode"))
        if rider.capacity < 0:
            out.append(Violation(f"{where}.capacity", f"{rider.capacity} is negative"))
        if (
            rider.HasField("available_time")
            and rider.HasField("shift_end")
            and _seconds(rider.shift_end) < _seconds(rider.available_time)
        ):
            out.append(Violation(f"{where}.shift_end", "is before available_time"))

    def capacity(rider: pb.Rider) -> int:
        return rider.capacity or config.default_capacity

    largest = max((capacity(r) for r in riders.values()), default=0)
    onboard_load = dict.fromkeys(riders, 0)
    seen: set[str] = set()
    for k, order in enumerate(request.orders):
        where = f"orders[{k}]"
        if not order.id:
            out.append(Violation(f"{where}.id", "required"))
        elif order.id in seen:
            out.append(Violation(f"{where}.id", f"duplicate order id {order.id!r}"))
        seen.add(order.id)
        onboard = bool(order.onboard_rider_id)
        if onboard and order.committed_rider_id:
            out.append(
                Violation(
                    f"{where}.committed_rider_id", "an order cannot be both committed and onboard"
                )
            )
        if not onboard:
            _check_latlng(out, f"{where}.pickup", order.pickup, order.HasField("pickup"))
        _check_latlng(out, f"{where}.dropoff", order.dropoff, order.HasField("dropoff"))
        if not order.HasField("due_time"):
            out.append(Violation(f"{where}.due_time", "required"))
        elif order.HasField("ready_time") and _seconds(order.due_time) < _seconds(order.ready_time):
            out.append(Violation(f"{where}.due_time", "is before ready_time"))
        elif not order.HasField("ready_time") and now is not None and not onboard:
            pass  # ready now; a due time in the past is legal (already late)
        if order.size < 0:
            out.append(Violation(f"{where}.size", f"{order.size} is negative"))
        _check_duration(
            out, f"{where}.pickup_service", order.pickup_service, order.HasField("pickup_service")
        )
        _check_duration(
            out,
            f"{where}.dropoff_service",
            order.dropoff_service,
            order.HasField("dropoff_service"),
        )
        size = order.size or 1
        pinned = order.onboard_rider_id or order.committed_rider_id
        field = "onboard_rider_id" if onboard else "committed_rider_id"
        if pinned:
            if pinned not in riders:
                out.append(Violation(f"{where}.{field}", f"unknown rider {pinned!r}"))
            elif size > capacity(riders[pinned]):
                out.append(
                    Violation(
                        f"{where}.size",
                        f"{size} exceeds the capacity {capacity(riders[pinned])}"
                        f" of its rider {pinned!r}",
                    )
                )
            elif onboard:
                onboard_load[pinned] += size
        elif riders and size > largest:
            out.append(
                Violation(
                    f"{where}.size", f"{size} exceeds every rider's capacity (largest {largest})"
                )
            )
    for rider_id, load in onboard_load.items():
        rider = riders[rider_id]
        if rider.capacity >= 0 and load > capacity(rider):
            out.append(
                Violation(
                    f"riders[{first[rider_id]}].capacity",
                    f"{capacity(rider)} is less than its onboard orders' size {load}",
                )
            )
    return out
