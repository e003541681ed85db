"""Readers for the Li & Lim PDPTW and Solomon VRPTW benchmarks, their best-known tables and routes.

Both formats become a :class:`solver.model.Problem` on the benchmark's own terms:

* **Locations** are the benchmark's node ids (0 = depot), so a node id is a location index.
* **Riders**: the file's ``K`` identical vehicles at the depot with closed routes
  (``end_location`` = depot), ``available_s`` / ``shift_end_s`` = the depot's window, the file's
  capacity.
* **Li & Lim**: each pickup/delivery pair is an :class:`~solver.model.Order` with id
  ``"<pickup>-<delivery>"``: pickup window → ``ready_s`` / ``pickup_latest_s``, delivery window
  → ``dropoff_earliest_s`` / ``due_s``, the two service times, demand → ``size``.
* **Solomon**: each customer is a start-loaded order (``pickup=None``) with id ``"<customer>"``:
  window → ``dropoff_earliest_s`` / ``due_s``.

Scaling and rounding. Travel time is the Euclidean distance (speed 1; the ``S`` field of the
Li & Lim files is ignored, as every published solution does). The solver works in integer
seconds, so every time is multiplied by ``scale`` (default 100). Windows and service times are
integers in every published file, so they scale exactly (one that is not would be rounded
inwards: earliest and service times up, latest times down). Travel times are **rounded up**:
``time_s[i, j] = ceil(scale * euclid(i, j))``, computed exactly with integer square roots (on
the coordinates themselves when they are integers, as in every file, else on the coordinates
times their common denominator). Rounding up never shortens an arc and arrival times are
monotone in the arc lengths, so every plan that is feasible in the integer model is feasible at
full double precision, the convention of the SINTEF Li & Lim table and of the hierarchical
Solomon table; :func:`full_precision_violations` re-times a plan that way, independently of the
integer model. The rounding is conservative and has a price: each arc is longer than at full
precision by less than ``1 / scale`` time units (at most about one time unit over a 100-arc
route at ``scale=100``), so a best-known route that is tight at full precision can be infeasible
in the integer model. Truncating instead would keep every best-known route feasible, but it
accepted plans that arrive late at full precision (by 0.03-0.04 time units on R204 and RC202).
``distance_m`` keeps the unscaled float Euclidean distances, so reported distances are in the
benchmark's units. The best-known comparison is made on those float distances, between
best-knowns and plans that are both feasible at full precision: our integer model is slightly
tighter than the problem the tables solve, so the rounding can only overstate a gap, never
flatter it (``bench/bench_solver.py --verify-bks`` shows which best-known routes the integer
model rejects).

Best-known tables. Li & Lim: the SINTEF table (hierarchical: vehicles, then distance, full
precision; all 56 routes re-verified at full precision; 54 are feasible in the integer model at
``scale=100``, while lr106 and lr203 arrive 0.02 and 0.03 time units late with travel times
rounded up). Solomon: by default the *hierarchical* convention (fewest
vehicles, then distance at full double precision; vroom-scripts' ``BKS.json``, agreeing with the
SINTEF table on vehicles everywhere), because it is the objective our ``"hierarchical"`` mode
optimises and the same convention as Li & Lim, on the same float distances. The other
convention, DIMACS (distance only, distances and times truncated to one decimal: proven optima,
but of a different problem), can be read with ``convention="dimacs"`` for reference only.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solver.model import Order, Problem, Rider
from solver.plan import Plan, StopKind
from solver.routes import Visit

DEFAULT_SCALE = 100
"""Integer time units per benchmark time unit."""

BKS_CONVENTIONS = ("hierarchical", "dimacs")


class BenchmarkFormatError(ValueError):
    """A malformed benchmark file: names the file, the line number and the field.

    Attributes
    ----------
    path
        The file.
    line
        1-based line number (0 when the problem is the file as a whole).
    field
        The field (column) at fault.
    reason
        What is wrong.
    """

    def __init__(self, path: str | Path, line: int, field: str, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = reason
        super().__init__(f"{self.path}:{line}: field {field!r}: {reason}")


@dataclass(frozen=True)
class BenchmarkInstance:
    """A benchmark instance as a dispatch problem, with the figures needed to score it.

    Attributes
    ----------
    name
        Instance name (``lc101``, ``C101`` …).
    kind
        ``"lilim"`` or ``"solomon"``.
    problem
        The problem (integer times scaled by ``scale``; ``distance_m`` in benchmark units).
    distance
        The float Euclidean distance matrix, shape ``(n, n)``, in benchmark units (read-only).
    coords
        Node coordinates, shape ``(n, 2)``.
    num_vehicles
        Vehicles available in the file (``len(problem.riders)``).
    capacity
        Vehicle capacity.
    scale
        Integer time units per benchmark time unit.
    node_visits
        Node id → the visit made there (order id, pickup or drop-off); the depot is absent.
    windows
        Each node's time window ``(earliest, latest)`` in benchmark units, as in the file, shape
        ``(n, 2)`` (the depot's is the vehicles' working window).
    service
        Each node's service time in benchmark units, as in the file, shape ``(n,)``.
    demand
        Each node's demand as in the file, shape ``(n,)``: Li & Lim pickups positive, deliveries
        negative; Solomon customers positive (delivered from a start-loaded vehicle).
    """

    name: str
    kind: str
    problem: Problem
    distance: NDArray[np.float64]
    coords: NDArray[np.float64]
    num_vehicles: int
    capacity: int
    scale: int
    node_visits: Mapping[int, Visit]
    windows: NDArray[np.float64]
    service: NDArray[np.float64]
    demand: NDArray[np.int64]

    @property
    def num_orders(self) -> int:
        """Number of orders (requests or customers)."""
        return len(self.problem.orders)

    def visits(self, nodes: Sequence[int]) -> list[Visit]:
        """The visits of a route given as benchmark node ids (depot ids are skipped).

        Raises
        ------
        KeyError
            A node id that is neither the depot nor a task.
        """
        return [self.node_visits[int(node)] for node in nodes if int(node) != 0]

    def visits_by_rider(self, routes: Sequence[Sequence[int]]) -> dict[str, list[Visit]]:
        """Routes of node ids, one per vehicle, as visits keyed by rider id (first riders first).

        Raises
        ------
        ValueError
            More routes than vehicles.
        """
        riders = self.problem.riders
        if len(routes) > len(riders):
            raise ValueError(f"{self.name}: {len(routes)} routes but {len(riders)} vehicles")
        return {rider.id: self.visits(route) for rider, route in zip(riders, routes, strict=False)}


def plan_distance(plan: Plan) -> float:
    """Total distance of a plan's routes (benchmark units for benchmark instances)."""
    return float(sum(r.distance_m for r in plan.routes if r.stops))


def plan_vehicles(plan: Plan) -> int:
    """Number of routes with at least one stop."""
    return sum(1 for r in plan.routes if r.stops)


@dataclass(frozen=True, slots=True)
class BestKnown:
    """A best-known solution's figures.

    Attributes
    ----------
    instance
        Instance name as in the table.
    vehicles
        Vehicles used.
    distance
        Total distance (benchmark units).
    convention
        ``"hierarchical"`` (vehicles first, full precision) or ``"dimacs"``.
    """

    instance: str
    vehicles: int
    distance: float
    convention: str = "hierarchical"


# --------------------------------------------------------------------------------------------
# parsing helpers


def _number(path: Path, line: int, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BenchmarkFormatError(path, line, field, f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise BenchmarkFormatError(path, line, field, f"expected a finite number, got {text!r}")
    return value


def _integer(path: Path, line: int, field: str, text: str) -> int:
    value = _number(path, line, field, text)
    if not value.is_integer():
        raise BenchmarkFormatError(path, line, field, f"expected an integer, got {text!r}")
    return int(value)


def _fields(path: Path, line: int, text: str, names: Sequence[str]) -> list[str]:
    parts = text.split()
    if len(parts) < len(names):
        missing = names[len(parts)]
        raise BenchmarkFormatError(
            path, line, missing, f"missing: expected {len(names)} fields, got {len(parts)}"
        )
    if len(parts) > len(names):
        raise BenchmarkFormatError(
            path, line, "<line>", f"expected {len(names)} fields, got {len(parts)}"
        )
    return parts


def _scaled(value: float, scale: int, *, up: bool) -> int:
    """``value * scale`` as an integer; rounded up or down as asked if not whole.

    Callers round conservatively (earliest and service times up, latest times down), so the
    integer model never allows what full precision forbids.
    """
    scaled = value * scale
    nearest = round(scaled)
    if abs(scaled - nearest) <= 1e-9 * max(1.0, abs(scaled)):
        return int(nearest)
    return math.ceil(scaled) if up else math.floor(scaled)


def euclidean_matrix(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    """Float Euclidean distances between all pairs of ``coords`` (shape ``(n, 2)``)."""
    diff = coords[:, np.newaxis, :] - coords[np.newaxis, :, :]
    return np.sqrt((diff**2).sum(axis=2))


def ceiled_time_matrix(coords: NDArray[np.float64], scale: int) -> NDArray[np.int64]:
    """``ceil(scale * euclid(i, j))`` for all pairs, computed exactly.

    For integer coordinates this is the integer square root of ``scale² · (dx² + dy²)``, plus one
    unless that is a perfect square, computed in ``int64`` (float square root corrected to the
    exact one). Other coordinates (or integers too large for ``int64``) are made integers by
    their common denominator ``m`` (a power of two for floats), and the same exact ceiling is
    taken in Python integers and divided by ``m`` rounding up
    (``ceil(x / m) = ceil(ceil(x) / m)``). No float rounding can put a time below the true
    scaled distance, nor a whole unit above it.
    """
    coords = np.asarray(coords, dtype=np.float64)
    span = float(np.ptp(coords, axis=0).max(initial=0.0)) if coords.size else 0.0
    if np.all(np.equal(np.mod(coords, 1.0), 0.0)) and 2 * (span * scale) ** 2 < 2.0**62:
        ints = coords.astype(np.int64)
        diff = ints[:, np.newaxis, :] - ints[np.newaxis, :, :]
        squared = (diff**2).sum(axis=2) * (scale * scale)
        root = np.floor(np.sqrt(squared.astype(np.float64))).astype(np.int64)
        # correct the float square root to the exact floor: root² <= squared < (root+1)²
        root -= (root * root > squared).astype(np.int64)
        root += ((root + 1) * (root + 1) <= squared).astype(np.int64)
        # then the ceiling: one more unless squared is a perfect square
        root += (root * root < squared).astype(np.int64)
        return root
    return _exact_ceiled_times(coords, scale)


def _exact_ceiled_times(coords: NDArray[np.float64], scale: int) -> NDArray[np.int64]:
    """:func:`ceiled_time_matrix` in Python integers, for any finite float coordinates."""
    fractions = [(Fraction(float(x)), Fraction(float(y))) for x, y in coords]
    common = math.lcm(1, *(f.denominator for pair in fractions for f in pair))
    points = [(int(x * common), int(y * common)) for x, y in fractions]
    count = len(points)
    times = np.zeros((count, count), dtype=np.int64)
    factor = scale * scale
    for i in range(count):
        xi, yi = points[i]
        for j in range(i + 1, count):
            xj, yj = points[j]
            squared = factor * ((xi - xj) ** 2 + (yi - yj) ** 2)
            root = math.isqrt(squared)
            root += root * root < squared
            times[i, j] = times[j, i] = -(-root // common)
    return times


def _window(
    path: Path, line: int, field: str, earliest: float, latest: float, scale: int
) -> tuple[int, int]:
    """A window scaled inwards (earliest up, latest down), which must not become empty."""
    low, high = _scaled(earliest, scale, up=True), _scaled(latest, scale, up=False)
    if low > high:
        reason = f"window [{earliest:g}, {latest:g}] holds no multiple of 1/{scale}: scale finer"
        raise BenchmarkFormatError(path, line, field, reason)
    return low, high


def _freeze(array: NDArray[Any]) -> NDArray[Any]:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def _riders(count: int, depot_ready: int, depot_due: int, capacity: int) -> list[Rider]:
    return [
        Rider(
            id=f"v{k + 1}",
            location=0,
            available_s=depot_ready,
            shift_end_s=depot_due,
            capacity=capacity,
            end_location=0,
        )
        for k in range(count)
    ]


# --------------------------------------------------------------------------------------------
# Li & Lim

_LILIM_HEADER = ("vehicles", "capacity", "speed")
_LILIM_TASK = (
    "id", "x", "y", "demand", "earliest", "latest", "service", "pickup_sibling",
    "delivery_sibling",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Task:
    line: int
    x: float
    y: float
    demand: int
    earliest: int
    latest: int
    service: int
    pickup_sibling: int
    delivery_sibling: int


def read_lilim(path: str | Path, *, scale: int = DEFAULT_SCALE) -> BenchmarkInstance:
    """Read a Li & Lim PDPTW instance.

    Format: a header line ``K Q S`` (vehicles, capacity, speed — ignored), then one line per
    task ``id x y demand earliest latest service pickup_sibling delivery_sibling``; task 0 is the
    depot; a pickup has ``demand > 0``, ``pickup_sibling = 0`` and ``delivery_sibling`` = its
    delivery; a delivery has ``demand < 0`` and ``pickup_sibling`` = its pickup.

    Parameters
    ----------
    path
        The instance file; its stem is the instance name.
    scale
        Integer time units per benchmark time unit (see the module notes on rounding).

    Returns
    -------
    BenchmarkInstance
        The instance; orders are in pickup-node order.

    Raises
    ------
    BenchmarkFormatError
        A malformed line or an inconsistent pairing (names file, line and field).
    """
    path = Path(path)
    if scale < 1:
        raise ValueError(f"scale={scale!r}: must be a positive integer")
    lines = [
        (k, text) for k, text in enumerate(path.read_text().splitlines(), start=1) if text.strip()
    ]
    if not lines:
        raise BenchmarkFormatError(path, 0, "vehicles", "empty file")
    head_line, head = lines[0]
    parts = _fields(path, head_line, head, _LILIM_HEADER)
    vehicles = _integer(path, head_line, "vehicles", parts[0])
    capacity = _integer(path, head_line, "capacity", parts[1])
    _number(path, head_line, "speed", parts[2])
    if vehicles < 1:
        raise BenchmarkFormatError(path, head_line, "vehicles", f"must be >= 1, got {vehicles}")
    if capacity < 0:
        raise BenchmarkFormatError(path, head_line, "capacity", f"must be >= 0, got {capacity}")

    tasks: list[_Task] = []
    for number, text in lines[1:]:
        parts = _fields(path, number, text, _LILIM_TASK)
        task_id = _integer(path, number, "id", parts[0])
        if task_id != len(tasks):
            raise BenchmarkFormatError(
                path, number, "id", f"expected task {len(tasks)} (ids run 0, 1, …), got {task_id}"
            )
        values = [_integer(path, number, _LILIM_TASK[i], parts[i]) for i in range(3, 9)]
        task = _Task(
            number,
            _number(path, number, "x", parts[1]),
            _number(path, number, "y", parts[2]),
            *values,
        )
        if task.earliest > task.latest:
            raise BenchmarkFormatError(
                path, number, "latest", f"{task.latest} is before earliest {task.earliest}"
            )
        if task.service < 0:
            raise BenchmarkFormatError(path, number, "service", f"must be >= 0, got {task.service}")
        tasks.append(task)
    if not tasks:
        raise BenchmarkFormatError(path, head_line, "id", "no depot line")
    if tasks[0].demand != 0:
        raise BenchmarkFormatError(path, tasks[0].line, "demand", "the depot's demand must be 0")

    count = len(tasks)
    orders: list[Order] = []
    node_visits: dict[int, Visit] = {}
    paired: set[int] = set()
    for node, task in enumerate(tasks[1:], start=1):
        if task.demand > 0:
            drop = task.delivery_sibling
            if task.pickup_sibling != 0:
                raise BenchmarkFormatError(
                    path, task.line, "pickup_sibling", "a pickup (demand > 0) must have 0 here"
                )
            if not 1 <= drop < count or drop == node:
                raise BenchmarkFormatError(
                    path, task.line, "delivery_sibling", f"{drop} is not a task id"
                )
            other = tasks[drop]
            if other.pickup_sibling != node or other.delivery_sibling != 0:
                raise BenchmarkFormatError(
                    path,
                    other.line,
                    "pickup_sibling",
                    f"delivery {drop} should name pickup {node}, names {other.pickup_sibling}",
                )
            if other.demand != -task.demand:
                raise BenchmarkFormatError(
                    path,
                    other.line,
                    "demand",
                    f"delivery demand {other.demand} != -(pickup {node} demand {task.demand})",
                )
            order_id = f"{node}-{drop}"
            orders.append(
                Order(
                    id=order_id,
                    pickup=node,
                    dropoff=drop,
                    ready_s=_scaled(task.earliest, scale, up=True),
                    pickup_latest_s=_scaled(task.latest, scale, up=False),
                    dropoff_earliest_s=_scaled(other.earliest, scale, up=True),
                    due_s=_scaled(other.latest, scale, up=False),
                    size=task.demand,
                    pickup_service_s=_scaled(task.service, scale, up=True),
                    dropoff_service_s=_scaled(other.service, scale, up=True),
                )
            )
            node_visits[node] = (order_id, StopKind.PICKUP)
            node_visits[drop] = (order_id, StopKind.DROPOFF)
            paired.update((node, drop))
        elif task.demand == 0:
            raise BenchmarkFormatError(path, task.line, "demand", "a task's demand must not be 0")
    for node, task in enumerate(tasks[1:], start=1):
        if node not in paired:
            raise BenchmarkFormatError(
                path,
                task.line,
                "pickup_sibling",
                f"delivery {node} names pickup {task.pickup_sibling}, which does not name it",
            )

    coords = np.array([[t.x, t.y] for t in tasks], dtype=np.float64)
    windows = np.array([[t.earliest, t.latest] for t in tasks], dtype=np.float64)
    service = np.array([t.service for t in tasks], dtype=np.float64)
    demands = np.array([t.demand for t in tasks], dtype=np.int64)
    return _instance(
        path.stem, "lilim", vehicles, capacity, orders, coords, windows, service, demands,
        node_visits, scale,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Solomon

_SOLOMON_FLEET = ("vehicles", "capacity")
_CUST_HEADER = re.compile(r"^\s*CUST\S*\s+NO", re.IGNORECASE | re.MULTILINE)
_SOLOMON_CUSTOMER = ("cust_no", "x", "y", "demand", "ready_time", "due_date", "service_time")


def read_solomon(path: str | Path, *, scale: int = DEFAULT_SCALE) -> BenchmarkInstance:
    """Read a Solomon VRPTW instance (original text format).

    Format: the instance name, a ``VEHICLE`` section (``NUMBER CAPACITY`` header, then one line
    ``K Q``), a ``CUSTOMER`` section (a column header, then one line per node
    ``id x y demand ready due service``); node 0 is the depot.

    Parameters
    ----------
    path
        The instance file.
    scale
        Integer time units per benchmark time unit (see the module notes on rounding).

    Returns
    -------
    BenchmarkInstance
        The instance; one start-loaded order per customer, in customer order.

    Raises
    ------
    BenchmarkFormatError
        A malformed line or a missing section (names file, line and field).
    """
    path = Path(path)
    if scale < 1:
        raise ValueError(f"scale={scale!r}: must be a positive integer")
    lines = [
        (k, text.strip())
        for k, text in enumerate(path.read_text().splitlines(), start=1)
        if text.strip()
    ]
    if not lines:
        raise BenchmarkFormatError(path, 0, "name", "empty file")
    name = lines[0][1]
    fleet_at = next((i for i, (_, t) in enumerate(lines) if t.upper().startswith("NUMBER")), None)
    cust_at = next((i for i, (_, t) in enumerate(lines) if _CUST_HEADER.match(t)), None)
    if fleet_at is None or fleet_at + 1 >= len(lines):
        raise BenchmarkFormatError(path, 0, "vehicles", "no 'NUMBER CAPACITY' section")
    if cust_at is None or cust_at < fleet_at:
        raise BenchmarkFormatError(path, 0, "cust_no", "no 'CUST NO.' section after the fleet")
    fleet_line, fleet = lines[fleet_at + 1]
    parts = _fields(path, fleet_line, fleet, _SOLOMON_FLEET)
    vehicles = _integer(path, fleet_line, "vehicles", parts[0])
    capacity = _integer(path, fleet_line, "capacity", parts[1])
    if vehicles < 1:
        raise BenchmarkFormatError(path, fleet_line, "vehicles", f"must be >= 1, got {vehicles}")
    if capacity < 0:
        raise BenchmarkFormatError(path, fleet_line, "capacity", f"must be >= 0, got {capacity}")

    rows: list[tuple[int, list[float]]] = []
    for number, text in lines[cust_at + 1 :]:
        parts = _fields(path, number, text, _SOLOMON_CUSTOMER)
        node = _integer(path, number, "cust_no", parts[0])
        if node != len(rows):
            raise BenchmarkFormatError(
                path, number, "cust_no", f"expected node {len(rows)} (ids run 0, 1, …), got {node}"
            )
        values = [_number(path, number, f, parts[i]) for i, f in enumerate(_SOLOMON_CUSTOMER)]
        demand = _integer(path, number, "demand", parts[3])
        if demand < 0:
            raise BenchmarkFormatError(path, number, "demand", f"must be >= 0, got {demand}")
        if values[4] > values[5]:
            raise BenchmarkFormatError(
                path, number, "due_date", f"{parts[5]} is before ready_time {parts[4]}"
            )
        if values[6] < 0:
            raise BenchmarkFormatError(
                path, number, "service_time", f"must be >= 0, got {parts[6]}"
            )
        rows.append((number, values))
    if not rows:
        raise BenchmarkFormatError(path, lines[cust_at][0], "cust_no", "no depot line")

    depot_line, depot = rows[0]
    ready0, _ = _window(path, depot_line, "due_date", depot[4], depot[5], scale)
    orders: list[Order] = []
    node_visits: dict[int, Visit] = {}
    for node, (number, values) in enumerate(rows[1:], start=1):
        order_id = str(node)
        earliest, due = _window(path, number, "due_date", values[4], values[5], scale)
        orders.append(
            Order(
                id=order_id,
                pickup=None,
                dropoff=node,
                ready_s=ready0,
                dropoff_earliest_s=earliest,
                due_s=due,
                size=int(values[3]),
                dropoff_service_s=_scaled(values[6], scale, up=True),
            )
        )
        node_visits[node] = (order_id, StopKind.DROPOFF)
    coords = np.array([[v[1], v[2]] for _, v in rows], dtype=np.float64)
    windows = np.array([[v[4], v[5]] for _, v in rows], dtype=np.float64)
    service = np.array([v[6] for _, v in rows], dtype=np.float64)
    demands = np.array([int(v[3]) for _, v in rows], dtype=np.int64)
    return _instance(
        name, "solomon", vehicles, capacity, orders, coords, windows, service, demands,
        node_visits, scale,
    )  # fmt: skip


def _instance(
    name: str,
    kind: str,
    vehicles: int,
    capacity: int,
    orders: list[Order],
    coords: NDArray[np.float64],
    windows: NDArray[np.float64],
    service: NDArray[np.float64],
    demand: NDArray[np.int64],
    node_visits: dict[int, Visit],
    scale: int,
) -> BenchmarkInstance:
    distance = _freeze(euclidean_matrix(coords))
    times = ceiled_time_matrix(coords, scale)
    riders = _riders(
        vehicles,
        _scaled(float(windows[0, 0]), scale, up=True),
        _scaled(float(windows[0, 1]), scale, up=False),
        capacity,
    )
    problem = Problem.build(
        now_s=riders[0].available_s, orders=orders, riders=riders, time_s=times,
        distance_m=distance,
    )  # fmt: skip
    return BenchmarkInstance(
        name=name,
        kind=kind,
        problem=problem,
        distance=distance,
        coords=_freeze(coords),
        num_vehicles=vehicles,
        capacity=capacity,
        scale=scale,
        node_visits=MappingProxyType(node_visits),
        windows=_freeze(windows),
        service=_freeze(service),
        demand=_freeze(demand),
    )


def read_instance(path: str | Path, *, scale: int = DEFAULT_SCALE) -> BenchmarkInstance:
    """Read either format: Solomon if the file has a ``CUST NO.`` header, Li & Lim otherwise."""
    text = Path(path).read_text()
    if _CUST_HEADER.search(text):
        return read_solomon(path, scale=scale)
    return read_lilim(path, scale=scale)


# --------------------------------------------------------------------------------------------
# full-precision check

LATE = "late"
CAPACITY = "capacity"
PRECEDENCE = "precedence"
VISIT = "visit"


@dataclass(frozen=True, slots=True)
class FullPrecisionViolation:
    """A rule a plan breaks when re-timed at full double precision.

    Attributes
    ----------
    rider
        The route's rider id.
    node
        The benchmark node at fault: the depot (0) for a late return or a start overload, -1
        for a stop that is no task of the instance.
    kind
        :data:`LATE` (service starts after the window closes), :data:`CAPACITY` (load above the
        vehicle's capacity), :data:`PRECEDENCE` (a Li & Lim delivery not preceded by its pickup
        on the same route, or a pickup never delivered) or :data:`VISIT` (a stop that is no
        task of the instance, or a node visited twice).
    excess
        Time units late (``late``) or units of load above capacity (``capacity``); 0 otherwise.
    """

    rider: str
    node: int
    kind: str
    excess: float = 0.0

    def __str__(self) -> str:
        amount = f" by {self.excess:.6g}" if self.excess else ""
        return f"rider {self.rider} node {self.node}: {self.kind}{amount}"


def full_precision_violations(
    instance: BenchmarkInstance, plan: Plan, *, tolerance: float = 1e-9
) -> list[FullPrecisionViolation]:
    """Re-time a plan's routes at full precision and list what breaks.

    Independent of the integer model: each route is taken as its sequence of visits only (the
    plan's times are ignored) and re-timed from the depot's opening with the float Euclidean
    travel times of the instance's coordinates, in benchmark units (no scaling), against the
    windows, service times, demands and capacity as read from the file. A vehicle leaves the
    depot at its opening, waits at a node until its window opens, and must start service there
    by the window's close and return to the depot by the depot's close; the load (Solomon:
    start-loaded with the route's demands) must stay within the capacity throughout, and a Li &
    Lim delivery must follow its pickup on the same route. Unassigned orders are not violations.

    Parameters
    ----------
    instance
        The benchmark instance the plan solves.
    plan
        The plan (from any solver).
    tolerance
        Time units of float summation noise forgiven (far below the ``1 / scale`` resolution).

    Returns
    -------
    list[FullPrecisionViolation]
        Empty when the plan is feasible at full precision.
    """
    nodes = {visit: node for node, visit in instance.node_visits.items()}
    riders = {rider.id: rider for rider in instance.problem.riders}
    dist = instance.distance
    windows = instance.windows
    violations: list[FullPrecisionViolation] = []
    seen: set[int] = set()
    for route in plan.routes:
        if not route.stops:
            continue
        rider = riders.get(route.rider_id)
        start = rider.location if rider else 0
        end = rider.end_location if rider else 0
        capacity = rider.capacity if rider else instance.capacity
        route_nodes = [nodes.get((stop.order_id, stop.kind)) for stop in route.stops]
        load = 0
        if instance.kind == "solomon":
            load = int(sum(instance.demand[n] for n in route_nodes if n is not None))
            if load > capacity:
                violations.append(
                    FullPrecisionViolation(route.rider_id, start, CAPACITY, load - capacity)
                )
        clock = float(windows[start, 0])
        previous = start
        open_pickups: set[int] = set()
        for stop, node in zip(route.stops, route_nodes, strict=True):
            if node is None or node in seen:
                violations.append(FullPrecisionViolation(route.rider_id, node or -1, VISIT))
                continue
            seen.add(node)
            arrival = clock + float(dist[previous, node])
            earliest, latest = float(windows[node, 0]), float(windows[node, 1])
            if arrival > latest + tolerance:
                violations.append(
                    FullPrecisionViolation(route.rider_id, node, LATE, arrival - latest)
                )
            clock = max(arrival, earliest) + float(instance.service[node])
            if instance.kind != "solomon":  # Solomon loads only fall from the start load
                load += int(instance.demand[node])
                if load > capacity:
                    violations.append(
                        FullPrecisionViolation(route.rider_id, node, CAPACITY, load - capacity)
                    )
                if stop.kind is StopKind.PICKUP:
                    open_pickups.add(node)
                else:
                    pickup = nodes.get((stop.order_id, StopKind.PICKUP))
                    if pickup in open_pickups:
                        open_pickups.remove(pickup)
                    else:
                        violations.append(FullPrecisionViolation(route.rider_id, node, PRECEDENCE))
            previous = node
        violations.extend(
            FullPrecisionViolation(route.rider_id, node, PRECEDENCE)
            for node in sorted(open_pickups)
        )
        if end is not None:
            arrival = clock + float(dist[previous, end])
            if arrival > float(windows[end, 1]) + tolerance:
                violations.append(
                    FullPrecisionViolation(
                        route.rider_id, end, LATE, arrival - float(windows[end, 1])
                    )
                )
    return violations


def max_lateness(violations: Sequence[FullPrecisionViolation]) -> float:
    """The largest lateness among ``violations`` in time units (0 when none is late)."""
    return max((v.excess for v in violations if v.kind == LATE), default=0.0)


# --------------------------------------------------------------------------------------------
# best-known tables and route files


def _read_table(csv_path: str | Path) -> tuple[Path, list[tuple[int, dict[str, str]]]]:
    path = Path(csv_path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [(k, row) for k, row in enumerate(reader, start=2)]
    return path, rows


def _column(path: Path, line: int, row: Mapping[str, str | None], name: str) -> str:
    value = row.get(name)
    if value is None or value == "":
        raise BenchmarkFormatError(path, line, name, "missing")
    return value


def read_bks_lilim(csv_path: str | Path) -> dict[str, BestKnown]:
    """Best-known vehicles and distance per Li & Lim instance (the SINTEF columns).

    Parameters
    ----------
    csv_path
        ``bks_lilim_100.csv`` (columns ``instance``, ``sintef_vehicles``, ``sintef_distance``).

    Returns
    -------
    dict[str, BestKnown]
        Keyed by instance name as in the table (``lc101`` …).

    Raises
    ------
    BenchmarkFormatError
        A missing or non-numeric value (names file, line and column).
    """
    path, rows = _read_table(csv_path)
    table: dict[str, BestKnown] = {}
    for line, row in rows:
        name = _column(path, line, row, "instance")
        vehicles = _integer(
            path, line, "sintef_vehicles", _column(path, line, row, "sintef_vehicles")
        )
        dist = _number(path, line, "sintef_distance", _column(path, line, row, "sintef_distance"))
        table[name] = BestKnown(name, vehicles, dist, "hierarchical")
    return table


def read_bks_solomon(
    csv_path: str | Path, convention: str = "hierarchical"
) -> dict[str, BestKnown]:
    """Best-known vehicles and distance per Solomon instance.

    Parameters
    ----------
    csv_path
        ``bks_solomon_100.csv``.
    convention
        ``"hierarchical"`` (default; columns ``bks_hier_vehicles`` / ``bks_hier_distance``):
        fewest vehicles, then distance at full precision — what the hierarchical objective
        optimises and comparable with our float distances. ``"dimacs"`` (``dimacs_sol_vehicles``
        / ``dimacs_sol_cost_file``): distance-only optima on distances truncated to one decimal;
        a different problem, for reference only.

    Returns
    -------
    dict[str, BestKnown]
        Keyed by instance name as in the table (``C101`` …).

    Raises
    ------
    BenchmarkFormatError
        A missing or non-numeric value (names file, line and column).
    ValueError
        An unknown convention.
    """
    if convention not in BKS_CONVENTIONS:
        raise ValueError(f"convention={convention!r}: must be one of {BKS_CONVENTIONS}")
    veh_col, dist_col = (
        ("bks_hier_vehicles", "bks_hier_distance")
        if convention == "hierarchical"
        else ("dimacs_sol_vehicles", "dimacs_sol_cost_file")
    )
    path, rows = _read_table(csv_path)
    table: dict[str, BestKnown] = {}
    for line, row in rows:
        name = _column(path, line, row, "instance")
        vehicles = _integer(path, line, veh_col, _column(path, line, row, veh_col))
        dist = _number(path, line, dist_col, _column(path, line, row, dist_col))
        table[name] = BestKnown(name, vehicles, dist, convention)
    return table


_ROUTE_LINE = re.compile(r"^\s*Route\s*#?\s*\d+\s*:(.*)$", re.IGNORECASE)


def read_routes(path: str | Path) -> list[list[int]]:
    """Routes of a solution file: SINTEF (``Route 1 : 5 3 7``) or VRPLIB (``Route #1: 5 3 7``).

    Other lines (headers, ``Cost``) are ignored. Node ids are the instance's (depot omitted).

    Raises
    ------
    BenchmarkFormatError
        A route with a non-integer node id.
    """
    path = Path(path)
    routes: list[list[int]] = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _ROUTE_LINE.match(text)
        if match:
            routes.append([_integer(path, number, "node", t) for t in match.group(1).split()])
    return routes
