"""The OR-Tools engine: the pickup-and-delivery routing model, its warm start and its search.

One call of :func:`solve_ortools` builds a fresh ``RoutingModel`` for the problem, seeds it with
an initial plan (or finds a first solution itself), runs the local search metaheuristic until
the time limit and turns the best solution back into a :class:`~solver.plan.Plan` through
:func:`solver.routes.build_plan`.

Model (see :mod:`solver.model` for the rules it encodes):

* Nodes: one start node per rider; one shared dummy end node (zero row and column) for open
  routes and one end node per closed route at the rider's ``end_location``; one pickup node per
  open or committed order with a pickup; one drop-off node per order. Onboard and start-loaded
  orders have no pickup node.
* Pickup and drop-off are paired (``AddPickupAndDelivery``) on the same vehicle, pickup first.
* ``Load`` dimension: pickups add the size, drop-offs remove it; a rider's start load lies in
  ``[onboard load, capacity]`` and its end load is ``>= 0``, so the start load covers the onboard
  and start-loaded orders it serves (without making the onboard drop-offs strictly mandatory).
* ``Time`` dimension on a clock shifted by ``t0`` (so every bound is >= 0): service times are
  folded into the transit out of a node, slack is waiting, the start cumul is fixed to the
  rider's departure time, ready times and ``dropoff_earliest_s`` are cumul lower bounds, the
  promised time is a soft upper bound priced at the lateness cost (without lateness cost, "now"
  is one priced at the delivery-time cost; OR-Tools allows one per stop, so with both the
  delivery time is priced only when plans are compared), and open orders get hard caps
  (``due + max_lateness``, ``pickup_latest_s``, the rider's shift end through an ``Element``
  constraint when shift ends differ, time in bag through a linear constraint). Hierarchical
  mode makes every ``due_s`` hard.
* Closed routes: the end cumul (the return) is capped by the shift end. A rider whose pinned
  orders alone already bring it back late is kept off open orders and its return left free (the
  checker binds the return only on routes that serve an open order).
* Costs: per-profile arc-cost matrices (travel time and distance weights), slack priced at the
  waiting cost, a fixed cost per used rider, disjunction penalties for unassigned orders. Costs
  are multiplied by ``params.cost_scale`` and rounded to integers.
* Soft assignments (:mod:`solver.stability`): :func:`solve_ortools` first freezes the assigned
  orders due for pickup within ``params.freeze_horizon_s`` (they become committed, so pinned).
  An open order assigned to a rider of the problem pays ``params.reassignment_cost`` on any
  other vehicle through the ``Reassign`` dimension (a unary transit out of its drop-off node,
  zero on the assigned rider's vehicle; no slack, start cumul 0, span cost coefficient 1, so a
  route's span is the sum of its moves), and when left out through its drop-off's disjunction
  penalty (unassigned penalty + reassignment cost). An order assigned to a rider absent from
  the problem pays the cost whatever the plan: a constant, not modelled. The dimension is added
  only when some order needs it.
* Pinned (committed and onboard) orders: ``VehicleVar`` restricted to ``[-1, rider]`` and a
  disjunction penalty far above any cost of serving them. Strictly mandatory nodes made the
  first-solution strategies fail, measured with OR-Tools 9.15 on the meal problem: with
  onboard drop-offs mandatory, PARALLEL_CHEAPEST_INSERTION, SEQUENTIAL_CHEAPEST_INSERTION,
  AUTOMATIC and SAVINGS found no solution and PATH_CHEAPEST_ARC ran out of time at 5 s
  (``test_hopelessly_late_onboard_orders_are_still_delivered`` in
  ``tests/solver/engines/test_ortools.py`` holds the current model to it).

Timing: the rules time a route as early as possible, while OR-Tools' slack lets a schedule wait
anywhere. That difference matters only for a time-in-bag limit (waiting at the first merchant
instead of the second shortens the first order's time in bag), so when an open order has one,
every slack is constrained to the wait the next node forces, which makes OR-Tools' schedule the
rules' schedule. Two rules are kept conservatively because the model's cumul is the service
start, not the arrival: the shift end caps the service start of open orders' stops, and time in
bag runs to the drop-off's service start (they differ only after a wait for the food or for
``dropoff_earliest_s``). A warm start is cleared of the open orders these two rules reject.
As a safety net, a solution is checked after the search: a pinned order left out is appended to
its rider's route and an open order that breaks a rule is unassigned, until the plan checker
(:mod:`solver.check`) accepts the plan. Every returned plan passes the checker.

This module runs OR-Tools in the calling process, holding the GIL for the whole search; servers
run it in worker processes (:mod:`solver.runtime.workers`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.engines.screen import AloneScreen
from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned
from solver.routes import Visit, build_plan, build_route
from solver.routes import start_load as start_load_of
from solver.stability import freeze

#: Seconds kept back from the time limit for extracting, timing and checking the plan: a fixed
#: part and a part per model node (measured: 28 ms for 450 nodes on the 2-core machine).
_EXTRACT_RESERVE_S = 0.003
_EXTRACT_RESERVE_PER_NODE_S = 7e-5
#: Model build, warm start and validation per model node, for :func:`estimate_overhead_s`
#: (measured 1.1e-4 to 1.4e-4 s per node on an idle machine; 2x for a loaded one).
_OVERHEAD_PER_NODE_S = 2.5e-4
#: Below this many seconds of search left, the (warm) first solution is returned as is.
_MIN_SEARCH_S = 0.002
#: Cap on the pinned orders' penalty, far from int64 overflow of the objective.
_MAX_PENALTY = 2**62 // 4096
#: Repair rounds before giving up on a plan the checker rejects.
_MAX_REPAIR_ROUNDS = 50


class EngineError(RuntimeError):
    """OR-Tools produced no plan that passes the checker (no solution, or an unrepairable one)."""


@dataclass(slots=True)
class _Layout:
    """Node layout of the routing model and the data the matrices are built from."""

    t0: int
    starts: list[int]
    ends: list[int]
    visit_of_node: list[Visit | None]
    node_of_visit: dict[Visit, int]
    loc: NDArray[np.int64]
    service: NDArray[np.int64]
    dummy_end: int | None
    order_nodes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        """Number of nodes of the model."""
        return len(self.visit_of_node)


def num_model_nodes(problem: Problem) -> int:
    """Nodes of the routing model of ``problem``: starts, ends, pickups and drop-offs."""
    closed = sum(1 for r in problem.riders if r.end_location is not None)
    has_open_route = any(r.end_location is None for r in problem.riders)
    pickups = sum(1 for o in problem.orders if _has_pickup_node(o))
    return len(problem.riders) + closed + int(has_open_route) + pickups + len(problem.orders)


def estimate_overhead_s(problem: Problem) -> float:
    """Seconds :func:`solve_ortools` needs besides the search (build, warm start, validation).

    A conservative estimate for deciding whether a search fits in what is left of a budget.
    """
    return _EXTRACT_RESERVE_S + _OVERHEAD_PER_NODE_S * num_model_nodes(problem)


def _has_pickup_node(order: Order) -> bool:
    return order.state is OrderState.COMMITTED or (
        order.state is OrderState.OPEN and order.pickup is not None
    )


def _build_layout(problem: Problem) -> _Layout:
    riders = problem.riders
    t0 = min([problem.now_s, *(o.due_s for o in problem.orders)])
    visit_of_node: list[Visit | None] = []
    loc: list[int] = []
    service: list[int] = []

    def add(visit: Visit | None, location: int, service_s: int) -> int:
        visit_of_node.append(visit)
        loc.append(location)
        service.append(service_s)
        return len(visit_of_node) - 1

    starts = [add(None, r.location, 0) for r in riders]
    dummy_end = add(None, 0, 0) if any(r.end_location is None for r in riders) else None
    ends: list[int] = []
    for rider in riders:
        if rider.end_location is None:
            assert dummy_end is not None
            ends.append(dummy_end)
        else:
            ends.append(add(None, rider.end_location, 0))
    node_of_visit: dict[Visit, int] = {}
    order_nodes: dict[str, list[int]] = {}
    for order in problem.orders:
        nodes = []
        if _has_pickup_node(order):
            assert order.pickup is not None
            visit = (order.id, StopKind.PICKUP)
            node_of_visit[visit] = add(visit, order.pickup, order.pickup_service_s)
            nodes.append(node_of_visit[visit])
        visit = (order.id, StopKind.DROPOFF)
        node_of_visit[visit] = add(visit, order.dropoff, order.dropoff_service_s)
        nodes.append(node_of_visit[visit])
        order_nodes[order.id] = nodes
    return _Layout(
        t0=t0,
        starts=starts,
        ends=ends,
        visit_of_node=visit_of_node,
        node_of_visit=node_of_visit,
        loc=np.asarray(loc, dtype=np.int64),
        service=np.asarray(service, dtype=np.int64),
        dummy_end=dummy_end,
        order_nodes=order_nodes,
    )


def _scaled(value: float, params: SolverParams) -> int:
    """A cost in the parameters' units as an OR-Tools integer cost."""
    return round(value * params.cost_scale)


@dataclass(slots=True)
class _Model:
    """A built routing model and the handles the solve needs."""

    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    layout: _Layout


def _node_matrices(
    problem: Problem, params: SolverParams, layout: _Layout, profile: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Transit (travel + service out of the node) and arc-cost matrices of one profile."""
    loc = layout.loc
    travel = problem.time_s[profile][np.ix_(loc, loc)]
    transit = travel + layout.service[:, None]
    cost_f = params.travel_cost_per_s * travel.astype(np.float64)
    if params.distance_cost_per_m:
        cost_f = cost_f + params.distance_cost_per_m * problem.distance_m[profile][np.ix_(loc, loc)]
    cost = np.rint(cost_f * params.cost_scale).astype(np.int64)
    if layout.dummy_end is not None:
        transit[layout.dummy_end, :] = 0
        transit[:, layout.dummy_end] = layout.service
        cost[layout.dummy_end, :] = 0
        cost[:, layout.dummy_end] = 0
    # An empty route goes straight from its start to its end: no travel, no cost (as in
    # build_route). The arc start_v -> end_v is used by no other vehicle.
    starts = np.asarray(layout.starts, dtype=np.int64)
    ends = np.asarray(layout.ends, dtype=np.int64)
    transit[starts, ends] = 0
    cost[starts, ends] = 0
    return transit.tolist(), cost.tolist()


def _horizon(problem: Problem, params: SolverParams, layout: _Layout, max_transit: int) -> int:
    """An upper bound on every cumul of an as-early-as-possible schedule (shifted clock)."""
    bounds = [problem.start_time(r) for r in problem.riders]
    bounds += [r.shift_end_s for r in problem.riders]
    for o in problem.orders:
        bounds += [o.ready_s, o.due_s + params.max_lateness_s]
        if o.dropoff_earliest_s is not None:
            bounds.append(o.dropoff_earliest_s)
        if o.pickup_latest_s is not None:
            bounds.append(o.pickup_latest_s)
    return max(bounds) - layout.t0 + max_transit * (layout.num_nodes + 1) + 1


def _late_closed_riders(
    problem: Problem, initial: Mapping[str, Sequence[Visit]] | None
) -> frozenset[int]:
    """Closed-route riders whose pinned orders alone already bring them back after the shift end.

    The checker binds a closed route's return to the shift end only when the route serves an
    open order, so such a rider is kept off open orders and its return is left free. Pinned-only
    sequences tried: the initial plan's, and two simple ones (by due time; pickups first).
    """
    late: set[int] = set()
    pinned_of: dict[str, list[Order]] = {}
    for order in problem.orders:
        if order.is_pinned and order.rider_id is not None:
            pinned_of.setdefault(order.rider_id, []).append(order)
    for v, rider in enumerate(problem.riders):
        pinned = pinned_of.get(rider.id)
        if rider.end_location is None or not pinned:
            continue
        ids = {o.id for o in pinned}
        committed = [o for o in pinned if o.state is OrderState.COMMITTED]
        by_due = sorted(pinned, key=lambda o: (o.due_s, o.id))
        candidates: list[list[Visit]] = [
            [
                visit
                for o in by_due
                for visit in ([(o.id, StopKind.PICKUP)] if o.state is OrderState.COMMITTED else [])
                + [(o.id, StopKind.DROPOFF)]
            ],
            [(o.id, StopKind.PICKUP) for o in sorted(committed, key=lambda o: o.ready_s)]
            + [(o.id, StopKind.DROPOFF) for o in by_due],
        ]
        times = problem.time_s[rider.profile]

        def back_at(seq: Sequence[Visit], rider: Rider = rider, times: NDArray = times) -> int:
            last = build_route(problem, rider, seq).stops[-1]
            return last.departure_s + int(times[last.location, rider.end_location])

        if initial is not None:
            full = [(oid, StopKind(kind)) for oid, kind in initial.get(rider.id, ())]
            seq = [visit for visit in full if visit[0] in ids]
            if len(seq) == len(ids) + len(committed) and len(set(seq)) == len(seq):
                if len(seq) == len(full) and back_at(seq) > rider.shift_end_s:
                    late.add(v)  # keep the initial plan's late pinned-only route feasible
                    continue
                candidates.insert(0, seq)
        if min(back_at(seq) for seq in candidates) > rider.shift_end_s:
            late.add(v)
    return frozenset(late)


def _build_model(
    problem: Problem, params: SolverParams, layout: _Layout, no_open: frozenset[int] = frozenset()
) -> _Model:
    """Build the routing model; vehicles in ``no_open`` serve pinned orders only."""
    riders = problem.riders
    num_vehicles = len(riders)
    manager = pywrapcp.RoutingIndexManager(
        layout.num_nodes, num_vehicles, layout.starts, layout.ends
    )
    model_params = pywrapcp.DefaultRoutingModelParameters()
    model_params.max_callback_cache_size = max(layout.num_nodes, 1)
    routing = pywrapcp.RoutingModel(manager, model_params)
    solver = routing.solver()
    hierarchical = params.objective == "hierarchical"
    t0 = layout.t0

    # Per-profile transit and cost matrices, one evaluator per vehicle.
    transit_index: dict[int, int] = {}
    max_transit = 0
    for profile in sorted({r.profile for r in riders}):
        transit, cost = _node_matrices(problem, params, layout, profile)
        max_transit = max(max_transit, max(max(row) for row in transit))
        transit_index[profile] = routing.RegisterTransitMatrix(transit)
        cost_index = routing.RegisterTransitMatrix(cost)
        for v, rider in enumerate(riders):
            if rider.profile == profile:
                routing.SetArcCostEvaluatorOfVehicle(cost_index, v)
    horizon = _horizon(problem, params, layout, max_transit)
    routing.AddDimensionWithVehicleTransits(
        [transit_index[r.profile] for r in riders], horizon, horizon, False, "Time"
    )
    time_dim = routing.GetDimensionOrDie("Time")
    if params.waiting_cost_per_s:
        time_dim.SetSlackCostCoefficientForAllVehicles(_scaled(params.waiting_cost_per_s, params))
    if params.vehicle_fixed_cost:
        routing.SetFixedCostOfAllVehicles(_scaled(params.vehicle_fixed_cost, params))

    # Load: pickups add, drop-offs remove; start load in [onboard, capacity], end load >= 0.
    demand = [0] * layout.num_nodes
    for (order_id, kind), node in layout.node_of_visit.items():
        size = problem.orders[problem.order_index[order_id]].size
        demand[node] = size if kind is StopKind.PICKUP else -size
    demand_index = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(
        demand_index, 0, [r.capacity for r in riders], False, "Load"
    )
    load_dim = routing.GetDimensionOrDie("Load")

    # Penalties: open orders cost the unassigned penalty once (plus the reassignment cost when
    # assigned to a rider of the problem); pinned ones far more than any cost of serving them.
    penalty = _scaled(params.unassigned_penalty, params)
    vehicle_of_rider = {r.id: v for v, r in enumerate(riders)}
    move_cost = _scaled(params.reassignment_cost, params)
    assigned_to = _assigned_vehicles(problem, vehicle_of_rider) if move_cost > 0 else {}
    if assigned_to:
        _add_reassignment(routing, layout, assigned_to, move_cost)
    serve_bound = (
        (
            params.travel_cost_per_s
            + params.waiting_cost_per_s
            + params.lateness_cost_per_s
            + params.delivery_time_weight
        )
        * horizon
        + params.distance_cost_per_m * float(problem.distance_m.max(initial=0.0)) * layout.num_nodes
        + params.vehicle_fixed_cost
    )
    moved_bound = move_cost if assigned_to else 0  # an open order displaced by a pinned one
    pinned_penalty = min(
        10 * (penalty + moved_bound + _scaled(serve_bound, params) + 1), _MAX_PENALTY
    )
    lateness_coef = _scaled(params.lateness_cost_per_s, params)
    # One soft upper bound per cumul: the delivery-time cost is modelled only without lateness
    # (then as a bound at "now"); otherwise the plan pays it in the full objective only.
    delivery_coef = 0 if lateness_coef else _scaled(params.delivery_time_weight, params)

    shift_rel = [r.shift_end_s - t0 for r in riders]
    start_rel = [problem.start_time(r) - t0 for r in riders]
    for v, rider in enumerate(riders):
        start = routing.Start(v)
        time_dim.CumulVar(start).SetRange(start_rel[v], start_rel[v])
        load_dim.CumulVar(start).SetRange(problem.onboard_load(rider), rider.capacity)
        if rider.end_location is None or shift_rel[v] < start_rel[v]:
            continue  # open route, or a shift already over: no open order can be served
        if v in no_open:
            continue  # pinned stops only: the return deadline does not bind
        time_dim.CumulVar(routing.End(v)).SetMax(shift_rel[v])

    for order in problem.orders:
        nodes = layout.order_nodes[order.id]
        indices = [manager.NodeToIndex(n) for n in nodes]
        drop = indices[-1]
        pickup = indices[0] if len(indices) == 2 else None
        pinned = order.is_pinned
        if pinned:
            assert order.rider_id is not None
            for index in indices:
                routing.AddDisjunction([index], pinned_penalty)
                routing.VehicleVar(index).SetValues([-1, vehicle_of_rider[order.rider_id]])
        else:
            for index in indices:
                for v in no_open:
                    routing.VehicleVar(index).RemoveValue(v)
            moved = move_cost if order.id in assigned_to else 0  # left out: moved too
            if pickup is None:
                routing.AddDisjunction([drop], penalty + moved)
            else:
                routing.AddDisjunction([pickup], penalty // 2)
                routing.AddDisjunction([drop], penalty - penalty // 2 + moved)
        if pickup is not None:
            routing.AddPickupAndDelivery(pickup, drop)
            solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(drop))
            solver.Add(time_dim.CumulVar(pickup) <= time_dim.CumulVar(drop))
        # Time windows, computed first so that an impossible window deactivates the order
        # instead of emptying a cumul domain (which would make the whole model infeasible).
        # The hard rules below bind open orders only (the checker exempts pinned stops).
        due_rel = order.due_s - t0
        pick_lo = max(0, order.ready_s - t0)
        pick_hi = horizon
        drop_lo = 0 if order.dropoff_earliest_s is None else max(0, order.dropoff_earliest_s - t0)
        drop_hi = horizon
        # Vehicle-dependent caps on service start (>= arrival, so conservative): the shift end,
        # and for start-loaded orders the time in bag counted from the rider's departure.
        pick_caps = drop_caps = None
        if not pinned:
            drop_hi = due_rel if hierarchical else due_rel + params.max_lateness_s
            if order.pickup_latest_s is not None:
                pick_hi = min(pick_hi, order.pickup_latest_s - t0)
            pick_caps = shift_rel
            drop_caps = shift_rel
            if pickup is None and order.max_in_bag_s is not None:
                drop_caps = [
                    min(s, b + order.max_in_bag_s)
                    for s, b in zip(shift_rel, start_rel, strict=True)
                ]
            pick_hi = min(pick_hi, max(pick_caps))
            drop_hi = min(drop_hi, max(drop_caps))
        impossible = drop_lo > drop_hi
        if pickup is not None:
            # The precedence and time-in-bag constraints are posted whether or not the order
            # is served, so they must stay satisfiable by the windows alone.
            in_bag = math.inf if pinned or order.max_in_bag_s is None else order.max_in_bag_s
            impossible |= pick_lo > min(pick_hi, drop_hi)
            impossible |= drop_lo - pick_hi > in_bag + order.pickup_service_s
        if impossible:
            for index in indices:
                routing.ActiveVar(index).SetValue(0)
            continue
        time_dim.CumulVar(drop).SetRange(drop_lo, drop_hi)
        if lateness_coef:
            time_dim.SetCumulVarSoftUpperBound(drop, due_rel, lateness_coef)
        elif delivery_coef:
            time_dim.SetCumulVarSoftUpperBound(drop, problem.now_s - t0, delivery_coef)
        if pickup is not None:
            time_dim.CumulVar(pickup).SetRange(pick_lo, pick_hi)
            if not pinned and order.max_in_bag_s is not None:
                solver.Add(
                    time_dim.CumulVar(drop) - time_dim.CumulVar(pickup)
                    <= order.max_in_bag_s + order.pickup_service_s
                )
        for index, lo, hi, caps in (
            (pickup, pick_lo, pick_hi, pick_caps),
            (drop, drop_lo, drop_hi, drop_caps),
        ):
            if index is None or caps is None or all(c >= hi for c in caps):
                continue
            vehicle = routing.VehicleVar(index)
            for v, cap in enumerate(caps):
                if cap < lo:
                    vehicle.RemoveValue(v)
            by_vehicle = [horizon, *caps]  # indexed by VehicleVar + 1 (-1: unperformed)
            solver.Add(time_dim.CumulVar(index) <= solver.Element(by_vehicle, (vehicle + 1).Var()))
    if any(
        o.state is OrderState.OPEN and o.pickup is not None and o.max_in_bag_s is not None
        for o in problem.orders
    ):
        _forbid_voluntary_waiting(routing, time_dim)
    return _Model(manager=manager, routing=routing, layout=layout)


def _assigned_vehicles(problem: Problem, vehicle_of_rider: Mapping[str, int]) -> dict[str, int]:
    """The vehicle of every open order assigned to a rider of the problem, by order id.

    An order assigned to a rider absent from the problem is moved whatever the plan: its cost
    is a constant of the objective and is not modelled (neither on a vehicle nor when left
    out). Pinned orders (a frozen one included) can only be on their own rider or left out,
    which the pinned penalty already rules out.
    """
    return {
        o.id: vehicle_of_rider[o.assigned_rider_id]
        for o in problem.orders
        if o.state is OrderState.OPEN
        and o.assigned_rider_id is not None
        and o.assigned_rider_id in vehicle_of_rider
    }


def _add_reassignment(
    routing: pywrapcp.RoutingModel,
    layout: _Layout,
    assigned_to: Mapping[str, int],
    move_cost: int,
) -> None:
    """Price serving an assigned order on another vehicle than its rider's: the ``Reassign``
    dimension.

    Its transit out of an assigned order's drop-off node is ``move_cost`` on every vehicle but
    the assigned one (a unary vector per vehicle holding an assignment, one shared by the
    others); with no slack and the start cumul at zero, a route's end cumul is the sum of its
    moves, and the span cost coefficient 1 adds it to the objective. A served node has exactly
    one outgoing arc, so each move is counted once.
    """
    drop_of = {oid: layout.order_nodes[oid][-1] for oid in assigned_to}
    shared = [0] * layout.num_nodes
    for node in drop_of.values():
        shared[node] = move_cost
    shared_index = routing.RegisterUnaryTransitVector(shared)
    own_orders: dict[int, list[str]] = {}
    for oid, v in assigned_to.items():
        own_orders.setdefault(v, []).append(oid)
    evaluators = [shared_index] * routing.vehicles()
    for v, oids in own_orders.items():
        own = list(shared)
        for oid in oids:
            own[drop_of[oid]] = 0
        evaluators[v] = routing.RegisterUnaryTransitVector(own)
    capacity = move_cost * len(assigned_to)
    routing.AddDimensionWithVehicleTransits(evaluators, 0, capacity, True, "Reassign")
    routing.GetDimensionOrDie("Reassign").SetSpanCostCoefficientForAllVehicles(1)


def _forbid_voluntary_waiting(
    routing: pywrapcp.RoutingModel, time_dim: pywrapcp.RoutingDimension
) -> None:
    """Time every route as early as possible, as the rules do.

    The slack after node ``i`` is exactly the wait the next node's lower bound (ready time,
    earliest drop-off) forces: ``slack_i = max(0, lb_next - cumul_i - transit_i)``. Without this
    OR-Tools may delay a pickup to meet a time-in-bag limit (wait at the first merchant instead
    of the second, say), which the rules do not allow. Only a time-in-bag limit can profit from
    such a delay (every other rule is a lower bound met by the forced wait or an upper bound
    that a delay only makes harder), so the constraints are added only when one is present.
    """
    solver = routing.solver()
    size = routing.Size() + routing.vehicles()
    lower = [0] * size
    for index in range(routing.Size()):
        if not routing.IsStart(index):
            lower[index] = time_dim.CumulVar(index).Min()
    for index in range(routing.Size()):
        next_lower = solver.Element(lower, routing.NextVar(index))
        forced = next_lower - time_dim.CumulVar(index) - time_dim.FixedTransitVar(index)
        solver.Add(time_dim.SlackVar(index) <= solver.Max(forced, 0))


def _search_parameters(
    params: SolverParams, seconds: float, *, first_only: bool
) -> pywrapcp.RoutingSearchParameters:
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_COST_INSERTION
    )
    search.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, params.metaheuristic
    )
    if first_only:
        search.solution_limit = 1
    search.time_limit.FromMicroseconds(max(1, int(seconds * 1e6)))
    return search


def _routes_to_indices(
    model: _Model, problem: Problem, initial: Mapping[str, Sequence[Visit]]
) -> list[list[int]]:
    """The initial visit sequences as routing indices, one list per vehicle (unknown visits
    and visits seen twice are left out)."""
    seen: set[int] = set()
    routes: list[list[int]] = []
    for rider in problem.riders:
        route: list[int] = []
        for visit in initial.get(rider.id, ()):
            node = model.layout.node_of_visit.get((visit[0], StopKind(visit[1])))
            if node is None or node in seen:
                continue
            seen.add(node)
            route.append(model.manager.NodeToIndex(node))
        routes.append(route)
    return routes


def _model_compatible(
    problem: Problem, initial: Mapping[str, Sequence[Visit]]
) -> dict[str, list[Visit]]:
    """The initial visits without the open orders the model rejects although the rules allow
    them: the model caps the *service start* (not the arrival) by the shift end and measures
    time in bag to the drop-off's service start, which differ after a wait for the food or
    for ``dropoff_earliest_s``. Unknown orders and riders are dropped too, and pinned orders
    on another rider than their own (a plan made before an assigned order was frozen to its
    rider, say), which would make OR-Tools reject the whole warm start.
    """
    out: dict[str, list[Visit]] = {}
    for rider in problem.riders:
        seq = [
            (oid, StopKind(kind))
            for oid, kind in initial.get(rider.id, ())
            if oid in problem.order_index
            and problem.orders[problem.order_index[oid]].rider_id in (None, rider.id)
        ]
        if not seq:
            continue
        bad: set[str] = set()
        start = problem.start_time(rider)
        picked: dict[str, int] = {}
        try:
            route = build_route(problem, rider, seq)
        except AssertionError:  # a pickup visit of an order without a pickup location
            continue
        for stop in route.stops:
            order = problem.orders[problem.order_index[stop.order_id]]
            if stop.kind is StopKind.PICKUP:
                picked[order.id] = stop.departure_s
            if order.state is not OrderState.OPEN:
                continue
            if stop.start_s > rider.shift_end_s:
                bad.add(order.id)
            if stop.kind is StopKind.DROPOFF and order.max_in_bag_s is not None:
                since = start if order.pickup is None else picked.get(order.id, start)
                if stop.start_s - since > order.max_in_bag_s:
                    bad.add(order.id)
        out[rider.id] = [visit for visit in seq if visit[0] not in bad]
    return out


def _extract(model: _Model, assignment: pywrapcp.Assignment) -> list[list[Visit]]:
    """The visit sequence of every vehicle in ``assignment``."""
    routing, manager, layout = model.routing, model.manager, model.layout
    routes: list[list[Visit]] = []
    for v in range(routing.vehicles()):
        index = assignment.Value(routing.NextVar(routing.Start(v)))
        seq: list[Visit] = []
        while not routing.IsEnd(index):
            visit = layout.visit_of_node[manager.IndexToNode(index)]
            assert visit is not None
            seq.append(visit)
            index = assignment.Value(routing.NextVar(index))
        routes.append(seq)
    return routes


def _unassigned_list(
    problem: Problem,
    params: SolverParams,
    visits_by_rider: Mapping[str, Sequence[Visit]],
    reasons: Mapping[str, Unassigned] | None,
) -> list[Unassigned]:
    """The orders left out of ``visits_by_rider``, each with the caller's reason or else the
    one :meth:`AloneScreen.left_out` gives."""
    routed = {order_id for seq in visits_by_rider.values() for order_id, _ in seq}
    reasons = reasons or {}
    left = [o for o, order in enumerate(problem.orders) if order.id not in routed]
    screened = [o for o in left if problem.orders[o].id not in reasons]
    screen = AloneScreen(problem, params, screened) if screened else None
    out: list[Unassigned] = []
    for o in left:
        given = reasons.get(problem.orders[o].id)
        if given is None:
            assert screen is not None
            given = screen.left_out(o)
        out.append(given)
    return out


def _complete_pinned(
    problem: Problem, visits_by_rider: dict[str, list[Visit]]
) -> dict[str, list[Visit]]:
    """Append every pinned order the solution left out to the end of its rider's route."""
    routed = {order_id for seq in visits_by_rider.values() for order_id, _ in seq}
    for order in problem.orders:
        if not order.is_pinned or order.id in routed:
            continue
        assert order.rider_id is not None
        seq = visits_by_rider.setdefault(order.rider_id, [])
        if order.state is OrderState.COMMITTED:
            seq.append((order.id, StopKind.PICKUP))
        seq.append((order.id, StopKind.DROPOFF))
    return visits_by_rider


def solve_ortools(
    problem: Problem,
    params: SolverParams,
    *,
    time_limit_s: float,
    initial: Mapping[str, Sequence[Visit]] | None = None,
    reasons: Mapping[str, Unassigned] | None = None,
) -> Plan:
    """Solve ``problem`` with OR-Tools within ``time_limit_s`` of wall time.

    The assigned orders due for pickup within ``params.freeze_horizon_s`` are frozen to their
    rider first (:func:`solver.stability.freeze`; idempotent).

    Parameters
    ----------
    problem, params
        The problem and the objective weights and search settings.
    time_limit_s
        Wall-clock limit (s) of the whole call: model building, first solution and search. The
        search stops early enough to leave a few milliseconds for extracting and checking the
        plan; building a large model can still overrun a tiny limit.
    initial
        Visit sequences by rider id to start from (e.g. the greedy plan); visits of unknown
        orders are ignored. If OR-Tools rejects them (or none are given), the first solution
        comes from ``LOCAL_CHEAPEST_COST_INSERTION``.
    reasons
        Unassigned reasons by order id (e.g. from the greedy plan), reused for orders OR-Tools
        leaves out too; other unassigned orders get theirs from :mod:`solver.engines.screen`
        (the greedy engine's wording).

    Returns
    -------
    Plan
        A checker-valid plan with ``Engine.ORTOOLS`` and ``model_build``, ``first_solution``,
        ``search`` and ``validate`` in ``stats.phase_s``.

    Raises
    ------
    EngineError
        When no solution was found within the time limit or the solution cannot be repaired.
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    problem = freeze(problem, params)  # assigned orders due for pickup soon stay put
    if not problem.orders or not problem.riders:
        visits: dict[str, list[Visit]] = {}
        unassigned = _unassigned_list(problem, params, visits, reasons)
        phases["model_build"] = phases["first_solution"] = phases["search"] = 0.0
        return build_plan(
            problem, params, visits, unassigned, engine=Engine.ORTOOLS, phase_s=phases
        )

    reserve = _EXTRACT_RESERVE_S + _EXTRACT_RESERVE_PER_NODE_S * num_model_nodes(problem)

    def left() -> float:
        return time_limit_s - (time.perf_counter() - started) - reserve

    layout = _build_layout(problem)
    model = _build_model(problem, params, layout, _late_closed_riders(problem, initial))
    routing = model.routing
    # The closing parameters' time limit also bounds ReadAssignmentFromRoutes (a read under a
    # tiny limit fails), so close with a generous one; each solve below sets its own.
    routing.CloseModelWithParameters(_search_parameters(params, 10.0, first_only=False))
    phases["model_build"] = time.perf_counter() - started

    mark = time.perf_counter()
    first: pywrapcp.Assignment | None = None
    if initial is not None:
        initial = _model_compatible(problem, initial)
        first = routing.ReadAssignmentFromRoutes(_routes_to_indices(model, problem, initial), True)
    if first is None:
        first = routing.SolveWithParameters(
            _search_parameters(params, max(left(), _MIN_SEARCH_S), first_only=True)
        )
    phases["first_solution"] = time.perf_counter() - mark
    if first is None:
        raise EngineError(f"no OR-Tools solution within {time_limit_s:.3f} s")

    mark = time.perf_counter()
    best = first
    if left() >= _MIN_SEARCH_S:
        found = routing.SolveFromAssignmentWithParameters(
            first, _search_parameters(params, left(), first_only=False)
        )
        if found is not None:
            best = found
    phases["search"] = time.perf_counter() - mark

    mark = time.perf_counter()
    routes = _extract(model, best)
    visits = {r.id: routes[v] for v, r in enumerate(problem.riders)}
    del model, routing, best, first
    plan = _validated_plan(problem, params, visits, reasons, phases)
    phases["validate"] = time.perf_counter() - mark
    plan.stats.phase_s.update(phases)
    return plan


def _open_violators(
    problem: Problem, params: SolverParams, visits: Mapping[str, Sequence[Visit]]
) -> set[str]:
    """Open orders whose stops break a hard rule when timed as early as possible.

    Mirrors the hard rules of :mod:`solver.check` that OR-Tools may see differently (its
    schedule may wait anywhere). Per broken rule one open order is named: the one at fault, or
    for capacity and a late return the latest open order on the route.
    """
    hierarchical = params.objective == "hierarchical"
    bad: set[str] = set()
    for rider in problem.riders:
        seq = visits.get(rider.id, ())
        if not seq:
            continue
        route = build_route(problem, rider, seq)
        start = problem.start_time(rider)
        picked: dict[str, int] = {}
        in_bag: list[str] = []  # open orders in the bag, most recent last
        open_seen: list[str] = []
        start_loaded = [
            oid
            for oid, kind in seq
            if kind is StopKind.DROPOFF
            and problem.orders[problem.order_index[oid]].pickup is None
            and problem.orders[problem.order_index[oid]].state is OrderState.OPEN
        ]
        if route.stops and start_load_of(problem, rider, seq) > rider.capacity and start_loaded:
            bad.add(start_loaded[-1])
        for stop in route.stops:
            order = problem.orders[problem.order_index[stop.order_id]]
            is_open = order.state is OrderState.OPEN
            if is_open:
                open_seen.append(order.id)
            if stop.kind is StopKind.PICKUP:
                picked[order.id] = stop.departure_s
                if is_open:
                    in_bag.append(order.id)
            elif order.id in in_bag:
                in_bag.remove(order.id)
            if stop.load_after > rider.capacity and in_bag:
                bad.add(in_bag[-1])
            if not is_open:
                continue
            broken = stop.arrival_s > rider.shift_end_s
            if stop.kind is StopKind.PICKUP:
                broken |= order.pickup_latest_s is not None and stop.start_s > order.pickup_latest_s
            else:
                broken |= stop.lateness_s > (0 if hierarchical else params.max_lateness_s)
                if order.max_in_bag_s is not None:
                    since = start if order.pickup is None else picked.get(order.id, start)
                    broken |= stop.arrival_s - since > order.max_in_bag_s
            if broken:
                bad.add(order.id)
        if rider.end_location is not None and open_seen and route.stops:
            back = int(problem.time_s[rider.profile, route.stops[-1].location, rider.end_location])
            if route.stops[-1].departure_s + back > rider.shift_end_s:
                bad.add(open_seen[-1])
    return bad


def _validated_plan(
    problem: Problem,
    params: SolverParams,
    visits: dict[str, list[Visit]],
    reasons: Mapping[str, Unassigned] | None,
    phases: Mapping[str, float],
) -> Plan:
    """Repair ``visits`` until the checker accepts the plan, then build it.

    Pinned orders the solution left out are appended to their rider's route; open orders that
    break a hard rule when timed as early as possible are unassigned, one round at a time.
    """
    from solver.check import check_plan  # late import: the checker is a sibling module

    visits = _complete_pinned(problem, visits)
    for _ in range(_MAX_REPAIR_ROUNDS):
        bad = _open_violators(problem, params, visits)
        if not bad:
            break
        visits = {rid: [v for v in seq if v[0] not in bad] for rid, seq in visits.items()}
    unassigned = _unassigned_list(problem, params, visits, reasons)
    plan = build_plan(problem, params, visits, unassigned, engine=Engine.ORTOOLS, phase_s=phases)
    verdict = check_plan(problem, plan, params)
    if not verdict.ok:
        raise EngineError("OR-Tools plan fails the checker: " + "; ".join(verdict.violations[:5]))
    return plan
