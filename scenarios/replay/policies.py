"""Dispatch policies the replay simulator compares: the nearest-idle-rider baseline, our greedy
insertion, and our full dispatch search (in this process or through a worker pool)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from solver.engines.greedy import solve_greedy
from solver.engines.search import plan_visits
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind
from solver.routes import Visit, build_plan
from solver.runtime.dispatch import solve
from solver.runtime.workers import SolverPool
from solver.spec import ProblemSpec


@dataclass(frozen=True)
class OrderSource:
    """Who placed an order, when, and at which merchant (a scenario order's account, placed
    time in scenario seconds and merchant id), and since when that account orders on the
    platform (``account_since_s``: scenario seconds, negative before the period; ``None``:
    unknown)."""

    account: str
    placed_s: int
    merchant_id: str = ""
    account_since_s: int | None = None


#: Storm levels a guard reports (``SolveStats.storm_level``), by number.
STORM_LEVELS = ("normal", "elevated", "storm", "severe")


@dataclass(frozen=True)
class Flag:
    """What a storm guard said of one suspicious order in one answer.

    Attributes
    ----------
    action
        ``"flag"`` (reported only), ``"deprioritise"`` (served only by riders left over) or
        ``"quarantine"`` (held until an operator releases it).
    detector
        Which detector found it: ``"customer_burst"``, ``"fresh_destination"``,
        ``"confirmed_account"`` (``""``: not said).
    evidence
        The detector's explanation, in one sentence.
    """

    action: str
    detector: str = ""
    evidence: str = ""


@dataclass(frozen=True)
class Snapshot:
    """The dispatcher's view at one batch: the problem and where its locations are.

    Attributes
    ----------
    problem
        Riders at their current positions, visible orders (open, committed, onboard); its clock
        is seconds from the scenario's period start (``problem.now_s`` is the batch time).
    points
        ``(n, 2)`` coordinates of each location index (lat/lng on a campus, x/y on a plane).
    modes
        Travel mode of each profile index.
    rider_modes
        Travel mode of each rider id.
    current
        Each rider's remaining visits from the plan being executed (its heading stop first).
    epoch_s
        Epoch seconds of the period start (``start_time``), for requests on a real clock.
    xy
        ``(n, 2)`` metres on a plane for each location (zones of storm-sized batches), or
        ``None``.
    customers
        What the backend knows of each visible order besides the problem, by order id: who
        ordered, when, from which merchant (:class:`OrderSource`).
    """

    problem: Problem
    points: NDArray[np.float64]
    modes: tuple[str, ...]
    rider_modes: Mapping[str, str]
    current: Mapping[str, Sequence[Visit]]
    epoch_s: float = 0.0
    xy: NDArray[np.float64] | None = None
    customers: Mapping[str, OrderSource] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """A policy's answer: visit sequences per rider, and how it was found.

    Attributes
    ----------
    visits
        Stops per rider id, in order; orders in no sequence stay open for the next batch.
    engine
        Which engine answered (``nearest``, ``greedy``, ``ruin_recreate``, ``ortools``).
    shed_reason
        Non-empty when the service (or the in-process dispatch) fell back to greedy.
    rejected
        Non-empty when there was no answer at all (e.g. RESOURCE_EXHAUSTED): the riders keep
        the plan they have.
    phase_s
        Seconds per phase reported by the engine or the service.
    storm_level
        The campus's storm level after this batch, 0 (normal) to 3 (severe), as the service's
        storm guard reports it (0 for policies without a guard).
    flagged
        The orders of the snapshot the storm guard finds suspicious, by order id (empty
        without a guard).
    held
        The orders the answer leaves unassigned as QUARANTINED (held by the storm guard until
        an operator releases them; empty without a guard).
    eta_s
        The drop-off ETA the plan quotes for each order it routes, by order id: its planned
        arrival at the customer, seconds on the scenario clock (what the student is shown).
        Optional: the simulator times the visits itself for any routed order missing here
        (the ``nearest`` baseline gives none).
    tentative
        Orders the plan routes but marks tentative: planned and quoted an ETA, not to be
        pushed to the rider yet (``Stop.tentative``); empty: push every planned order.
    """

    visits: Mapping[str, Sequence[Visit]]
    engine: str
    shed_reason: str = ""
    rejected: str = ""
    phase_s: Mapping[str, float] = field(default_factory=dict)
    storm_level: int = 0
    flagged: Mapping[str, Flag] = field(default_factory=dict)
    held: frozenset[str] = frozenset()
    eta_s: Mapping[str, int] = field(default_factory=dict)
    tentative: frozenset[str] = frozenset()


def decision_of(plan: Plan) -> Decision:
    """The decision a solver plan makes: its visits, engine, shed reason and phases, the
    drop-off ETA it quotes for each order it routes (its planned arrival at the customer), and
    the orders it marks tentative (not to be pushed yet)."""
    stops = [stop for route in plan.routes for stop in route.stops]
    return Decision(
        plan_visits(plan),
        plan.stats.engine.value,
        shed_reason=plan.stats.shed_reason,
        phase_s=plan.stats.phase_s,
        eta_s={s.order_id: s.arrival_s for s in stops if s.kind is StopKind.DROPOFF},
        tentative=frozenset(s.order_id for s in stops if s.tentative),
    )


class Policy(Protocol):
    """A dispatch policy: a plan for a snapshot."""

    #: Name in reports.
    name: str
    #: ``True``: the replay neither assigns nor commits its planned orders (free re-planning:
    #: only the pickup a rider is heading to stays). ``False``: the backend's rules
    #: (:class:`~scenarios.replay.simulate.ReplayConfig` ``accept_delay_s``).
    replans_freely: bool
    #: Whether its plans keep open orders within ``max_lateness_s`` (the baseline does not).
    enforces_lateness_cap: bool

    def dispatch(self, snapshot: Snapshot) -> Decision:
        """Visit sequences for the snapshot's riders."""
        ...

    def close(self) -> None:
        """Release resources (worker processes, channels)."""
        ...


class NearestIdleRider:
    """The baseline small campus platforms run: each new order, oldest first, goes to the idle
    rider nearest its merchant (one order per trip, no bundling, no re-planning); an order with
    no idle rider that can deliver it before its shift ends waits for the next batch. An order
    it gave a rider stays with that rider (assigned, then committed)."""

    name = "nearest"
    replans_freely = False
    enforces_lateness_cap = False

    def dispatch(self, snapshot: Snapshot) -> Decision:
        problem = snapshot.problem
        started = time.perf_counter()
        visits: dict[str, list[Visit]] = {
            r.id: list(snapshot.current.get(r.id, ())) for r in problem.riders
        }
        # What pinned and assigned orders still need (their rider's plan first, then anything
        # missing): it never moves an order it gave a rider.
        for order in problem.orders:
            rider_id = order.rider_id if order.is_pinned else order.assigned_rider_id
            if rider_id not in visits:
                continue
            seq = visits[rider_id]
            if order.state is OrderState.COMMITTED and (order.id, StopKind.PICKUP) not in seq:
                seq.append((order.id, StopKind.PICKUP))
            if (order.id, StopKind.DROPOFF) not in seq:
                seq.append((order.id, StopKind.DROPOFF))
        idle = [r for r in problem.riders if not visits[r.id] and r.capacity > 0]
        given = {order_id for seq in visits.values() for order_id, _ in seq}
        waiting = sorted(
            (o for o in problem.orders if o.state is OrderState.OPEN and o.id not in given),
            key=lambda o: (o.ready_s, o.due_s, o.id),
        )
        for order in waiting:
            assert order.pickup is not None
            best, best_s = None, None
            for rider in idle:
                if order.size > rider.capacity:
                    continue
                times = problem.time_s[rider.profile]
                depart = problem.start_time(rider)
                at_merchant = depart + int(times[rider.location, order.pickup])
                leave = max(at_merchant, order.ready_s) + order.pickup_service_s
                at_customer = leave + int(times[order.pickup, order.dropoff])
                if at_customer > rider.shift_end_s:
                    continue
                reach = int(times[rider.location, order.pickup])
                if best_s is None or reach < best_s:
                    best, best_s = rider, reach
            if best is None:
                continue
            visits[best.id] = [(order.id, StopKind.PICKUP), (order.id, StopKind.DROPOFF)]
            idle.remove(best)
        spent = time.perf_counter() - started
        return Decision(visits, "nearest", phase_s={"total": spent})

    def close(self) -> None:
        return None


class GreedyInsertion:
    """Our greedy cheapest insertion, starting from the plan being executed (the shed path)."""

    name = "greedy"
    replans_freely = False
    enforces_lateness_cap = True

    def __init__(self, params: SolverParams) -> None:
        self.params = params

    def dispatch(self, snapshot: Snapshot) -> Decision:
        return decision_of(solve_greedy(snapshot.problem, self.params, initial=snapshot.current))

    def close(self) -> None:
        return None


class DispatchSearch:
    """Our full dispatch (:func:`solver.runtime.dispatch.solve`: greedy, then the search within the
    budget), warm-started from the plan being executed.

    Parameters
    ----------
    params
        Solver parameters (``ruin_recreate_share = 0`` gives greedy + OR-Tools).
    budget_s
        Wall-clock budget of each batch's solve (s).
    name
        Name in reports.
    workers
        ``0``: the search runs in this process (offline, deterministic wall-clock use);
        ``n``: in a :class:`~solver.runtime.workers.SolverPool` of ``n`` processes, as the
        service does.
    replans_freely
        Re-plan every batch from scratch but for the pickups riders are heading to, with
        moves free (no assignment, reassignment cost or freeze): the search before issue 18.
    """

    enforces_lateness_cap = True

    def __init__(
        self,
        params: SolverParams,
        budget_s: float,
        *,
        name: str = "search",
        workers: int = 0,
        replans_freely: bool = False,
    ) -> None:
        if replans_freely:
            params = dataclasses.replace(params, reassignment_cost=0.0, freeze_horizon_s=0)
        self.params = params
        self.budget_s = budget_s
        self.name = name
        self.replans_freely = replans_freely
        self.pool = SolverPool(workers).start() if workers > 0 else None

    def dispatch(self, snapshot: Snapshot) -> Decision:
        problem = snapshot.problem
        previous = build_plan(problem, self.params, snapshot.current, [], engine=Engine.GREEDY)
        spec = ProblemSpec.of_problem(problem, snapshot.xy)  # zones when storm-sized
        plan = solve(spec, self.params, budget_s=self.budget_s, previous=previous, pool=self.pool)
        return decision_of(plan)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


#: Policy names :func:`make_policy` knows, in report order.
POLICIES = ("nearest", "greedy", "search", "search-free", "ortools")


def make_policy(name: str, params: SolverParams, budget_s: float, *, workers: int = 0) -> Policy:
    """A policy by name: ``nearest`` (baseline), ``greedy``, ``search`` (the service's dispatch
    with ``params``), ``search-free`` (the same search re-planning freely: no assignment kept,
    the reference of plan stability) or ``ortools`` (greedy, then OR-Tools alone:
    ``ruin_recreate_share = 0``).
    """
    if name == "nearest":
        return NearestIdleRider()
    if name == "greedy":
        return GreedyInsertion(params)
    if name == "search":
        return DispatchSearch(params, budget_s, name="search", workers=workers)
    if name == "search-free":
        return DispatchSearch(
            params, budget_s, name="search-free", workers=workers, replans_freely=True
        )
    if name == "ortools":
        ortools = dataclasses.replace(params, ruin_recreate_share=0.0)
        return DispatchSearch(ortools, budget_s, name="ortools", workers=workers)
    raise ValueError(f"policy={name!r}: must be one of {POLICIES}")
