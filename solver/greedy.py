"""Vectorised cheapest feasible insertion (numpy): the greedy engine and the warm start.

How it works
------------
Orders are inserted one at a time (pinned orders first, on their rider, then open orders by
urgency), each at the position of any route that increases the objective least while breaking
no rule. A pickup goes after route node ``i`` and its drop-off after node ``j >= i`` (node 0 is
the rider's start); for every route and position the engine keeps, in numpy tables rebuilt only
when that route changes, what it needs to price and check an insertion in O(1): departures,
arrivals at the next node, the waiting that absorbs a delay, the largest delay the later stops
accept (forward slack covering the lateness cap, shift end, ``pickup_latest_s``, time in bag and
a closed route's return), the largest load on ``i..j``, and the delays from which existing
drop-offs get later.

Pricing an order takes two vectorised passes: every *adjacent* insertion (``i == j``) of every
route exactly, together with lower bounds for the pickup part at ``i`` and the drop-off part at
``j`` of a *far* insertion (``i < j``); then exactly only the far pairs whose bound could still
beat the best adjacent price. The price is the exact increase of the objective (travel,
distance, waiting, lateness, delivery time, vehicle cost), including the lateness and delivery
time pushed onto later drop-offs (made exact wherever it can decide the choice). The chosen
insertion is re-timed with exact integer arithmetic before it is accepted, so a plan never
breaks a rule (the O(1) checks could only be wrong with travel matrices that break the triangle
inequality). One check is kept
conservative: an order picked up between ``i`` and ``j`` and dropped after ``j`` is credited
only the smallest delay of such pickups when its time in bag is checked.

The rules are those of the :mod:`solver.model` docstring as the checker :mod:`solver.check`
reads them: pinned (committed / onboard) orders are exempt from the lateness cap, the hierarchical
hard due time, time in bag, shift end and ``pickup_latest_s``; a closed route's return counts
against the shift end once the route serves an open order; a start-loaded order is in the bag
from the rider's start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, Plan, StopKind, Unassigned, UnassignedReason
from solver.routes import Visit, build_plan

__all__ = ["ORDERINGS", "solve_greedy"]

INF = float("inf")
_BIG = 1 << 40  # index past the end of the padded matrix: ``take(mode="clip")`` reads the 0
PICK, DROP = 0, 1
ADJ, MIXED = 0, 2  # which columns a pricing call gets (adjacency only, or any)

ORDERINGS = ("ready", "due", "slack")
"""Insertion orders of open orders: by ready time (default; then due time), by due time, or by
the latest time the order may be picked up or dropped off (``pickup_latest_s``, ``due_s`` plus
the lateness cap). On the meal benchmark (``bench/bench_greedy.py``) "ready" gave 0.2-2 % lower
objectives than the other two at the same speed."""

# Rows of the float tables. The adjacency table has one column per insertion point p of every
# route (pickup and drop-off both right after route node p; node 0 is the start); the far table
# one column per pair i < j (pickup after node i, drop-off after node j).
F_DEP_I = 0  # departure from node i
F_ARR_I1 = 1  # arrival at node i + 1
F_WC_I1 = 2  # waiting before node i + 1 (cumulative from the start)
F_DEP_J = 3  # departure from node j
F_ARR_J1 = 4  # arrival at node j + 1
F_WC_J1 = 5  # waiting before node j + 1
F_EC_J = 6  # cost of the edge j -> j+1 now in the route (travel + distance)
F_LIM2 = 7  # largest arrival delay at node j + 1 that the rest of the route accepts
F_WDOWN = 8  # waiting at nodes j+1..end (a delay there absorbs it)
F_LF2 = 9  # delay at j + 1 from which the first later drop-off gets later
F_CNT2 = 10  # how many later drop-offs get later from that delay on
F_LF2B = 11  # delay at j + 1 from which another later drop-off gets later too
F_LIM1 = 12  # largest arrival delay at node i + 1 that nodes i+1..j accept (inf when i == j)
F_LF1 = 13  # delay at i + 1 from which a drop-off in i+1..j gets later (inf when i == j)
F_LOAD = 14  # largest load on nodes i..j minus the capacity
F_EC_SUM = 15  # cost of the edges the insertion removes
F_WSEG = 16  # waiting at nodes i+1..j (absorbs the pickup's delay)
F_ADJ = 17  # 1.0 when i == j (drop-off right after the pickup)
F_SHIFT = 18  # the rider's shift end
F_EMPTY = 19  # 1.0 when the route has no stop (the vehicle cost applies)
F_LOAD0 = 20  # adjacency table only: largest load on nodes 0..j minus the capacity
F_DEP0 = 21  # adjacency table only: departure from the start
F_IB2 = 22  # far table: time-in-bag slack at j + 1 of orders picked up in i+1..j (see below)
F_C2 = 23  # far table: waiting after i that such a pickup's delay is reduced by (at most)
# The same three thresholds for the delivery-time cost (every later drop-off gets later by the
# delay less the waiting before it, due time or not), and F_LF1's counterpart.
F_DF2 = 24  # delay at j + 1 from which the first later drop-off starts later
F_DCNT2 = 25  # how many later drop-offs start later from that delay on
F_DF2B = 26  # delay at j + 1 from which another later drop-off starts later too
F_DF1 = 27  # delay at i + 1 from which a drop-off in i+1..j starts later (inf when i == j)
NF = 28
# Rows of the int tables: flat matrix indices to which the order's locations are added, and
# where the column is.
I_FROM_I, I_TO_I1, I_FROM_J, I_TO_J1, I_PB, I_ROUTE, I_I, I_J = range(8)
NI = 8


def _suffix_thresholds(
    thresholds: list[float], wc: list[int], n: int
) -> tuple[list[float], list[int], list[float]]:
    """Per insertion point p = 0..n, over the nodes after it: the smallest drop-off threshold
    less the waiting before node p + 1 (the delay at p + 1 from which the first drop-off gets
    later), how many drop-offs share it, and the second smallest less that waiting."""
    first = [INF] * (n + 1)
    count = [0] * (n + 1)
    second = [INF] * (n + 1)
    min1, n1, min2 = INF, 0, INF
    for p in range(n, -1, -1):
        t = thresholds[p + 1]
        if t < min1:
            min1, n1, min2 = t, 1, min1
        elif t == min1:
            n1 += 1
        elif t < min2:
            min2 = t
        base = wc[p + 1]
        first[p] = min1 - base
        count[p] = n1 if min1 < INF else 0
        second[p] = min2 - base
    return first, count, second


@dataclass(slots=True)
class _Timing:
    """A route timed exactly, node by node (node 0 = start, node n + 1 = end)."""

    locs: list[int]
    arr: list[int]
    dep: list[int]
    wait: list[int]
    load: list[int]
    own: list[float]
    hlate: list[float]
    edge_c: list[float]
    bags: list[tuple[int, int, float]]
    bad: int
    n_open: int
    overload: bool


@dataclass(slots=True)
class _Tri:
    """Index templates of the far insertion pairs (i < j) of a route with ``n`` stops.

    ``flat`` indexes pair (i, j) in an ``(n + 1, n + 2)`` matrix of (insertion point, node).
    """

    ii: NDArray[np.intp]
    jj: NDArray[np.intp]
    flat: NDArray[np.intp]
    masks: NDArray[np.bool_]

    @classmethod
    def make(cls, n: int) -> _Tri:
        k = n + 2
        ii, jj = np.triu_indices(n + 1, 1)
        rows = np.arange(n + 1)[:, None]
        cols = np.arange(k)[None, :]
        # Range masks per (i, node): nodes i+1.. for the slack and the lateness thresholds,
        # nodes i.. for the load, nodes i+1.. for the delivery thresholds.
        masks = np.stack([cols > rows, cols > rows, cols >= rows, cols > rows])
        return cls(ii, jj, ii * k + jj, masks)


@dataclass(slots=True)
class _Eval:
    """Prices of one order at some insertion positions (columns of a table).

    ``cost`` is exact where ``pending`` is false; where it is true it lacks part of the cost of
    the delay pushed onto later drop-offs (lateness and delivery time; a lower bound), made
    exact on demand from ``x1`` / ``x2`` (see :meth:`_Greedy.downstream_cost`). ``gi`` holds
    the columns' int rows (route, i, j).
    """

    cost: NDArray[np.float64]
    gi: NDArray[np.int64]
    pending: NDArray[np.bool_] | None = None
    x1: NDArray[np.float64] | None = None
    x2: NDArray[np.float64] | None = None
    base: NDArray[np.float64] | None = None

    def best(self, g: _Greedy) -> int:
        """Index of the cheapest entry, making its price exact first (-1 when empty)."""
        cost = self.cost
        if not cost.size:
            return -1
        while True:
            k = int(np.argmin(cost))
            pending = self.pending
            if pending is None or not pending[k] or cost[k] == INF:
                return k
            assert self.x1 is not None and self.x2 is not None and self.base is not None
            at = np.array([k])
            cost[k] = self.base[k] + g.downstream_cost(self.gi, at, self.x1, self.x2)[0]
            pending[k] = False


@dataclass(slots=True)
class _Nodes:
    """Per insertion point results of pricing an order at the adjacency columns.

    A far pair (i, j) reuses the pickup side at point i and the drop-off side at point j.
    """

    lb_p: NDArray[np.float64]  # lower bound on the pickup part (inf: the pickup breaks a rule)
    lb_d: NDArray[np.float64]  # lower bound on the drop-off part (inf: it breaks a rule)
    trav_p: NDArray[np.float64]  # travel and distance cost of the pickup's detour
    trav_d: NDArray[np.float64]  # travel and distance cost of the drop-off's detour
    d1: NDArray[np.float64]  # arrival delay at node i + 1 caused by the pickup
    d_p: NDArray[np.float64]  # departure from the pickup
    wait_p: NDArray[np.float64]  # waiting at the pickup
    t_id: NDArray[np.float64]  # travel time node j -> drop-off
    t_di1: NDArray[np.float64]  # travel time drop-off -> node j + 1


class _Greedy:
    """State of one greedy solve: routes, their insertion tables, the order data."""

    def __init__(self, problem: Problem, params: SolverParams) -> None:
        self.problem = problem
        self.params = params
        self.n_loc = problem.num_locations
        self.t_int = problem.time_s.reshape(-1)  # exact integer times for the re-timing
        # Float copy with a trailing 0 for the vectorised pricing (see ``_BIG``).
        self.tz = np.append(self.t_int.astype(np.float64), 0.0)
        self.dz: NDArray[np.float64] | None = None
        self.tc = params.travel_cost_per_s
        self.dc = params.distance_cost_per_m
        self.wc = params.waiting_cost_per_s
        self.lc = params.lateness_cost_per_s
        self.dlc = params.delivery_time_weight
        self.now = problem.now_s
        self.delay_priced = bool(self.lc or self.dlc)
        self.veh = params.vehicle_fixed_cost
        self.penalty = params.unassigned_penalty
        if self.dc != 0.0:
            self.dz = np.append(problem.distance_m.reshape(-1), 0.0)
        hierarchical = params.objective == "hierarchical"
        cap_late = 0 if hierarchical else params.max_lateness_s
        orders = problem.orders
        rider_index = problem.rider_index
        opn = [o.state is OrderState.OPEN for o in orders]
        self.o_open = opn
        self.o_pick = [
            -1 if (o.pickup is None or o.state is OrderState.ONBOARD) else o.pickup for o in orders
        ]
        self.o_drop = [o.dropoff for o in orders]
        self.o_ready = [o.ready_s for o in orders]
        self.o_due = [o.due_s for o in orders]
        self.o_sp = [o.pickup_service_s for o in orders]
        self.o_sd = [o.dropoff_service_s for o in orders]
        self.o_de: list[float] = [
            -INF if o.dropoff_earliest_s is None else o.dropoff_earliest_s for o in orders
        ]
        self.o_pl: list[float] = [
            o.pickup_latest_s
            if (o.pickup_latest_s is not None and opn[k] and o.pickup is not None)
            else INF
            for k, o in enumerate(orders)
        ]
        self.o_bag: list[float] = [
            o.max_in_bag_s if (o.max_in_bag_s is not None and opn[k]) else INF
            for k, o in enumerate(orders)
        ]
        self.o_latlim: list[float] = [
            o.due_s + cap_late if opn[k] else INF for k, o in enumerate(orders)
        ]
        self.o_size = [o.size for o in orders]
        self.o_sl = [opn[k] and o.pickup is None for k, o in enumerate(orders)]
        self.o_rider = [
            rider_index[o.rider_id] if (o.is_pinned and o.rider_id is not None) else -1
            for o in orders
        ]
        riders = problem.riders
        nn = self.n_loc * self.n_loc
        self.r_loc = [r.location for r in riders]
        self.r_start = [problem.start_time(r) for r in riders]
        self.r_shift = [r.shift_end_s for r in riders]
        self.r_cap = [r.capacity for r in riders]
        self.r_pb = [r.profile * nn for r in riders]
        self.r_end = [-1 if r.end_location is None else r.end_location for r in riders]
        onboard = [0] * len(riders)
        for k, o in enumerate(orders):
            if o.state is OrderState.ONBOARD:
                onboard[self.o_rider[k]] += o.size
        self.r_onboard = onboard
        n_r = len(riders)
        self.visits: list[list[tuple[int, int]]] = [[] for _ in range(n_r)]
        self.n_open = [0] * n_r
        empty_f = np.empty((NF, 0))
        empty_i = np.empty((NI, 0), dtype=np.int64)
        self.adj_f: list[NDArray[np.float64]] = [empty_f] * n_r
        self.adj_i: list[NDArray[np.int64]] = [empty_i] * n_r
        self.far_f: list[NDArray[np.float64]] = [empty_f] * n_r
        self.far_i: list[NDArray[np.int64]] = [empty_i] * n_r
        self.tri: dict[int, _Tri] = {}
        self.dirty: set[int] = set(range(n_r))
        self.built = False
        self.off_a = np.zeros(n_r + 1, dtype=np.int64)
        self.off_f = np.zeros(n_r + 1, dtype=np.int64)
        self.ga_f = empty_f
        self.ga_i = empty_i
        self.gf_f = empty_f
        self.gf_i = empty_i
        self.map_i = np.empty(0, dtype=np.intp)
        self.map_j = np.empty(0, dtype=np.intp)
        # per route: the drop-offs' lateness thresholds (row 0) and delivery thresholds (row 1)
        self.cmat = np.full((max(n_r, 1), 2, 8), INF)

    # ------------------------------------------------------------------ exact timing
    def time_route(self, r: int, visits: Sequence[tuple[int, int]]) -> _Timing:
        """Time ``visits`` on rider ``r`` exactly; ``bad`` names an open order breaking a rule."""
        n_loc = self.n_loc
        pb = self.r_pb[r]
        tz = self.t_int
        dz = self.dz
        tc, dc = self.tc, self.dc
        shift = self.r_shift[r]
        cap = self.r_cap[r]
        o_pick, o_drop, o_open, o_size = self.o_pick, self.o_drop, self.o_open, self.o_size
        here = self.r_loc[r]
        clock = self.r_start[r]
        start = clock
        load = self.r_onboard[r]
        in_bag: list[int] = []
        o_sl = self.o_sl
        for o, k in visits:
            if k == DROP and o_sl[o]:
                load += o_size[o]
                in_bag.append(o)
        bad = -1
        overload = load > cap
        if overload and in_bag:
            bad = in_bag[-1]
        locs = [here]
        arr = [clock]
        dep = [clock]
        wait = [0]
        loads = [load]
        own: list[float] = [INF]
        hlate: list[float] = [INF]
        edge_c: list[float] = []
        bags: list[tuple[int, int, float]] = []
        picked: dict[int, tuple[int, int]] = {}
        n_open = 0
        last_open = -1
        for pos, (o, k) in enumerate(visits, 1):
            there = o_pick[o] if k == PICK else o_drop[o]
            leg = tz.item(pb + here * n_loc + there)
            if dz is None:
                edge_c.append(tc * leg)
            else:
                edge_c.append(tc * leg + dc * dz.item(pb + here * n_loc + there))
            a = clock + leg
            is_open = o_open[o]
            if k == PICK:
                ready = self.o_ready[o]
                s = a if a >= ready else ready
                d = s + self.o_sp[o]
                load += o_size[o]
                hlate.append(INF)
                lim = self.o_pl[o]
                if is_open:
                    picked[o] = (pos, d)
                    in_bag.append(o)
            else:
                e = self.o_de[o]
                s = a if a >= e else int(e)
                d = s + self.o_sd[o]
                load -= o_size[o]
                h = self.o_due[o] - s
                hlate.append(h if h > 0 else 0)
                lim = self.o_latlim[o]
                if is_open:
                    limit = self.o_bag[o]
                    if limit < INF:
                        p_node, p_dep = picked.get(o, (0, start))
                        slack = limit - (a - p_dep)
                        bags.append((p_node, pos, slack))
                        if slack < 0 and bad < 0:
                            bad = o
                    if o in in_bag:
                        in_bag.remove(o)
                    last_open = o
            if is_open:
                n_open += 1
                if a > shift or s > lim:
                    own.append(-INF)
                    if bad < 0:
                        bad = o
                else:
                    own.append((shift if shift < lim else lim) - a)
            else:
                own.append(INF)
            if load > cap:
                overload = True
                if bad < 0 and in_bag:
                    bad = in_bag[-1]
            locs.append(there)
            arr.append(a)
            dep.append(d)
            wait.append(s - a)
            loads.append(load)
            clock = d
            here = there
        end = self.r_end[r]
        if end >= 0:
            leg = tz.item(pb + here * n_loc + end)
            a_end = clock + leg
            if visits:
                if dz is None:
                    edge_c.append(tc * leg)
                else:
                    edge_c.append(tc * leg + dc * dz.item(pb + here * n_loc + end))
            else:
                edge_c.append(0.0)
            locs.append(end)
            own.append(float(shift - a_end) if a_end <= shift else -INF)
            if n_open and a_end > shift and bad < 0:
                bad = last_open
        else:
            a_end = clock
            edge_c.append(0.0)
            locs.append(-1)
            own.append(INF)
        arr.append(a_end)
        dep.append(a_end)
        wait.append(0)
        loads.append(load)
        hlate.append(INF)
        edge_c.append(0.0)
        return _Timing(locs, arr, dep, wait, loads, own, hlate, edge_c, bags, bad, n_open, overload)

    # ------------------------------------------------------------------ insertion tables
    def _tri(self, n: int) -> _Tri:
        tri = self.tri.get(n)
        if tri is None:
            tri = self.tri[n] = _Tri.make(n)
        return tri

    def set_route(self, r: int, visits: list[tuple[int, int]], timing: _Timing) -> None:
        """Store ``visits`` as rider ``r``'s route and rebuild its insertion tables."""
        self.visits[r] = visits
        self.n_open[r] = timing.n_open
        self.dirty.add(r)
        n = len(visits)
        k_nodes = n + 2
        wait = timing.wait
        wc = [0] * (k_nodes + 1)
        for k in range(k_nodes):
            wc[k + 1] = wc[k] + wait[k]
        own = timing.own
        hlate = timing.hlate
        c = [INF] * k_nodes
        w = [INF] * k_nodes
        for k in range(1, n + 1):
            if hlate[k] < INF:
                c[k] = hlate[k] + wc[k + 1]
                w[k] = wc[k + 1]
        self._store_c(r, c, w)
        ib = [INF] * (n + 1)
        for p_node, d_node, slack in timing.bags:
            val = slack + wc[d_node]
            for i in range(p_node, d_node):
                v = val - wc[i + 1]
                if v < ib[i]:
                    ib[i] = v
        # Per insertion point p = 0..n, looking at the nodes after it (suffix minima).
        lim_a = [INF] * (n + 1)
        f_next = [INF] * (n + 1)
        load0: list[float] = [0.0] * (n + 1)
        loads = timing.load
        run_g = INF
        for p in range(n, -1, -1):
            k = p + 1
            gk = own[k] + wc[k]
            if gk < run_g:
                run_g = gk
            f_slack = run_g - wc[k]
            f_next[p] = f_slack
            lim_a[p] = f_slack if f_slack < ib[p] else ib[p]
        lf, cnt, lfb = _suffix_thresholds(c, wc, n)
        dlf, dcnt, dlfb = _suffix_thresholds(w, wc, n)
        cap = self.r_cap[r]
        run_l = -INF
        for p in range(n + 1):
            if loads[p] > run_l:
                run_l = loads[p]
            load0[p] = run_l - cap
        w_tot = wc[k_nodes - 1]
        pb = self.r_pb[r]
        locs = timing.locs
        n_loc = self.n_loc
        from_row = [pb + loc * n_loc for loc in locs[: n + 1]]
        to_next = [pb + loc for loc in locs[1:]]
        if locs[-1] < 0:
            to_next[-1] = _BIG
        points = list(range(n + 1))
        dep = timing.dep[: n + 1]
        arr1 = timing.arr[1:]
        wc1 = wc[1 : n + 2]
        ec = timing.edge_c[: n + 1]
        inf_row = [INF] * (n + 1)
        adj_f = np.array(
            [
                dep,
                arr1,
                wc1,
                dep,
                arr1,
                wc1,
                ec,
                lim_a,
                [w_tot - w for w in wc1],
                lf,
                cnt,
                lfb,
                inf_row,
                inf_row,
                [ld - cap for ld in loads[: n + 1]],
                ec,
                [0.0] * (n + 1),
                [1.0] * (n + 1),
                [self.r_shift[r]] * (n + 1),
                [1.0 if n == 0 else 0.0] * (n + 1),
                load0,
                [dep[0]] * (n + 1),
                inf_row,
                [0.0] * (n + 1),
                dlf,
                dcnt,
                dlfb,
                inf_row,
            ],
            dtype=np.float64,
        )
        adj_i = np.array(
            [from_row, to_next, from_row, to_next, [pb] * (n + 1), [r] * (n + 1), points, points],
            dtype=np.int64,
        )
        self.adj_f[r] = adj_f
        self.adj_i[r] = adj_i
        if n == 0:
            self.far_f[r] = np.empty((NF, 0))
            self.far_i[r] = np.empty((NI, 0), dtype=np.int64)
            return
        tri = self._tri(n)
        ii, jj = tri.ii, tri.jj
        # Range minima over nodes i+1..j (slack, lateness and delivery thresholds) and i..j
        # (minus the load).
        nodes = np.array(
            [
                [own[k] + wc[k] for k in range(k_nodes)],
                c,
                [-ld for ld in loads],
                [*f_next, INF],
                [*ib, INF],
                w,
            ]
        )
        seg = np.where(tri.masks, nodes[[0, 1, 2, 5], None, :], INF)
        np.minimum.accumulate(seg, axis=2, out=seg)
        ranges = seg.reshape(4, -1)[:, tri.flat]
        side_i = adj_f[:, ii]
        blk = adj_f[:, jj]
        blk[: F_WC_I1 + 1] = side_i[: F_WC_I1 + 1]
        wc_i1 = side_i[F_WC_I1]
        wc_j1 = blk[F_WC_J1]
        blk[F_LIM1] = np.minimum(ranges[0] - wc_i1, nodes[4, ii])
        blk[F_LF1] = ranges[1] - wc_i1
        blk[F_DF1] = ranges[3] - wc_i1
        blk[F_LOAD] = np.subtract(-cap, ranges[2])
        blk[F_EC_SUM] = side_i[F_EC_J] + blk[F_EC_J]
        blk[F_WSEG] = wc_j1 - wc_i1
        blk[F_ADJ] = 0.0
        # Time in bag of orders in the bag at j: those picked up by node i only see the drop-off's
        # delay (slack ib1); those picked up in i+1..j are delayed by the pickup's delay too, so
        # their drop-off may take that delay (less the waiting C2 after i that absorbs it) more.
        f_j1 = nodes[3, jj]
        if timing.bags:
            b_p = np.array([[b[0]] for b in timing.bags])
            b_d = np.array([[b[1]] for b in timing.bags])
            b_val = np.array([[b[2] + wc[b[1]]] for b in timing.bags], dtype=np.float64)
            b_cw = np.array([[wc[b[0] + 1]] for b in timing.bags], dtype=np.float64)
            open_at_j = jj < b_d
            g1 = (b_p <= ii) & open_at_j
            g2 = (b_p > ii) & (b_p <= jj) & open_at_j
            blk[F_LIM2] = np.minimum(f_j1, np.where(g1, b_val, INF).min(axis=0) - wc_j1)
            blk[F_IB2] = np.where(g2, b_val, INF).min(axis=0) - wc_j1
            blk[F_C2] = np.where(g2, b_cw, -INF).max(axis=0) - wc_i1
        else:
            blk[F_LIM2] = f_j1
        bi = adj_i[:, jj]
        bi[: I_TO_I1 + 1] = adj_i[: I_TO_I1 + 1, ii]
        bi[I_I] = ii
        self.far_f[r] = blk
        self.far_i[r] = bi

    def refresh(self) -> None:
        """Bring the global tables up to date with the changed routes.

        One or two changed routes are spliced in place of their old columns; more are
        concatenated afresh.
        """
        dirty = self.dirty
        if not dirty:
            return
        if not self.built or len(dirty) > 2:
            self.ga_f = np.concatenate(self.adj_f, axis=1)
            self.ga_i = np.concatenate(self.adj_i, axis=1)
            self.gf_f = np.concatenate(self.far_f, axis=1)
            self.gf_i = np.concatenate(self.far_i, axis=1)
            sizes_a = [b.shape[1] for b in self.adj_f]
            sizes_f = [b.shape[1] for b in self.far_f]
            self.off_a = np.cumsum([0, *sizes_a])
            self.off_f = np.cumsum([0, *sizes_f])
            offsets = np.repeat(self.off_a[:-1], sizes_f)
            self.map_i = offsets + self.gf_i[I_I]
            self.map_j = offsets + self.gf_i[I_J]
            self.built = True
            dirty.clear()
            return
        for r in sorted(dirty):
            lo, hi = int(self.off_a[r]), int(self.off_a[r + 1])
            new_a = self.adj_f[r]
            delta_a = new_a.shape[1] - (hi - lo)
            self.ga_f = np.concatenate((self.ga_f[:, :lo], new_a, self.ga_f[:, hi:]), axis=1)
            self.ga_i = np.concatenate(
                (self.ga_i[:, :lo], self.adj_i[r], self.ga_i[:, hi:]), axis=1
            )
            self.off_a[r + 1 :] += delta_a
            lo_f, hi_f = int(self.off_f[r]), int(self.off_f[r + 1])
            new_f = self.far_f[r]
            new_i = self.far_i[r]
            self.gf_f = np.concatenate((self.gf_f[:, :lo_f], new_f, self.gf_f[:, hi_f:]), axis=1)
            self.gf_i = np.concatenate((self.gf_i[:, :lo_f], new_i, self.gf_i[:, hi_f:]), axis=1)
            tail_i = self.map_i[hi_f:]
            tail_j = self.map_j[hi_f:]
            if delta_a:
                tail_i = tail_i + delta_a
                tail_j = tail_j + delta_a
            self.map_i = np.concatenate((self.map_i[:lo_f], new_i[I_I] + lo, tail_i))
            self.map_j = np.concatenate((self.map_j[:lo_f], new_i[I_J] + lo, tail_j))
            self.off_f[r + 1 :] += new_f.shape[1] - (hi_f - lo_f)
        dirty.clear()

    def route_tables(self, r: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Route ``r``'s adjacency and far columns together."""
        return (
            np.concatenate((self.adj_f[r], self.far_f[r]), axis=1),
            np.concatenate((self.adj_i[r], self.far_i[r]), axis=1),
        )

    def _store_c(self, r: int, late: list[float], delivery: list[float]) -> None:
        """Keep route ``r``'s drop-off lateness and delivery thresholds in the padded matrix."""
        width = self.cmat.shape[2]
        if len(late) > width:
            grown = np.full((self.cmat.shape[0], 2, max(len(late), 2 * width)), INF)
            grown[:, :, :width] = self.cmat
            self.cmat = grown
            width = grown.shape[2]
        pad = [INF] * (width - len(late))
        self.cmat[r] = (late + pad, delivery + pad)

    # ------------------------------------------------------------------ pricing
    def downstream_cost(
        self,
        gi: NDArray[np.int64],
        cand: NDArray[np.intp],
        x1: NDArray[np.float64],
        x2: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Exact cost of the delay an insertion pushes onto the route's later drop-offs.

        ``x1`` / ``x2``: the delay at node i + 1 / j + 1 plus the waiting before that node, per
        column of ``gi``, at columns ``cand``. A drop-off ``k`` whose lateness threshold ``c_k``
        (waiting before it plus its margin to the due time) is below them gets ``x - c_k``
        later than due, priced at the lateness cost; one whose delivery threshold (the waiting
        before it) is below them starts that much later, priced at the delivery-time cost.
        """
        cm = self.cmat[gi[I_ROUTE, cand]]
        ic = gi[I_I, cand][:, None]
        jc = gi[I_J, cand][:, None]
        kk = np.arange(cm.shape[2])[None, :]
        xs = np.where(kk <= jc, np.where(kk > ic, x1[cand, None], -INF), x2[cand, None])
        out = np.zeros(cand.shape[0])
        if self.lc:
            out += self.lc * np.maximum(xs - cm[:, 0], 0.0).sum(axis=1)
        if self.dlc:
            out += self.dlc * np.maximum(xs - cm[:, 1], 0.0).sum(axis=1)
        return out

    def own_delay_cost(self, o: int, s_d: NDArray[np.float64]) -> NDArray[np.float64]:
        """Lateness and delivery-time cost of order ``o``'s own drop-off starting at ``s_d``."""
        cost = self.lc * np.maximum(s_d - self.o_due[o], 0.0)
        if self.dlc:
            cost += self.dlc * (s_d - self.now)
        return cost

    def delay_bounds(
        self,
        f: NDArray[np.float64],
        d2c: NDArray[np.float64],
        d1c: NDArray[np.float64] | None,
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Lower bound on :meth:`downstream_cost` and where it may be below the exact cost.

        ``f``: the columns' float rows; ``d2c`` / ``d1c``: the arrival delays at node j + 1 /
        i + 1 (``d1c`` ``None`` when the pickup and drop-off are adjacent).
        """
        lb = np.zeros(d2c.shape)
        pending = np.zeros(d2c.shape, dtype=bool)
        for weight, first, count, second, inner in (
            (self.lc, F_LF2, F_CNT2, F_LF2B, F_LF1),
            (self.dlc, F_DF2, F_DCNT2, F_DF2B, F_DF1),
        ):
            if not weight:
                continue
            lb += weight * np.maximum(d2c - f[first], 0.0) * f[count]
            pending |= d2c > f[second]
            if d1c is not None:
                over1 = d1c - f[inner]
                lb += weight * np.maximum(over1, 0.0)
                pending |= over1 > 0.0
        return lb, pending

    def _finish(
        self,
        cost: NDArray[np.float64],
        gi: NDArray[np.int64],
        ok: NDArray[np.bool_],
        late_lb: NDArray[np.float64] | None = None,
        pending: NDArray[np.bool_] | None = None,
        x1: NDArray[np.float64] | None = None,
        x2: NDArray[np.float64] | None = None,
    ) -> _Eval:
        """Mask infeasible columns; make the cost of the delay pushed onto later drop-offs
        exact where it can decide the choice (``late_lb``: its lower bound)."""
        if late_lb is None or pending is None or x1 is None or x2 is None:
            return _Eval(np.where(ok, cost, INF), gi)
        total = np.where(ok, cost + late_lb, INF)
        pending &= ok
        if not pending.any():
            return _Eval(total, gi)
        known = np.minimum.reduce(np.where(pending, INF, total))
        cand = (pending & (total <= known)).nonzero()[0]
        total[cand] = cost[cand] + self.downstream_cost(gi, cand, x1, x2)
        pending[cand] = False
        return _Eval(total, gi, pending, x1, x2, cost)

    def price_pd(
        self,
        o: int,
        gf: NDArray[np.float64],
        gi: NDArray[np.int64],
        *,
        kind: int = MIXED,
        pinned: bool = False,
        n_open: int = 1,
    ) -> tuple[_Eval, _Nodes | None]:
        """Price pickup-and-drop-off order ``o`` at every column (inf: infeasible).

        ``kind`` says which columns ``gf`` holds: ``ADJ`` (adjacency table only) or ``MIXED``
        (any; a pinned order's route). For ``ADJ`` columns, also return the per insertion point
        results a far pair is priced from (:class:`_Nodes`), with lower bounds on the cost of
        the pickup part and of the drop-off part of a far insertion: a far pair (i, j) costs at
        least ``lb_p[i] + lb_d[j]``.
        """
        n_loc = self.n_loc
        p = self.o_pick[o]
        d = self.o_drop[o]
        add = np.array([[p], [p * n_loc], [d], [d * n_loc], [p * n_loc + d]], dtype=np.int64)
        idx = gi[:5] + add
        t_ip, t_pi1, t_jd, t_dj1, t_pd = self.tz.take(idx, mode="clip")
        a_p = gf[F_DEP_I] + t_ip
        s_p = np.maximum(a_p, self.o_ready[o])
        d_p = s_p + self.o_sp[o]
        if kind == ADJ:
            a_d = d_p + t_pd
            mid = t_ip + t_pd
            d1c = None
        else:
            d1 = d_p + t_pi1
            d1 -= gf[F_ARR_I1]
            d1c = np.maximum(d1, 0.0)
            far = np.maximum(d1c - gf[F_WSEG], 0.0)
            far += gf[F_DEP_J]
            far += t_jd
            adj = gf[F_ADJ] > 0.0
            a_d = np.where(adj, d_p + t_pd, far)
            mid = np.where(adj, t_pd, t_pi1 + t_jd)
            mid += t_ip
        mid += t_dj1
        de = self.o_de[o]
        s_d = np.maximum(a_d, de) if de > -INF else a_d
        d2 = s_d + (self.o_sd[o] + t_dj1)
        d2 -= gf[F_ARR_J1]
        d2c = np.maximum(d2, 0.0)
        keeps = d2 <= gf[F_LIM2]
        if d1c is not None:
            keeps &= d1 <= gf[F_LIM1]
            keeps &= d2 <= gf[F_IB2] + np.maximum(d1c - gf[F_C2], 0.0)
        size = self.o_size[o]
        fits = gf[F_LOAD] <= -size
        dd = None
        cost = mid if self.tc == 1.0 else self.tc * mid
        if self.dz is not None:
            dd = self.dz.take(idx, mode="clip")
            if kind == ADJ:
                cost += self.dc * (dd[0] + dd[4] + dd[3])
            else:
                adj_mask = gf[F_ADJ] > 0.0
                cost += self.dc * (dd[0] + dd[3] + np.where(adj_mask, dd[4], dd[1] + dd[2]))
        cost -= gf[F_EC_SUM]
        if self.wc:
            waits = (s_p - a_p) + (s_d - a_d) - np.minimum(d2c, gf[F_WDOWN])
            if d1c is not None:
                waits -= np.minimum(d1c, gf[F_WSEG])
            cost += self.wc * waits
        if self.veh:
            cost += self.veh * gf[F_EMPTY]
        if pinned:
            ok = fits & keeps if n_open else fits
            if not ok.any():
                ok = fits if fits.any() else np.ones_like(fits)
        else:
            ok = keeps & fits
            ok &= s_d <= self.o_latlim[o]
            ok &= a_d <= gf[F_SHIFT]
            if self.o_pl[o] < INF:
                ok &= s_p <= self.o_pl[o]
            if self.o_bag[o] < INF:
                ok &= a_d - d_p <= self.o_bag[o]
        nodes = None
        if kind == ADJ:
            nodes = self._part_bounds(o, gf, fits, a_p, s_p, d_p, t_ip, t_pi1, t_jd, t_dj1, dd)
        if not self.delay_priced:
            return self._finish(cost, gi, ok), nodes
        cost += self.own_delay_cost(o, s_d)
        late_lb, pending = self.delay_bounds(gf, d2c, d1c)
        x2 = d2c + gf[F_WC_J1]
        x1 = x2 if d1c is None else d1c + gf[F_WC_I1]
        return self._finish(cost, gi, ok, late_lb, pending, x1, x2), nodes

    def _part_bounds(
        self,
        o: int,
        ga: NDArray[np.float64],
        fits: NDArray[np.bool_],
        a_p: NDArray[np.float64],
        s_p: NDArray[np.float64],
        d_p: NDArray[np.float64],
        t_ip: NDArray[np.float64],
        t_pi1: NDArray[np.float64],
        t_id: NDArray[np.float64],
        t_di1: NDArray[np.float64],
        dd: NDArray[np.float64] | None,
    ) -> _Nodes:
        """Pickup and drop-off sides of far insertions, per adjacency column."""
        ok_p = fits & (a_p <= ga[F_SHIFT])
        if self.o_pl[o] < INF:
            ok_p &= s_p <= self.o_pl[o]
        trav_p = t_ip + t_pi1
        trav_d = t_id + t_di1
        if self.tc != 1.0:
            trav_p *= self.tc
            trav_d *= self.tc
        if dd is not None:
            trav_p += self.dc * (dd[0] + dd[1])
            trav_d += self.dc * (dd[2] + dd[3])
        trav_p -= ga[F_EC_J]
        trav_d -= ga[F_EC_J]
        lb_p = trav_p - self.wc * ga[F_WDOWN] if self.wc else trav_p
        a_d = ga[F_DEP_J] + t_id
        de = self.o_de[o]
        s_d = np.maximum(a_d, de) if de > -INF else a_d
        lb_d = trav_d + self.own_delay_cost(o, s_d) if self.delay_priced else trav_d
        ok_d = (a_d <= ga[F_SHIFT]) & (s_d <= self.o_latlim[o])
        d1 = d_p + t_pi1
        d1 -= ga[F_ARR_I1]
        return _Nodes(
            np.where(ok_p, lb_p, INF),
            np.where(ok_d, lb_d, INF),
            trav_p,
            trav_d,
            d1,
            d_p,
            s_p - a_p,
            t_id,
            t_di1,
        )

    def price_far(self, o: int, cand: NDArray[np.intp], nd: _Nodes) -> _Eval:
        """Price pickup-and-drop-off order ``o`` at far columns ``cand`` from the node results."""
        at_i = self.map_i[cand]
        at_j = self.map_j[cand]
        gf = self.gf_f[:, cand]
        gi = self.gf_i[:, cand]
        d1 = nd.d1[at_i]
        d1c = np.maximum(d1, 0.0)
        a_d = np.maximum(d1c - gf[F_WSEG], 0.0)
        a_d += gf[F_DEP_J]
        a_d += nd.t_id[at_j]
        de = self.o_de[o]
        s_d = np.maximum(a_d, de) if de > -INF else a_d
        d2 = s_d + self.o_sd[o]
        d2 += nd.t_di1[at_j]
        d2 -= gf[F_ARR_J1]
        d2c = np.maximum(d2, 0.0)
        ok = d1 <= gf[F_LIM1]
        ok &= d2 <= gf[F_LIM2]
        ok &= d2 <= gf[F_IB2] + np.maximum(d1c - gf[F_C2], 0.0)
        ok &= gf[F_LOAD] <= -self.o_size[o]
        ok &= s_d <= self.o_latlim[o]
        ok &= a_d <= gf[F_SHIFT]
        if self.o_bag[o] < INF:
            ok &= a_d - nd.d_p[at_i] <= self.o_bag[o]
        cost = nd.trav_p[at_i] + nd.trav_d[at_j]
        if self.wc:
            waits = nd.wait_p[at_i] + (s_d - a_d)
            waits -= np.minimum(d1c, gf[F_WSEG])
            waits -= np.minimum(d2c, gf[F_WDOWN])
            cost += self.wc * waits
        if not self.delay_priced:
            return self._finish(cost, gi, ok)
        cost += self.own_delay_cost(o, s_d)
        late_lb, pending = self.delay_bounds(gf, d2c, d1c)
        x1 = d1c + gf[F_WC_I1]
        x2 = d2c + gf[F_WC_J1]
        return self._finish(cost, gi, ok, late_lb, pending, x1, x2)

    def price_drop(
        self,
        o: int,
        ga: NDArray[np.float64],
        gi: NDArray[np.int64],
        *,
        pinned: bool = False,
        n_open: int = 1,
    ) -> _Eval:
        """Price drop-off-only order ``o`` (onboard or start-loaded) after each node j.

        ``ga`` / ``gi`` are adjacency columns (their j-side rows describe node j).
        """
        n_loc = self.n_loc
        d = self.o_drop[o]
        add = np.array([[d], [d * n_loc]], dtype=np.int64)
        idx = gi[I_FROM_J : I_TO_J1 + 1] + add
        t_jd, t_dj1 = self.tz.take(idx, mode="clip")
        a_d = ga[F_DEP_J] + t_jd
        de = self.o_de[o]
        s_d = np.maximum(a_d, de) if de > -INF else a_d
        d2 = s_d + (self.o_sd[o] + t_dj1)
        d2 -= ga[F_ARR_J1]
        d2c = np.maximum(d2, 0.0)
        keeps = d2 <= ga[F_LIM2]
        if self.dz is None:
            cost = self.tc * (t_jd + t_dj1)
        else:
            dd = self.dz.take(idx, mode="clip")
            cost = self.tc * (t_jd + t_dj1) + self.dc * (dd[0] + dd[1])
        cost -= ga[F_EC_J]
        if self.wc:
            cost += self.wc * ((s_d - a_d) - np.minimum(d2c, ga[F_WDOWN]))
        if self.veh:
            cost += self.veh * ga[F_EMPTY]
        if pinned:
            ok = keeps if n_open else np.ones_like(keeps)
            if not ok.any():
                ok = np.ones_like(keeps)
        else:
            ok = keeps & (ga[F_LOAD0] <= -self.o_size[o])
            ok &= s_d <= self.o_latlim[o]
            ok &= a_d <= ga[F_SHIFT]
            if self.o_bag[o] < INF:
                ok &= a_d - ga[F_DEP0] <= self.o_bag[o]
        if not self.delay_priced:
            return self._finish(cost, gi, ok)
        cost += self.own_delay_cost(o, s_d)
        late_lb, pending = self.delay_bounds(ga, d2c, None)
        x1 = np.full(d2c.shape, -INF)
        return self._finish(cost, gi, ok, late_lb, pending, x1, d2c + ga[F_WC_J1])

    def price(self, o: int) -> list[_Eval]:
        """Price open order ``o`` at every insertion position of every route.

        Adjacent positions are priced exactly; far pairs only where their lower bound could
        beat the best adjacent price (or the unassigned penalty).
        """
        self.refresh()
        if self.o_pick[o] < 0:
            return [self.price_drop(o, self.ga_f, self.ga_i)]
        ev_a, nodes = self.price_pd(o, self.ga_f, self.ga_i, kind=ADJ)
        if not self.map_i.size:
            return [ev_a]
        assert nodes is not None
        best = float(np.minimum.reduce(ev_a.cost)) if ev_a.cost.size else INF
        limit = min(best, self.penalty) if best < INF else INF
        lb_far = nodes.lb_p[self.map_i] + nodes.lb_d[self.map_j]
        cand = (lb_far <= limit if limit < INF else lb_far < INF).nonzero()[0]
        if not cand.size:
            return [ev_a]
        return [ev_a, self.price_far(o, cand, nodes)]

    def n_positions(self) -> int:
        """Number of insertion positions (adjacent and far) over all routes."""
        self.refresh()
        return int(self.ga_f.shape[1] + self.gf_f.shape[1])

    # ------------------------------------------------------------------ changing routes
    def apply(self, o: int, r: int, i: int, j: int) -> bool:
        """Insert ``o`` (pickup after node i, drop-off after node j) on rider ``r``.

        The route is re-timed exactly; returns False (and changes nothing) when that breaks a
        rule for an open order.
        """
        visits = list(self.visits[r])
        visits.insert(j, (o, DROP))
        if self.o_pick[o] >= 0:
            visits.insert(i, (o, PICK))
        timing = self.time_route(r, visits)
        if timing.bad >= 0 and self.o_open[o]:
            return False
        self.set_route(r, visits, timing)
        return True

    def insert_pinned(self, o: int) -> None:
        """Insert pinned order ``o`` on its rider at the cheapest position (it is mandatory).

        Positions that keep the route's open orders feasible and the capacity are preferred;
        the rules that do not apply to pinned stops are ignored.
        """
        r = self.o_rider[o]
        if self.o_pick[o] < 0:
            n_open = self.n_open[r]
            ev = self.price_drop(o, self.adj_f[r], self.adj_i[r], pinned=True, n_open=n_open)
        else:
            gf, gi = self.route_tables(r)
            ev, _ = self.price_pd(o, gf, gi, pinned=True, n_open=self.n_open[r])
        k = ev.best(self)
        self.apply(o, r, int(ev.gi[I_I, k]), int(ev.gi[I_J, k]))

    def evict_broken(self, r: int, *, force: bool = False) -> list[int]:
        """Remove open orders from route ``r`` until it breaks no rule; return the evicted.

        The route's tables are rebuilt when something was evicted or ``force`` is set.
        """
        visits = list(self.visits[r])
        evicted: list[int] = []
        while True:
            timing = self.time_route(r, visits)
            if timing.bad < 0:
                break
            bad = timing.bad
            evicted.append(bad)
            visits = [v for v in visits if v[0] != bad]
        if evicted or force:
            self.set_route(r, visits, timing)
        return evicted


def _alone(
    g: _Greedy, orders: Sequence[int]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64], NDArray[np.int64]]:
    """Whether each order fits each rider's capacity and can be served alone on it in time.

    Returns
    -------
    fits, in_time
        Boolean arrays (orders, riders).
    late
        Drop-off lateness (s) of the order served alone, (orders, riders).
    fails
        Bit mask per (order, rider) of the failing time rules (see :data:`_FAIL_NAMES`).
    """
    idx = np.asarray(orders, dtype=np.intp)
    n_loc = g.n_loc
    pick = np.array([g.o_pick[o] for o in orders], dtype=np.int64)[:, None]
    drop = np.array([g.o_drop[o] for o in orders], dtype=np.int64)[:, None]

    def col(values: Sequence[float]) -> NDArray[np.float64]:
        return np.array([values[o] for o in idx], dtype=np.float64)[:, None]

    r_loc = np.array(g.r_loc, dtype=np.int64)[None, :]
    r_pb = np.array(g.r_pb, dtype=np.int64)[None, :]
    start = np.array(g.r_start, dtype=np.float64)[None, :]
    shift = np.array(g.r_shift, dtype=np.float64)[None, :]
    r_end = np.array(g.r_end, dtype=np.int64)[None, :]
    has_pick = pick >= 0
    pk = np.where(has_pick, pick, 0)
    t_p = g.tz.take(r_pb + r_loc * n_loc + pk, mode="clip")
    a_p = np.where(has_pick, start + t_p, start)
    s_p = np.where(has_pick, np.maximum(a_p, col(g.o_ready)), start)
    d_p = np.where(has_pick, s_p + col(g.o_sp), start)
    t_d = np.where(
        has_pick,
        g.tz.take(r_pb + pk * n_loc + drop, mode="clip"),
        g.tz.take(r_pb + r_loc * n_loc + drop, mode="clip"),
    )
    a_d = d_p + t_d
    s_d = np.maximum(a_d, col(g.o_de))
    d_d = s_d + col(g.o_sd)
    t_end = np.where(r_end >= 0, g.tz.take(r_pb + drop * n_loc + np.maximum(r_end, 0)), 0)
    fails = np.zeros(a_d.shape, dtype=np.int64)
    fails |= np.where(a_d > shift, 1, 0)
    fails |= np.where(s_d > col(g.o_latlim), 2, 0)
    fails |= np.where(s_p > col(g.o_pl), 4, 0)
    fails |= np.where(a_d - d_p > col(g.o_bag), 8, 0)
    fails |= np.where((r_end >= 0) & (d_d + t_end > shift), 16, 0)
    cap = np.array(g.r_cap, dtype=np.float64)[None, :]
    fits = col(g.o_size) <= cap
    late = np.maximum(s_d - col(g.o_due), 0.0)
    return fits, fails == 0, late, fails


_FAIL_NAMES = (
    (1, "drop-off after the shift end"),
    (2, "lateness above the cap"),
    (4, "pickup after pickup_latest_s"),
    (8, "time in bag above max_in_bag_s"),
    (16, "return to the depot after the shift end"),
)


def _unreachable_detail(
    g: _Greedy, o: int, fits: NDArray[np.bool_], late: NDArray[np.float64], fails: NDArray[np.int64]
) -> str:
    """Say what the best rider alone would achieve and which rules it breaks."""
    pool = np.flatnonzero(fits) if fits.any() else np.arange(fits.size)
    best = int(pool[np.argmin(late[pool])])
    rider = g.problem.riders[best]
    order = g.problem.orders[o]
    bits = int(fails[best])
    broken = ", ".join(name for bit, name in _FAIL_NAMES if bits & bit) or "capacity"
    cap = 0 if g.params.objective == "hierarchical" else g.params.max_lateness_s
    return (
        f"best alone: rider {rider.id}, drop-off {late[best]:.0f} s after due {order.due_s} "
        f"(lateness cap {cap} s, shift end {rider.shift_end_s}); breaks: {broken}"
    )


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
            k = PICK if kind is StopKind.PICKUP else DROP
            kept.append((o, k))
            kinds.setdefault(o, []).append(k)
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
    if ordering == "due":
        return sorted(orders, key=lambda o: (g.o_due[o], g.o_ready[o], o))
    if ordering == "slack":
        return sorted(orders, key=lambda o: (min(g.o_latlim[o], g.o_pl[o]), g.o_due[o], o))
    return sorted(orders, key=lambda o: (g.o_ready[o], g.o_due[o], o))


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
    began = time.perf_counter()
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering={ordering!r}: must be one of {ORDERINGS}")
    g = _Greedy(problem, params)
    n_orders = len(problem.orders)
    unassigned: list[Unassigned] = []
    placed: set[int] = set()
    if initial:
        routes, placed = _sanitise_initial(g, initial)
    else:
        routes = [[] for _ in problem.riders]
    queue: list[int] = []
    for r, visits in enumerate(routes):
        g.visits[r] = visits
        placed -= set(g.evict_broken(r, force=True))
        if visits and g.time_route(r, g.visits[r]).overload:
            # Pinned orders overload the bag where the initial plan put them: place them anew.
            moved = {o for o, _ in g.visits[r] if g.o_rider[o] >= 0}
            g.visits[r] = [v for v in g.visits[r] if v[0] not in moved]
            placed -= moved
            placed -= set(g.evict_broken(r, force=True))
    pinned = [o for o in range(n_orders) if g.o_rider[o] >= 0 and o not in placed]
    pinned.sort(key=lambda o: (g.o_rider[o], g.o_pick[o] >= 0, g.o_due[o], o))
    for o in pinned:
        g.insert_pinned(o)
        placed.add(o)
    if pinned:
        for r in range(len(problem.riders)):
            placed -= set(g.evict_broken(r))
    queue = [o for o in range(n_orders) if g.o_open[o] and o not in placed]
    riders_open = [r for r in range(len(problem.riders)) if g.r_start[r] <= g.r_shift[r]]
    if not queue:
        todo: list[int] = []
    elif not problem.riders or not riders_open:
        why = (
            "the problem has no riders"
            if not problem.riders
            else f"every rider's shift has ended (now {problem.now_s})"
        )
        unassigned.extend(
            Unassigned(problem.orders[o].id, UnassignedReason.NO_RIDERS, why) for o in queue
        )
        todo = []
    else:
        fits, in_time, late, fails = _alone(g, queue)
        max_cap = max(g.r_cap)
        todo = []
        alone_rows: dict[int, int] = {}
        for row, o in enumerate(queue):
            if g.o_size[o] > max_cap:
                unassigned.append(
                    Unassigned(
                        problem.orders[o].id,
                        UnassignedReason.CAPACITY,
                        f"size {g.o_size[o]} > largest rider capacity {max_cap}",
                    )
                )
            elif not (fits[row] & in_time[row]).any():
                unassigned.append(
                    Unassigned(
                        problem.orders[o].id,
                        UnassignedReason.UNREACHABLE_IN_TIME,
                        _unreachable_detail(g, o, fits[row], late[row], fails[row]),
                    )
                )
            else:
                todo.append(o)
                alone_rows[o] = row
        todo = _urgency(g, todo, ordering)
        _insert_sequential(g, todo, unassigned, deadline, fits, in_time, late, alone_rows)
    visits_by_rider = {
        problem.riders[r].id: [
            (problem.orders[o].id, StopKind.PICKUP if k == PICK else StopKind.DROPOFF)
            for o, k in g.visits[r]
        ]
        for r in range(len(problem.riders))
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


def _fail_reason(
    g: _Greedy,
    o: int,
    fits: NDArray[np.bool_],
    in_time: NDArray[np.bool_],
    late: NDArray[np.float64],
    n_cols: int,
) -> Unassigned:
    ok = fits & in_time
    best = int(np.flatnonzero(ok)[np.argmin(late[ok])])
    return Unassigned(
        g.problem.orders[o].id,
        UnassignedReason.NO_FEASIBLE_INSERTION,
        f"feasible alone on {int(ok.sum())} rider(s) (best: {g.problem.riders[best].id}, "
        f"{late[best]:.0f} s late) but at none of {n_cols} positions in the current routes",
    )


def _not_profitable(g: _Greedy, o: int, cost: float, r: int) -> Unassigned:
    return Unassigned(
        g.problem.orders[o].id,
        UnassignedReason.NOT_PROFITABLE,
        f"cheapest insertion (rider {g.problem.riders[r].id}) costs {cost:.1f} > "
        f"unassigned penalty {g.penalty:g}",
    )


def _try_insert(
    g: _Greedy,
    o: int,
    evs: list[_Eval],
    before_apply: Callable[[int], None] | None = None,
) -> tuple[bool, float, int]:
    """Insert ``o`` at its cheapest position that survives exact re-timing.

    ``before_apply(r)`` is called before route ``r`` is changed (the search snapshots it).

    Returns
    -------
    tuple
        (inserted, best cost, its rider index); the cost is inf when nothing is feasible and
        above the penalty when the order is not profitable.
    """
    while True:
        best, best_ev, best_k = INF, evs[0], -1
        for ev in evs:
            k = ev.best(g)
            if k >= 0 and ev.cost[k] < best:
                best, best_ev, best_k = float(ev.cost[k]), ev, k
        if best_k < 0:
            return False, INF, -1
        gi = best_ev.gi
        r = int(gi[I_ROUTE, best_k])
        if best > g.penalty:
            return False, best, r
        if before_apply is not None:
            before_apply(r)
        if g.apply(o, r, int(gi[I_I, best_k]), int(gi[I_J, best_k])):
            return True, best, r
        best_ev.cost[best_k] = INF


def _insert_sequential(
    g: _Greedy,
    todo: list[int],
    unassigned: list[Unassigned],
    deadline: float | None,
    fits: NDArray[np.bool_],
    in_time: NDArray[np.bool_],
    late: NDArray[np.float64],
    rows: dict[int, int],
) -> None:
    """Insert ``todo`` one by one, each at its cheapest feasible position."""
    for n_done, o in enumerate(todo):
        if deadline is not None and time.perf_counter() > deadline:
            _shed(g, todo[n_done:], unassigned)
            return
        done, best, r = _try_insert(g, o, g.price(o))
        if done:
            continue
        row = rows[o]
        if best == INF:
            unassigned.append(
                _fail_reason(g, o, fits[row], in_time[row], late[row], g.n_positions())
            )
        else:
            unassigned.append(_not_profitable(g, o, best, r))


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
