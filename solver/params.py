"""Solver parameters: objective weights, search settings and budgets, validated, from TOML.

A parameter file has a ``[solver]`` table (other tables belong to other components and are
ignored here)::

    [solver]
    travel_cost_per_s = 1.0
    lateness_cost_per_s = 10.0
    max_lateness_s = 1800
    unassigned_penalty = 100000
    metaheuristic = "GUIDED_LOCAL_SEARCH"
    default_budget_s = 1.0

Every field is documented on :class:`SolverParams` with its unit and default. A bad value raises
:class:`ParamsError` naming the field, the value and the reason.

Settings as text live here too, for every component that reads or writes them (the service's
configuration, its admin API, the tuner): a ``key=value`` text read by the setting's type
(:func:`parse_value`, :func:`parse_param`) and TOML literals and documents
(:func:`format_value`, :func:`format_toml`). :data:`DEFAULT_CONFIG` is the shipped file.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METAHEURISTICS = (
    "GUIDED_LOCAL_SEARCH",
    "TABU_SEARCH",
    "SIMULATED_ANNEALING",
    "GREEDY_DESCENT",
    "GENERIC_TABU_SEARCH",
)
OBJECTIVES = ("delivery", "hierarchical")
#: The shipped configuration file (``[solver]``, ``[server]`` and ``[guard]`` tables): package
#: data of :mod:`campus_dispatch` (``config/dispatch.toml`` in the repository links to it), so an
#: installed wheel finds it next to this package as a source tree does.
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "campus_dispatch" / "data" / "dispatch.toml"


class ParamsError(ValueError):
    """An invalid parameter: names the field, the value and the reason."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"solver.{field}={value!r}: {reason}")


@dataclass(frozen=True, slots=True)
class SolverParams:
    """Objective weights, search settings and budgets of one solve.

    Attributes
    ----------
    objective
        ``"delivery"`` (default): travel + lateness + unassigned penalties, weights below.
        ``"hierarchical"``: benchmark mode, minimise riders used first, then total distance:
        set ``vehicle_fixed_cost`` large (it must stay below ``unassigned_penalty``) and price
        distance with ``distance_cost_per_m``; due times are then hard (no lateness).
    travel_cost_per_s
        Cost per second of riding (travel time, not waiting). Default 1.0.
    distance_cost_per_m
        Cost per metre ridden. Default 0.0.
    waiting_cost_per_s
        Cost per second a rider waits at a merchant for food. Default 0.0.
    lateness_cost_per_s
        Cost per second a drop-off arrives after its promised time (soft). Default 10.0.
    delivery_time_cost_per_s
        Cost per second from the problem's "now" to the start of each drop-off (onboard orders
        included): prices getting food to the door sooner, i.e. the sum of click-to-door
        times, even for orders that will be on time. Without it, a plan may bundle orders
        that a nearby idle rider would deliver minutes sooner. Default 1.0. Not part of the
        hierarchical objective (see :attr:`delivery_time_weight`). OR-Tools cannot price it
        next to lateness (one soft bound per stop): with both, its plans pay it only when
        plans are compared.
    max_lateness_s
        Hard cap on lateness for open orders (s): an open order that cannot be dropped off
        within ``due_s + max_lateness_s`` is left unassigned. Default 1800.
    unassigned_penalty
        Cost of leaving one open order unassigned. Default 100000 (dominates travel costs).
    vehicle_fixed_cost
        Cost per rider that gets at least one stop. Default 0 (benchmarks set it large).
    metaheuristic
        OR-Tools local search metaheuristic, one of :data:`METAHEURISTICS`.
    default_budget_s
        Wall-clock budget (s) of a solve when the caller gives none. Default 1.0.
    min_search_s
        Below this much budget left after the greedy plan (s), OR-Tools is not started and the
        greedy plan is returned. Default 0.05.
    kill_margin_s
        A worker still busy ``kill_margin_s`` after its budget is killed and replaced, and the
        greedy plan is returned, flagged. Default 0.25.
    ortools_max_orders
        Above this many open orders, OR-Tools is not started (its model takes too long to
        build); ruin-and-recreate still searches. Default 400.
    ruin_recreate_share
        Share of the search time (the budget left after the greedy plan) given to
        ruin-and-recreate before OR-Tools takes over from its plan: 1 = ruin-and-recreate
        only, 0 = OR-Tools only. Default 1.0 (see the closing notes of the solver benchmark).
    ruin_orders
        Average number of orders one ruin-and-recreate move takes out (SISR's c-bar), at least
        1. Default 5: best on the meal batches at 0.2 s (3-4 orders per rider); the
        benchmark's long Li & Lim / Solomon routes do better with about 15.
    anneal_start_temp, anneal_end_temp
        Temperatures of the ruin-and-recreate annealing at its start and end, per mean cost
        per routed order (it falls geometrically in between; end > 0, start >= end). Defaults
        0.1 and 0.002: on meal batches at 0.2 s higher ones measured 1-2 % worse; the
        benchmarks' distance objective does better with 3 and 0.1.
    partition_min_orders
        From this many open orders on, a request with point geometry (every service request)
        is split into zones solved apart and merged (:mod:`solver.runtime.partition`). Default 400.
    zone_orders
        About how many open orders one zone gets (at least one zone per solver worker).
        Default 120.
    reassignment_cost
        Cost of moving one assigned order (``Order.assigned_rider_id``: on a rider's phone, not
        accepted yet) away from its rider, to another rider or out of the plan: a notification
        to two riders and a changed ETA for the student. In the units of the other costs
        (travel and delivery time cost 1 per second by default, so 100 means a move must save
        more than 100 s of riding and delivery time). Default 100.
    freeze_horizon_s
        An assigned order whose planned pickup (``Order.assigned_pickup_s``) is within this
        many seconds of now stays on its rider whatever it costs (treated as committed).
        0: none is frozen. Default 300.
    dispatch_horizon_s
        An open order not assigned to anyone yet is planned (and quoted an ETA) at once, but
        its stops are marked *tentative*, not to be pushed to the rider, while the rider would
        reach its pickup later than this many seconds from now: riders get an order when it is
        time to go for it, and until then the plan may give it to another rider at no cost.
        0: every planned order is pushed at once. Default 300: with the default freeze
        horizon, an order is pushed when its rider should leave for it and stays there.
    eta_delay_cost_per_s
        Cost per second a drop-off starts after the ETA quoted to the student
        (``Order.quoted_dropoff_s``): keeps the ETAs shown holding, so a new order is not
        slipped in ahead of quoted ones unless it pays. Not modelled inside OR-Tools (one soft
        bound per stop, taken by lateness): its plans pay it when plans are compared.
        Default 2.0.
    cost_scale
        Multiplier applied to costs before rounding to integers for OR-Tools. Default 1.
        Choose it so that every weight times ``cost_scale`` is a whole number (a weight of
        0.5 at scale 1 rounds to 0 inside OR-Tools).
    """

    objective: str = "delivery"
    travel_cost_per_s: float = 1.0
    distance_cost_per_m: float = 0.0
    waiting_cost_per_s: float = 0.0
    lateness_cost_per_s: float = 10.0
    delivery_time_cost_per_s: float = 1.0
    max_lateness_s: int = 1800
    unassigned_penalty: float = 100_000.0
    vehicle_fixed_cost: float = 0.0
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    default_budget_s: float = 1.0
    min_search_s: float = 0.05
    kill_margin_s: float = 0.25
    ortools_max_orders: int = 400
    ruin_recreate_share: float = 1.0
    ruin_orders: float = 5.0
    anneal_start_temp: float = 0.1
    anneal_end_temp: float = 0.002
    partition_min_orders: int = 400
    zone_orders: int = 120
    reassignment_cost: float = 100.0
    freeze_horizon_s: int = 300
    dispatch_horizon_s: int = 300
    eta_delay_cost_per_s: float = 2.0
    cost_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ParamsError("objective", self.objective, f"must be one of {OBJECTIVES}")
        if self.metaheuristic not in METAHEURISTICS:
            raise ParamsError(
                "metaheuristic", self.metaheuristic, f"must be one of {METAHEURISTICS}"
            )
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type in ("float", "int"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ParamsError(spec.name, value, f"must be a number ({spec.type})")
                if spec.type == "int" and not float(value).is_integer():
                    raise ParamsError(spec.name, value, "must be a whole number")
                if not math.isfinite(value) or value < 0:
                    raise ParamsError(spec.name, value, "must be finite and >= 0")
        if self.default_budget_s <= 0:
            raise ParamsError("default_budget_s", self.default_budget_s, "must be > 0")
        if self.ruin_recreate_share > 1:
            raise ParamsError(
                "ruin_recreate_share", self.ruin_recreate_share, "must be between 0 and 1"
            )
        if self.cost_scale <= 0:
            raise ParamsError("cost_scale", self.cost_scale, "must be > 0")
        if self.zone_orders < 1:
            raise ParamsError("zone_orders", self.zone_orders, "must be >= 1")
        if self.ruin_orders < 1:
            raise ParamsError("ruin_orders", self.ruin_orders, "must be >= 1")
        if self.anneal_end_temp <= 0:
            raise ParamsError("anneal_end_temp", self.anneal_end_temp, "must be > 0")
        if self.anneal_start_temp < self.anneal_end_temp:
            raise ParamsError(
                "anneal_start_temp",
                self.anneal_start_temp,
                f"must be >= anneal_end_temp ({self.anneal_end_temp})",
            )
        if self.objective == "hierarchical" and self.unassigned_penalty <= self.vehicle_fixed_cost:
            raise ParamsError(
                "unassigned_penalty",
                self.unassigned_penalty,
                f"must exceed vehicle_fixed_cost ({self.vehicle_fixed_cost}) in hierarchical mode,"
                " or leaving every order out is cheaper than using a rider",
            )

    @property
    def delivery_time_weight(self) -> float:
        """The delivery-time cost in force: ``delivery_time_cost_per_s``, or 0 in
        hierarchical mode (riders, then distance)."""
        return 0.0 if self.objective == "hierarchical" else self.delivery_time_cost_per_s

    def replace(self, **changes: Any) -> SolverParams:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SolverParams:
        """Build from a mapping such as the ``[solver]`` table of a TOML file."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ParamsError(str(key), values[key], "unknown parameter")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (TOML-ready)."""
        return dataclasses.asdict(self)


def load_params(path: str | Path) -> SolverParams:
    """Read the ``[solver]`` table of a TOML file; missing fields take their defaults."""
    with Path(path).open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ParamsError("<file>", str(path), f"not valid TOML: {exc}") from exc
    table = data.get("solver", {})
    if not isinstance(table, dict):
        raise ParamsError("<table>", table, "[solver] must be a table")
    return SolverParams.from_mapping(table)


# ------------------------------------------------------------------ settings as text, TOML
def normalize_value(kind: str, value: Any) -> Any:
    """Whole numbers given to a ``float`` setting as floats, whole floats given to an ``int``
    setting as ints (TOML writes ``30`` and ``30.0`` differently; settings should not care)."""
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_value(key: str, raw: str, kind: str) -> Any:
    """The value of setting ``key`` (of type name ``kind``: ``"float"``, ``"int"``, ``"str"``,
    …) from text, read as a TOML value (``30``, ``0.5``, ``true``, ``"TABU_SEARCH"``,
    ``["tiny"]``); a text setting also takes the bare text. :class:`ParamsError` (field ``key``)
    when the text is not a value of that type."""
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if kind != "str":
            raise ParamsError(key, raw, f"not a valid {kind} value") from None
        value = raw
    return normalize_value(kind, value)


def param_types() -> dict[str, str]:
    """Each solver parameter's type name."""
    return {f.name: str(f.type) for f in dataclasses.fields(SolverParams)}


def parse_param(name: str, raw: str) -> Any:
    """The value of solver parameter ``name`` from text (see :func:`parse_value`);
    :class:`ParamsError` for an unknown name or a bad value."""
    types = param_types()
    if name not in types:
        raise ParamsError(name, raw, "unknown parameter")
    return parse_value(name, raw, types[name])


def format_value(value: Any) -> str:
    """A TOML literal of a setting's value (text, number, boolean or list of text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def format_toml(tables: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """A TOML document of ``tables`` (``{"solver": {...}, ...}``), ``header`` as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        lines += [f"{key} = {format_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"
