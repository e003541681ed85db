"""The MDRPLIB importer: Grubhub meal-delivery instances (Reyes et al.) as euclidean scenarios."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scenarios.model import (
    MODES,
    Geometry,
    Point,
    Scenario,
    ScenarioError,
    ScenarioOrder,
    ScenarioRider,
)

COURIERS = "couriers.txt"
ORDERS = "orders.txt"
RESTAURANTS = "restaurants.txt"
PARAMETERS = "instance_parameters.txt"
#: The files an instance folder must hold (``instance_characteristics.txt`` is free text and
#: not read).
REQUIRED_FILES = (COURIERS, ORDERS, RESTAURANTS, PARAMETERS)

COURIER_COLUMNS = ("courier", "x", "y", "on_time", "off_time")
ORDER_COLUMNS = ("order", "x", "y", "placement_time", "restaurant", "ready_time")
RESTAURANT_COLUMNS = ("restaurant", "x", "y")
PARAMETER_COLUMNS = (
    "meters_per_minute",
    "pickup service minutes",
    "dropoff service minutes",
    "target click-to-door",
    "maximum click-to-door",
    "pay per order",
    "guaranteed pay per hour",
)


@dataclass(frozen=True, slots=True)
class _Row:
    """One data line of a table: its 1-based line number and its values by column."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Table:
    """A tab-separated file with a header line, read for the columns the importer needs."""

    path: Path
    rows: list[_Row]

    def text(self, row: _Row, column: str) -> str:
        """The non-empty text of ``column`` in ``row``."""
        value = row.values[column]
        if not value:
            raise self.error(row, column, value, "empty value")
        return value

    def number(self, row: _Row, column: str) -> float:
        """The finite number in ``column`` of ``row``."""
        text = row.values[column]
        try:
            value = float(text)
        except ValueError:
            raise self.error(row, column, text, "not a number") from None
        if not math.isfinite(value):
            raise self.error(row, column, text, "must be a finite number")
        return value

    def seconds(self, row: _Row, column: str, *, minimum: float = 0.0) -> int:
        """``column`` of ``row``, a time in minutes ``>= minimum``, as whole seconds."""
        value = self.number(row, column)
        if value < minimum:
            raise self.error(row, column, row.values[column], f"must be >= {minimum:g} minutes")
        if not math.isfinite(value * 60):
            raise self.error(row, column, row.values[column], "too large")
        return round(value * 60)

    def error(self, row: _Row | None, column: str, value: object, reason: str) -> ScenarioError:
        """A :class:`ScenarioError` naming this file, the row's line and ``column``."""
        return ScenarioError(
            column, value, reason, line=row.line if row else None, source=str(self.path)
        )


def _read_table(path: Path, columns: Sequence[str]) -> _Table:
    """Read the tab-separated ``path``; its header must name every one of ``columns``.

    Blank lines are skipped (but counted for line numbers); extra columns are ignored.
    """
    if not path.is_file():
        raise ScenarioError(path.name, str(path), "missing file", source=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path.name, str(path), f"unreadable: {exc}", source=str(path)) from None
    lines = text.splitlines()
    numbered = [(k + 1, line) for k, line in enumerate(lines) if line.strip()]
    if not numbered:
        expected = "\t".join(columns)
        raise ScenarioError(
            "(header)", "", f"empty file; expected a header {expected!r}", line=1, source=str(path)
        )
    header_line, header_text = numbered[0]
    header = [name.strip() for name in header_text.split("\t")]
    for column in columns:
        if column not in header:
            raise ScenarioError(
                column,
                None,
                f"missing column; the header has {header}",
                line=header_line,
                source=str(path),
            )
    where = {column: header.index(column) for column in columns}
    rows = []
    for number, line in numbered[1:]:
        parts = [part.strip() for part in line.split("\t")]
        for column in columns:
            if where[column] >= len(parts):
                raise ScenarioError(
                    column,
                    None,
                    f"missing value: the line has {len(parts)} of {len(header)} fields",
                    line=number,
                    source=str(path),
                )
        rows.append(_Row(number, {column: parts[where[column]] for column in columns}))
    return _Table(path, rows)


def _unique(table: _Table, row: _Row, column: str, seen: dict[str, int]) -> str:
    """The id in ``column`` of ``row``, which must not repeat an earlier one in ``seen``."""
    ident = table.text(row, column)
    if ident in seen:
        raise table.error(row, column, ident, f"duplicate id (first on line {seen[ident]})")
    seen[ident] = row.line
    return ident


@dataclass(frozen=True, slots=True)
class _Parameters:
    """The instance parameters (times in seconds)."""

    metres_per_minute: float
    pickup_service_s: int
    dropoff_service_s: int
    target_click_to_door_s: int
    max_click_to_door_s: int
    pay_per_order: float
    guaranteed_pay_per_hour: float


def _read_parameters(path: Path) -> _Parameters:
    table = _read_table(path, PARAMETER_COLUMNS)
    if len(table.rows) != 1:
        row = table.rows[1] if table.rows else None
        line = row.line if row else 2
        raise ScenarioError(
            "(row)",
            len(table.rows),
            "expected exactly one row of values under the header",
            line=line,
            source=str(path),
        )
    row = table.rows[0]
    speed = table.number(row, "meters_per_minute")
    if speed <= 0:
        raise table.error(row, "meters_per_minute", row.values["meters_per_minute"], "must be > 0")
    target = table.seconds(row, "target click-to-door")
    if target <= 0:
        raise table.error(
            row, "target click-to-door", row.values["target click-to-door"], "must be > 0"
        )
    maximum = table.seconds(row, "maximum click-to-door")
    if maximum < target:
        raise table.error(
            row,
            "maximum click-to-door",
            row.values["maximum click-to-door"],
            f"must be >= target click-to-door ({row.values['target click-to-door']})",
        )
    return _Parameters(
        metres_per_minute=speed,
        pickup_service_s=table.seconds(row, "pickup service minutes"),
        dropoff_service_s=table.seconds(row, "dropoff service minutes"),
        target_click_to_door_s=target,
        max_click_to_door_s=maximum,
        pay_per_order=table.number(row, "pay per order"),
        guaranteed_pay_per_hour=table.number(row, "guaranteed pay per hour"),
    )


def scenario_from_mdrp(
    folder: str | Path,
    *,
    capacity: int = 4,
    mode: str = "bike",
    name: str | None = None,
) -> Scenario:
    """Import one MDRPLIB instance folder as a euclidean :class:`Scenario`.

    Couriers become riders (shift from ``on_time``/``off_time``, position ``(x, y)``), orders
    are picked up at their restaurant's point and dropped at ``(x, y)``; minutes become whole
    seconds. An order is promised ``target click-to-door`` after it is placed; a ready time
    before the placement is clamped to the placement (and counted in
    ``extra["clamped_ready"]``).

    Parameters
    ----------
    folder
        The instance folder, holding ``couriers.txt``, ``orders.txt``, ``restaurants.txt`` and
        ``instance_parameters.txt`` (tab-separated, a header line each).
    capacity
        Bag capacity of every rider (MDRPLIB has no capacities).
    mode
        Travel mode of every rider (one of :data:`scenarios.model.MODES`).
    name
        Scenario name; default the folder's name.

    Returns
    -------
    Scenario
        Geometry ``euclidean`` at the instance's ``meters_per_minute``; orders sorted by
        ``(placed_s, id)``; ``extra`` holds ``source``, ``instance`` (the folder's name),
        ``target_click_to_door_s``, ``max_click_to_door_s``, ``pay_per_order``,
        ``guaranteed_pay_per_hour`` and ``clamped_ready``.

    Raises
    ------
    ScenarioError
        A missing folder or file, a missing column, a missing, non-numeric or out-of-range
        value, a duplicate id or an order naming an unknown restaurant; the error names the
        file (``source``), the line and the column (``field``).
    """
    if mode not in MODES:
        raise ScenarioError("mode", mode, f"must be one of {MODES}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ScenarioError("capacity", capacity, "must be an integer >= 1")
    root = Path(folder)
    if not root.is_dir():
        raise ScenarioError("folder", str(root), "not a directory", source=str(root))
    instance = root.resolve().name
    params = _read_parameters(root / PARAMETERS)

    restaurants = _read_table(root / RESTAURANTS, RESTAURANT_COLUMNS)
    places: dict[str, Point] = {}
    seen: dict[str, int] = {}
    for row in restaurants.rows:
        ident = _unique(restaurants, row, "restaurant", seen)
        places[ident] = Point(restaurants.number(row, "x"), restaurants.number(row, "y"))

    couriers = _read_table(root / COURIERS, COURIER_COLUMNS)
    if not couriers.rows:
        raise ScenarioError(
            "courier",
            None,
            "no couriers: a scenario needs at least one",
            line=2,
            source=str(couriers.path),
        )
    riders = []
    seen = {}
    for row in couriers.rows:
        ident = _unique(couriers, row, "courier", seen)
        start = couriers.seconds(row, "on_time")
        end = couriers.seconds(row, "off_time")
        if end <= start:
            raise couriers.error(
                row,
                "off_time",
                row.values["off_time"],
                f"must be after on_time ({row.values['on_time']})",
            )
        position = Point(couriers.number(row, "x"), couriers.number(row, "y"))
        riders.append(ScenarioRider(ident, start, end, position, mode, capacity))

    table = _read_table(root / ORDERS, ORDER_COLUMNS)
    orders: list[ScenarioOrder] = []
    clamped = 0
    seen = {}
    for row in table.rows:
        ident = _unique(table, row, "order", seen)
        restaurant = table.text(row, "restaurant")
        if restaurant not in places:
            raise table.error(
                row, "restaurant", restaurant, f"unknown restaurant (not in {RESTAURANTS})"
            )
        placed = table.seconds(row, "placement_time")
        ready = table.seconds(row, "ready_time", minimum=-math.inf)
        if ready < placed:
            ready = placed
            clamped += 1
        order = ScenarioOrder(
            id=ident,
            placed_s=placed,
            merchant=places[restaurant],
            customer=Point(table.number(row, "x"), table.number(row, "y")),
            ready_s=ready,
            promised_s=placed + params.target_click_to_door_s,
            size=1,
            pickup_service_s=params.pickup_service_s,
            dropoff_service_s=params.dropoff_service_s,
            merchant_id=restaurant,
        )
        orders.append(order)
    orders.sort(key=lambda o: (o.placed_s, o.id))  # as scenarios.model.with_orders

    scenario_name = instance if name is None else name
    description = (
        f"MDRPLIB instance {instance} (Grubhub meal delivery routing problem, Reyes et al.; "
        f"research use only): {len(riders)} couriers, {len(places)} restaurants, "
        f"{len(orders)} orders"
    )
    extra = {
        "source": "mdrplib",
        "instance": instance,
        "target_click_to_door_s": params.target_click_to_door_s,
        "max_click_to_door_s": params.max_click_to_door_s,
        "pay_per_order": params.pay_per_order,
        "guaranteed_pay_per_hour": params.guaranteed_pay_per_hour,
        "clamped_ready": clamped,
    }
    return Scenario(
        name=scenario_name,
        geometry=Geometry("euclidean", metres_per_minute=params.metres_per_minute),
        riders=tuple(riders),
        orders=tuple(orders),
        description=description,
        extra=extra,
    )


def list_mdrp_instances(root: str | Path) -> list[Path]:
    """The MDRPLIB instance folders under ``root``, sorted.

    A folder is an instance if it holds any of :data:`REQUIRED_FILES` (so a folder missing one
    is listed, and fails on import rather than silently disappearing); ``root`` itself counts,
    and folders are searched at any depth.

    Raises
    ------
    ScenarioError
        ``root`` is not a directory.
    """
    base = Path(root)
    if not base.is_dir():
        raise ScenarioError("root", str(base), "not a directory", source=str(base))
    found = {path.parent for name in REQUIRED_FILES for path in base.rglob(name) if path.is_file()}
    return sorted(found)
