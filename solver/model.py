"""The dispatch problem: orders, riders and travel matrices, validated once and immutable.

Conventions (the plan checker in :mod:`solver.check` is the reference for every rule):

* Times are **integer seconds** on the problem clock; ``Problem.now_s`` is "now". Riders cannot
  leave before ``max(now_s, rider.available_s)``.
* Locations are integer indices into the travel matrices. A problem has one travel *profile*
  per travel mode in use (walk, bike, e-bike …); ``time_s[p, i, j]`` is the travel time in
  seconds and ``distance_m[p, i, j]`` the distance in metres from location ``i`` to ``j`` for a
  rider whose ``profile`` is ``p``.
* Timing of a route: a rider departs its start location at ``max(now_s, available_s)``; the
  arrival at a stop is the previous departure plus the travel time. At a pickup, service starts
  at ``max(arrival, order.ready_s)`` (food is handed over when ready) and the rider departs
  ``pickup_service_s`` later. At a drop-off, service starts at
  ``max(arrival, dropoff_earliest_s or arrival)`` and the rider departs ``dropoff_service_s``
  later; lateness is ``max(0, dropoff service start - due_s)``. Routes are open (they end at the
  last stop) unless the rider has an ``end_location``: then the route ends with the travel there,
  and that arrival must be no later than ``shift_end_s``.
* Benchmark extras (Li & Lim, Solomon): ``pickup_latest_s`` is a hard latest pickup service
  start; ``dropoff_earliest_s`` an earliest drop-off service start; an order with
  ``pickup=None`` is *start-loaded* (a VRPTW customer): it is in the bag of whichever rider
  serves it from that rider's start, so only its drop-off is visited. With
  ``params.objective == "hierarchical"`` every ``due_s`` is hard (lateness must be 0).
* Hard rules for **open** orders: pickup before drop-off on the same rider; lateness at most
  ``params.max_lateness_s``; time in bag (drop-off arrival minus pickup departure) at most
  ``max_in_bag_s`` when set; arrival at each of its stops no later than the rider's
  ``shift_end_s``; ``pickup_latest_s`` when set; the load never exceeds the rider's capacity
  (a rider's start load is its onboard orders plus the start-loaded orders it serves).
* **Committed** orders (accepted, not yet picked up) must be served by ``rider_id`` (pickup and
  drop-off); **onboard** orders (already picked up) need only their drop-off, on ``rider_id``.
  Both are mandatory: they are never unassigned, and the lateness cap, the hierarchical hard
  due time, time-in-bag limit, shift end and ``pickup_latest_s`` do not apply to their stops
  (the food is already promised to that rider; the plan reports how late it is). Capacity
  applies to everything: a rider starts loaded with the sizes of its onboard orders.
* A closed route's return to ``end_location`` counts against the shift end only when the route
  serves an open order. A start-loaded order's time in bag runs from the rider's start.
* **Assigned** orders (open, on a rider's phone, not accepted yet) carry
  ``assigned_rider_id``: a *soft* assignment. Moving one away from that rider (to another, or
  out of the plan) costs ``params.reassignment_cost``; a rider absent from the problem cannot
  keep it, so the cost is then paid whatever the plan. An assigned order whose planned pickup
  (``assigned_pickup_s``, else ``max(ready_s, now_s)``) is within ``params.freeze_horizon_s``
  of now, on a rider of the problem, is **frozen**: it is treated as committed to that rider
  (:func:`solver.stability.freeze`; never a start-loaded order, nor one larger than the
  rider's bag).
* An order of any state may carry ``quoted_dropoff_s``, the ETA the student was shown: a
  drop-off service starting after it costs ``params.eta_delay_cost_per_s`` per second late
  against the quote (soft, like lateness against ``due_s``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


class ProblemError(ValueError):
    """An invalid problem or problem input: names the field, the offending value and the
    reason, and where it was read when it comes from a file (scenario files and research
    instances raise subclasses of it).

    The message reads ``[<source>:<line>: | line <line>: ]<field>=<value>: <reason>``.

    Attributes
    ----------
    field, value, reason
        The field at fault, its value, and what is wrong with it.
    line
        1-based line of a file, or ``None``.
    source
        The file (or folder) read, or ``""``.
    """

    def __init__(
        self,
        field: str,
        value: object,
        reason: str,
        *,
        line: int | None = None,
        source: str = "",
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        self.line = line
        self.source = source
        where = f"{source}:{line}: " if source and line else (f"line {line}: " if line else "")
        super().__init__(f"{where}{field}={value!r}: {reason}")


class OrderState(enum.Enum):
    """Where an order is in its life: open, committed to a rider, or onboard a rider."""

    OPEN = "open"
    COMMITTED = "committed"
    ONBOARD = "onboard"


@dataclass(frozen=True, slots=True)
class Order:
    """A meal to carry from a pickup location to a drop-off location.

    Attributes
    ----------
    id
        Unique order id.
    pickup, dropoff
        Location indices into the travel matrices. ``pickup`` is ignored for onboard orders;
        ``None`` marks a start-loaded order (no pickup stop; see the module notes).
    ready_s
        Time the food is ready (s); no pickup service before it.
    due_s
        Promised drop-off time (s); soft, priced per second late.
    size
        Capacity units the order takes in the bag (>= 0).
    pickup_service_s, dropoff_service_s
        Handover times (s) at the merchant and at the customer.
    max_in_bag_s
        Freshness limit (s): drop-off arrival minus pickup departure. ``None``: no limit.
    state
        ``OPEN``, ``COMMITTED`` or ``ONBOARD``.
    rider_id
        The rider a committed or onboard order belongs to; ``None`` for open orders.
    picked_up_s
        For onboard orders, when it was picked up (s), for reporting time in bag.
    pickup_latest_s
        Hard latest pickup service start (s), ``None``: none (benchmarks).
    dropoff_earliest_s
        Earliest drop-off service start (s), ``None``: none (benchmarks).
    assigned_rider_id
        The rider the order is assigned to but not accepted by yet (soft: moving it away
        costs ``params.reassignment_cost``), ``None``: not assigned. Open orders only; a
        committed or onboard order may repeat its ``rider_id`` here. It may name a rider
        absent from the problem (logged off, or in another zone).
    assigned_pickup_s
        The pickup time planned when it was assigned (s), what the freeze horizon reads;
        ``None``: ``max(ready_s, now_s)`` stands for it (no plan picks it up sooner).
    quoted_dropoff_s
        The drop-off ETA first shown to the student (s), any state: a drop-off starting later
        costs ``params.eta_delay_cost_per_s`` per second (soft). ``None``: none quoted.
    """

    id: str
    pickup: int | None
    dropoff: int
    ready_s: int
    due_s: int
    size: int = 1
    pickup_service_s: int = 0
    dropoff_service_s: int = 0
    max_in_bag_s: int | None = None
    state: OrderState = OrderState.OPEN
    rider_id: str | None = None
    picked_up_s: int | None = None
    pickup_latest_s: int | None = None
    dropoff_earliest_s: int | None = None
    assigned_rider_id: str | None = None
    assigned_pickup_s: int | None = None
    quoted_dropoff_s: int | None = None

    @property
    def is_pinned(self) -> bool:
        """Whether the order must stay on ``rider_id`` (committed or onboard)."""
        return self.state is not OrderState.OPEN


@dataclass(frozen=True, slots=True)
class Rider:
    """A courier with a position, a travel profile, a capacity and a shift.

    Attributes
    ----------
    id
        Unique rider id.
    location
        Current location index into the travel matrices.
    available_s
        Earliest departure (s); the rider leaves at ``max(now_s, available_s)``.
    shift_end_s
        No stop of an open order may be reached after this time (s).
    capacity
        Bag capacity in the orders' size units.
    profile
        Index of the rider's travel profile (first axis of the matrices).
    end_location
        ``None`` (default): open route. Otherwise the route returns there (a depot).
    """

    id: str
    location: int
    available_s: int
    shift_end_s: int
    capacity: int
    profile: int = 0
    end_location: int | None = None


def _as_matrix(name: str, value: ArrayLike, dtype: type) -> NDArray[Any]:
    raw = np.asarray(value)
    if raw.dtype.kind in "fc" and not np.all(np.isfinite(raw)):  # before any cast to int
        raise ProblemError(name, "matrix", "entries must be finite and >= 0")
    array: NDArray[Any] = raw.astype(dtype, copy=False)
    if array.ndim == 2:
        array = array[np.newaxis, :, :]
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ProblemError(name, array.shape, "must be (profiles, n, n) or (n, n)")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ProblemError(name, "matrix", "entries must be finite and >= 0")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Problem:
    """One dispatch problem, validated on construction and immutable afterwards.

    Build it with :meth:`Problem.build`, which converts and validates the matrices.

    Attributes
    ----------
    now_s
        The problem clock's "now" (s).
    orders, riders
        Orders and riders; ids are unique within each.
    time_s
        Travel times in integer seconds, shape ``(profiles, n, n)``, read-only.
    distance_m
        Distances in metres, same shape, read-only.
    """

    now_s: int
    orders: tuple[Order, ...]
    riders: tuple[Rider, ...]
    time_s: NDArray[np.int64]
    distance_m: NDArray[np.float64]
    order_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    rider_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _onboard_load: Mapping[str, int] = field(init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        now_s: int,
        orders: Sequence[Order],
        riders: Sequence[Rider],
        time_s: NDArray[np.generic],
        distance_m: NDArray[np.generic] | None = None,
    ) -> Problem:
        """Validate and freeze a problem. ``distance_m`` defaults to zeros."""
        times = _as_matrix("time_s", time_s, np.int64)
        dists = _as_matrix(
            "distance_m",
            np.zeros(times.shape, dtype=np.float64) if distance_m is None else distance_m,
            np.float64,
        )
        if dists.shape != times.shape:
            raise ProblemError("distance_m", dists.shape, f"must match time_s {times.shape}")
        return cls(
            now_s=int(now_s),
            orders=tuple(orders),
            riders=tuple(riders),
            time_s=times,
            distance_m=dists,
        )

    def __post_init__(self) -> None:
        orders, riders, onboard_load = check_entities(
            self.orders, self.riders, self.time_s.shape[1], self.time_s.shape[0]
        )
        object.__setattr__(self, "order_index", MappingProxyType(orders))
        object.__setattr__(self, "rider_index", MappingProxyType(riders))
        object.__setattr__(self, "_onboard_load", MappingProxyType(onboard_load))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as the constructor's arguments (the index mappings are rebuilt on load)."""
        return (
            _rebuild_problem,
            (self.now_s, self.orders, self.riders, self.time_s, self.distance_m),
        )

    @property
    def num_locations(self) -> int:
        """Number of locations (side of the matrices)."""
        return int(self.time_s.shape[1])

    @property
    def num_profiles(self) -> int:
        """Number of travel profiles (first axis of the matrices)."""
        return int(self.time_s.shape[0])

    def start_time(self, rider: Rider) -> int:
        """When ``rider`` can leave its current location (s)."""
        return max(self.now_s, rider.available_s)

    def onboard_load(self, rider: Rider) -> int:
        """Capacity units already taken in ``rider``'s bag."""
        return self._onboard_load[rider.id]


def _check_id(field: str, value: str, seen: Mapping[str, int], kind: str) -> None:
    """An id must be non-empty and not seen before among its kind."""
    if not value:
        raise ProblemError(field, value, "must be a non-empty string")
    if value in seen:
        raise ProblemError(field, value, f"duplicate {kind} id")


def check_entities(
    orders_in: Sequence[Order], riders_in: Sequence[Rider], n: int, profiles: int
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Validate orders and riders over ``n`` locations and ``profiles`` travel profiles (what
    :class:`Problem` and :class:`~solver.spec.ProblemSpec` check on construction): raises
    :class:`ProblemError` naming the field; returns the order and rider indices by id and the
    onboard load by rider id."""
    riders: dict[str, int] = {}
    for k, rider in enumerate(riders_in):
        where = f"riders[{k}]"
        _check_id(f"{where}.id", rider.id, riders, "rider")
        riders[rider.id] = k
        if not 0 <= rider.location < n:
            raise ProblemError(f"{where}.location", rider.location, f"must be in [0, {n})")
        if rider.end_location is not None and not 0 <= rider.end_location < n:
            raise ProblemError(f"{where}.end_location", rider.end_location, f"must be in [0, {n})")
        if not 0 <= rider.profile < profiles:
            raise ProblemError(f"{where}.profile", rider.profile, f"must be in [0, {profiles})")
        if rider.capacity < 0:
            raise ProblemError(f"{where}.capacity", rider.capacity, "must be >= 0")
        if rider.shift_end_s < rider.available_s:
            raise ProblemError(
                f"{where}.shift_end_s",
                rider.shift_end_s,
                f"must be >= available_s ({rider.available_s})",
            )
    orders: dict[str, int] = {}
    onboard_load = dict.fromkeys(riders, 0)
    for k, order in enumerate(orders_in):
        where = f"orders[{k}]"
        _check_id(f"{where}.id", order.id, orders, "order")
        orders[order.id] = k
        for name in ("pickup", "dropoff"):
            loc = getattr(order, name)
            if loc is None and name == "pickup" and order.state is not OrderState.COMMITTED:
                continue
            if loc is None or not 0 <= loc < n:
                raise ProblemError(f"{where}.{name}", loc, f"must be in [0, {n})")
        if order.size < 0:
            raise ProblemError(f"{where}.size", order.size, "must be >= 0")
        for name in ("pickup_service_s", "dropoff_service_s"):
            if getattr(order, name) < 0:
                raise ProblemError(f"{where}.{name}", getattr(order, name), "must be >= 0")
        if order.max_in_bag_s is not None and order.max_in_bag_s < 0:
            raise ProblemError(f"{where}.max_in_bag_s", order.max_in_bag_s, "must be >= 0")
        if order.is_pinned:
            if order.rider_id not in riders:
                raise ProblemError(
                    f"{where}.rider_id",
                    order.rider_id,
                    f"{order.state.value} order names an unknown rider",
                )
            if order.state is OrderState.ONBOARD:
                onboard_load[order.rider_id] += order.size
        elif order.rider_id is not None:
            raise ProblemError(f"{where}.rider_id", order.rider_id, "open orders have no rider")
        if order.assigned_rider_id is not None:
            if not order.assigned_rider_id:
                raise ProblemError(
                    f"{where}.assigned_rider_id", "", "must be a non-empty string or None"
                )
            if order.is_pinned and order.assigned_rider_id != order.rider_id:
                raise ProblemError(
                    f"{where}.assigned_rider_id",
                    order.assigned_rider_id,
                    f"a {order.state.value} order stays on its rider {order.rider_id!r}",
                )
        elif order.assigned_pickup_s is not None:
            raise ProblemError(
                f"{where}.assigned_pickup_s",
                order.assigned_pickup_s,
                "only an assigned order has a planned pickup",
            )
    for rider_id, load in onboard_load.items():
        rider = riders_in[riders[rider_id]]
        if load > rider.capacity:
            raise ProblemError(
                f"riders[{riders[rider_id]}].capacity",
                rider.capacity,
                f"onboard orders already take {load} units",
            )
    return orders, riders, onboard_load


def _rebuild_problem(
    now_s: int,
    orders: tuple[Order, ...],
    riders: tuple[Rider, ...],
    time_s: NDArray[np.int64],
    distance_m: NDArray[np.float64],
) -> Problem:
    """Unpickle a :class:`Problem` (validated again)."""
    return Problem.build(
        now_s=now_s, orders=orders, riders=riders, time_s=time_s, distance_m=distance_m
    )


def warm_problem() -> Problem:
    """A tiny problem that exercises every kind of order and rider once (open, start-loaded
    and onboard orders, a time-in-bag limit, open and closed routes): what the compiled kernel
    and the worker processes warm up on before they report ready."""
    times = np.array(
        [[0, 60, 120, 90], [60, 0, 60, 80], [120, 60, 0, 70], [90, 80, 70, 0]], dtype=np.int64
    )
    orders = (
        Order("w1", 1, 2, ready_s=30, due_s=400, max_in_bag_s=600),
        Order("w2", 2, 3, ready_s=0, due_s=500),
        Order("w3", None, 3, ready_s=0, due_s=700, state=OrderState.ONBOARD, rider_id="a"),
        Order("w4", None, 2, ready_s=0, due_s=800),
    )
    riders = (Rider("a", 0, 0, 3600, 3), Rider("b", 3, 0, 3600, 2, end_location=0))
    return Problem.build(
        now_s=0, orders=orders, riders=riders, time_s=times, distance_m=times.astype(np.float64)
    )
