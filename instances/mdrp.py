"""The MDRPLIB reader: Grubhub meal-delivery instances (Reyes et al.) as plain typed records.

An instance is a folder of tab-separated tables, a header line each: ``couriers.txt``,
``orders.txt``, ``restaurants.txt`` and ``instance_parameters.txt`` (one row of values);
``instance_characteristics.txt`` is free text and not read. Times are in minutes in the files
and whole seconds here; coordinates are metres on a plane. Blank lines are skipped (but counted
for line numbers), extra columns are ignored, and every malformed value raises a
:class:`MdrpFormatError` naming the file, the line and the column.

The records are the files' values, checked but not interpreted: turning them into a replayable
scenario (clamping ready times, promising delivery times, choosing capacities and modes) is
:func:`scenarios.mdrp.scenario_from_mdrp`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from solver.model import ProblemError

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


class MdrpFormatError(ProblemError):
    """A malformed MDRPLIB instance: names the file, the line and the column at fault.

    The message reads ``<file>:<line>: <column>=<value>: <reason>``.

    Attributes
    ----------
    field
        The column (or ``folder``, a file name for a missing file, ``(header)``, ``(row)``).
    value
        The offending value.
    reason
        What is wrong with it.
    line
        1-based line in the file, or ``None`` (the file or folder as a whole).
    source
        The file (or folder), or ``""``.
    """


@dataclass(frozen=True, slots=True)
class MdrpParameters:
    """The instance parameters (times in whole seconds).

    Attributes
    ----------
    metres_per_minute
        Courier speed (``> 0``).
    pickup_service_s, dropoff_service_s
        Service times at the restaurant and at the customer.
    target_click_to_door_s
        Targeted time from placement to delivery (``> 0``).
    max_click_to_door_s
        Maximum time from placement to delivery (``>= target``).
    pay_per_order, guaranteed_pay_per_hour
        Courier pay.
    """

    metres_per_minute: float
    pickup_service_s: int
    dropoff_service_s: int
    target_click_to_door_s: int
    max_click_to_door_s: int
    pay_per_order: float
    guaranteed_pay_per_hour: float


@dataclass(frozen=True, slots=True)
class MdrpRestaurant:
    """A restaurant: id, position (m) and its line in ``restaurants.txt``."""

    id: str
    x: float
    y: float
    line: int


@dataclass(frozen=True, slots=True)
class MdrpCourier:
    """A courier: id, start position (m), shift ``[on_s, off_s)`` (``off_s > on_s >= 0``) and
    its line in ``couriers.txt``."""

    id: str
    x: float
    y: float
    on_s: int
    off_s: int
    line: int


@dataclass(frozen=True, slots=True)
class MdrpOrder:
    """An order: id, customer position (m), placement time (``>= 0``), its restaurant's id, its
    ready time as in the file (it may precede the placement) and its line in ``orders.txt``."""

    id: str
    x: float
    y: float
    placed_s: int
    restaurant: str
    ready_s: int
    line: int


@dataclass(frozen=True)
class MdrpInstance:
    """An MDRPLIB instance as read, every table in file order.

    Attributes
    ----------
    name
        The folder's name.
    folder
        The folder.
    parameters
        The instance parameters.
    restaurants
        Restaurants by id (read-only), in file order.
    couriers
        Couriers (at least one).
    orders
        Orders; each names a restaurant of :attr:`restaurants`.
    """

    name: str
    folder: Path
    parameters: MdrpParameters
    restaurants: Mapping[str, MdrpRestaurant]
    couriers: tuple[MdrpCourier, ...]
    orders: tuple[MdrpOrder, ...]


@dataclass(frozen=True, slots=True)
class _Row:
    """One data line of a table: its 1-based line number and its values by column."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Table:
    """A tab-separated file with a header line, read for the columns the reader needs."""

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

    def error(self, row: _Row | None, column: str, value: object, reason: str) -> MdrpFormatError:
        """A :class:`MdrpFormatError` naming this file, the row's line and ``column``."""
        return MdrpFormatError(
            column, value, reason, line=row.line if row else None, source=str(self.path)
        )


def _read_table(path: Path, columns: Sequence[str]) -> _Table:
    """Read the tab-separated ``path``; its header must name every one of ``columns``.

    Blank lines are skipped (but counted for line numbers); extra columns are ignored.
    """
    if not path.is_file():
        raise MdrpFormatError(path.name, str(path), "missing file", source=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MdrpFormatError(
            path.name, str(path), f"unreadable: {exc}", source=str(path)
        ) from None
    lines = text.splitlines()
    numbered = [(k + 1, line) for k, line in enumerate(lines) if line.strip()]
    if not numbered:
        expected = "\t".join(columns)
        raise MdrpFormatError(
            "(header)", "", f"empty file; expected a header {expected!r}", line=1, source=str(path)
        )
    header_line, header_text = numbered[0]
    header = [name.strip() for name in header_text.split("\t")]
    for column in columns:
        if column not in header:
            raise MdrpFormatError(
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
                raise MdrpFormatError(
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


def _read_parameters(path: str | Path) -> MdrpParameters:
    """Read ``instance_parameters.txt``: a header and exactly one row of values.

    Raises
    ------
    MdrpFormatError
        A missing file or column, a missing, non-numeric or out-of-range value, or not exactly
        one row.
    """
    path = Path(path)
    table = _read_table(path, PARAMETER_COLUMNS)
    if len(table.rows) != 1:
        row = table.rows[1] if table.rows else None
        line = row.line if row else 2
        raise MdrpFormatError(
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
    return MdrpParameters(
        metres_per_minute=speed,
        pickup_service_s=table.seconds(row, "pickup service minutes"),
        dropoff_service_s=table.seconds(row, "dropoff service minutes"),
        target_click_to_door_s=target,
        max_click_to_door_s=maximum,
        pay_per_order=table.number(row, "pay per order"),
        guaranteed_pay_per_hour=table.number(row, "guaranteed pay per hour"),
    )


def read_mdrp(folder: str | Path) -> MdrpInstance:
    """Read one MDRPLIB instance folder.

    The files are read in the order parameters, restaurants, couriers, orders; the first error
    found is raised.

    Parameters
    ----------
    folder
        The instance folder, holding ``couriers.txt``, ``orders.txt``, ``restaurants.txt`` and
        ``instance_parameters.txt`` (tab-separated, a header line each).

    Returns
    -------
    MdrpInstance
        The instance, named after the folder.

    Raises
    ------
    MdrpFormatError
        A missing folder or file, a missing column, a missing, non-numeric or out-of-range
        value, a duplicate id, no courier, a shift ending before it starts or an order naming
        an unknown restaurant; the error names the file (``source``), the line and the column
        (``field``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise MdrpFormatError("folder", str(root), "not a directory", source=str(root))
    parameters = _read_parameters(root / PARAMETERS)

    table = _read_table(root / RESTAURANTS, RESTAURANT_COLUMNS)
    restaurants: dict[str, MdrpRestaurant] = {}
    seen: dict[str, int] = {}
    for row in table.rows:
        ident = _unique(table, row, "restaurant", seen)
        restaurants[ident] = MdrpRestaurant(
            ident, table.number(row, "x"), table.number(row, "y"), row.line
        )

    table = _read_table(root / COURIERS, COURIER_COLUMNS)
    if not table.rows:
        raise MdrpFormatError(
            "courier",
            None,
            "no couriers: a scenario needs at least one",
            line=2,
            source=str(table.path),
        )
    couriers = []
    seen = {}
    for row in table.rows:
        ident = _unique(table, row, "courier", seen)
        start = table.seconds(row, "on_time")
        end = table.seconds(row, "off_time")
        if end <= start:
            raise table.error(
                row,
                "off_time",
                row.values["off_time"],
                f"must be after on_time ({row.values['on_time']})",
            )
        x, y = table.number(row, "x"), table.number(row, "y")
        couriers.append(MdrpCourier(ident, x, y, start, end, row.line))

    table = _read_table(root / ORDERS, ORDER_COLUMNS)
    orders = []
    seen = {}
    for row in table.rows:
        ident = _unique(table, row, "order", seen)
        restaurant = table.text(row, "restaurant")
        if restaurant not in restaurants:
            raise table.error(
                row, "restaurant", restaurant, f"unknown restaurant (not in {RESTAURANTS})"
            )
        placed = table.seconds(row, "placement_time")
        ready = table.seconds(row, "ready_time", minimum=-math.inf)
        x, y = table.number(row, "x"), table.number(row, "y")
        orders.append(MdrpOrder(ident, x, y, placed, restaurant, ready, row.line))

    return MdrpInstance(
        name=root.resolve().name,
        folder=root,
        parameters=parameters,
        restaurants=MappingProxyType(restaurants),
        couriers=tuple(couriers),
        orders=tuple(orders),
    )


def list_mdrp_instances(root: str | Path) -> list[Path]:
    """The MDRPLIB instance folders under ``root``, sorted.

    A folder is an instance if it holds any of :data:`REQUIRED_FILES` (so a folder missing one
    is listed, and fails on reading rather than silently disappearing); ``root`` itself counts,
    and folders are searched at any depth.

    Raises
    ------
    MdrpFormatError
        ``root`` is not a directory.
    """
    base = Path(root)
    if not base.is_dir():
        raise MdrpFormatError("root", str(base), "not a directory", source=str(base))
    found = {path.parent for name in REQUIRED_FILES for path in base.rglob(name) if path.is_file()}
    return sorted(found)
