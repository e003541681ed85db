"""The answer to a problem: routes with timed stops, unassigned orders with reasons, stats."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class StopKind(enum.Enum):
    """What happens at a stop."""

    PICKUP = "pickup"
    DROPOFF = "dropoff"


class UnassignedReason(enum.Enum):
    """Why an order is not in any route (partial success is data, not an error)."""

    #: No rider can reach the drop-off before ``due + max_lateness`` (or before its shift end).
    UNREACHABLE_IN_TIME = "unreachable_in_time"
    #: The order is larger than every rider's free capacity.
    CAPACITY = "capacity"
    #: The request has no rider at all (or none whose shift is still open).
    NO_RIDERS = "no_riders"
    #: Feasible alone, but not in a plan with the other orders (riders are full or busy).
    NO_FEASIBLE_INSERTION = "no_feasible_insertion"
    #: Serving it costs more than the unassigned penalty.
    NOT_PROFITABLE = "not_profitable"
    #: The service ran out of budget or capacity before it could consider the order.
    SHED = "shed"
    #: Held by the caller's storm guard for a person to review (never routed while held).
    QUARANTINED = "quarantined"
    #: Suspicious: only riders left over after the other orders may take it, and none could
    #: (:func:`solver.runtime.dispatch.solve`'s ``deferred``).
    DEPRIORITISED = "deprioritised"


class Engine(enum.Enum):
    """Which engine produced the plan."""

    ORTOOLS = "ortools"
    GREEDY = "greedy"
    #: Ruin-and-recreate search on the greedy plan (:mod:`solver.engines.improve`).
    RUIN_RECREATE = "ruin_recreate"
    #: Benchmark peers (bench/peers.py), so their plans go through the same checker.
    #: The service never answers with these.
    VROOM = "vroom"
    PYVRP = "pyvrp"


class ShedReason(enum.Enum):
    """Why an answer is the greedy plan (or the best one found) without a full search. The
    value is the label of the ``dispatch_shed_total{reason}`` metric."""

    #: Too little of the budget was left after the greedy plan to start a search.
    BUDGET_TOO_SMALL = "budget_too_small"
    #: No solver worker could start the search within the budget.
    WORKERS_BUSY = "workers_busy"
    #: The worker was still busy past the budget and the kill margin: it was killed.
    WORKER_OVERRUN = "worker_overrun"
    #: The worker died during the solve (it was replaced).
    WORKER_CRASHED = "worker_crashed"
    #: The search raised (e.g. OR-Tools found no solution in time).
    SEARCH_FAILED = "search_failed"
    #: No search engine takes this many orders with the configured search split.
    TOO_MANY_ORDERS = "too_many_orders"
    #: The circuit breaker is open after repeated worker failures.
    BREAKER_OPEN = "breaker_open"


@dataclass(frozen=True, slots=True)
class Shed:
    """A shed decision: the typed reason and a human-readable detail (numbers, worker ids)."""

    reason: ShedReason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


@dataclass(frozen=True, slots=True)
class Stop:
    """One timed visit of a route.

    Attributes
    ----------
    order_id, kind
        The order and whether this is its pickup or drop-off.
    location
        Location index into the problem's matrices.
    arrival_s
        Arrival time (s).
    start_s
        Service start (s): ``max(arrival, ready)`` at a pickup, the arrival at a drop-off.
    departure_s
        Departure time (s): service start plus service time.
    lateness_s
        Seconds after the promised time at a drop-off (0 at pickups and when on time).
    load_after
        Bag load (capacity units) when leaving the stop.
    tentative
        Planned, not to be pushed to the rider yet: a stop of an open order that is not
        assigned to anyone and whose pickup the rider reaches later than
        ``params.dispatch_horizon_s`` from now (:func:`solver.stability.is_tentative`).
        Its rider may change at the next batch at no cost; its ETA is what the student is
        shown.
    """

    order_id: str
    kind: StopKind
    location: int
    arrival_s: int
    start_s: int
    departure_s: int
    lateness_s: int = 0
    load_after: int = 0
    tentative: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """A rider's ordered stops with totals (open route: ends at the last stop); ``zone`` is
    the zone it was planned in when the request was partitioned (0 otherwise);
    ``eta_delay_s`` sums how long its drop-offs start after the ETAs quoted to the students
    (``Order.quoted_dropoff_s``)."""

    rider_id: str
    stops: tuple[Stop, ...]
    travel_time_s: int = 0
    distance_m: float = 0.0
    waiting_s: int = 0
    lateness_s: int = 0
    zone: int = 0
    eta_delay_s: int = 0

    @property
    def end_s(self) -> int | None:
        """Departure from the last stop, or ``None`` for an empty route."""
        return self.stops[-1].departure_s if self.stops else None


@dataclass(frozen=True, slots=True)
class Unassigned:
    """An order left out of every route, with a reason and a human-readable detail."""

    order_id: str
    reason: UnassignedReason
    detail: str = ""


@dataclass(frozen=True)
class SolveStats:
    """How the plan was found.

    Attributes
    ----------
    engine
        The engine whose plan this is.
    shed
        ``None`` unless the answer fell back to greedy or to the best plan found so far
        (budget too small, workers busy, worker overrun or crash, breaker open): then the
        typed reason and a detail.
    objective
        Objective value of the plan in the parameters' cost units: the sum of
        :attr:`objective_terms`, computed from the timed routes by
        :func:`solver.routes.objective_terms` whatever the engine (the checker,
        :mod:`solver.check`, recomputes it independently to verify it).
    zones
        How many zones the request was split into (1: not partitioned).
    objective_terms
        The objective split by term: ``travel``, ``distance``, ``waiting``, ``lateness``,
        ``delivery`` (click-to-door time, weighted by
        :attr:`~solver.params.SolverParams.delivery_time_weight`), ``unassigned``,
        ``vehicles``.
    phase_s
        Wall-clock seconds per phase, e.g. ``greedy``, ``model_build``, ``first_solution``,
        ``search``, ``total``.
    late_orders
        Number of routed orders dropped off after their promised time.
    reassigned
        Assigned orders (``Order.assigned_rider_id``) the plan moves off their rider: to
        another rider or out of the plan (each priced ``params.reassignment_cost``).
    """

    engine: Engine
    shed: Shed | None = None
    objective: float = 0.0
    objective_terms: dict[str, float] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)
    late_orders: int = 0
    zones: int = 1
    reassigned: int = 0

    @property
    def shed_reason(self) -> str:
        """The shed decision as text (``reason: detail``), empty when not shed."""
        return "" if self.shed is None else str(self.shed)


@dataclass(frozen=True)
class Plan:
    """Routes per rider, unassigned orders, and stats. Every order appears exactly once."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    stats: SolveStats

    def route_of(self, rider_id: str) -> Route | None:
        """The route of ``rider_id``, if the plan has one."""
        return next((r for r in self.routes if r.rider_id == rider_id), None)

    @property
    def num_routed(self) -> int:
        """Orders that have a drop-off in some route."""
        return sum(1 for r in self.routes for s in r.stops if s.kind is StopKind.DROPOFF)

    def summary(self) -> str:
        """A short human-readable account of the plan."""
        used = [r for r in self.routes if r.stops]
        lines = [
            f"engine {self.stats.engine.value}"
            + (f" (shed: {self.stats.shed_reason})" if self.stats.shed_reason else ""),
            f"objective {self.stats.objective:.1f}  "
            + "  ".join(f"{k}={v:.1f}" for k, v in self.stats.objective_terms.items()),
            f"routed {self.num_routed} orders on {len(used)} riders, "
            f"unassigned {len(self.unassigned)}, late {self.stats.late_orders}"
            + (f", reassigned {self.stats.reassigned}" if self.stats.reassigned else ""),
            f"travel {sum(r.travel_time_s for r in used):.0f} s, "
            f"distance {sum(r.distance_m for r in used):.0f} m",
            "phases " + "  ".join(f"{k}={v * 1000:.1f}ms" for k, v in self.stats.phase_s.items()),
        ]
        reasons: dict[str, int] = {}
        for u in self.unassigned:
            reasons[u.reason.value] = reasons.get(u.reason.value, 0) + 1
        if reasons:
            lines.append(
                "unassigned by reason: " + ", ".join(f"{k}={v}" for k, v in reasons.items())
            )
        return "\n".join(lines)
