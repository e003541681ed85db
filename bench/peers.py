"""Peer solvers (VROOM via pyvroom, PyVRP) on benchmark instances, answering with our Plan.

Both peers get exactly the integer model our solver gets:

* **durations** = ``problem.time_s[0]``, the very matrix our solver reads (travel times scaled by
  ``instance.scale`` and rounded up, so a plan feasible in it is feasible at full precision, see
  :mod:`instances.literature`), all windows and service times from the same Problem;
* **costs** = ``round(cost_scale * distance_cost_per_m * distance)`` on the float Euclidean
  distances — the arc costs our OR-Tools model is given with the same :class:`SolverParams`;
* **fleet**: the file's ``K`` vehicles, start = end = depot, vehicle window = depot window,
  capacity; a fixed cost of ``round(cost_scale * vehicle_fixed_cost)`` per used vehicle, so
  every solver is pushed towards the same hierarchical objective (vehicles, then distance).

Their answers are converted back into visit sequences per rider and timed by
:func:`solver.routes.build_plan`, so our independent checker judges every peer plan the same way
as ours, and the reported distance is the float distance of the routes.

Budgets. Each solver gets the same wall-clock budget on one core:

* PyVRP: ``MaxRuntime(budget_s)``, a fixed seed; its search is single-threaded.
* VROOM: ``exploration_level=5`` (its default and strongest), ``nb_threads=1`` and
  ``timeout=budget_s``. One thread, because our OR-Tools search and PyVRP each use one core;
  on this 2-core shared machine a second thread would also steal the other solvers' core.
  VROOM stops its local search at the timeout but always finishes its construction heuristics,
  so at tiny budgets it may overrun: the benchmark records wall time per solve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from instances.literature import BenchmarkInstance
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan

PeerSolver = Callable[[BenchmarkInstance, SolverParams, float], Plan]


def _engine(name: str) -> Engine:
    """The plan's engine tag: ``Engine[name]`` once plan.py has one, else ``GREEDY``."""
    return Engine.__members__.get(name.upper(), Engine.GREEDY)


def cost_matrix(instance: BenchmarkInstance, params: SolverParams) -> NDArray[np.int64]:
    """Integer arc costs: ``round(cost_scale * distance_cost_per_m * distance)``."""
    scale = params.cost_scale * params.distance_cost_per_m
    return np.rint(scale * instance.distance).astype(np.int64)


def fixed_cost(params: SolverParams) -> int:
    """Integer cost of one used vehicle: ``round(cost_scale * vehicle_fixed_cost)``."""
    return round(params.cost_scale * params.vehicle_fixed_cost)


def _unassigned(instance: BenchmarkInstance, routed: set[str], why: str) -> list[Unassigned]:
    return [
        Unassigned(o.id, UnassignedReason.NO_FEASIBLE_INSERTION, why)
        for o in instance.problem.orders
        if o.id not in routed
    ]


def _plan(
    instance: BenchmarkInstance,
    params: SolverParams,
    visits: dict[str, list[Visit]],
    engine: str,
    phase_s: dict[str, float],
) -> Plan:
    routed = {order_id for seq in visits.values() for order_id, _ in seq}
    unassigned = _unassigned(instance, routed, f"left out by {engine}")
    return build_plan(
        instance.problem, params, visits, unassigned, engine=_engine(engine), phase_s=phase_s
    )


# --------------------------------------------------------------------------------------------
# VROOM


def solve_vroom(
    instance: BenchmarkInstance,
    params: SolverParams,
    budget_s: float,
    *,
    exploration_level: int = 5,
    threads: int = 1,
) -> Plan:
    """Solve with VROOM (pyvroom): shipments for Li & Lim, jobs for Solomon.

    Parameters
    ----------
    instance
        The benchmark instance.
    params
        Cost weights (``cost_scale``, ``distance_cost_per_m``, ``vehicle_fixed_cost``).
    budget_s
        Wall-clock budget, passed as VROOM's ``timeout``.
    exploration_level, threads
        VROOM's search depth (1-5) and thread count.

    Returns
    -------
    Plan
        VROOM's routes timed by :func:`solver.routes.build_plan`; its unassigned tasks are
        unassigned orders.
    """
    import vroom

    started = time.perf_counter()
    problem = instance.problem
    times = problem.time_s[0]
    vin = vroom.Input()
    vin.set_durations_matrix("car", times)
    vin.set_costs_matrix("car", cost_matrix(instance, params))
    costs = vroom.VehicleCosts(fixed=fixed_cost(params))
    for k, rider in enumerate(problem.riders):
        vin.add_vehicle(
            vroom.Vehicle(
                k,
                start=rider.location,
                end=rider.end_location,
                capacity=[rider.capacity],
                time_window=vroom.TimeWindow(rider.available_s, rider.shift_end_s),
                costs=costs,
            )
        )
    for order in problem.orders:
        if order.pickup is None:
            vin.add_job(
                vroom.Job(
                    order.dropoff,
                    location=order.dropoff,
                    default_service=order.dropoff_service_s,
                    delivery=[order.size],
                    time_windows=[
                        vroom.TimeWindow(_earliest(order.dropoff_earliest_s), order.due_s)
                    ],
                )
            )
        else:
            latest = order.pickup_latest_s if order.pickup_latest_s is not None else order.due_s
            vin.add_shipment(
                vroom.ShipmentStep(
                    order.pickup,
                    location=order.pickup,
                    default_service=order.pickup_service_s,
                    time_windows=[vroom.TimeWindow(order.ready_s, latest)],
                ),
                vroom.ShipmentStep(
                    order.dropoff,
                    location=order.dropoff,
                    default_service=order.dropoff_service_s,
                    time_windows=[
                        vroom.TimeWindow(_earliest(order.dropoff_earliest_s), order.due_s)
                    ],
                ),
                amount=vroom.Amount([order.size]),
            )
    built = time.perf_counter()
    solution = vin.solve(
        exploration_level=exploration_level,
        nb_threads=threads,
        timeout=timedelta(seconds=budget_s),
    )
    solved = time.perf_counter()
    answer = solution.to_dict()
    visits: dict[str, list[Visit]] = {}
    for route in answer.get("routes", []):
        rider = problem.riders[int(route["vehicle"])]
        seq = [
            instance.node_visits[int(step["id"])]
            for step in route["steps"]
            if step["type"] in ("job", "pickup", "delivery")
        ]
        if seq:
            visits[rider.id] = seq
    phase_s = {
        "model_build": built - started,
        "search": solved - built,
        "total": time.perf_counter() - started,
    }
    return _plan(instance, params, visits, "vroom", phase_s)


def _earliest(value: int | None) -> int:
    return 0 if value is None else value


# --------------------------------------------------------------------------------------------
# PyVRP


def solve_pyvrp(
    instance: BenchmarkInstance,
    params: SolverParams,
    budget_s: float,
    *,
    seed: int = 1,
    max_penalty: float | None = None,
) -> Plan:
    """Solve with PyVRP 0.14 through its Model API: shipments for Li & Lim, clients for Solomon.

    Parameters
    ----------
    instance
        The benchmark instance.
    params
        Cost weights (``cost_scale``, ``distance_cost_per_m``, ``vehicle_fixed_cost``).
    budget_s
        Wall-clock budget, as ``MaxRuntime(budget_s)``.
    seed
        Random seed (fixed for reproducibility).

    Returns
    -------
    Plan
        PyVRP's best solution timed by :func:`solver.routes.build_plan`. An infeasible best
        solution (time warp, excess load) is returned as it is, for the checker to reject.
    """
    from pyvrp import Model, PenaltyParams, SolveParams
    from pyvrp.stop import MaxRuntime

    started = time.perf_counter()
    problem = instance.problem
    times = problem.time_s[0]
    costs = cost_matrix(instance, params)
    depot_node = problem.riders[0].location
    rider0 = problem.riders[0]
    model = Model()
    locations = [model.add_location(x=float(x), y=float(y)) for x, y in instance.coords]
    depot = model.add_depot(
        locations[depot_node], tw_early=rider0.available_s, tw_late=rider0.shift_end_s
    )
    model.add_vehicle_type(
        num_available=len(problem.riders),
        capacity=[rider0.capacity],
        start_depot=depot,
        end_depot=depot,
        fixed_cost=fixed_cost(params),
        tw_early=rider0.available_s,
        tw_late=rider0.shift_end_s,
        unit_distance_cost=1,
        unit_duration_cost=0,
    )
    # activity index -> visits, in the order PyVRP numbers clients and shipments
    client_visits: list[Visit] = []
    shipment_ids: list[str] = []
    for order in problem.orders:
        if order.pickup is None:
            model.add_client(
                locations[order.dropoff],
                delivery=[order.size],
                service_duration=order.dropoff_service_s,
                tw_early=_earliest(order.dropoff_earliest_s),
                tw_late=order.due_s,
            )
            client_visits.append((order.id, StopKind.DROPOFF))
        else:
            latest = order.pickup_latest_s if order.pickup_latest_s is not None else order.due_s
            model.add_shipment(
                locations[order.pickup],
                locations[order.dropoff],
                pickup_tw_early=order.ready_s,
                pickup_tw_late=latest,
                pickup_service_duration=order.pickup_service_s,
                delivery_tw_early=_earliest(order.dropoff_earliest_s),
                delivery_tw_late=order.due_s,
                delivery_service_duration=order.dropoff_service_s,
                amount=[order.size],
            )
            shipment_ids.append(order.id)
    n = len(locations)
    for i in range(n):
        for j in range(n):
            if i != j:
                model.add_edge(
                    locations[i], locations[j], distance=int(costs[i, j]), duration=int(times[i, j])
                )
    built = time.perf_counter()
    solve_params = SolveParams(penalty=PenaltyParams(max_penalty=max_penalty or 100_000.0))
    result = model.solve(
        MaxRuntime(budget_s), seed=seed, collect_stats=False, display=False, params=solve_params
    )
    solved = time.perf_counter()
    visits: dict[str, list[Visit]] = {}
    routes = [r for r in result.best.routes() if r.num_clients() or r.num_shipments()]
    for rider, route in zip(problem.riders, routes, strict=False):
        seq: list[Visit] = []
        for activity in route:
            if activity.is_client():
                seq.append(client_visits[activity.idx])
            elif activity.is_pickup():
                seq.append((shipment_ids[activity.idx], StopKind.PICKUP))
            elif activity.is_delivery():
                seq.append((shipment_ids[activity.idx], StopKind.DROPOFF))
        visits[rider.id] = seq
    phase_s = {
        "model_build": built - started,
        "search": solved - built,
        "total": time.perf_counter() - started,
    }
    return _plan(instance, params, visits, "pyvrp", phase_s)


PEERS: dict[str, PeerSolver] = {"vroom": solve_vroom, "pyvrp": solve_pyvrp}
"""Peer solvers by name, each ``(instance, params, budget_s) -> Plan``."""
