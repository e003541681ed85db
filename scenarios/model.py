"""The scenario file format: a peak period on one campus (or a Euclidean plane), its riders and
its order stream; versioned JSON, validated on load with errors that name the field and line.

Format (``"format": "campus-dispatch-scenario"``, ``"version": 1``)::

    {
      "format": "campus-dispatch-scenario",
      "version": 1,
      "name": "northwestern-lunch-s1",
      "description": "free text",
      "geometry": {"kind": "campus", "campus_id": "northwestern"},
      "start_time": "2026-12-03T11:00:00-06:00",
      "speed_factor": 1.0,
      "riders": [
        {"id": "r1", "shift_start_s": 0, "shift_end_s": 10800,
         "position": {"lat": 42.05, "lng": -87.67}, "mode": "bike", "capacity": 4}
      ],
      "orders": [
        {"id": "o1", "placed_s": 75, "merchant": {"lat": 42.05, "lng": -87.68},
         "customer": {"lat": 42.06, "lng": -87.67}, "ready_s": 675, "promised_s": 2175,
         "size": 1, "pickup_service_s": 60, "dropoff_service_s": 60, "account": "a17",
         "account_since_s": -8640000}
      ]
    }

Every time is in **integer seconds from the period start** (``start_time``, an ISO-8601 instant
kept for display). Points are ``{"lat", "lng"}`` (degrees) on a ``campus`` geometry, and
``{"x", "y"}`` (metres) on a ``euclidean`` one, whose travel time is
``ceil(distance / metres_per_minute)`` minutes, as the Grubhub MDRP instances define it
(``{"kind": "euclidean", "metres_per_minute": 320}``). ``speed_factor`` scales every rider's
speed (0.8: a rain day, 20 % slower). ``merchant_id`` and ``customer_id`` may name the place a
point came from; ``account`` the customer account (order storms come from few accounts) and
``account_since_s`` when that account first ordered on the platform (seconds from the period
start like every time, so negative before the period; at most ``placed_s``; absent: unknown).
Optional per order: ``size`` (default 1), service times (default 60 s each), ``max_in_bag_s``,
``account``, ``account_since_s``, ``merchant_id``, ``customer_id``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from campus_maps import MODES
from solver.model import ProblemError

FORMAT = "campus-dispatch-scenario"
VERSION = 1
GEOMETRIES = ("campus", "euclidean")


class ScenarioError(ProblemError):
    """An invalid scenario: names the field (a JSON path), the value and, when known, the line.

    Attributes
    ----------
    field
        JSON path of the bad field, e.g. ``orders[12].promised_s``.
    value
        The offending value.
    reason
        What is wrong with it.
    line
        1-based line in the file, or ``None`` (a scenario not read from a file).
    source
        The file name, or ``""``.

    The message reads ``<source>:<line>: <field>=<value>: <reason>``; without a line it still
    names the file (``<source>: <field>=<value>: <reason>``) unless the value already does.
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
        super().__init__(field, value, reason, line=line, source=source)
        message = str(self.args[0])
        if source and not line and source not in message:
            self.args = (f"{source}: {message}",)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its parts (the default would call the class with the message alone),
        # so that an error in a worker process reaches the command as itself.
        return _rebuild_error, (
            type(self),
            self.field,
            self.value,
            self.reason,
            self.line,
            self.source,
        )


def _rebuild_error(
    kind: type[ScenarioError], field: str, value: object, reason: str, line: int | None, source: str
) -> ScenarioError:
    return kind(field, value, reason, line=line, source=source)


@dataclass(frozen=True, slots=True)
class Point:
    """A location: ``(lat, lng)`` degrees on a campus, ``(x, y)`` metres on a plane."""

    a: float
    b: float

    def to_json(self, geometry: str) -> dict[str, float]:
        """The JSON object of this point for ``geometry``."""
        if geometry == "campus":
            return {"lat": self.a, "lng": self.b}
        return {"x": self.a, "y": self.b}


@dataclass(frozen=True)
class Geometry:
    """Where the scenario happens and how travel is timed.

    Attributes
    ----------
    kind
        ``"campus"`` (travel on a bundled campus's road graph) or ``"euclidean"``.
    campus_id
        The campus (``campus`` geometry).
    metres_per_minute
        Rider speed on the plane (``euclidean`` geometry); travel time is
        ``ceil(distance / metres_per_minute)`` minutes.
    """

    kind: str
    campus_id: str = ""
    metres_per_minute: float = 0.0


@dataclass(frozen=True)
class ScenarioRider:
    """A rider of the period: shift, start position, mode and bag capacity."""

    id: str
    shift_start_s: int
    shift_end_s: int
    position: Point
    mode: str = "bike"
    capacity: int = 4


@dataclass(frozen=True)
class ScenarioOrder:
    """One order of the stream.

    Attributes
    ----------
    id
        Unique order id.
    placed_s
        When the customer placed it (s from the period start): the dispatcher sees it from then.
    merchant, customer
        Pickup and drop-off points.
    ready_s
        When the food is ready at the merchant (s).
    promised_s
        Promised delivery time (s).
    size
        Bag units.
    pickup_service_s, dropoff_service_s
        Handover times (s).
    max_in_bag_s
        Freshness limit (s) or ``None``.
    account
        Customer account (free text; order storms come from few accounts).
    merchant_id, customer_id
        The places the points came from (free text, may be empty).
    account_since_s
        When ``account`` first ordered on the platform (s from the period start: negative
        before the period; at most ``placed_s``), or ``None`` (unknown). Fresh accounts are a
        sign of malicious order storms.
    """

    id: str
    placed_s: int
    merchant: Point
    customer: Point
    ready_s: int
    promised_s: int
    size: int = 1
    pickup_service_s: int = 60
    dropoff_service_s: int = 60
    max_in_bag_s: int | None = None
    account: str = ""
    merchant_id: str = ""
    customer_id: str = ""
    account_since_s: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A peak period: geometry, riders and the order stream (orders sorted by ``placed_s``)."""

    name: str
    geometry: Geometry
    riders: tuple[ScenarioRider, ...]
    orders: tuple[ScenarioOrder, ...]
    start_time: str = "2026-01-01T11:00:00+00:00"
    speed_factor: float = 1.0
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_scenario(self)

    @property
    def end_s(self) -> int:
        """The last moment the period cares about: the latest shift end or promised time."""
        ends = [r.shift_end_s for r in self.riders] + [o.promised_s for o in self.orders]
        return max(ends, default=0)

    def summary(self) -> str:
        """One line: name, geometry, sizes and span."""
        where = self.geometry.campus_id or f"plane at {self.geometry.metres_per_minute} m/min"
        placed = [o.placed_s for o in self.orders]
        span = f"{min(placed) / 60:.0f}-{max(placed) / 60:.0f} min" if placed else "no orders"
        return (
            f"{self.name}: {where}, {len(self.riders)} riders, {len(self.orders)} orders "
            f"placed {span}, speed factor {self.speed_factor:g}"
        )


def _check(cond: bool, where: str, value: object, reason: str) -> None:
    if not cond:
        raise ScenarioError(where, value, reason)


def _check_id(value: str, where: str, seen: set[str], kind: str) -> None:
    """An id is a non-empty string not used before by another ``kind``; remember it."""
    _check(bool(value), f"{where}.id", value, "must be a non-empty string")
    _check(value not in seen, f"{where}.id", value, f"duplicate {kind} id")
    seen.add(value)


def validate_scenario(scenario: Scenario) -> None:
    """Raise :class:`ScenarioError` naming the first bad field of ``scenario``."""
    g = scenario.geometry
    _check(g.kind in GEOMETRIES, "geometry.kind", g.kind, f"must be one of {GEOMETRIES}")
    if g.kind == "campus":
        _check(bool(g.campus_id), "geometry.campus_id", g.campus_id, "must name a campus")
    else:
        _check(
            math.isfinite(g.metres_per_minute) and g.metres_per_minute > 0,
            "geometry.metres_per_minute",
            g.metres_per_minute,
            "must be > 0",
        )
    _check(
        math.isfinite(scenario.speed_factor) and 0.1 <= scenario.speed_factor <= 10,
        "speed_factor",
        scenario.speed_factor,
        "must be in [0.1, 10]",
    )
    try:
        datetime.fromisoformat(scenario.start_time)
    except (TypeError, ValueError):
        raise ScenarioError("start_time", scenario.start_time, "must be an ISO-8601 time") from None
    _check(bool(scenario.riders), "riders", [], "a scenario needs at least one rider")
    seen: set[str] = set()
    for k, r in enumerate(scenario.riders):
        where = f"riders[{k}]"
        _check_id(r.id, where, seen, "rider")
        _check(r.shift_start_s >= 0, f"{where}.shift_start_s", r.shift_start_s, "must be >= 0")
        _check(
            r.shift_end_s > r.shift_start_s,
            f"{where}.shift_end_s",
            r.shift_end_s,
            f"must be after shift_start_s ({r.shift_start_s})",
        )
        _check(r.mode in MODES, f"{where}.mode", r.mode, f"must be one of {MODES}")
        _check(r.capacity >= 1, f"{where}.capacity", r.capacity, "must be >= 1")
        _check_point(r.position, g.kind, f"{where}.position")
    seen = set()
    biggest = max(r.capacity for r in scenario.riders)
    for k, o in enumerate(scenario.orders):
        where = f"orders[{k}]"
        _check_id(o.id, where, seen, "order")
        _check(o.placed_s >= 0, f"{where}.placed_s", o.placed_s, "must be >= 0")
        if k:
            _check(
                o.placed_s >= scenario.orders[k - 1].placed_s,
                f"{where}.placed_s",
                o.placed_s,
                f"orders must be sorted by placed_s (previous {scenario.orders[k - 1].placed_s})",
            )
        _check(
            o.ready_s >= o.placed_s,
            f"{where}.ready_s",
            o.ready_s,
            f"must be >= placed_s ({o.placed_s})",
        )
        _check(
            o.promised_s > o.placed_s,
            f"{where}.promised_s",
            o.promised_s,
            f"must be after placed_s ({o.placed_s})",
        )
        _check(1 <= o.size <= biggest, f"{where}.size", o.size, f"must be in [1, {biggest}]")
        for name in ("pickup_service_s", "dropoff_service_s"):
            _check(getattr(o, name) >= 0, f"{where}.{name}", getattr(o, name), "must be >= 0")
        if o.max_in_bag_s is not None:
            _check(o.max_in_bag_s > 0, f"{where}.max_in_bag_s", o.max_in_bag_s, "must be > 0")
        if o.account_since_s is not None:
            since = o.account_since_s
            _check(
                isinstance(since, int) and not isinstance(since, bool),
                f"{where}.account_since_s",
                since,
                "must be a whole number of seconds",
            )
            _check(
                since <= o.placed_s,
                f"{where}.account_since_s",
                since,
                f"must be <= placed_s ({o.placed_s})",
            )
        _check_point(o.merchant, g.kind, f"{where}.merchant")
        _check_point(o.customer, g.kind, f"{where}.customer")


def _check_point(p: Point, geometry: str, where: str) -> None:
    if geometry == "campus":
        ok = math.isfinite(p.a) and math.isfinite(p.b) and -90 <= p.a <= 90 and -180 <= p.b <= 180
        _check(ok, where, p.to_json(geometry), "lat must be in [-90, 90] and lng in [-180, 180]")
    else:
        ok = math.isfinite(p.a) and math.isfinite(p.b)
        _check(ok, where, p.to_json(geometry), "x and y must be finite metres")


# --------------------------------------------------------------------------- JSON


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The JSON document of ``scenario``."""
    g = scenario.geometry
    geometry: dict[str, Any] = {"kind": g.kind}
    if g.kind == "campus":
        geometry["campus_id"] = g.campus_id
    else:
        geometry["metres_per_minute"] = g.metres_per_minute
    kind = g.kind
    orders = []
    for o in scenario.orders:
        item: dict[str, Any] = {
            "id": o.id,
            "placed_s": o.placed_s,
            "merchant": o.merchant.to_json(kind),
            "customer": o.customer.to_json(kind),
            "ready_s": o.ready_s,
            "promised_s": o.promised_s,
            "size": o.size,
            "pickup_service_s": o.pickup_service_s,
            "dropoff_service_s": o.dropoff_service_s,
        }
        if o.max_in_bag_s is not None:
            item["max_in_bag_s"] = o.max_in_bag_s
        if o.account:
            item["account"] = o.account
        if o.account_since_s is not None:
            item["account_since_s"] = o.account_since_s
        for name in ("merchant_id", "customer_id"):
            if getattr(o, name):
                item[name] = getattr(o, name)
        orders.append(item)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": scenario.name,
        "description": scenario.description,
        "geometry": geometry,
        "start_time": scenario.start_time,
        "speed_factor": scenario.speed_factor,
        "riders": [
            {
                "id": r.id,
                "shift_start_s": r.shift_start_s,
                "shift_end_s": r.shift_end_s,
                "position": r.position.to_json(kind),
                "mode": r.mode,
                "capacity": r.capacity,
            }
            for r in scenario.riders
        ],
        "orders": orders,
    }
    if scenario.extra:
        doc["extra"] = dict(scenario.extra)
    return doc


def dumps_scenario(scenario: Scenario) -> str:
    """JSON text with one rider or order per line (diffable, and errors can name lines)."""
    doc = scenario_to_dict(scenario)
    riders, orders = doc.pop("riders"), doc.pop("orders")
    head = json.dumps(doc, indent=2, ensure_ascii=False)[:-2]  # drop the closing "\n}"

    def block(name: str, items: list[dict[str, Any]]) -> str:
        rows = ",\n".join("    " + json.dumps(item, ensure_ascii=False) for item in items)
        return f'  "{name}": [\n{rows}\n  ]' if items else f'  "{name}": []'

    return head + ",\n" + block("riders", riders) + ",\n" + block("orders", orders) + "\n}\n"


def save_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write ``scenario`` as JSON to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_scenario(scenario), encoding="utf-8")
    return path


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    ScenarioError
        The file cannot be read, is not JSON, not this format or version, or a field is
        missing or invalid; the error names the file, the field and the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            "(file)", str(path), f"not UTF-8 text (byte {exc.start})", source=str(path)
        ) from None
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
        raise ScenarioError("(file)", str(path), f"cannot read it: {reason}") from None
    return loads_scenario(text, source=str(path))


def loads_scenario(text: str, *, source: str = "") -> Scenario:
    """Parse and validate scenario JSON text (see :func:`load_scenario`)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            "(file)", exc.msg, "not valid JSON", line=exc.lineno, source=source
        ) from None
    try:
        return scenario_from_dict(doc)
    except ScenarioError as exc:
        raise ScenarioError(
            exc.field, exc.value, exc.reason, line=_line_of(text, exc.field), source=source
        ) from None


def _line_of(text: str, path: str) -> int | None:
    """The line of the ``riders[k]``/``orders[k]`` item a field path points into, if any."""
    m = re.match(r"(riders|orders)\[(\d+)\]", path)
    lines = text.splitlines()
    if m is None:
        key = '"' + path.split(".")[0].split("[")[0] + '"'
        return next((i + 1 for i, line in enumerate(lines) if key in line), None)
    name, index = m.group(1), int(m.group(2))
    start = next((i for i, line in enumerate(lines) if f'"{name}"' in line), None)
    if start is None:
        return None
    # One item a line is how dumps_scenario writes; for other layouts count '"id"' keys.
    seen = -1
    for i in range(start, len(lines)):
        seen += lines[i].count('"id"')
        if seen >= index:
            return i + 1
    return None


def _get(obj: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise ScenarioError(f"{where}{key}", None, "missing")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ScenarioError(f"{where}{key}", value, f"must be {names}")
    return value


def _opt(
    obj: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any
) -> Any:
    return default if obj.get(key) is None else _get(obj, key, where, kind)


def _int(obj: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    value = (
        _get(obj, key, where, (int, float))
        if default is ...
        else _opt(obj, key, where, (int, float), default)
    )
    if value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        raise ScenarioError(f"{where}{key}", value, "must be a whole number of seconds")
    return int(value)


def _point(obj: Mapping[str, Any], key: str, where: str, geometry: str) -> Point:
    value = _get(obj, key, where, dict)
    a, b = ("lat", "lng") if geometry == "campus" else ("x", "y")
    return Point(
        float(_get(value, a, f"{where}{key}.", (int, float))),
        float(_get(value, b, f"{where}{key}.", (int, float))),
    )


def _objects(doc: Mapping[str, Any], key: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path prefix, item)`` of each object in the list ``doc[key]`` (a non-object is an
    error naming its index)."""
    for k, item in enumerate(_get(doc, key, "", list)):
        if not isinstance(item, dict):
            raise ScenarioError(f"{key}[{k}]", item, "must be an object")
        yield f"{key}[{k}].", item


def scenario_from_dict(doc: Any) -> Scenario:
    """Build and validate a scenario from its JSON document (see :func:`load_scenario`)."""
    if not isinstance(doc, dict):
        raise ScenarioError("(document)", type(doc).__name__, "must be a JSON object")
    fmt = _get(doc, "format", "", str)
    if fmt != FORMAT:
        raise ScenarioError("format", fmt, f"must be {FORMAT!r}")
    version = _get(doc, "version", "", int)
    if version != VERSION:
        raise ScenarioError("version", version, f"this reader knows version {VERSION}")
    g = _get(doc, "geometry", "", dict)
    kind = _get(g, "kind", "geometry.", str)
    if kind not in GEOMETRIES:
        raise ScenarioError("geometry.kind", kind, f"must be one of {GEOMETRIES}")
    geometry = Geometry(
        kind=kind,
        campus_id=_opt(g, "campus_id", "geometry.", str, ""),
        metres_per_minute=float(_opt(g, "metres_per_minute", "geometry.", (int, float), 0.0)),
    )
    riders = []
    for where, r in _objects(doc, "riders"):
        riders.append(
            ScenarioRider(
                id=_get(r, "id", where, str),
                shift_start_s=_int(r, "shift_start_s", where),
                shift_end_s=_int(r, "shift_end_s", where),
                position=_point(r, "position", where, kind),
                mode=_opt(r, "mode", where, str, "bike"),
                capacity=_int(r, "capacity", where, 4),
            )
        )
    orders = []
    for where, o in _objects(doc, "orders"):
        orders.append(
            ScenarioOrder(
                id=_get(o, "id", where, str),
                placed_s=_int(o, "placed_s", where),
                merchant=_point(o, "merchant", where, kind),
                customer=_point(o, "customer", where, kind),
                ready_s=_int(o, "ready_s", where),
                promised_s=_int(o, "promised_s", where),
                size=_int(o, "size", where, 1),
                pickup_service_s=_int(o, "pickup_service_s", where, 60),
                dropoff_service_s=_int(o, "dropoff_service_s", where, 60),
                max_in_bag_s=_int(o, "max_in_bag_s", where, None),
                account=_opt(o, "account", where, str, ""),
                merchant_id=_opt(o, "merchant_id", where, str, ""),
                customer_id=_opt(o, "customer_id", where, str, ""),
                account_since_s=_int(o, "account_since_s", where, None),
            )
        )
    extra = _opt(doc, "extra", "", dict, {})
    return Scenario(
        name=_get(doc, "name", "", str),
        geometry=geometry,
        riders=tuple(riders),
        orders=tuple(orders),
        start_time=_opt(doc, "start_time", "", str, "2026-01-01T11:00:00+00:00"),
        speed_factor=float(_opt(doc, "speed_factor", "", (int, float), 1.0)),
        description=_opt(doc, "description", "", str, ""),
        extra=extra,
    )


def orders_by_id(scenario: Scenario) -> dict[str, ScenarioOrder]:
    """The scenario's orders keyed by id."""
    return {o.id: o for o in scenario.orders}


def with_orders(scenario: Scenario, orders: Sequence[ScenarioOrder]) -> Scenario:
    """A copy of ``scenario`` with ``orders`` (sorted by placed time, then id)."""
    ordered = tuple(sorted(orders, key=lambda o: (o.placed_s, o.id)))
    return Scenario(
        name=scenario.name,
        geometry=scenario.geometry,
        riders=scenario.riders,
        orders=ordered,
        start_time=scenario.start_time,
        speed_factor=scenario.speed_factor,
        description=scenario.description,
        extra=scenario.extra,
    )
