"""Cheapest feasible insertion: the greedy engine and the warm start.

How it works
------------
Orders are inserted one at a time (pinned orders first, on their rider, then open orders by
urgency), each at the position of any route that increases the objective least while breaking
no rule. A pickup goes after route node ``i`` and its drop-off after node ``j >= i`` (node 0 is
the rider's start). Pricing and the routes live in the compiled kernel
(:mod:`solver.engines.kernel`): an insertion is priced by timing the part of the route it
changes, until a node departs as before, so the price is the exact increase of the objective
(travel, distance, waiting, lateness, delivery time, vehicle cost) and every delayed stop is
checked against its rules. This module keeps the Python side: the initial plan of a
re-optimisation, pinned orders, the deadline, and the plan. Which orders no rider could serve
alone, and the wording of every reason, come from :mod:`solver.engines.screen`.

The rules are those of the :mod:`solver.model` docstring as the checker :mod:`solver.check`
reads them: pinned (committed / onboard) orders are exempt from the lateness cap, the hierarchical
hard due time, time in bag, shift end and ``pickup_latest_s``; a closed route's return counts
against the shift end once the route serves an open order; a start-loaded order is in the bag
from the rider's start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from solver.engines import kernel as k
from solver.engines.screen import AloneScreen, not_profitable
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan
from solver.stability import freeze

__all__ = ["ORDERINGS", "solve_greedy"]

INF = float("inf")
PICK, DROP = k.PICK, k.DROP

ORDERINGS = ("ready", "due", "slack")
"""Insertion orders of open orders: by ready time (default; then due time), by due time, or by
the latest time the order may be picked up or dropped off (``pickup_latest_s``, ``due_s`` plus
the lateness cap). On the meal benchmark (``bench/bench_greedy.py``) "ready" gave 0.2-2 % lower
objectives than the other two at the same speed."""

_CHUNK = 16
"""Orders inserted per kernel call between two looks at the deadline."""


class _Greedy:
    """State of one greedy solve: the compiled problem and its routes (kernel arrays)."""

    def __init__(self, problem: Problem, params: SolverParams) -> None:
        self.problem = problem
        self.params = params
        self.p = k.compile_problem(problem, params)
        self.s = k.new_state(self.p)
        self.snap = k.new_snap(self.s)
        od = self.p[0]
        self.od = od
        self.rd = self.p[1]
        self.o_open = od[:, k.O_OPEN] == 1
        self.o_pick = od[:, k.O_PICK]
        self.o_rider = od[:, k.O_RIDER]
        self.n_riders = len(problem.riders)

    def visits(self, r: int) -> list[tuple[int, int]]:
        """Route ``r`` as (order index, kind) pairs."""
        codes = self.s[0][r, : self.s[1][r]].tolist()
        return [(c >> 1, c & 1) for c in codes]

    def set_visits(self, r: int, visits: Sequence[tuple[int, int]]) -> tuple[int, bool]:
        """Make ``visits`` route ``r``; returns the kernel's (broken order or -1, overload)."""
        route, rlen, where = self.s[0], self.s[1], self.s[3]
        for c in route[r, : rlen[r]].tolist():
            if where[c >> 1] == r:
                where[c >> 1] = -1
        route[r, : len(visits)] = [2 * o + kind for o, kind in visits]
        rlen[r] = len(visits)
        bad, overload = k.retime(self.p, self.s, r)
        return int(bad), bool(overload)

    def evict_broken(self, r: int) -> list[int]:
        """Remove open orders from route ``r`` until it breaks no rule; return the evicted."""
        out = np.empty(int(self.s[1][r]) + 1, dtype=np.int64)
        n = k.evict_broken(self.p, self.s, r, out, 0)
        return out[:n].tolist()

    def evict_all(self) -> list[int]:
        """:meth:`evict_broken` on every route."""
        out = np.empty(len(self.o_open) + 1, dtype=np.int64)
        n = k.evict_all(self.p, self.s, out)
        return out[:n].tolist()

    def n_positions(self) -> int:
        """How many (pickup, drop-off) positions the current routes offer."""
        lens = self.s[1][: self.n_riders]
        return int(((lens + 1) * (lens + 2) // 2).sum())


def _sanitise_initial(
    g: _Greedy, initial: Mapping[str, Sequence[Visit]]
) -> tuple[list[list[tuple[int, int]]], set[int]]:
    """Keep the initial visits that still make sense: known orders, right rider, right stops."""
    problem = g.problem
    routes: list[list[tuple[int, int]]] = [[] for _ in problem.riders]
    placed: set[int] = set()
    for rider_id, seq in initial.items():
        r = problem.rider_index.get(rider_id)
        if r is None:
            continue
        kept: list[tuple[int, int]] = []
        kinds: dict[int, list[int]] = {}
        for order_id, kind in seq:
            o = problem.order_index.get(order_id)
            if o is None or o in placed:
                continue
            kind_i = PICK if kind is StopKind.PICKUP else DROP
            kept.append((o, kind_i))
            kinds.setdefault(o, []).append(kind_i)
        valid: set[int] = set()
        for o, ks in kinds.items():
            if g.o_rider[o] >= 0 and g.o_rider[o] != r:
                continue
            expected = [PICK, DROP] if g.o_pick[o] >= 0 else [DROP]
            if ks == expected:
                valid.add(o)
        routes[r] = [v for v in kept if v[0] in valid]
        placed |= valid
    return routes, placed


def _urgency(g: _Greedy, orders: list[int], ordering: str) -> list[int]:
    """Sort open orders for sequential insertion."""
    od = g.od
    due, ready = od[:, k.O_DUE].tolist(), od[:, k.O_READY].tolist()
    if ordering == "due":
        return sorted(orders, key=lambda o: (due[o], ready[o], o))
    if ordering == "slack":
        latest = np.minimum(od[:, k.O_LATLIM], od[:, k.O_PL]).tolist()
        return sorted(orders, key=lambda o: (latest[o], due[o], o))
    return sorted(orders, key=lambda o: (ready[o], due[o], o))


def solve_greedy(
    problem: Problem,
    params: SolverParams,
    *,
    initial: Mapping[str, Sequence[Visit]] | None = None,
    deadline: float | None = None,
    ordering: str = "ready",
) -> Plan:
    """Build a plan by cheapest feasible insertion, one order at a time.

    Parameters
    ----------
    problem
        The problem.
    params
        Objective weights and hard caps.
    initial
        Visit sequences per rider id of a previous plan (re-optimisation): kept where still
        valid (known orders on the right rider with the right stops, and every rule still met;
        open orders that now break a rule are taken out and inserted again).
    deadline
        A :func:`time.perf_counter` value; open orders not considered by then are left
        unassigned with reason ``SHED``. Pinned orders are always placed.
    ordering
        Insertion order of open orders, one of :data:`ORDERINGS` (default ``"ready"``).

    Returns
    -------
    Plan
        Engine ``GREEDY``; ``phase_s["greedy"]`` is the wall-clock time of the solve.
    """
    k.ensure_warm()
    began = time.perf_counter()
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering={ordering!r}: must be one of {ORDERINGS}")
    problem = freeze(problem, params)  # assigned orders due for pickup soon stay put
    g = _Greedy(problem, params)
    n_orders = len(problem.orders)
    unassigned: list[Unassigned] = []
    placed: set[int] = set()
    if initial:
        routes, placed = _sanitise_initial(g, initial)
    else:
        routes = [[] for _ in problem.riders]
    for r, visits in enumerate(routes):
        if not visits:
            continue
        g.set_visits(r, visits)
        placed -= set(g.evict_broken(r))
        if g.set_visits(r, g.visits(r))[1]:
            # Pinned orders overload the bag where the initial plan put them: place them anew.
            moved = {o for o, _ in g.visits(r) if g.o_rider[o] >= 0}
            g.set_visits(r, [v for v in g.visits(r) if v[0] not in moved])
            placed -= moved
            placed -= set(g.evict_broken(r))
    od = g.od
    due = od[:, k.O_DUE].tolist()
    pinned = [o for o in range(n_orders) if g.o_rider[o] >= 0 and o not in placed]
    pinned.sort(key=lambda o: (g.o_rider[o], g.o_pick[o] >= 0, due[o], o))
    if pinned:
        # on its rider, at the cheapest position keeping every rule, else the capacity, else
        # any (pinned orders are mandatory); open orders that then break a rule go back
        k.insert_pinned(g.p, g.s, np.asarray(pinned, dtype=np.int64))
        placed.update(pinned)
        placed -= set(g.evict_all())
    queue = [o for o in range(n_orders) if g.o_open[o] and o not in placed]
    screen = AloneScreen(problem, params, queue, g.p)
    todo: list[int] = []
    for o in queue:
        why = screen.reason(o)
        if why is None:
            todo.append(o)
        else:
            unassigned.append(why)
    if todo:
        _insert_sequential(g, _urgency(g, todo, ordering), unassigned, deadline, screen)
    ids = [o.id for o in problem.orders]
    kinds = (StopKind.PICKUP, StopKind.DROPOFF)
    visits_by_rider = {
        problem.riders[r].id: [(ids[o], kinds[kind]) for o, kind in g.visits(r)]
        for r in range(g.n_riders)
    }
    elapsed = time.perf_counter() - began
    return build_plan(
        problem,
        params,
        visits_by_rider,
        unassigned,
        engine=Engine.GREEDY,
        phase_s={"greedy": elapsed},
    )


def _insert_sequential(
    g: _Greedy,
    todo: list[int],
    unassigned: list[Unassigned],
    deadline: float | None,
    screen: AloneScreen,
) -> None:
    """Insert ``todo`` one by one, each at its cheapest feasible position (kernel calls of
    :data:`_CHUNK` orders between looks at the deadline)."""
    orders = np.asarray(todo, dtype=np.int64)
    prices = np.empty(len(todo))
    routes = np.empty(len(todo), dtype=np.int64)
    active = np.ones(g.n_riders, dtype=np.bool_)
    step = max(len(todo), 1) if deadline is None else _CHUNK
    for first in range(0, len(todo), step):
        if deadline is not None and time.perf_counter() > deadline:
            _shed(g, todo[first:], unassigned)
            return
        part = slice(first, first + step)
        k.insert_orders(g.p, g.s, orders[part], active, 0.0, prices[part], routes[part], g.snap)
        k.commit(g.snap)
        for x in range(part.start, min(part.stop, len(todo))):
            o = todo[x]
            if g.s[3][o] >= 0:
                continue
            if prices[x] == INF:
                unassigned.append(screen.no_feasible_insertion(o, g.n_positions()))
            else:
                rider_id = g.problem.riders[int(routes[x])].id
                unassigned.append(
                    not_profitable(
                        g.problem.orders[o].id,
                        rider_id,
                        float(prices[x]),
                        float(k.out_cost(g.p, o)),
                        alone=False,
                    )
                )


def _shed(g: _Greedy, orders: Sequence[int], unassigned: list[Unassigned]) -> None:
    left = len(orders)
    for o in orders:
        unassigned.append(
            Unassigned(
                g.problem.orders[o].id,
                UnassignedReason.SHED,
                f"deadline passed before the order was considered ({left} orders left)",
            )
        )
