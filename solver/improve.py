"""Ruin-and-recreate improvement of a plan: route elimination, then simulated annealing.

Both phases work on the greedy engine's insertion tables (:mod:`solver.greedy`): a *ruin* takes
some open orders out of their routes, the *recreate* puts them back one by one at their cheapest
feasible position (with a small chance of skipping a position, a "blink"), so every route the
search holds obeys the rules exactly as the greedy's do. The ruin is the string removal of SISR
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
(:func:`solver.greedy.solve_greedy` with ``initial=``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solver import greedy as _g
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import StopKind
from solver.routes import Visit

INF = float("inf")
IVisit = tuple[int, int]
"""A visit in index form: (order index, ``greedy.PICK`` or ``greedy.DROP``)."""


@dataclass(frozen=True, slots=True)
class ImproveConfig:
    """Knobs of the search.

    ``c_bar`` = 5 (SISR's paper uses 10) measured 0.5-2 % better on synthetic meal batches at
    0.15 s and equal at 0.8 s (60 and 200 orders, 3 seeds each); the annealing temperatures were
    indistinguishable between ``t0`` 0.03 and 0.1.

    Attributes
    ----------
    elim_share
        Share of the time given to route elimination (when riders have a fixed cost).
    c_bar
        Average number of orders a ruin takes out.
    max_string
        Longest string (in orders) taken out of one route.
    blink
        Probability of skipping an insertion position in the recreate.
    t0, tf
        Start and final temperature of the annealing, per mean cost per routed order.
    """

    elim_share: float = 0.6
    c_bar: float = 5.0
    max_string: int = 10
    blink: float = 0.01
    t0: float = 0.1
    tf: float = 0.002


@dataclass(slots=True)
class _Snap:
    """A route's state before a move, to undo it."""

    visits: list[IVisit]
    n_open: int
    c_row: NDArray[np.float64]
    adj_f: NDArray[np.float64]
    adj_i: NDArray[np.int64]
    far_f: NDArray[np.float64]
    far_i: NDArray[np.int64]
    cost: float
    stale: bool


class _Solution:
    """A mutable solution over the greedy's insertion tables for one set of riders."""

    def __init__(
        self, problem: Problem, params: SolverParams, routes: Sequence[Sequence[IVisit]]
    ) -> None:
        self.problem = problem
        self.g = _g._Greedy(problem, params)
        self.route_of = [-1] * len(problem.orders)
        self.cost = [0.0] * len(problem.riders)
        self.stale: set[int] = set()
        for r, visits in enumerate(routes):
            self._set(r, list(visits))

    @property
    def visits(self) -> list[list[IVisit]]:
        """The routes' visits by rider index."""
        return self.g.visits

    def _route_cost(self, visits: Sequence[IVisit], t: _g._Timing) -> float:
        """The objective terms of one route (travel, distance, waiting, lateness, delivery time,
        vehicle)."""
        if not visits:
            return 0.0
        g = self.g
        cost = sum(t.edge_c) + g.veh
        if g.wc:
            cost += g.wc * sum(t.wait)
        if g.delay_priced:
            late = delivered = 0
            due = g.o_due
            for pos, (o, k) in enumerate(visits, 1):
                if k == _g.DROP:
                    s = t.arr[pos] + t.wait[pos]
                    delivered += s - g.now
                    if s > due[o]:
                        late += s - due[o]
            cost += g.lc * late + g.dlc * delivered
        return cost

    def _set(self, r: int, visits: list[IVisit]) -> list[int]:
        """Make ``visits`` route ``r``, evicting open orders that break a rule (returned)."""
        g = self.g
        evicted: list[int] = []
        while True:
            t = g.time_route(r, visits)
            if t.bad < 0 or not g.o_open[t.bad]:
                break
            evicted.append(t.bad)
            visits = [v for v in visits if v[0] != t.bad]
        g.set_route(r, visits, t)
        self.cost[r] = self._route_cost(visits, t)
        self.stale.discard(r)
        for o, _ in visits:
            self.route_of[o] = r
        for o in evicted:
            self.route_of[o] = -1
        return evicted

    def snap(self, r: int) -> _Snap:
        """The state of route ``r``."""
        g = self.g
        return _Snap(
            g.visits[r],
            g.n_open[r],
            g.cmat[r].copy(),
            g.adj_f[r],
            g.adj_i[r],
            g.far_f[r],
            g.far_i[r],
            self.cost[r],
            r in self.stale,
        )

    def restore(self, r: int, s: _Snap) -> None:
        """Put route ``r`` back into state ``s``."""
        g = self.g
        for o, _ in g.visits[r]:
            if self.route_of[o] == r:
                self.route_of[o] = -1
        g.visits[r] = s.visits
        g.n_open[r] = s.n_open
        width = g.cmat.shape[2]
        row = s.c_row
        if row.shape[1] < width:
            row = np.concatenate((row, np.full((2, width - row.shape[1]), INF)), axis=1)
        g.cmat[r] = row[:, :width]
        g.adj_f[r], g.adj_i[r], g.far_f[r], g.far_i[r] = s.adj_f, s.adj_i, s.far_f, s.far_i
        g.dirty.add(r)
        self.cost[r] = s.cost
        if s.stale:
            self.stale.add(r)
        else:
            self.stale.discard(r)
        for o, _ in s.visits:
            self.route_of[o] = r

    def remove(self, orders: Sequence[int], snaps: dict[int, _Snap]) -> list[int]:
        """Take ``orders`` out of their routes; returns every order now out (evictions too)."""
        by_route: dict[int, set[int]] = {}
        out = list(orders)
        for o in orders:
            r = self.route_of[o]
            if r >= 0:
                by_route.setdefault(r, set()).add(o)
        for r, gone in by_route.items():
            if r not in snaps:
                snaps[r] = self.snap(r)
            for o in gone:
                self.route_of[o] = -1
            out.extend(self._set(r, [v for v in self.g.visits[r] if v[0] not in gone]))
        return out

    def insert(
        self, o: int, snaps: dict[int, _Snap], blink: float, rng: np.random.Generator
    ) -> bool:
        """Insert open order ``o`` at its cheapest feasible position (after blinks)."""
        g = self.g
        evs = g.price(o)
        if blink > 0.0:
            for ev in evs:
                if ev.cost.size:
                    ev.cost[rng.random(ev.cost.size) < blink] = INF

        def keep(r: int) -> None:
            if r not in snaps:
                snaps[r] = self.snap(r)

        inserted, _, r = _g._try_insert(g, o, evs, before_apply=keep)
        if inserted:
            self.route_of[o] = r
            self.stale.add(r)
        return inserted

    def total(self) -> float:
        """Objective of the routes (without unassigned penalties), exact."""
        g = self.g
        for r in self.stale:
            visits = g.visits[r]
            self.cost[r] = self._route_cost(visits, g.time_route(r, visits))
        self.stale.clear()
        return sum(self.cost)


# -------------------------------------------------------------------------------------------
# conversion


def _to_index(problem: Problem, visits: Mapping[str, Sequence[Visit]]) -> list[list[IVisit]]:
    out: list[list[IVisit]] = []
    for rider in problem.riders:
        out.append(
            [
                (problem.order_index[oid], _g.PICK if StopKind(k) is StopKind.PICKUP else _g.DROP)
                for oid, k in visits.get(rider.id, ())
            ]
        )
    return out


def _to_visits(problem: Problem, routes: Sequence[Sequence[IVisit]]) -> dict[str, list[Visit]]:
    return {
        problem.riders[r].id: [
            (problem.orders[o].id, StopKind.PICKUP if k == _g.PICK else StopKind.DROPOFF)
            for o, k in seq
        ]
        for r, seq in enumerate(routes)
    }


def _sub_problem(problem: Problem, keep: Sequence[int]) -> Problem:
    """``problem`` with only the riders ``keep`` (same orders and matrices, not re-validated)."""
    return Problem(
        now_s=problem.now_s,
        orders=problem.orders,
        riders=tuple(problem.riders[r] for r in keep),
        time_s=problem.time_s,
        distance_m=problem.distance_m,
    )


# -------------------------------------------------------------------------------------------
# the search


class _Search:
    """Ruin and recreate on one problem, from a plan's visits."""

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
        self.cfg = config
        self.rng = random.Random(seed)
        self.nrng = np.random.default_rng(seed)
        self.routes = _to_index(problem, visits)
        orders = problem.orders
        self.movable = [o.state is OrderState.OPEN for o in orders]
        routed = {o for seq in self.routes for o, _ in seq}
        self.out = [o for o in range(len(orders)) if o not in routed and self.movable[o]]
        # Order-to-order closeness for the ruin: pickups to pickups plus drop-offs to drop-offs
        # (a start-loaded order counts its drop-off as its pickup), on the first profile.
        t = problem.time_s[0].astype(np.float64)
        t = np.minimum(t, t.T)
        drop = np.array([o.dropoff for o in orders], dtype=np.intp)
        pick = np.array(
            [o.dropoff if o.pickup is None else o.pickup for o in orders], dtype=np.intp
        )
        closeness = t[np.ix_(pick, pick)] + t[np.ix_(drop, drop)]
        self.neigh = np.argsort(closeness, axis=1, kind="stable")
        depot = problem.riders[0].location if problem.riders else 0
        self.far = [float(t[depot, o.dropoff]) for o in orders]
        self.iterations = 0
        self.best_objective = INF

    # ---------------------------------------------------------------- operators
    def ruin(self, sol: _Solution, seed_order: int) -> list[int]:
        """SISR string removal around ``seed_order``: the orders taken out."""
        cfg, rng = self.cfg, self.rng
        visits = sol.visits
        used = [len(v) for v in visits if v]
        if not used:
            return []
        # orders per route: a pickup-and-delivery order has two visits
        per_route = sum(used) / len(used) / (2.0 if self.has_pickups else 1.0)
        l_max = min(float(cfg.max_string), max(1.0, per_route))
        k_s_max = 4.0 * cfg.c_bar / (1.0 + l_max) - 1.0
        k_s = int(rng.uniform(1.0, k_s_max + 1.0))
        removed: list[int] = []
        ruined: set[int] = set()
        movable = self.movable
        route_of = sol.route_of
        for o in self.neigh[seed_order].tolist():
            if len(ruined) >= k_s:
                break
            r = route_of[o]
            if r < 0 or r in ruined or not movable[o]:
                continue
            ruined.add(r)
            orders = list(dict.fromkeys(v for v, _ in visits[r]))  # in route order, once
            n = len(orders)
            length = int(rng.uniform(1.0, min(n, l_max) + 1.0))
            pos = orders.index(o)
            first = rng.randint(max(0, pos - length + 1), min(pos, n - length))
            removed.extend(v for v in orders[first : first + length] if movable[v])
        return removed

    def recreate(
        self, sol: _Solution, orders: list[int], snaps: dict[int, _Snap], first: Sequence[int] = ()
    ) -> list[int]:
        """Insert ``first`` then ``orders`` (in a random SISR order); returns those left out."""
        rng = self.rng
        how = rng.random()
        if how < 4 / 11:
            rng.shuffle(orders)
        elif how < 8 / 11:
            size = sol.g.o_size
            orders.sort(key=lambda o: -size[o])
        elif how < 10 / 11:
            far = self.far
            orders.sort(key=lambda o: -far[o])
        else:
            far = self.far
            orders.sort(key=lambda o: far[o])
        left = []
        blink = self.cfg.blink
        for o in (*first, *orders):
            if not sol.insert(o, snaps, blink, self.nrng):
                left.append(o)
        return left

    @property
    def has_pickups(self) -> bool:
        return any(o.pickup is not None for o in self.problem.orders)

    # ---------------------------------------------------------------- phases
    def objective(self, sol: _Solution, out: Sequence[int]) -> float:
        return sol.total() + self.params.unassigned_penalty * len(out)

    def eliminate(self, deadline: float) -> None:
        """Route elimination by ruin and recreate with SISR's fleet-minimisation acceptance."""
        problem, params, rng = self.problem, self.params, self.rng
        pinned_riders = {
            problem.rider_index[o.rider_id]
            for o in problem.orders
            if o.is_pinned and o.rider_id is not None
        }
        active = [r for r, v in enumerate(self.routes) if v]
        sol = _Solution(_sub_problem(problem, active), params, [self.routes[r] for r in active])
        fixed_out = list(self.out)  # left out by the input plan: retried by the annealing only
        best = self.objective(sol, fixed_out)
        pool: list[int] = []
        absence = [0] * len(problem.orders)
        while time.perf_counter() < deadline:
            if not pool:
                objective = self.objective(sol, fixed_out)
                if objective < best:
                    best = objective
                    routes: list[list[IVisit]] = [[] for _ in problem.riders]
                    for k, r in enumerate(active):
                        routes[r] = list(sol.visits[k])
                    self.routes = routes
                cands = [
                    k for k, r in enumerate(active) if r not in pinned_riders and sol.visits[k]
                ]
                if len(cands) < 2:
                    break
                rng.shuffle(cands)
                k_out = min(cands, key=lambda k: len(sol.visits[k]))
                pool = [o for o, kind in sol.visits[k_out] if kind == _g.DROP]
                routes = [list(v) for k, v in enumerate(sol.visits) if k != k_out]
                active = [r for k, r in enumerate(active) if k != k_out]
                sol = _Solution(_sub_problem(problem, active), params, routes)
                pool = self.recreate(sol, pool, {})
                continue
            self.iterations += 1
            for o in pool:
                absence[o] += 1
            snaps: dict[int, _Snap] = {}
            removed = sol.remove(self.ruin(sol, rng.choice(pool)), snaps)
            pool.sort(key=lambda o: -absence[o])
            left = self.recreate(sol, removed, snaps, first=pool)
            if len(left) < len(pool) or sum(absence[o] for o in left) < sum(
                absence[o] for o in pool
            ):
                pool = left
            else:
                for r, s in snaps.items():
                    sol.restore(r, s)
        self.best_objective = best

    def anneal(self, deadline: float) -> None:
        """Simulated annealing by ruin and recreate, riders fixed, until ``deadline``."""
        problem, params, rng = self.problem, self.params, self.rng
        sol = _Solution(problem, params, self.routes)
        out = list(self.out)
        current = self.objective(sol, out)
        best = current
        seeds = [o for o in range(len(problem.orders)) if self.movable[o]]
        n_routed = sum(1 for o in seeds if sol.route_of[o] >= 0)
        if not seeds or not n_routed:
            return
        variable = sum(sol.cost) - params.vehicle_fixed_cost * sum(1 for v in sol.visits if v)
        unit = max(variable, 1e-9) / n_routed
        t0, tf = self.cfg.t0 * unit, self.cfg.tf * unit
        start = time.perf_counter()
        span = max(deadline - start, 1e-6)
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            temp = t0 * (tf / t0) ** ((now - start) / span)
            self.iterations += 1
            snaps: dict[int, _Snap] = {}
            removed = sol.remove(self.ruin(sol, rng.choice(seeds)), snaps)
            left = self.recreate(sol, removed + out, snaps)
            new = self.objective(sol, left)
            if new < current - temp * math.log(1.0 - rng.random()):
                current = new
                out = left
                if new < best:
                    best = new
                    self.routes = [list(v) for v in sol.visits]
                    self.out = list(out)
            else:
                for r, s in snaps.items():
                    sol.restore(r, s)
        self.best_objective = best

    def visits(self) -> dict[str, list[Visit]]:
        """The best routes found, as visit sequences by rider id."""
        return _to_visits(self.problem, self.routes)


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
    cfg = config or ImproveConfig()
    search = _Search(problem, params, visits, cfg, seed)
    started = time.perf_counter()
    stats: dict[str, float] = {}
    if params.vehicle_fixed_cost > 0 and any(search.routes):
        search.eliminate(started + cfg.elim_share * max(0.0, deadline - started))
        stats["eliminate"] = time.perf_counter() - started
    mark = time.perf_counter()
    search.anneal(deadline)
    stats["anneal"] = time.perf_counter() - mark
    stats["iterations"] = float(search.iterations)
    return search.visits(), stats
