"""Ruin-and-recreate improvement of a plan: route elimination, then distance (prototype)."""

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
import os
_DEBUG = bool(os.environ.get("IMPROVE_DEBUG"))
IVisit = tuple[int, int]


@dataclass(slots=True)
class _Snap:
    visits: list[IVisit]
    n_open: int
    c_row: NDArray[np.float64]
    adj_f: NDArray[np.float64]
    adj_i: NDArray[np.int64]
    far_f: NDArray[np.float64]
    far_i: NDArray[np.int64]
    cost: float


class _Solution:
    """A mutable solution over the greedy's insertion tables for one set of riders."""

    def __init__(
        self, problem: Problem, params: SolverParams, routes: Sequence[list[IVisit]]
    ) -> None:
        self.problem = problem
        self.params = params
        g = _g._Greedy(problem, params)
        self.g = g
        self.n_orders = len(problem.orders)
        self.route_of = [-1] * self.n_orders
        self.cost = [0.0] * len(problem.riders)
        for r, visits in enumerate(routes):
            self._set(r, list(visits))
        self.g.refresh()

    # ---------------------------------------------------------------- bookkeeping
    def _route_cost(self, r: int, visits: Sequence[IVisit], t: _g._Timing) -> float:
        if not visits:
            return 0.0
        g = self.g
        cost = sum(t.edge_c) + g.veh
        if g.wc:
            cost += g.wc * sum(t.wait)
        if g.lc:
            late = 0
            due = g.o_due
            for pos, (o, k) in enumerate(visits, 1):
                if k == _g.DROP:
                    s = t.arr[pos] + t.wait[pos]
                    if s > due[o]:
                        late += s - due[o]
            cost += g.lc * late
        return cost

    def _set(self, r: int, visits: list[IVisit]) -> list[int]:
        """Make ``visits`` route ``r``; evicts open orders breaking a rule; returns them."""
        g = self.g
        evicted: list[int] = []
        while True:
            t = g.time_route(r, visits)
            if t.bad < 0 or not g.o_open[t.bad]:
                break
            evicted.append(t.bad)
            visits = [v for v in visits if v[0] != t.bad]
        g.set_route(r, visits, t)
        self.cost[r] = self._route_cost(r, visits, t)
        for o, _ in visits:
            self.route_of[o] = r
        for o in evicted:
            self.route_of[o] = -1
        return evicted

    def snap(self, r: int) -> _Snap:
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
        )

    def restore(self, r: int, s: _Snap) -> None:
        g = self.g
        for o, _ in g.visits[r]:
            if self.route_of[o] == r:
                self.route_of[o] = -1
        g.visits[r] = s.visits
        g.n_open[r] = s.n_open
        width = g.cmat.shape[1]
        row = s.c_row
        if row.size < width:
            row = np.concatenate((row, np.full(width - row.size, INF)))
        g.cmat[r] = row[:width]
        g.adj_f[r], g.adj_i[r], g.far_f[r], g.far_i[r] = s.adj_f, s.adj_i, s.far_f, s.far_i
        g.dirty.add(r)
        self.cost[r] = s.cost
        for o, _ in s.visits:
            self.route_of[o] = r

    # ---------------------------------------------------------------- moves
    def remove(self, orders: Sequence[int], snaps: dict[int, _Snap]) -> list[int]:
        """Take ``orders`` out of their routes; returns every order now out."""
        by_route: dict[int, set[int]] = {}
        out: list[int] = []
        for o in orders:
            r = self.route_of[o]
            if r >= 0:
                by_route.setdefault(r, set()).add(o)
            out.append(o)
        for r, gone in by_route.items():
            if r not in snaps:
                snaps[r] = self.snap(r)
            visits = [v for v in self.g.visits[r] if v[0] not in gone]
            for o in gone:
                self.route_of[o] = -1
            out.extend(self._set(r, visits))
        return out

    def insert(self, o: int, snaps: dict[int, _Snap], blink: float, rng: random.Random) -> bool:
        g = self.g
        evs = g.price(o)
        if blink > 0.0:
            for ev in evs:
                n = ev.cost.size
                if n:
                    mask = np.random.default_rng(rng.getrandbits(32)).random(n) < blink
                    ev.cost[mask] = INF
        # _try_insert changes one route: snapshot every route it could touch lazily
        before = [ev.cost.copy() for ev in evs]
        del before
        done, _best, r = _try_insert_snap(self, o, evs, snaps)
        return done

    def total(self) -> float:
        return sum(self.cost)

    def used(self) -> list[int]:
        return [r for r, v in enumerate(self.g.visits) if v]


def _try_insert_snap(
    sol: _Solution, o: int, evs: list[_g._Eval], snaps: dict[int, _Snap]
) -> tuple[bool, float, int]:
    """:func:`solver.greedy._try_insert`, snapshotting the route before it changes."""
    g = sol.g
    while True:
        best, best_ev, best_k = INF, evs[0], -1
        for ev in evs:
            k = ev.best(g)
            if k >= 0 and ev.cost[k] < best:
                best, best_ev, best_k = float(ev.cost[k]), ev, k
        if best_k < 0:
            return False, INF, -1
        gi = best_ev.gi
        r = int(gi[_g.I_ROUTE, best_k])
        if best > g.penalty:
            return False, best, r
        if r not in snaps:
            snaps[r] = sol.snap(r)
        if g.apply(o, r, int(gi[_g.I_I, best_k]), int(gi[_g.I_J, best_k])):
            t = g.time_route(r, g.visits[r])
            sol.cost[r] = sol._route_cost(r, g.visits[r], t)
            sol.route_of[o] = r
            return True, best, r
        best_ev.cost[best_k] = INF


# -------------------------------------------------------------------------------------------
# conversion


def _to_int(problem: Problem, visits: Mapping[str, Sequence[Visit]]) -> list[list[IVisit]]:
    out: list[list[IVisit]] = []
    for rider in problem.riders:
        seq = visits.get(rider.id, ())
        out.append(
            [
                (problem.order_index[oid], _g.PICK if StopKind(k) is StopKind.PICKUP else _g.DROP)
                for oid, k in seq
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


def _order_distance(problem: Problem) -> NDArray[np.float64]:
    t = problem.time_s[0].astype(np.float64)
    t = np.minimum(t, t.T)
    drop = np.array([o.dropoff for o in problem.orders])
    pick = np.array([o.pickup if o.pickup is not None else o.dropoff for o in problem.orders])
    return 0.5 * (t[np.ix_(pick, pick)] + t[np.ix_(drop, drop)])


# -------------------------------------------------------------------------------------------
# search


@dataclass
class Config:
    """Tuning knobs (prototype)."""

    elim_share: float = 0.6
    c_bar: float = 10.0
    max_string: int = 10
    blink: float = 0.01
    t0_frac: float = 0.01
    tf_frac: float = 0.0002
    elim_iters: int = 2000


class Improver:
    """Ruin and recreate on a plan of one problem."""

    def __init__(
        self,
        problem: Problem,
        params: SolverParams,
        visits: Mapping[str, Sequence[Visit]],
        *,
        seed: int = 0,
        config: Config | None = None,
    ) -> None:
        self.problem = problem
        self.params = params
        self.cfg = config or Config()
        self.rng = random.Random(seed)
        self.routes = _to_int(problem, visits)
        self.dist = _order_distance(problem)
        self.neigh = np.argsort(self.dist, axis=1, kind="stable")
        self.movable = [o.state is OrderState.OPEN for o in problem.orders]
        routed = {o for seq in self.routes for o, _ in seq}
        self.unrouted = [o for o in range(len(problem.orders)) if o not in routed]
        self.iters = 0

    # ------------------------------------------------------------------ helpers
    def _ruin_sisr(self, sol: _Solution, seed_order: int) -> list[int]:
        cfg, rng = self.cfg, self.rng
        g = sol.g
        lengths = [len(g.visits[r]) for r in range(len(g.visits))]
        used = [r for r, n in enumerate(lengths) if n]
        if not used:
            return []
        avg_len = sum(lengths[r] for r in used) / len(used) / 2  # orders per route (approx)
        l_max = min(cfg.max_string, max(1.0, avg_len))
        k_s_max = 4 * cfg.c_bar / (1 + l_max) - 1
        k_s = int(rng.uniform(1, k_s_max + 1))
        removed: list[int] = []
        ruined: set[int] = set()
        for o in self.neigh[seed_order]:
            o = int(o)
            if len(ruined) >= k_s:
                break
            r = sol.route_of[o]
            if r < 0 or r in ruined or not self.movable[o]:
                continue
            orders = []
            seen: set[int] = set()
            for v, _ in g.visits[r]:
                if v not in seen:
                    seen.add(v)
                    orders.append(v)
            n = len(orders)
            l_max_r = min(n, l_max)
            length = int(rng.uniform(1, l_max_r + 1))
            pos = orders.index(o)
            start = rng.randint(max(0, pos - length + 1), min(pos, n - length))
            removed.extend(v for v in orders[start : start + length] if self.movable[v])
            ruined.add(r)
        return removed

    def _recreate(
        self, sol: _Solution, orders: list[int], snaps: dict[int, _Snap]
    ) -> list[int]:
        rng = self.rng
        g = sol.g
        how = rng.random()
        if how < 0.4:
            rng.shuffle(orders)
        elif how < 0.6:
            orders.sort(key=lambda o: -g.o_size[o])
        elif how < 0.8:
            depot = self.problem.riders[0].location if self.problem.riders else 0
            t = self.problem.time_s[0]
            orders.sort(key=lambda o: -int(t[depot, g.o_drop[o]]))
        else:
            orders.sort(key=lambda o: g.o_latlim[o])
        left = []
        for o in orders:
            if not sol.insert(o, snaps, self.cfg.blink, rng):
                left.append(o)
        return left

    # ------------------------------------------------------------------ distance phase
    def descend(self, deadline: float) -> None:
        """Simulated-annealing ruin and recreate until ``deadline``; keeps riders fixed."""
        problem, params = self.problem, self.params
        sol = _Solution(problem, params, self.routes)
        pool = [o for o in self.unrouted if self.movable[o]]
        penalty = params.unassigned_penalty
        cur = sol.total() + penalty * len(pool)
        best = cur
        best_routes = [list(v) for v in sol.g.visits]
        best_pool = list(pool)
        start = time.perf_counter()
        span = max(1e-6, deadline - start)
        base = max(1.0, sum(c for c in sol.cost) - params.vehicle_fixed_cost * len(sol.used()))
        t0 = self.cfg.t0_frac * base / max(1, len(problem.orders)) * 10
        tf = self.cfg.tf_frac * base / max(1, len(problem.orders)) * 10
        movable = [o for o in range(len(problem.orders)) if self.movable[o] and sol.route_of[o] >= 0]
        if not movable:
            return
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            frac = (now - start) / span
            temp = t0 * (tf / t0) ** frac
            self.iters += 1
            snaps: dict[int, _Snap] = {}
            seed_order = self.rng.choice(movable)
            removed = self._ruin_sisr(sol, seed_order)
            out = sol.remove(removed, snaps)
            left = self._recreate(sol, out + pool, snaps)
            new = sol.total() + penalty * len(left)
            if new < cur - temp * math.log(self.rng.random()):
                cur = new
                pool = left
                if new < best:
                    best = new
                    best_routes = [list(v) for v in sol.g.visits]
                    best_pool = list(pool)
            else:
                for r, s in snaps.items():
                    sol.restore(r, s)
        self.routes = best_routes
        self.unrouted = best_pool + [o for o in self.unrouted if not self.movable[o]]

    def visits(self) -> dict[str, list[Visit]]:
        return _to_visits(self.problem, self.routes)


def _sub_problem(problem: Problem, keep: Sequence[int]) -> Problem:
    riders = tuple(problem.riders[r] for r in keep)
    return Problem(
        now_s=problem.now_s,
        orders=problem.orders,
        riders=riders,
        time_s=problem.time_s,
        distance_m=problem.distance_m,
    )


def eliminate(self: Improver, deadline: float, attempt_iters: int = 300) -> None:
    """Route elimination: drop the smallest route and ruin-and-recreate until all fit."""
    problem, params, rng = self.problem, self.params, self.rng
    pinned_riders = {
        problem.rider_index[o.rider_id]
        for o in problem.orders
        if o.is_pinned and o.rider_id is not None
    }
    failed: set[int] = set()
    while time.perf_counter() < deadline:
        used = [r for r, v in enumerate(self.routes) if v]
        cands = [r for r in used if r not in pinned_riders and r not in failed]
        if not cands or len(used) <= 1:
            break
        rng.shuffle(cands)
        cands.sort(key=lambda r: len(self.routes[r]))
        r_out = cands[0]
        keep = [r for r in used if r != r_out]
        sub = _sub_problem(problem, keep)
        sol = _Solution(sub, params, [self.routes[r] for r in keep])
        pool = [o for o, k in self.routes[r_out] if k == _g.DROP] + [
            o for o in self.unrouted if self.movable[o]
        ]
        snaps: dict[int, _Snap] = {}
        left = self._recreate(sol, pool, snaps)
        absence = [0] * len(problem.orders)
        it = 0
        while left and it < attempt_iters and time.perf_counter() < deadline:
            it += 1
            self.iters += 1
            for u in left:
                absence[u] += 1
            snaps = {}
            seed = rng.choice(left)
            removed = self._ruin_sisr(sol, seed)
            out = sol.remove(removed, snaps)
            new_left = self._recreate(sol, out + left, snaps)
            if len(new_left) < len(left) or sum(absence[u] for u in new_left) < sum(
                absence[u] for u in left
            ):
                left = new_left
            else:
                for r, s in snaps.items():
                    sol.restore(r, s)
        if _DEBUG:
            print(f"  elim r{r_out} n={len(self.routes[r_out])} used={len(used)} it={it} left={len(left)} t={time.perf_counter():.2f}")
        if left:
            failed.add(r_out)
            continue
        routes: list[list[IVisit]] = [[] for _ in problem.riders]
        for k, r in enumerate(keep):
            routes[r] = list(sol.g.visits[k])
        self.routes = routes
        self.unrouted = [o for o in self.unrouted if not self.movable[o]]
        failed.clear()
