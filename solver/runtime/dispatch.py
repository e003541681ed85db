"""The request path of a dispatch, owned in one place: budget, partitioning, engine choice,
where it runs and what is answered when something fails.

:func:`solve` is what the service (and every offline run) calls:

1. **Partitioning (分流).** A request with at least ``params.partition_min_orders`` open orders
   and point geometry is split into zones (:func:`solver.runtime.partition.partition`): about
   ``params.zone_orders`` open orders each and at least one per solver worker.
2. **Where.** With a :class:`~solver.runtime.workers.SolverPool`, the zones are shared out to the
   workers (one job each, :func:`solve_zones`) and each worker builds its zones' travel
   matrices itself from the request's :class:`~solver.spec.MatrixSource`: no matrix crosses a
   process boundary. Without a pool, the same job runs here (offline runs, tests, replays).
   A caller that may not use the workers (the circuit breaker) passes ``shed``: greedy plans
   only, here.
3. **Engines, per zone.** The greedy insertion first (:func:`solver.engines.greedy.solve_greedy`,
   seeded with the previous plan's visits), sent back at once; then, if the time left covers
   ``params.min_search_s`` and the search's overhead, the search (ruin-and-recreate, then
   OR-Tools per ``params.ruin_recreate_share``) for the zone's share of the time; the better
   plan wins. A zone's improved plan is sent back as soon as it is found.
4. **Repair.** Orders a zone could not place are offered to the riders of the other zones,
   nearest first, with the time left (greedy insertion into their routes).
5. **Anytime answers.** If a worker overruns ``budget + params.kill_margin_s`` (killed) or
   crashes, the answer is made of the best plan each zone sent; a zone that sent nothing gets
   its greedy plan here. No idle worker in time: greedy plans here. An order is ``SHED`` only
   if no engine ever considered it.

6. **Deferred orders last.** Orders the caller marks ``deferred`` (suspicious, per the storm
   guard) are planned only after the others, with the riders that plan leaves idle (greedy
   insertion here, for the budget kept back for it); those no left-over rider can take are
   ``DEPRIORITISED``. Riders are never spent on them before the other orders.

The answer's ``stats.shed`` says (typed, :class:`~solver.plan.ShedReason`) why it is not a full
search; ``stats.zones`` how many zones there were; each route's ``zone`` which one it came
from; ``stats.phase_s`` the seconds per phase (``partition``, ``greedy``, the search's, ``engine``
= the pool call as seen here, ``repair``, ``total``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.engines.greedy import solve_greedy
from solver.engines.kernel import ensure_warm
from solver.engines.ortools import EngineError, estimate_overhead_s
from solver.engines.search import estimate_rebuild_s, plan_visits, run_task
from solver.model import Order, OrderState, Problem, warm_problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, Route, Shed, ShedReason, Unassigned
from solver.plan import UnassignedReason as Why
from solver.routes import Visit, scored_stats
from solver.runtime.budget import Budget
from solver.runtime.partition import Zone, partition, zone_count
from solver.runtime.workers import (
    PoolBusyError,
    SolverPool,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
)
from solver.spec import ProblemSpec
from solver.stability import freeze

#: Seconds of the budget kept back for handing a plan back in-process.
_INPROCESS_RESERVE_S = 0.003
#: Seconds kept back for the round trip to a worker (pickling the request and the plans):
#: 10 ms plus 40 us per order (2,000 orders: the request pickles in 14 ms, the plans in 19 ms
#: and unpickle in 20 ms).
_POOL_RESERVE_S = 0.010
_POOL_RESERVE_PER_ORDER_S = 4e-5
#: Seconds kept back from the kill deadline for assembling the answer after a kill.
_RETURN_RESERVE_S = 0.005
#: Seconds per order a greedy plan from scratch may take: how much of the budget a worker needs
#: besides the search. Measured with the compiled kernel (Northwestern meal batches, medians):
#: 3.0 ms at 60 orders, 22 ms at 200, 77 ms at 400 (0.19 ms per order); kept at 0.2 ms. A
#: partitioned request pays it per zone, so about linearly in the orders.
_GREEDY_PER_ORDER_S = 2e-4
#: Seconds per order kept back at the end of a partitioned job for the cross-zone repair.
_REPAIR_PER_ORDER_S = 2e-5

#: Unassigned reasons the cross-zone repair may still cure (riders of another zone might).
_REPAIRABLE = (Why.NO_FEASIBLE_INSERTION, Why.NOT_PROFITABLE, Why.UNREACHABLE_IN_TIME)

__all__ = [
    "estimate_greedy_s",
    "plan_visits",
    "prepare_worker",
    "repair_zones",
    "solve",
    "solve_zones",
]

GreedyGate = Callable[[Shed], AbstractContextManager[None]]


def estimate_greedy_s(problem: Problem | ProblemSpec | int) -> float:
    """Seconds a greedy plan from scratch may take for ``problem`` (or that many orders): what
    a worker spends before it can search."""
    orders = problem if isinstance(problem, int) else len(problem.orders)
    return _GREEDY_PER_ORDER_S * orders


def _open_orders(orders: Sequence[Any]) -> int:
    return sum(1 for o in orders if o.state is OrderState.OPEN)


def solve(
    problem: Problem | ProblemSpec,
    params: SolverParams | None = None,
    *,
    budget_s: float | None = None,
    previous: Plan | None = None,
    pool: SolverPool | None = None,
    shed: Shed | None = None,
    shedding: bool = True,
    greedy_gate: GreedyGate | None = None,
    deferred: frozenset[str] = frozenset(),
) -> Plan:
    """Answer a dispatch request within ``budget_s`` seconds of wall time.

    Parameters
    ----------
    problem
        The problem, or its spec whose matrices are built where they are used.
    params
        Objective weights, budgets, partitioning (default :class:`SolverParams`).
    budget_s
        Wall-clock budget (s); default ``params.default_budget_s``. With a pool, the answer
        comes back within ``budget_s + params.kill_margin_s``.
    previous
        The previous plan for (a version of) this problem, to start from.
    pool
        Worker pool to run the dispatch in. ``None``: it runs in this process (offline use).
    shed
        Greedy plans only, in this process, for this reason (the caller's circuit breaker).
    shedding
        With a pool: answer with greedy plans here when no worker frees up in time for a
        search (``True``), or wait for one (``False``).
    greedy_gate
        Called as ``with greedy_gate(shed):`` around greedy plans computed here for a shed
        reason (it may refuse by raising: the caller's cap on greedy plans in flight).
    deferred
        Ids of open orders planned only with the riders the other orders leave idle (the
        rest of them ``DEPRIORITISED``); ids of other orders are ignored.

    Returns
    -------
    Plan
        Every order once; ``stats.shed`` set when the answer is not a full search,
        ``stats.zones`` the number of zones, ``stats.phase_s`` the seconds per phase.
    """
    ensure_warm()  # the compiled kernel, once per process, before the budget starts
    params = params or SolverParams()
    budget = Budget(params.default_budget_s if budget_s is None else budget_s)
    spec = problem if isinstance(problem, ProblemSpec) else ProblemSpec.of_problem(problem)
    spec = freeze(spec, params)  # assigned orders due for pickup soon stay on their rider
    last = tuple(o for o in spec.orders if o.id in deferred and o.state is OrderState.OPEN)
    if last:
        first = ProblemSpec(
            spec.now_s, tuple(o for o in spec.orders if o not in last), spec.riders, spec.source
        )
        kept_back = estimate_greedy_s(len(last)) + _INPROCESS_RESERVE_S
        plan = solve(
            first,
            params,
            budget_s=max(budget.remaining() - kept_back, 0.001),
            previous=previous,
            pool=pool,
            shed=shed,
            shedding=shedding,
            greedy_gate=greedy_gate,
        )
        return _plan_deferred(spec, params, plan, last, budget)
    initial = None if previous is None else plan_visits(previous)
    gate = greedy_gate or (lambda _: contextlib.nullcontext())
    with budget.phase("partition"):
        zones = tuple(enumerate(_zones(spec, params, pool.size if pool else 1, initial)))
    if shed is not None:
        with gate(shed), budget.phase("greedy"):
            shed_plans = _greedy_here(spec, params, zones, initial, budget.deadline)
        return _finish(spec, params, shed_plans, len(zones), shed, budget)
    if pool is None or not spec.riders or not _open_orders(spec.orders):
        job = ZoneJob(spec, zones, params, initial, repair=True)
        with budget.phase("engine"):
            here = solve_zones(job, budget.remaining() - _INPROCESS_RESERVE_S, _ignore)
        return _finish(spec, params, here, len(zones), _zones_shed(here), budget)
    groups = _groups(zones, pool.size)
    wait_s = budget.remaining() - params.min_search_s - estimate_greedy_s(spec)
    kill_margin = max(0.0, params.kill_margin_s - _RETURN_RESERVE_S)
    reserve = _POOL_RESERVE_S + _POOL_RESERVE_PER_ORDER_S * len(spec.orders)
    outcomes: list[list[ZonePlan] | WorkerError] = [[] for _ in groups]

    expected = pool.expected_wait_s()
    shed_now = shedding and expected > wait_s

    def run(k: int) -> None:
        job = ZoneJob(spec, groups[k], params, initial, repair=len(groups) == 1)
        try:
            outcomes[k] = pool.run(
                solve_zones,
                job,
                time_limit_s=budget.remaining() - reserve,
                hard_timeout_s=budget.remaining() + kill_margin,
                wait_timeout_s=wait_s if shedding else None,
            )
        except WorkerError as exc:
            outcomes[k] = exc

    if shed_now:  # waiting for a worker would leave no search: greedy here at once
        refusal = PoolBusyError(
            f"expected wait {expected * 1000:.0f} ms for a worker leaves no search in"
            f" {budget.remaining() * 1000:.0f} ms"
        )
        outcomes = [refusal] * len(groups)
    else:
        with budget.phase("engine"):
            threads = [threading.Thread(target=run, args=(k,)) for k in range(1, len(groups))]
            for t in threads:
                t.start()
            run(0)
            for t in threads:
                t.join()
    plans: list[ZonePlan] = []
    failure: Shed | None = None
    missing: list[tuple[int, Zone]] = []
    for group, outcome in zip(groups, outcomes, strict=True):
        if not isinstance(outcome, WorkerError):
            plans.extend(outcome)
            continue
        failure = failure or _failure_shed(outcome)
        latest = {zp.zone: zp for zp in outcome.interims if isinstance(zp, ZonePlan)}
        plans.extend(latest.values())
        missing.extend((n, z) for n, z in group if n not in latest)
    if missing:  # zones no worker answered for (busy pool, or killed before their greedy)
        reason = failure or Shed(ShedReason.WORKERS_BUSY, "no solver worker in time")
        busy = failure is None or failure.reason is ShedReason.WORKERS_BUSY
        with gate(reason) if busy else contextlib.nullcontext(), budget.phase("greedy"):
            plans.extend(_greedy_here(spec, params, tuple(missing), initial, budget.deadline))
    if len(groups) > 1 and failure is None:
        with budget.phase("repair"):
            plans = repair_zones(spec, params, _in_zone_order(plans), deadline=budget.deadline)
    return _finish(spec, params, plans, len(zones), failure or _zones_shed(plans), budget)


def _plan_deferred(
    spec: ProblemSpec, params: SolverParams, plan: Plan, last: Sequence[Order], budget: Budget
) -> Plan:
    """``plan`` (of every order but ``last``) with ``last`` inserted greedily into the routes of
    the riders it leaves idle; those none takes are ``DEPRIORITISED``."""
    idle = tuple(r for r, route in zip(spec.riders, plan.routes, strict=True) if not route.stops)
    why = "suspicious (storm guard): only riders left over after the other orders may take it"
    routes = {r.rider_id: r for r in plan.routes}
    unassigned = list(plan.unassigned)
    with budget.phase("deferred"):
        if idle:
            second = ProblemSpec(spec.now_s, tuple(last), idle, spec.source)
            zones = tuple(enumerate(_zones(second, params, 1)))
            for zp in _greedy_here(second, params, zones, None, budget.deadline):
                routes.update({r.rider_id: r for r in zp.plan.routes if r.stops})
                unassigned += [
                    Unassigned(
                        u.order_id, Why.DEPRIORITISED, f"{why}; {u.reason.value}: {u.detail}"
                    )
                    for u in zp.plan.unassigned
                ]
        else:
            unassigned += [
                Unassigned(o.id, Why.DEPRIORITISED, f"{why}; none was left") for o in last
            ]
    ordered = tuple(routes[r.id] for r in spec.riders)
    routed = {s.order_id for r in ordered for s in r.stops}
    kept = {u.order_id: u for u in unassigned if u.order_id not in routed}
    phases = dict(plan.stats.phase_s)
    phases["deferred"] = budget.phase_s.get("deferred", 0.0)
    phases["total"] = budget.elapsed()
    stats = scored_stats(
        spec.now_s,
        spec.orders,
        params,
        ordered,
        len(kept),
        engine=plan.stats.engine,
        shed=plan.stats.shed,
        phase_s=phases,
        zones=plan.stats.zones,
    )
    order_of = {o.id: k for k, o in enumerate(spec.orders)}
    return Plan(ordered, tuple(sorted(kept.values(), key=lambda u: order_of[u.order_id])), stats)


def prepare_worker(*then: Callable[[], None]) -> None:
    """A solver worker's start-up (its pool ``initializer``): run this module's zone job once
    on a tiny partitioned problem (imports and first calls are not paid by a request), then
    ``then`` (e.g. loading the campus travel tables)."""
    problem = warm_problem()
    xy = np.array([[0.0, 0.0], [0.0, 300.0], [600.0, 300.0], [600.0, 0.0]])
    spec = ProblemSpec.of_problem(problem, xy)
    zones = tuple(enumerate(partition(spec, 2)))
    solve_zones(ZoneJob(spec, zones, SolverParams(), None, repair=True), 0.05, _ignore)
    for step in then:
        step()


def _ignore(_: Any) -> None:
    """The interim callback of a job run in this process (its plans are returned anyway)."""


def _zones(
    spec: ProblemSpec,
    params: SolverParams,
    workers: int,
    initial: Mapping[str, Sequence[Visit]] | None = None,
) -> list[Zone]:
    """The request's zones: one unless it is storm-sized and has point geometry. Open orders
    assigned to a rider (``assigned_rider_id``), else on a rider's route in ``initial`` (the
    plan being executed), stay in that rider's zone."""
    open_orders = _open_orders(spec.orders)
    if open_orders < params.partition_min_orders or spec.source.xy is None:
        return [Zone(tuple(range(len(spec.orders))), tuple(range(len(spec.riders))), (0.0, 0.0))]
    count = zone_count(open_orders, len(spec.riders), params.zone_orders, workers)
    follow = {o: rider for rider, visits in (initial or {}).items() for o, _ in visits}
    present = {r.id for r in spec.riders}
    follow.update(
        {o.id: o.assigned_rider_id for o in spec.orders if o.assigned_rider_id in present}
    )
    return partition(spec, count, follow=follow)


def _groups(
    zones: tuple[tuple[int, Zone], ...], workers: int
) -> list[tuple[tuple[int, Zone], ...]]:
    """Zones shared out to at most ``workers`` jobs, largest zone first to the lightest job."""
    count = max(1, min(workers, len(zones)))
    loads = [0] * count
    groups: list[list[tuple[int, Zone]]] = [[] for _ in range(count)]
    for number, zone in sorted(zones, key=lambda nz: -len(nz[1].orders)):
        k = loads.index(min(loads))
        groups[k].append((number, zone))
        loads[k] += len(zone.orders)
    return [tuple(sorted(g, key=lambda nz: nz[0])) for g in groups]


def _greedy_here(
    spec: ProblemSpec,
    params: SolverParams,
    zones: tuple[tuple[int, Zone], ...],
    initial: Mapping[str, Sequence[Visit]] | None,
    deadline: float,
) -> list[ZonePlan]:
    """Greedy plans of ``zones`` in this process (their matrices built here)."""
    return [_zone_greedy(spec, params, n, zone, initial, deadline)[0] for n, zone in zones]


def _failure_shed(error: WorkerError) -> Shed:
    """The typed shed reason of a failed pool call."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, PoolBusyError):
        return Shed(ShedReason.WORKERS_BUSY, f"no idle solver worker in time ({first})")
    if isinstance(error, WorkerTimeout):
        return Shed(ShedReason.WORKER_OVERRUN, first)
    if isinstance(error, WorkerCrashed):
        return Shed(ShedReason.WORKER_CRASHED, first)
    return Shed(ShedReason.SEARCH_FAILED, first)


def _zones_shed(plans: Sequence[ZonePlan]) -> Shed | None:
    """Why the answer is not a search: only when no zone searched and one says why."""
    if any(zp.searched for zp in plans):
        return None
    return next((zp.shed for zp in plans if zp.shed is not None), None)


def _in_zone_order(plans: Sequence[ZonePlan]) -> list[ZonePlan]:
    return sorted(plans, key=lambda zp: zp.zone)


def _finish(
    spec: ProblemSpec,
    params: SolverParams,
    plans: Sequence[ZonePlan],
    zones: int,
    shed: Shed | None,
    budget: Budget,
) -> Plan:
    """The merged plan with the phases of every zone (summed) and of this call."""
    phases: dict[str, float] = {}
    for zp in plans:
        for name, seconds in zp.plan.stats.phase_s.items():
            phases[name] = phases.get(name, 0.0) + seconds
    for name, seconds in budget.phase_s.items():
        phases[name] = phases.get(name, 0.0) + seconds
    phases["total"] = budget.elapsed()
    return _merge(spec, params, _in_zone_order(plans), zones, shed, phases)


# ------------------------------------------------------------------------------- the job
@dataclass(frozen=True)
class ZoneJob:
    """What one worker (or this process) solves: some zones of a request."""

    spec: ProblemSpec
    zones: tuple[tuple[int, Zone], ...]  # (zone number, zone)
    params: SolverParams
    initial: Mapping[str, list[Visit]] | None
    repair: bool  # whether this job holds every zone and repairs across them


@dataclass(frozen=True)
class ZonePlan:
    """A zone's plan (stop locations already in the request's point numbering)."""

    zone: int
    plan: Plan
    searched: bool
    shed: Shed | None


def solve_zones(
    job: ZoneJob, time_limit_s: float, interim: Callable[[Any], None]
) -> list[ZonePlan]:
    """Greedy plans for every zone of ``job`` (each sent with ``interim`` at once), then the
    search zone by zone for the rest of ``time_limit_s`` (each improvement sent too), then the
    repair across zones when the job holds them all. Runs in a worker or in-process."""
    ensure_warm()
    budget = Budget(time_limit_s)
    params = job.params
    total_orders = sum(len(z.orders) for _, z in job.zones) or 1
    repair_s = _REPAIR_PER_ORDER_S * total_orders if job.repair and len(job.zones) > 1 else 0.0
    problems: dict[int, tuple[Problem, np.ndarray]] = {}
    best: dict[int, ZonePlan] = {}
    for number, zone in job.zones:
        zp, problem, points = _zone_greedy(
            job.spec, params, number, zone, job.initial, budget.deadline
        )
        problems[number] = (problem, points)
        best[number] = zp
        interim(zp)
    # the search, zone by zone, each for its share of what is left
    left_orders = total_orders
    for number, zone in job.zones:
        problem, points = problems[number]
        share = len(zone.orders) / max(left_orders, 1)
        left_orders -= len(zone.orders)
        time_s = (budget.remaining() - repair_s) * share
        greedy_plan = best[number].plan
        shed, found = _search(problem, params, greedy_plan, time_s)
        if found is not None and found.stats.objective <= greedy_plan.stats.objective:
            phase = {**greedy_plan.stats.phase_s, **found.stats.phase_s}
            best[number] = ZonePlan(number, _localised(found, points, number, phase), True, None)
            interim(best[number])
        else:
            best[number] = dataclasses.replace(best[number], shed=shed)
    out = [best[n] for n, _ in job.zones]
    if repair_s:
        out = repair_zones(job.spec, params, out, deadline=budget.deadline)
    return out


def _zone_greedy(
    spec: ProblemSpec,
    params: SolverParams,
    number: int,
    zone: Zone,
    initial: Mapping[str, Sequence[Visit]] | None,
    deadline: float,
) -> tuple[ZonePlan, Problem, np.ndarray]:
    """A zone's greedy plan, its problem (matrices built here, timed as ``matrix``) and its
    points in the request's numbering."""
    started = time.perf_counter()
    problem, points = spec.subproblem_with_points(zone.orders, zone.riders)
    built = time.perf_counter() - started
    greedy = solve_greedy(
        problem, params, initial=_initial_for(initial, problem), deadline=deadline
    )
    phase = {"matrix": built, "greedy": greedy.stats.phase_s.get("greedy", 0.0)}
    return ZonePlan(number, _localised(greedy, points, number, phase), False, None), problem, points


def _initial_for(
    initial: Mapping[str, Sequence[Visit]] | None, problem: Problem
) -> dict[str, list[Visit]] | None:
    if not initial:
        return None
    return {r.id: list(initial[r.id]) for r in problem.riders if r.id in initial}


def _search(
    problem: Problem, params: SolverParams, greedy: Plan, time_s: float
) -> tuple[Shed | None, Plan | None]:
    """The search on a zone's problem from its greedy plan (whose stops are in the request's
    numbering: only its visits and reasons are used), or why it did not run."""
    open_orders = _open_orders(problem.orders)
    if not problem.orders or not problem.riders or not open_orders:
        return None, None
    task = _choose_task(params, open_orders)
    overhead = estimate_overhead_s(problem) if task == "ortools" else estimate_rebuild_s(problem)
    if not task:
        return Shed(
            ShedReason.TOO_MANY_ORDERS,
            f"{open_orders} open orders > ortools_max_orders {params.ortools_max_orders} and "
            "ruin_recreate_share is 0",
        ), None
    if time_s < params.min_search_s + overhead:
        return Shed(
            ShedReason.BUDGET_TOO_SMALL,
            f"{time_s * 1000:.0f} ms left < min_search_s {params.min_search_s * 1000:.0f} ms"
            f" + overhead {overhead * 1000:.0f} ms",
        ), None
    try:
        found = run_task(
            task,
            problem,
            params,
            time_limit_s=time_s - _INPROCESS_RESERVE_S,
            initial=plan_visits(greedy),
            reasons={u.order_id: u for u in greedy.unassigned},
        )
    except EngineError as exc:
        return Shed(ShedReason.SEARCH_FAILED, str(exc).splitlines()[0]), None
    return None, found


def _choose_task(params: SolverParams, open_orders: int) -> str:
    """The search task (:data:`solver.engines.search.TASKS`) for this many open orders, or
    ``""``."""
    ortools_fits = open_orders <= params.ortools_max_orders
    if params.ruin_recreate_share <= 0.0:
        return "ortools" if ortools_fits else ""
    if params.ruin_recreate_share >= 1.0 or not ortools_fits:
        return "ruin_recreate"
    return "search"


def _localised(plan: Plan, points: np.ndarray, zone: int, phase_s: Mapping[str, float]) -> Plan:
    """``plan`` of a zone problem with its stop locations in the request's point numbering,
    its routes tagged with ``zone`` and ``phase_s`` as its phases."""
    routes = tuple(
        dataclasses.replace(
            r,
            zone=zone,
            stops=tuple(dataclasses.replace(s, location=int(points[s.location])) for s in r.stops),
        )
        for r in plan.routes
    )
    stats = dataclasses.replace(plan.stats, phase_s=dict(phase_s))
    return dataclasses.replace(plan, routes=routes, stats=stats)


# ---------------------------------------------------------------------------- the repair
def repair_zones(
    spec: ProblemSpec,
    params: SolverParams,
    plans: list[ZonePlan],
    *,
    deadline: float,
) -> list[ZonePlan]:
    """Offer each zone's repairable unassigned orders to the riders of the other zones,
    nearest zone first, by greedy insertion into their current routes (a zone's routes keep
    every order they had, or the move is not made). Stops at ``deadline`` (a
    :func:`time.perf_counter` value). Zone plans' objectives are stale afterwards: the merge
    recomputes the whole plan's."""
    xy = spec.source.xy
    if len(plans) < 2 or xy is None:
        return plans
    by_zone = {zp.zone: zp for zp in plans}
    order_index = {o.id: k for k, o in enumerate(spec.orders)}
    rider_index = {r.id: k for k, r in enumerate(spec.riders)}
    centres = {
        zp.zone: xy[[spec.riders[rider_index[r.rider_id]].location for r in zp.plan.routes]].mean(
            axis=0
        )
        for zp in plans
        if zp.plan.routes
    }
    for zone in list(by_zone):
        stray = [u for u in by_zone[zone].plan.unassigned if u.reason in _REPAIRABLE]
        if not stray or zone not in centres:
            continue
        others = sorted(
            (z for z in centres if z != zone),
            key=lambda z: float(np.linalg.norm(centres[z] - centres[zone])),
        )
        for other in others:
            if not stray or time.perf_counter() >= deadline:
                break
            target = by_zone[other].plan
            before = {s.order_id for r in target.routes for s in r.stops}
            orders = sorted(order_index[o] for o in before) + [
                order_index[u.order_id] for u in stray
            ]
            riders = [rider_index[r.rider_id] for r in target.routes]
            problem, points = spec.subproblem_with_points(orders, riders)
            visits = {r.rider_id: [(s.order_id, s.kind) for s in r.stops] for r in target.routes}
            found = solve_greedy(problem, params, initial=visits, deadline=deadline)
            after = {s.order_id for r in found.routes for s in r.stops}
            placed = after - before
            if not placed or not before <= after:
                continue
            moved = _localised(found, points, other, target.stats.phase_s)
            by_zone[other] = dataclasses.replace(
                by_zone[other],
                plan=dataclasses.replace(target, routes=moved.routes),
            )
            source = by_zone[zone].plan
            left = tuple(u for u in source.unassigned if u.order_id not in placed)
            by_zone[zone] = dataclasses.replace(
                by_zone[zone], plan=dataclasses.replace(source, unassigned=left)
            )
            stray = [u for u in stray if u.order_id not in placed]
    return [by_zone[p.zone] for p in plans]


# ------------------------------------------------------------------------------ the merge
def _merge(
    spec: ProblemSpec,
    params: SolverParams,
    plans: Sequence[ZonePlan],
    zones: int,
    shed: Shed | None,
    phase_s: Mapping[str, float],
) -> Plan:
    """One plan of the request from its zones' plans: a route per rider in request order,
    every order once (an order no zone answered for is ``SHED``), the objective recomputed on
    the whole plan."""
    routes: dict[str, Route] = {}
    unassigned: dict[str, Unassigned] = {}
    engines = []
    for zp in plans:
        for r in zp.plan.routes:
            routes[r.rider_id] = r
        for u in zp.plan.unassigned:
            unassigned.setdefault(u.order_id, u)
        engines.append(zp.plan.stats.engine)
    routed = {s.order_id for r in routes.values() for s in r.stops}
    for o in spec.orders:
        if o.id in routed:
            unassigned.pop(o.id, None)
        elif o.id not in unassigned:  # a zone that never answered
            unassigned[o.id] = Unassigned(o.id, Why.SHED, "no engine considered it in time")
    searched = [e for e in engines if e is not Engine.GREEDY]
    ordered = tuple(routes.get(r.id, Route(r.id, ())) for r in spec.riders)
    kept = tuple(unassigned[o.id] for o in spec.orders if o.id in unassigned)
    stats = scored_stats(
        spec.now_s,
        spec.orders,
        params,
        ordered,
        len(kept),
        engine=searched[0] if searched else Engine.GREEDY,
        shed=shed,
        phase_s=dict(phase_s),
        zones=zones,
    )
    return Plan(routes=ordered, unassigned=kept, stats=stats)
