"""Independent plan checker: recomputes every route from the problem and reports broken rules.

The checker is the reference for the rules in the :mod:`solver.model` docstring. It never trusts
an engine's numbers and shares no code with the engines (it does not import
:mod:`solver.routes`): every arrival, service start, departure, lateness and load is recomputed
with a plain loop from the problem's orders, riders and travel matrices, then compared with the
plan's numbers, and every hard rule is checked on the recomputed times.

Interpretations fixed here (the model docstring leaves them open):

* The rules that do not apply to pinned (committed / onboard) orders' stops are the lateness cap,
  the hierarchical hard due time, the time-in-bag limit, the shift end and ``pickup_latest_s``
  (the hard rules the model lists for *open* orders). Capacity, precedence and the rider always
  apply.
* A closed route's end arrival must be no later than the rider's ``shift_end_s`` when the route
  serves at least one open order (a route of pinned orders only is reported, not rejected).
* A start-loaded order's time in bag runs from the rider's departure from its start.
* An open order assigned to a rider of the problem (``assigned_rider_id``) whose planned pickup
  (``assigned_pickup_s``, else ``max(ready_s, now_s)``) is within ``params.freeze_horizon_s``
  of now is held to the rules of a committed order on that rider (the freeze; never a
  start-loaded order, nor one larger than that rider's capacity). Every assigned
  order not served by its assigned rider (another rider, or none) costs
  ``params.reassignment_cost``: the ``reassignment`` term.
* A stop is ``tentative`` exactly when its order is open, assigned to no one, and its pickup's
  arrival is later than ``now + params.dispatch_horizon_s`` (a horizon of 0 marks none).
* A drop-off starting after the order's ``quoted_dropoff_s`` costs
  ``params.eta_delay_cost_per_s`` per second: the ``eta_delay`` term (any order state).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Plan, Route, StopKind

OBJECTIVE_REL_TOL = 1e-6
"""Relative tolerance on the objective and its terms (relative to ``max(1, |value|)``)."""

DISTANCE_TOL_M = 1e-6
"""Absolute tolerance (m, plus the same relative part) on route distances."""

TERM_NAMES = (
    "travel",
    "distance",
    "waiting",
    "lateness",
    "delivery",
    "unassigned",
    "vehicles",
    "reassignment",
    "eta_delay",
)
"""Objective terms, named as in :func:`solver.routes.objective_terms`."""


@dataclass(frozen=True)
class PlanCheck:
    """The verdict on a plan, with the objective recomputed from scratch.

    Attributes
    ----------
    violations
        One message per broken rule, naming the rider, order and stop and the numbers.
    objective
        The objective recomputed from the problem (in the parameters' cost units).
    terms
        The recomputed objective split by term (``travel``, ``distance``, ``waiting``,
        ``lateness``, ``delivery``, ``unassigned``, ``vehicles``, ``reassignment``,
        ``eta_delay``).
    late_orders
        Routed orders whose recomputed drop-off service starts after ``due_s``.
    """

    violations: tuple[str, ...]
    objective: float
    terms: dict[str, float] = field(default_factory=dict)
    late_orders: int = 0

    @property
    def ok(self) -> bool:
        """Whether the plan breaks no rule."""
        return not self.violations


class PlanInvalid(AssertionError):  # noqa: N818 (the name the callers use)
    """A plan broke at least one rule; the message lists every violation."""

    def __init__(self, check: PlanCheck) -> None:
        self.check = check
        lines = "\n".join(f"  - {v}" for v in check.violations)
        super().__init__(f"plan has {len(check.violations)} violation(s):\n{lines}")


@dataclass
class _Totals:
    """Recomputed totals of one route."""

    travel_s: int = 0
    distance_m: float = 0.0
    waiting_s: int = 0
    lateness_s: int = 0
    delivery_s: int = 0
    late_orders: int = 0
    eta_delay_s: int = 0


def _close(a: float, b: float, rel: float, absolute: float = 0.0) -> bool:
    return abs(a - b) <= absolute + rel * max(1.0, abs(b))


def _check_route(
    problem: Problem,
    params: SolverParams,
    rider: Rider,
    route: Route,
    violations: list[str],
) -> _Totals:
    """Recompute ``route`` stop by stop, append violations, return the recomputed totals."""
    rid = rider.id
    times = problem.time_s[rider.profile]
    dists = problem.distance_m[rider.profile]
    hierarchical = params.objective == "hierarchical"
    index = problem.order_index
    orders: list[Order | None] = [
        problem.orders[index[s.order_id]] if s.order_id in index else None for s in route.stops
    ]
    start = max(problem.now_s, rider.available_s)
    load = 0
    for onboard in problem.orders:
        if onboard.state is OrderState.ONBOARD and onboard.rider_id == rid:
            load += onboard.size
    for stop, order in zip(route.stops, orders, strict=True):
        if (
            order is not None
            and stop.kind is StopKind.DROPOFF
            and order.pickup is None
            and order.state is OrderState.OPEN
        ):
            load += order.size
    if load > rider.capacity:
        violations.append(
            f"rider {rid}: start load {load} exceeds capacity {rider.capacity} "
            "(onboard plus start-loaded orders)"
        )
    totals = _Totals()
    clock = start
    here = rider.location
    serves_open = False
    pickup_departure: dict[str, int] = {}
    for pos, (stop, order) in enumerate(zip(route.stops, orders, strict=True)):
        where = f"rider {rid} stop {pos} ({stop.kind.value} of {stop.order_id})"
        if order is None:
            violations.append(f"{where}: unknown order id {stop.order_id!r}")
            there = stop.location
            leg = int(times[here, there])
            totals.travel_s += leg
            totals.distance_m += float(dists[here, there])
            clock = clock + leg
            here = there
            continue
        is_open = order.state is OrderState.OPEN
        serves_open = serves_open or is_open
        if stop.kind is StopKind.PICKUP:
            expected = order.pickup
            if order.state is OrderState.ONBOARD:
                violations.append(f"{where}: order is onboard already, it has no pickup stop")
            elif expected is None:
                violations.append(f"{where}: start-loaded order has no pickup stop")
        else:
            expected = order.dropoff
        there = stop.location if expected is None else expected
        if stop.location != there:
            violations.append(f"{where}: location {stop.location} != order's location {there}")
        leg = int(times[here, there])
        totals.travel_s += leg
        totals.distance_m += float(dists[here, there])
        arrival = clock + leg
        if pos == 0 and stop.arrival_s < start + leg:
            violations.append(
                f"{where}: arrival {stop.arrival_s} means leaving before the rider can "
                f"(departure at max(now, available) = {start}, travel {leg} s)"
            )
        if stop.kind is StopKind.PICKUP:
            begin = max(arrival, order.ready_s)
            departure = begin + order.pickup_service_s
            load += order.size
            late = 0
            pickup_departure[order.id] = departure
            if stop.start_s < order.ready_s:
                violations.append(
                    f"{where}: pickup starts at {stop.start_s} before the food is ready "
                    f"({order.ready_s})"
                )
        else:
            earliest = order.dropoff_earliest_s
            begin = arrival if earliest is None else max(arrival, earliest)
            departure = begin + order.dropoff_service_s
            load -= order.size
            late = max(0, begin - order.due_s)
            totals.delivery_s += begin - problem.now_s
            if order.quoted_dropoff_s is not None:
                totals.eta_delay_s += max(0, begin - order.quoted_dropoff_s)
            if earliest is not None and stop.start_s < earliest:
                violations.append(
                    f"{where}: drop-off starts at {stop.start_s} before dropoff_earliest_s "
                    f"{earliest}"
                )
        totals.waiting_s += begin - arrival
        totals.lateness_s += late
        if late > 0:
            totals.late_orders += 1
        for name, got, want in (
            ("arrival_s", stop.arrival_s, arrival),
            ("start_s", stop.start_s, begin),
            ("departure_s", stop.departure_s, departure),
            ("lateness_s", stop.lateness_s, late),
            ("load_after", stop.load_after, load),
        ):
            if got != want:
                violations.append(f"{where}: {name} {got} != recomputed {want}")
        if load > rider.capacity:
            violations.append(f"{where}: load {load} exceeds capacity {rider.capacity}")
        if load < 0:
            violations.append(f"{where}: load {load} is negative")
        if is_open:
            if arrival > rider.shift_end_s:
                violations.append(
                    f"{where}: arrival {arrival} after the rider's shift end {rider.shift_end_s}"
                )
            if stop.kind is StopKind.PICKUP:
                if order.pickup_latest_s is not None and begin > order.pickup_latest_s:
                    violations.append(
                        f"{where}: pickup starts at {begin} after pickup_latest_s "
                        f"{order.pickup_latest_s}"
                    )
            else:
                if hierarchical and late > 0:
                    violations.append(
                        f"{where}: {late} s late (drop-off at {begin}, due {order.due_s}); "
                        "due times are hard in hierarchical mode"
                    )
                elif late > params.max_lateness_s:
                    violations.append(
                        f"{where}: {late} s late (drop-off at {begin}, due {order.due_s}) exceeds "
                        f"max_lateness_s {params.max_lateness_s}"
                    )
                if order.max_in_bag_s is not None:
                    picked = start if order.pickup is None else pickup_departure.get(order.id)
                    if picked is not None and arrival - picked > order.max_in_bag_s:
                        violations.append(
                            f"{where}: {arrival - picked} s in the bag (picked {picked}, "
                            f"arrives {arrival}) exceeds max_in_bag_s {order.max_in_bag_s}"
                        )
        clock = departure
        here = there
    if rider.end_location is not None and route.stops:
        leg = int(times[here, rider.end_location])
        totals.travel_s += leg
        totals.distance_m += float(dists[here, rider.end_location])
        end_arrival = clock + leg
        if serves_open and end_arrival > rider.shift_end_s:
            violations.append(
                f"rider {rid}: returns to {rider.end_location} at {end_arrival}, after the shift "
                f"end {rider.shift_end_s}"
            )
    for name, got, want in (
        ("travel_time_s", route.travel_time_s, totals.travel_s),
        ("waiting_s", route.waiting_s, totals.waiting_s),
        ("lateness_s", route.lateness_s, totals.lateness_s),
    ):
        if got != want:
            violations.append(f"rider {rid}: route {name} {got} != recomputed {want}")
    if not _close(route.distance_m, totals.distance_m, 1e-9, DISTANCE_TOL_M):
        violations.append(
            f"rider {rid}: route distance_m {route.distance_m} != recomputed {totals.distance_m}"
        )
    return totals


def _check_coverage(
    problem: Problem,
    plan: Plan,
    visits: dict[str, list[tuple[str, StopKind, int]]],
    violations: list[str],
) -> int:
    """Check every order appears exactly once; return how many orders are in no route."""
    unassigned_count: dict[str, int] = {}
    for item in plan.unassigned:
        if item.order_id not in problem.order_index:
            violations.append(f"unassigned lists unknown order id {item.order_id!r}")
            continue
        unassigned_count[item.order_id] = unassigned_count.get(item.order_id, 0) + 1
    not_routed = 0
    for order in problem.orders:
        oid = order.id
        seen = visits.get(oid, [])
        listed = unassigned_count.get(oid, 0)
        if listed > 1:
            violations.append(f"order {oid} is listed {listed} times as unassigned")
        if not seen:
            not_routed += 1
            if order.is_pinned:
                violations.append(
                    f"order {oid} is {order.state.value} on rider {order.rider_id} but "
                    + ("listed as unassigned" if listed else "missing from the plan")
                )
            elif not listed:
                violations.append(f"order {oid} is neither routed nor unassigned")
            continue
        if listed:
            violations.append(f"order {oid} is routed and also listed as unassigned")
        pickups = [v for v in seen if v[1] is StopKind.PICKUP]
        drops = [v for v in seen if v[1] is StopKind.DROPOFF]
        needs_pickup = order.state is not OrderState.ONBOARD and order.pickup is not None
        if len(drops) != 1:
            violations.append(f"order {oid} has {len(drops)} drop-off stops (expected 1)")
        if needs_pickup and len(pickups) != 1:
            violations.append(f"order {oid} has {len(pickups)} pickup stops (expected 1)")
        riders = {v[0] for v in seen}
        if len(riders) > 1:
            violations.append(f"order {oid} is split over riders {sorted(riders)}")
        if needs_pickup and len(pickups) == 1 and len(drops) == 1:
            (p_rider, _, p_pos), (d_rider, _, d_pos) = pickups[0], drops[0]
            if p_rider == d_rider and d_pos < p_pos:
                violations.append(
                    f"order {oid}: drop-off (stop {d_pos}) before pickup (stop {p_pos}) "
                    f"on rider {d_rider}"
                )
        if order.is_pinned and riders != {order.rider_id}:
            violations.append(
                f"order {oid} is {order.state.value} on rider {order.rider_id} but served by "
                f"{sorted(riders)}"
            )
    return not_routed


def _frozen(problem: Problem, params: SolverParams) -> Problem:
    """The problem with its frozen assigned orders committed to their riders (module notes)."""
    horizon = problem.now_s + params.freeze_horizon_s
    capacity = {r.id: r.capacity for r in problem.riders}
    changed = False
    orders: list[Order] = []
    for order in problem.orders:
        planned = order.assigned_pickup_s
        if planned is None:
            planned = max(order.ready_s, problem.now_s)
        if (
            params.freeze_horizon_s > 0
            and order.state is OrderState.OPEN
            and order.pickup is not None
            and order.assigned_rider_id is not None
            and order.size <= capacity.get(order.assigned_rider_id, -1)
            and planned <= horizon
        ):
            order = dataclasses.replace(
                order, state=OrderState.COMMITTED, rider_id=order.assigned_rider_id
            )
            changed = True
        orders.append(order)
    if not changed:
        return problem
    return Problem.build(
        now_s=problem.now_s,
        orders=orders,
        riders=problem.riders,
        time_s=problem.time_s,
        distance_m=problem.distance_m,
    )


def _moved(problem: Problem, visits: dict[str, list[tuple[str, StopKind, int]]]) -> int:
    """Assigned orders whose drop-off is not on their assigned rider."""
    moved = 0
    for order in problem.orders:
        if order.assigned_rider_id is None:
            continue
        riders = {v[0] for v in visits.get(order.id, []) if v[1] is StopKind.DROPOFF}
        if riders != {order.assigned_rider_id}:
            moved += 1
    return moved


def _check_tentative(
    problem: Problem, plan: Plan, params: SolverParams, violations: list[str]
) -> None:
    """Both stops of an order are marked tentative exactly when it is open, assigned to no
    one, and its pickup's arrival is later than ``now + dispatch_horizon_s`` (horizon > 0)."""
    latest = problem.now_s + params.dispatch_horizon_s
    for route in plan.routes:
        pickup_arrival = {s.order_id: s.arrival_s for s in route.stops if s.kind is StopKind.PICKUP}
        for stop in route.stops:
            order_index = problem.order_index.get(stop.order_id)
            if order_index is None:
                continue  # reported with the coverage
            order = problem.orders[order_index]
            expected = (
                params.dispatch_horizon_s > 0
                and order.state is OrderState.OPEN
                and order.assigned_rider_id is None
                and pickup_arrival.get(order.id, latest) > latest
            )
            if stop.tentative != expected:
                violations.append(
                    f"rider {route.rider_id} {stop.kind.value} of order {order.id}: tentative "
                    f"{stop.tentative}, expected {expected} (dispatch horizon "
                    f"{params.dispatch_horizon_s} s)"
                )


def check_plan(problem: Problem, plan: Plan, params: SolverParams) -> PlanCheck:
    """Recompute ``plan`` from ``problem`` and list every broken rule.

    Parameters
    ----------
    problem
        The problem the plan answers.
    plan
        The plan to judge (any engine's).
    params
        The parameters: objective weights, ``max_lateness_s`` and the objective mode.

    Returns
    -------
    PlanCheck
        Violations (empty when the plan is valid), the recomputed objective and its terms, and
        the recomputed number of late orders.
    """
    problem = _frozen(problem, params)
    violations: list[str] = []
    visits: dict[str, list[tuple[str, StopKind, int]]] = {}
    seen_riders: set[str] = set()
    travel = waiting = lateness = delivery = late_orders = used = eta_delay = 0
    distance = 0.0
    for route in plan.routes:
        if route.rider_id not in problem.rider_index:
            violations.append(f"route of unknown rider id {route.rider_id!r}")
            continue
        if route.rider_id in seen_riders:
            violations.append(f"rider {route.rider_id} has more than one route")
            continue
        seen_riders.add(route.rider_id)
        rider = problem.riders[problem.rider_index[route.rider_id]]
        for pos, stop in enumerate(route.stops):
            visits.setdefault(stop.order_id, []).append((rider.id, stop.kind, pos))
        totals = _check_route(problem, params, rider, route, violations)
        if route.stops:
            used += 1
        travel += totals.travel_s
        distance += totals.distance_m
        waiting += totals.waiting_s
        lateness += totals.lateness_s
        delivery += totals.delivery_s
        eta_delay += totals.eta_delay_s
        late_orders += totals.late_orders
    not_routed = _check_coverage(problem, plan, visits, violations)
    terms = {
        "travel": params.travel_cost_per_s * travel,
        "distance": params.distance_cost_per_m * distance,
        "waiting": params.waiting_cost_per_s * waiting,
        "lateness": params.lateness_cost_per_s * lateness,
        "delivery": params.delivery_time_weight * delivery,
        "unassigned": params.unassigned_penalty * not_routed,
        "vehicles": params.vehicle_fixed_cost * used,
        "reassignment": params.reassignment_cost * (moved := _moved(problem, visits)),
        "eta_delay": params.eta_delay_cost_per_s * eta_delay,
    }
    objective = math.fsum(terms.values())
    if not _close(plan.stats.objective, objective, OBJECTIVE_REL_TOL):
        violations.append(
            f"stats.objective {plan.stats.objective} != recomputed {objective} "
            f"({', '.join(f'{k}={v:g}' for k, v in terms.items())})"
        )
    for name, value in plan.stats.objective_terms.items():
        if name not in terms:
            violations.append(f"stats.objective_terms has unknown term {name!r}")
        elif not _close(value, terms[name], OBJECTIVE_REL_TOL):
            violations.append(
                f"stats.objective_terms[{name!r}] {value} != recomputed {terms[name]}"
            )
    if plan.stats.late_orders != late_orders:
        violations.append(f"stats.late_orders {plan.stats.late_orders} != recomputed {late_orders}")
    if plan.stats.reassigned != moved:
        violations.append(f"stats.reassigned {plan.stats.reassigned} != recomputed {moved}")
    _check_tentative(problem, plan, params, violations)
    return PlanCheck(tuple(violations), objective, terms, late_orders)


def assert_valid_plan(problem: Problem, plan: Plan, params: SolverParams) -> PlanCheck:
    """Like :func:`check_plan`, but raise :class:`PlanInvalid` listing the violations.

    Returns
    -------
    PlanCheck
        The verdict of a valid plan (objective, terms, late orders).

    Raises
    ------
    PlanInvalid
        When the plan breaks any rule.
    """
    check = check_plan(problem, plan, params)
    if not check.ok:
        raise PlanInvalid(check)
    return check
