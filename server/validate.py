"""Field-by-field validation of a SolveRequest, before any solve: every bad field is reported."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from server.config import ServerConfig


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


#: Longest id or other text field, in bytes of UTF-8.
MAX_TEXT_BYTES = 128
#: Every instant of a request lies within this many seconds of its "now".
MAX_HORIZON_S = 7 * 86400
#: Longest handover (pickup or drop-off service) in seconds.
MAX_SERVICE_S = 86400
#: Longest time in bag an order may ask for (s).
MAX_IN_BAG_S = 86400
#: The range of a valid google.protobuf.Timestamp (0001-01-01 to 9999-12-31) in seconds.
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
#: The range of a valid google.protobuf.Duration in seconds (about 10,000 years either way).
DURATION_SECONDS = 315_576_000_000


def _check_text(out: list[Violation], where: str, value: str, *, required: bool) -> bool:
    """Report an empty required text or one over :data:`MAX_TEXT_BYTES`; ``True`` if usable."""
    if not value:
        if required:
            out.append(Violation(where, "required"))
        return False
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        out.append(
            Violation(
                where,
                f"is {size} bytes of UTF-8 (starts {value[:16]!r}); at most {MAX_TEXT_BYTES} bytes",
            )
        )
        return False
    return True


#: How far ``customer_since`` may be after the request's now (clocks of two machines).
MAX_CLOCK_SKEW_S = 60.0


def _check_instant(out: list[Violation], where: str, ts: Timestamp) -> float | None:
    """Seconds since the epoch of a valid Timestamp, else report it and return ``None``."""
    lo, hi = TIMESTAMP_SECONDS
    if not lo <= ts.seconds <= hi or not 0 <= ts.nanos < 1_000_000_000:
        out.append(
            Violation(
                where,
                f"seconds={ts.seconds}, nanos={ts.nanos} is not a valid Timestamp "
                "(years 0001 to 9999, nanos in [0, 1e9))",
            )
        )
        return None
    return ts.seconds + ts.nanos / 1e9


def _iso(epoch_s: float) -> str:
    """ISO 8601 of a valid instant, to the second (floored: 9999-12-31T23:59:59.999999999 must
    not round into year 10000)."""
    second = min(math.floor(epoch_s), TIMESTAMP_SECONDS[1])  # the float may round up too
    return datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")


def _check_near(out: list[Violation], where: str, at: float | None, now: float | None) -> None:
    """Report an instant more than :data:`MAX_HORIZON_S` away from ``now``."""
    if at is None or now is None or abs(at - now) <= MAX_HORIZON_S:
        return
    days = (at - now) / 86400
    out.append(
        Violation(
            where,
            f"{_iso(at)} is {days:+.1f} days from now ({_iso(now)}); "
            f"every time must be within {MAX_HORIZON_S // 86400} days of now",
        )
    )


def _check_span(
    out: list[Violation], where: str, span: Duration, present: bool, limit_s: float
) -> float | None:
    """Seconds of a valid, non-negative Duration of at most ``limit_s``, else report it."""
    if not present:
        return None
    s, n = span.seconds, span.nanos
    if (
        abs(s) > DURATION_SECONDS
        or abs(n) >= 1_000_000_000
        or (s > 0 and n < 0)
        or (s < 0 and n > 0)
    ):
        out.append(Violation(where, f"seconds={s}, nanos={n} is not a valid Duration"))
        return None
    value = s + n / 1e9
    if value < 0:
        out.append(Violation(where, f"{value:g} s is negative"))
        return None
    if value > limit_s:
        out.append(Violation(where, f"{value:g} s is more than {limit_s:g} s"))
        return None
    return value


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


def _check_assigned(
    out: list[Violation],
    where: str,
    order: pb.Order,
    field: str,
    pinned: str,
    instant: Callable[[str, Timestamp, bool], float | None],
) -> None:
    """Report a bad soft assignment: an ``assigned_rider_id`` too long, or other than the rider a
    committed or onboard order belongs to (``field``, ``pinned``); an ``assigned_pickup_time``
    not a valid instant near now, or without an ``assigned_rider_id``. A rider not in the
    request is no error: it logged off, and the order moves."""
    assigned = order.assigned_rider_id
    usable = _check_text(out, f"{where}.assigned_rider_id", assigned, required=False)
    fits = len(pinned.encode("utf-8", "surrogatepass")) <= MAX_TEXT_BYTES  # else reported
    if usable and pinned and fits and assigned != pinned:
        out.append(
            Violation(
                f"{where}.assigned_rider_id",
                f"{assigned!r} differs from {field} {pinned!r}: an order accepted by a rider "
                "stays on that rider",
            )
        )
    present = order.HasField("assigned_pickup_time")
    at = instant(f"{where}.assigned_pickup_time", order.assigned_pickup_time, present)
    if present and not assigned:
        when = "" if at is None else f"{_iso(at)} "
        out.append(
            Violation(
                f"{where}.assigned_pickup_time",
                f"{when}is set without assigned_rider_id: only an assigned order has a "
                "planned pickup",
            )
        )


def request_now(request: pb.SolveRequest, default: float) -> float | None:
    """The request's "now" in epoch seconds (``default`` when unset; ``None`` if invalid)."""
    if not request.HasField("now"):
        return default
    lo, hi = TIMESTAMP_SECONDS
    if not lo <= request.now.seconds <= hi or not 0 <= request.now.nanos < 1_000_000_000:
        return None
    return request.now.seconds + request.now.nanos / 1e9


def validate_request(
    request: pb.SolveRequest, config: ServerConfig, *, now: float | None = None
) -> list[Violation]:
    """Every problem with the request's fields (empty list: valid). ``now``: the server's clock
    for a request without one (default: the time of the call). Snapping is checked later,
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
    _check_text(out, "request_id", request.request_id, required=False)
    _check_text(out, "campus_id", request.campus_id, required=False)
    budget = _check_span(
        out,
        "time_budget",
        request.time_budget,
        request.HasField("time_budget"),
        config.max_budget_s,
    )
    if budget is not None and budget <= 0:
        out.append(Violation("time_budget", f"{budget:g} s must be > 0"))
    if request.HasField("now"):
        _check_instant(out, "now", request.now)
    clock = request_now(request, time.time() if now is None else now)

    def instant(where: str, ts: Timestamp, present: bool) -> float | None:
        if not present:
            return None
        at = _check_instant(out, where, ts)
        _check_near(out, where, at, clock)
        return at

    riders: dict[str, pb.Rider] = {}
    first: dict[str, int] = {}  # rider id -> its index in the request
    for k, rider in enumerate(request.riders):
        where = f"riders[{k}]"
        if not _check_text(out, f"{where}.id", rider.id, required=True):
            pass
        elif rider.id in riders:
            out.append(Violation(f"{where}.id", f"duplicate rider id {rider.id!r}"))
        else:
            riders[rider.id] = rider
            first[rider.id] = k
        _check_latlng(out, f"{where}.position", rider.position, rider.HasField("position"))
        if rider.mode not in pb.TravelMode.values():
            names = ", ".join(f"{n}={v}" for n, v in pb.TravelMode.items())
            out.append(Violation(f"{where}.mode", f"{rider.mode} is not a TravelMode ({names})"))
        if rider.capacity < 0:
            out.append(Violation(f"{where}.capacity", f"{rider.capacity} is negative"))
        available = instant(
            f"{where}.available_time", rider.available_time, rider.HasField("available_time")
        )
        shift_end = instant(f"{where}.shift_end", rider.shift_end, rider.HasField("shift_end"))
        if available is not None and shift_end is not None and shift_end < available:
            out.append(
                Violation(
                    f"{where}.shift_end",
                    f"{_iso(shift_end)} is before available_time {_iso(available)}",
                )
            )

    def capacity(rider: pb.Rider) -> int:
        return rider.capacity or config.default_capacity

    largest = max((capacity(r) for r in riders.values() if r.capacity >= 0), default=0)
    # a rider's bad capacity is reported once: no order is then said to exceed every rider's
    # (the bad rider might have carried it)
    capacities_known = all(r.capacity >= 0 for r in request.riders)
    onboard_load = dict.fromkeys(riders, 0)
    seen: set[str] = set()
    for k, order in enumerate(request.orders):
        where = f"orders[{k}]"
        if not _check_text(out, f"{where}.id", order.id, required=True):
            pass
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
        ready = instant(f"{where}.ready_time", order.ready_time, order.HasField("ready_time"))
        due = instant(f"{where}.due_time", order.due_time, order.HasField("due_time"))
        if not order.HasField("due_time"):
            out.append(Violation(f"{where}.due_time", "required"))
        elif ready is not None and due is not None and due < ready:
            out.append(
                Violation(f"{where}.due_time", f"{_iso(due)} is before ready_time {_iso(ready)}")
            )
        if order.size < 0:
            out.append(Violation(f"{where}.size", f"{order.size} is negative"))
        for name in ("customer_id", "merchant_id"):
            _check_text(out, f"{where}.{name}", getattr(order, name), required=False)
        placed = instant(f"{where}.placed_time", order.placed_time, order.HasField("placed_time"))
        if placed is not None and due is not None and due < placed:
            out.append(
                Violation(f"{where}.placed_time", f"{_iso(placed)} is after due_time {_iso(due)}")
            )
        if order.HasField("customer_since"):  # may be years ago: only not in the future
            since = _check_instant(out, f"{where}.customer_since", order.customer_since)
            if since is not None and clock is not None and since > clock + MAX_CLOCK_SKEW_S:
                out.append(
                    Violation(
                        f"{where}.customer_since",
                        f"{_iso(since)} is after now ({_iso(clock)}): an account's first order "
                        "cannot be in the future",
                    )
                )
        in_bag = _check_span(
            out,
            f"{where}.max_time_in_bag",
            order.max_time_in_bag,
            order.HasField("max_time_in_bag"),
            MAX_IN_BAG_S,
        )
        if in_bag is not None and in_bag <= 0:
            out.append(Violation(f"{where}.max_time_in_bag", f"{in_bag:g} s: must be > 0"))
        for name in ("pickup_service", "dropoff_service"):
            _check_span(
                out, f"{where}.{name}", getattr(order, name), order.HasField(name), MAX_SERVICE_S
            )
        size = order.size or 1
        field = "onboard_rider_id" if onboard else "committed_rider_id"
        pinned = order.onboard_rider_id or order.committed_rider_id
        _check_assigned(out, where, order, field, pinned, instant)
        instant(
            f"{where}.quoted_dropoff_time",
            order.quoted_dropoff_time,
            order.HasField("quoted_dropoff_time"),
        )
        if pinned and not _check_text(out, f"{where}.{field}", pinned, required=False):
            continue
        if pinned:
            if pinned not in riders:
                out.append(Violation(f"{where}.{field}", f"unknown rider {pinned!r}"))
            elif riders[pinned].capacity < 0 or order.size < 0:
                pass  # reported above
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
        elif riders and largest and capacities_known and size > largest:
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
