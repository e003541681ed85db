"""Ruin-and-recreate improvement of a plan: route elimination, then simulated annealing.

Both phases run in the compiled kernel (:mod:`solver.engines.kernel`), on the same exact insertion
prices as the greedy engine: a *ruin* takes some open orders out of their routes, the
*recreate* puts them back one by one at their cheapest feasible position (with a small chance
of skipping a position, a "blink"), so every route the search holds obeys the rules exactly as
the greedy's do. The kernel runs iterations in batches; this module keeps the clock between
them (a batch is sized to take about :data:`_BATCH_S`). The ruin is the string removal of SISR
(Christiaens & Vanden Berghe, 2020): around a seed order, strings of consecutive orders are
taken out of a few nearby routes.

1. **Route elimination** (only when riders have a fixed cost): the smallest route without pinned
   orders is dropped, its orders go to a pool, and ruin-and-recreate runs with SISR's fleet
   minimisation rule: a new state is accepted when fewer orders are left out, or when the
   orders left out have been left out less often so far. When the pool is empty, the next route
   goes. The best complete plan (lowest objective) is kept.
2. **Simulated annealing** on the objective, with the riders fixed: ruin-and-recreate, a new
   state accepted when its objective is below the current one plus a temperature times a
   random threshold; the temperature falls geometrically over the phase.

Pinned orders are never moved. Open orders the input plan leaves out are tried again at every
recreate. The result is the best plan found as visit sequences; the caller builds the plan
(:func:`solver.engines.greedy.solve_greedy` with ``initial=``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from solver.engines import kernel as k
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import StopKind
from solver.routes import Visit

INF = float("inf")
_BATCH_S = 0.002
"""Wall time a batch of kernel iterations aims at (the deadline is looked at between them)."""


@dataclass(frozen=True, slots=True)
class ImproveConfig:
    """Knobs of the search.

    ``c_bar`` = 5 (SISR's paper uses 10) measured 0.5-2 % better on synthetic meal batches at
    0.15 s and equal at 0.8 s (60 and 200 orders, 3 seeds each); the annealing temperatures were
    indistinguishable between ``t0`` 0.03 and 0.1.

    Attributes
    ----------
    elim_share
        Most of the time given to route elimination (when riders have a fixed cost).
    attempt_share
        Share of the time one route's elimination may take: when its orders are not all placed
        by then, elimination stops and the annealing gets the rest. It also stops when the
        routes left cannot carry the start-loaded orders with one route fewer.
    c_bar
        Average number of orders a ruin takes out (:func:`improve_visits` takes it from
        ``SolverParams.ruin_orders`` unless a config is given).
    max_string
        Longest string (in orders) taken out of one route.
    blink
        Probability of skipping an insertion position in the recreate.
    t0, tf
        Start and final temperature of the annealing, per mean cost per routed order
        (:func:`improve_visits` takes them from ``SolverParams.anneal_start_temp`` /
        ``anneal_end_temp`` unless a config is given).
    """

    elim_share: float = 0.6
    attempt_share: float = 0.2
    c_bar: float = 5.0
    max_string: int = 10
    blink: float = 0.01
    t0: float = 0.1
    tf: float = 0.002


class _Search:
    """Ruin and recreate on one problem, from a plan's visits (kernel arrays)."""

    def __init__(
        self,
        problem: Problem,
        params: SolverParams,
        visits: Mapping[str, Sequence[Visit]],
        config: ImproveConfig,
        seed: int,
    ) -> None:
        self.problem = problem
        self.params = params
        self.p = k.compile_problem(problem, params)
        self.s = k.new_state(self.p)
        self.snap = k.new_snap(self.s)
        k.seed_rng(int(seed))  # a Python int: one kernel signature whatever the caller passes
        orders = problem.orders
        n_o = len(orders)
        self.best_rows = np.full_like(self.s[0], -1)
        self.best_lens = np.zeros_like(self.s[1])
        for r, rider in enumerate(problem.riders):
            codes = [
                2 * problem.order_index[oid]
                + (k.PICK if StopKind(kind) is StopKind.PICKUP else k.DROP)
                for oid, kind in visits.get(rider.id, ())
            ]
            self.best_rows[r, : len(codes)] = codes
            self.best_lens[r] = len(codes)
        k.load_routes(self.p, self.s, self.best_rows, self.best_lens)
        self.movable = np.array([o.state is OrderState.OPEN for o in orders], dtype=np.bool_)
        where = self.s[3][:n_o]
        self.out = np.flatnonzero(self.movable & (where < 0)).astype(np.int64)
        self.best_objective = self.objective()
        has_pickups = any(o.pickup is not None for o in orders)
        self.cfg = np.array(
            [config.c_bar, config.max_string, config.blink, 2.0 if has_pickups else 1.0],
            dtype=np.float64,
        )
        self.config = config
        # Order-to-order closeness for the ruin: pickups to pickups plus drop-offs to drop-offs
        # (a start-loaded order counts its drop-off as its pickup), on the first profile.
        t = problem.time_s[0].astype(np.float64)
        t = np.minimum(t, t.T)
        drop = np.array([o.dropoff for o in orders], dtype=np.intp)
        pick = np.array(
            [o.dropoff if o.pickup is None else o.pickup for o in orders], dtype=np.intp
        )
        closeness = t[np.ix_(pick, pick)] + t[np.ix_(drop, drop)]
        # fixed dtypes and layout: the kernel is compiled for these types only (see its docstring)
        self.neigh = np.ascontiguousarray(
            np.argsort(closeness, axis=1, kind="stable"), dtype=np.int64
        )
        depot = problem.riders[0].location if problem.riders else 0
        self.far = np.ascontiguousarray(t[depot, drop] if n_o else np.zeros(0), dtype=np.float64)
        self.iterations = 0

    def objective(self) -> float:
        """Objective of the current state (its routes and the orders out of them)."""
        out = np.flatnonzero(self.movable & (self.s[3][: len(self.movable)] < 0))
        return float(k.total_cost(self.p, self.s)) + float(k.outs_cost(self.p, out))

    def _batches(self, deadline: float, run: Callable[[int], bool]) -> None:
        """Call ``run(n)`` (n iterations) until ``deadline``, sizing n to :data:`_BATCH_S`."""
        n = 1
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            if not run(n):
                return
            took = time.perf_counter() - now
            rate = n / max(took, 1e-6)
            n = int(min(max(rate * min(_BATCH_S, deadline - time.perf_counter()), 1), 4 * n))

    # ---------------------------------------------------------------- phases
    def eliminate(self, deadline: float, attempt_s: float) -> None:
        """Route elimination by ruin and recreate with SISR's fleet-minimisation acceptance."""
        problem = self.problem
        n_o, n_r = len(problem.orders), len(problem.riders)
        pinned_rider = np.zeros(n_r, dtype=np.bool_)
        for o in problem.orders:
            if o.is_pinned and o.rider_id is not None:
                pinned_rider[problem.rider_index[o.rider_id]] = True
        pool = np.empty(max(n_o, 1), dtype=np.int64)
        absence = np.zeros(max(n_o, 1), dtype=np.int64)
        active = self.s[1][:n_r] > 0
        ctl = np.zeros(2, dtype=np.int64)
        fctl = np.array([INF, self.best_objective])
        fixed_cost = float(k.outs_cost(self.p, self.out))  # left out by the input plan: retried
        # by the annealing only

        # Start-loaded orders are all in the bag from the start, so their sizes bound the
        # routes from below; orders with a pickup can share a bag one after another.
        loaded = sum(
            o.size for o in problem.orders if o.pickup is None and o.state is OrderState.OPEN
        )
        biggest = float(max((r.capacity for r in problem.riders), default=1))
        min_routes = int(np.ceil(loaded / max(biggest, 1.0) - 1e-9))
        attempt = {"routes": int(active.sum()), "since": time.perf_counter()}

        def run(n: int) -> bool:
            if ctl[0] == 0:
                # complete: the next iteration eliminates a route, unless capacity forbids it
                if int((self.s[1][:n_r] > 0).sum()) <= max(min_routes, 1):
                    return False
            elif time.perf_counter() - attempt["since"] > attempt_s:
                return False  # this route's orders found no place in time
            more = k.eliminate_run(
                self.p,
                self.s,
                self.snap,
                self.neigh,
                self.far,
                self.movable,
                pinned_rider,
                self.cfg,
                pool,
                absence,
                active,
                ctl,
                fctl,
                self.best_rows,
                self.best_lens,
                fixed_cost,
                n,
            )
            self.iterations = int(ctl[1])
            if int(active.sum()) < attempt["routes"]:
                attempt["routes"] = int(active.sum())
                attempt["since"] = time.perf_counter()
            return bool(more)

        self._batches(deadline, run)
        self.best_objective = float(fctl[1])
        k.load_routes(self.p, self.s, self.best_rows, self.best_lens)

    def anneal(self, deadline: float) -> None:
        """Simulated annealing by ruin and recreate, riders fixed, until ``deadline``."""
        n_o = len(self.problem.orders)
        seeds = np.flatnonzero(self.movable).astype(np.int64)
        routed = int((self.s[3][:n_o][self.movable] >= 0).sum())
        if not len(seeds) or not routed:
            return
        used = int((self.s[1] > 0).sum())
        variable = float(k.total_cost(self.p, self.s)) - self.params.vehicle_fixed_cost * used
        unit = max(variable, 1e-9) / routed
        t0, tf = self.config.t0 * unit, self.config.tf * unit
        outs = np.empty(max(n_o, 1), dtype=np.int64)
        outs[: len(self.out)] = self.out
        ctl = np.array([len(self.out), self.iterations], dtype=np.int64)
        current = self.objective()
        fctl = np.array([current, min(current, self.best_objective)])
        if current < self.best_objective:
            self.best_rows[:] = self.s[0]
            self.best_lens[:] = self.s[1]
        start = time.perf_counter()
        span = max(deadline - start, 1e-6)

        def run(n: int) -> bool:
            temp = float(t0 * (tf / t0) ** ((time.perf_counter() - start) / span))
            k.anneal_run(
                self.p,
                self.s,
                self.snap,
                self.neigh,
                self.far,
                self.movable,
                seeds,
                self.cfg,
                outs,
                ctl,
                fctl,
                self.best_rows,
                self.best_lens,
                n,
                temp,
            )
            self.iterations = int(ctl[1])
            return True

        self._batches(deadline, run)
        self.best_objective = float(fctl[1])

    def visits(self) -> dict[str, list[Visit]]:
        """The best routes found, as visit sequences by rider id."""
        ids = [o.id for o in self.problem.orders]
        kinds = (StopKind.PICKUP, StopKind.DROPOFF)
        return {
            rider.id: [
                (ids[c >> 1], kinds[c & 1]) for c in self.best_rows[r, : self.best_lens[r]].tolist()
            ]
            for r, rider in enumerate(self.problem.riders)
        }


def improve_visits(
    problem: Problem,
    params: SolverParams,
    visits: Mapping[str, Sequence[Visit]],
    *,
    deadline: float,
    seed: int = 0,
    config: ImproveConfig | None = None,
) -> tuple[dict[str, list[Visit]], dict[str, float]]:
    """Improve a plan's visits by route elimination and annealing until ``deadline``.

    Parameters
    ----------
    problem, params
        The problem and the objective.
    visits
        A feasible plan's visit sequences by rider id (e.g. the greedy plan's).
    deadline
        A :func:`time.perf_counter` value: the search stops at it.
    seed
        Seed of the random choices (the search is deterministic given the iterations done).
    config
        Search knobs (default :class:`ImproveConfig`).

    Returns
    -------
    tuple
        The best visits found (never worse than ``visits`` by the objective) and stats:
        ``eliminate`` / ``anneal`` seconds and ``iterations``.
    """
    k.ensure_warm()  # the kernel is loaded (or compiled) once per process, not per deadline
    cfg = config or ImproveConfig(
        c_bar=params.ruin_orders, t0=params.anneal_start_temp, tf=params.anneal_end_temp
    )
    search = _Search(problem, params, visits, cfg, seed)
    started = time.perf_counter()
    stats: dict[str, float] = {}
    if params.vehicle_fixed_cost > 0 and bool((search.s[1] > 0).any()):
        span = max(0.0, deadline - started)
        search.eliminate(started + cfg.elim_share * span, cfg.attempt_share * span)
        stats["eliminate"] = time.perf_counter() - started
    mark = time.perf_counter()
    search.anneal(deadline)
    stats["anneal"] = time.perf_counter() - mark
    stats["iterations"] = float(search.iterations)
    return search.visits(), stats
