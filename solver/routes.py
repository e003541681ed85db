"""Turning visit sequences into timed routes and plans (shared by every engine).

Engines decide *which* rider visits *which* stops in *which* order; this module computes the
times, loads and objective terms of those sequences once, the same way for every engine. The
plan checker (:mod:`solver.check`) does not use this module: it recomputes everything itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, Plan, Route, Shed, SolveStats, Stop, StopKind, Unassigned
from solver.stability import is_tentative, moved_orders

Visit = tuple[str, StopKind]
"""A visit: (order id, pickup or drop-off)."""


def start_load(problem: Problem, rider: Rider, visits: Sequence[Visit]) -> int:
    """Load when ``rider`` leaves its start: onboard orders plus start-loaded orders it serves."""
    load = problem.onboard_load(rider)
    for order_id, kind in visits:
        order = problem.orders[problem.order_index[order_id]]
        if kind is StopKind.DROPOFF and order.pickup is None and order.state is OrderState.OPEN:
            load += order.size
    return load


def build_route(
    problem: Problem,
    rider: Rider,
    visits: Sequence[Visit],
    params: SolverParams | None = None,
) -> Route:
    """Time the ``visits`` of ``rider`` and total them up (no feasibility check here); with
    ``params``, mark the stops of orders not to be pushed yet
    (:func:`solver.stability.is_tentative`: both stops, by the pickup's arrival)."""
    times = problem.time_s[rider.profile]
    dists = problem.distance_m[rider.profile]
    clock = problem.start_time(rider)
    here = rider.location
    load = start_load(problem, rider, visits)
    stops: list[Stop] = []
    travel = waiting = lateness_total = eta_delay = 0
    later: set[str] = set()  # orders whose pickup here is tentative
    distance = 0.0
    for order_id, kind in visits:
        order: Order = problem.orders[problem.order_index[order_id]]
        there = order.pickup if kind is StopKind.PICKUP else order.dropoff
        assert there is not None, f"order {order_id} has no pickup location"
        leg = int(times[here, there])
        travel += leg
        distance += float(dists[here, there])
        arrival = clock + leg
        if kind is StopKind.PICKUP:
            start = max(arrival, order.ready_s)
            waiting += start - arrival
            departure = start + order.pickup_service_s
            load += order.size
            late = 0
        else:
            earliest = order.dropoff_earliest_s
            start = arrival if earliest is None else max(arrival, earliest)
            waiting += start - arrival
            departure = start + order.dropoff_service_s
            load -= order.size
            late = max(0, start - order.due_s)
            lateness_total += late
            if order.quoted_dropoff_s is not None:
                eta_delay += max(0, start - order.quoted_dropoff_s)
        pickup = kind is StopKind.PICKUP
        if pickup and params is not None and is_tentative(order, arrival, problem.now_s, params):
            later.add(order_id)
        stops.append(
            Stop(
                order_id,
                kind,
                there,
                arrival,
                start,
                departure,
                late,
                load,
                tentative=order_id in later,
            )
        )
        clock, here = departure, there
    if rider.end_location is not None and stops:
        travel += int(times[here, rider.end_location])
        distance += float(dists[here, rider.end_location])
    return Route(
        rider.id, tuple(stops), travel, distance, waiting, lateness_total, eta_delay_s=eta_delay
    )


def objective_terms(
    now_s: int,
    params: SolverParams,
    routes: Iterable[Route],
    num_unassigned: int,
    reassigned: int = 0,
) -> dict[str, float]:
    """The objective of a plan split by term, in the parameters' cost units (``now_s``: the
    problem's now, from which delivery times count; ``reassigned``: the assigned orders the
    plan moves off their rider, :func:`solver.stability.moved_orders`)."""
    routes = list(routes)
    used = [r for r in routes if r.stops]
    delivery = sum(s.start_s - now_s for r in used for s in r.stops if s.kind is StopKind.DROPOFF)
    return {
        "travel": params.travel_cost_per_s * sum(r.travel_time_s for r in used),
        "distance": params.distance_cost_per_m * sum(r.distance_m for r in used),
        "waiting": params.waiting_cost_per_s * sum(r.waiting_s for r in used),
        "lateness": params.lateness_cost_per_s * sum(r.lateness_s for r in used),
        "delivery": params.delivery_time_weight * delivery,
        "unassigned": params.unassigned_penalty * num_unassigned,
        "vehicles": params.vehicle_fixed_cost * len(used),
        "reassignment": params.reassignment_cost * reassigned,
        "eta_delay": params.eta_delay_cost_per_s * sum(r.eta_delay_s for r in used),
    }


def scored_stats(
    now_s: int,
    orders: Sequence[Order],
    params: SolverParams,
    routes: Sequence[Route],
    num_unassigned: int,
    **fields: Any,
) -> SolveStats:
    """The stats of a plan of ``orders`` with these timed ``routes`` and ``num_unassigned``
    orders left out: its objective and terms, late orders and reassigned orders, computed
    here whatever the engine; ``fields`` are the other :class:`SolveStats` fields (engine,
    shed, phases, zones)."""
    moved = len(moved_orders(orders, routes))
    terms = objective_terms(now_s, params, routes, num_unassigned, moved)
    return SolveStats(
        objective=sum(terms.values()),
        objective_terms=terms,
        late_orders=sum(1 for r in routes for s in r.stops if s.lateness_s > 0),
        reassigned=moved,
        **fields,
    )


def build_plan(
    problem: Problem,
    params: SolverParams,
    visits_by_rider: Mapping[str, Sequence[Visit]],
    unassigned: Sequence[Unassigned],
    *,
    engine: Engine,
    phase_s: Mapping[str, float] | None = None,
    shed: Shed | None = None,
) -> Plan:
    """Assemble a :class:`Plan`: one route per rider (in problem order), totals and stats."""
    routes = tuple(
        build_route(problem, rider, visits_by_rider.get(rider.id, ()), params)
        for rider in problem.riders
    )
    stats = scored_stats(
        problem.now_s,
        problem.orders,
        params,
        routes,
        len(unassigned),
        engine=engine,
        shed=shed,
        phase_s=dict(phase_s or {}),
    )
    return Plan(routes=routes, unassigned=tuple(unassigned), stats=stats)
