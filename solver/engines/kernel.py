"""Compiled core (numba) of the insertion engines: routes as integer arrays, exact timing, exact
insertion prices, and the ruin-and-recreate moves.

Representation
--------------
A problem compiles (:func:`compile_problem`) to a tuple ``P = (od, rd, w, t, d, n_loc)``: an int
table of orders (columns ``O_*``), an int table of riders (``R_*``), the objective weights
(``W_*``) and the flat travel time / distance matrices. A solution is a tuple of arrays
``S`` (:func:`new_state`): per rider the visit codes ``order * 2 + kind`` (kind 0 pickup, 1
drop-off) and, per route node (node 0 = the start, node ``n + 1`` = the end), the departure,
load and objective accumulated up to the node; per order its route and the departure from its
pickup. Every rule is the one of :mod:`solver.model` as :mod:`solver.check` reads it, in integer
seconds.

Pricing
-------
An insertion (pickup after node ``i``, drop-off after node ``j >= i``) is priced by timing the
changed part of the route: from node ``i`` on, until a node departs exactly as before (the rest
of the route is then unchanged). The price is therefore the exact increase of the objective, and
an insertion is only accepted when every node it delays still keeps its rules. With ``j``
running up from ``i`` the stretch between pickup and drop-off is timed once per ``i``.

Three shortcuts keep it exact:
- each node's forward slack (the largest arrival delay the rest of the route accepts, by every
  rule but the time in bag) rejects a drop-off position whose delay the tail cannot take, in
  O(1);
- when only edge costs depend on the position (no waiting, lateness or delivery-time cost, no
  time-in-bag limit on the route: the benchmarks' objective) a position the slack accepts is
  priced from its edges, without timing the tail;
- the timing of the tail stops as soon as what is left cannot beat the best price so far (a
  delay of x saves at most x of waiting).
The search also prunes by detour (``prune``, see :func:`best_in_route`): exact on metric
matrices; on others it may miss the cheapest position, never a rule.

Ruin and recreate (Christiaens & Vanden Berghe's SISR)
-----------------------------------------------------
:func:`anneal_run` and :func:`eliminate_run` run a given number of iterations each (the caller
keeps the clock: numba has none) and keep their state in arrays, so they resume where they
stopped.

Why one file
------------
The kernel is one module in sections (timing, editing, pricing, undo of a move, ruin and
recreate) rather than one module per concern, because of numba's on-disk cache
(``cache=True``): a cached function is compiled together with the jitted functions it calls,
but its cache is invalidated only when its own file changes. numba documents it ("cache
invalidation fails to recognize changes in functions defined in a different file"; numba issue
#1833 is open): split across files, an edit of the timing would leave the cached pricing and
search running the old timing, silently. In one file, any edit recompiles the whole kernel once
(about 40 s; ``make venv`` does it, and :func:`ensure_warm` before a server reports ready).
The near-duplicate loops of :func:`best_in_route` are kept on purpose: one shared helper
measured 2.5x slower there (the comment at the loops says so).

One signature, compiled before any clock starts
-----------------------------------------------
numba compiles a function once per *type* of its arguments, and an array's type is its dtype,
dimensions, layout and whether it is writable. The kernel is compiled for one type of each
argument: :func:`compile_problem` makes every table and matrix the same type whatever the
problem was built from (Python lists, int32 / float32 / float64 arrays, 2-D or 3-D, Fortran
order, views, writable or not; the matrices always flat, C-contiguous and read-only), and the
engines make their own arrays with fixed dtypes. So :func:`warm_up` (``make venv``, a server
and each worker before they report ready) compiles, or loads from numba's cache, every
specialisation a solve will call, and no solve compiles inside its budget
(``tests/solver/engines/test_kernel_signatures.py`` checks it for every way of building a
problem). The cache lives next to this file (``solver/engines/__pycache__``; numba's user
cache directory if that is not writable, ``NUMBA_CACHE_DIR`` if set). A process loads it in
about 0.5 s on its first solve (:func:`ensure_warm`, which ``solve``, the greedy and the
search call before their clocks start); without a cache (a new machine, or this file changed
since ``make venv``) that first solve compiles for 40-50 s, also before its clock starts.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

from solver.model import OrderState, Problem
from solver.params import SolverParams

__all__ = ["BIG", "compile_problem", "ensure_warm", "new_state", "warm_up"]

BIG = 1 << 50
"""An int standing for "no limit" (times never come near it)."""

# order table columns
O_PICK, O_DROP, O_READY, O_DUE, O_SP, O_SD, O_DE, O_PL, O_BAG, O_LATLIM = range(10)
O_SIZE, O_SL, O_OPEN, O_RIDER, O_ASG, O_QUOTE = range(10, 16)
N_O = 16
# rider table columns
R_LOC, R_START, R_SHIFT, R_CAP, R_PB, R_END, R_ONBOARD, R_CLASS = range(8)
N_R = 8
# weights
W_TC, W_DC, W_WC, W_LC, W_DLC, W_VEH, W_PEN, W_NOW, W_RC, W_EC = range(10)
N_W = 10
#: ``O_ASG`` of an open order assigned to a rider absent from the problem (moved whatever)
ASG_ABSENT = -2

PICK, DROP = 0, 1
INF = np.inf

Compiled = tuple[Any, ...]
"""``(od, rd, w, t, d, n_loc)``, see the module docstring."""
State = tuple[Any, ...]
"""``(route, rlen, rcost, where, dep, cum, ld, pdep, nopen, scratch, detours, arv, slk,
hasbag)``, see :func:`new_state`."""


def compile_problem(problem: Problem, params: SolverParams) -> Compiled:
    """The problem's orders, riders, weights and matrices as the kernel reads them.

    Pinned orders get no lateness cap, time in bag or latest pickup (they are exempt); a
    hierarchical objective makes the due time hard (cap 0). An open order's ``O_ASG`` is the
    rider it is assigned to (``-1``: none, :data:`ASG_ABSENT`: a rider not in the problem).
    """
    orders = problem.orders
    n_o = len(orders)
    cap_late = 0 if params.objective == "hierarchical" else params.max_lateness_s
    rider_index = problem.rider_index
    rows = []
    for o in orders:  # one tuple per order, in the O_* column order
        is_open = o.state is OrderState.OPEN
        rows.append(
            (
                -1 if (o.pickup is None or o.state is OrderState.ONBOARD) else o.pickup,
                o.dropoff,
                o.ready_s,
                o.due_s,
                o.pickup_service_s,
                o.dropoff_service_s,
                -BIG if o.dropoff_earliest_s is None else o.dropoff_earliest_s,
                o.pickup_latest_s
                if (o.pickup_latest_s is not None and is_open and o.pickup is not None)
                else BIG,
                o.max_in_bag_s if (o.max_in_bag_s is not None and is_open) else BIG,
                o.due_s + cap_late if is_open else BIG,
                o.size,
                1 if (is_open and o.pickup is None) else 0,
                1 if is_open else 0,
                rider_index[o.rider_id] if (o.is_pinned and o.rider_id is not None) else -1,
                -1
                if (o.assigned_rider_id is None or not is_open)
                else rider_index.get(o.assigned_rider_id, ASG_ABSENT),
                BIG if o.quoted_dropoff_s is None else o.quoted_dropoff_s,
            )
        )
    od = np.array(rows, dtype=np.int64).reshape(n_o, N_O)
    riders = problem.riders
    n_loc = problem.num_locations
    rd = np.zeros((len(riders), N_R), dtype=np.int64)
    for k, r in enumerate(riders):
        rd[k, R_LOC] = r.location
        rd[k, R_START] = problem.start_time(r)
        rd[k, R_SHIFT] = r.shift_end_s
        rd[k, R_CAP] = r.capacity
        rd[k, R_PB] = r.profile * n_loc * n_loc
        rd[k, R_END] = -1 if r.end_location is None else r.end_location
    for k in range(n_o):
        if orders[k].state is OrderState.ONBOARD:
            rd[od[k, O_RIDER], R_ONBOARD] += orders[k].size
    # riders alike in everything but their id: one empty route of a class is priced for all
    first: dict[tuple[int, ...], int] = {}
    for k in range(len(riders)):
        rd[k, R_CLASS] = first.setdefault(tuple(rd[k, :R_CLASS].tolist()), k)
    w = np.zeros(N_W)
    w[W_TC] = params.travel_cost_per_s
    w[W_DC] = params.distance_cost_per_m
    w[W_WC] = params.waiting_cost_per_s
    w[W_LC] = params.lateness_cost_per_s
    w[W_DLC] = params.delivery_time_weight
    w[W_VEH] = params.vehicle_fixed_cost
    w[W_PEN] = params.unassigned_penalty
    w[W_NOW] = problem.now_s
    w[W_RC] = params.reassignment_cost
    w[W_EC] = params.eta_delay_cost_per_s
    t = _flat_matrix(problem.time_s, np.int64)
    d = _flat_matrix(problem.distance_m, np.float64)
    return (od, rd, w, t, d, np.int64(n_loc))


def _flat_matrix(matrix: NDArray[Any], dtype: type) -> NDArray[Any]:
    """``matrix`` as the kernel's one matrix type: flat, ``dtype``, C-contiguous, read-only.

    numba compiles one specialisation per argument type, and an array's type includes its
    dtype, dimensions, layout and whether it is writable: a problem whose distances were
    writable (``Problem.build`` without ``distance_m``) once made every kernel function compile
    again inside a solve's budget (measured: 8-15 s in the greedy, then 4-20 s in the search,
    against 0.2 s). Whatever the problem holds (any dtype or order, a view, writable or not),
    this is the type :func:`warm_up` compiled.
    """
    flat: NDArray[Any] = np.ascontiguousarray(matrix, dtype=dtype).reshape(-1)  # ours: a view
    flat.setflags(write=False)
    return flat


def new_state(p: Compiled) -> State:
    """An empty solution for compiled problem ``p`` (every route empty, every order out).

    Per route node also the arrival (``arv``) and the forward slack (``slk``: the largest
    arrival delay there that the rest of the route accepts, by every rule but the time in
    bag), and per route whether an order on it has a time-in-bag limit (``hasbag``).

    Working space of :func:`best_in_route`: ``scratch`` (row ``1 + order``) holds two
    (stamp, departure) pairs, the pickups re-timed between the order's pickup and drop-off
    and after its drop-off, with the stamp counters in row 0; ``detours`` the detour bounds.
    """
    od, rd = p[0], p[1]
    n_o, n_r = od.shape[0], rd.shape[0]
    width = 2 * n_o + 2
    route = np.full((max(n_r, 1), max(2 * n_o, 1)), -1, dtype=np.int64)
    rlen = np.zeros(max(n_r, 1), dtype=np.int64)
    rcost = np.zeros(max(n_r, 1))
    where = np.full(max(n_o, 1), -1, dtype=np.int64)
    dep = np.zeros((max(n_r, 1), width), dtype=np.int64)
    cum = np.zeros((max(n_r, 1), width))
    ld = np.zeros((max(n_r, 1), width), dtype=np.int64)
    pdep = np.zeros(max(n_o, 1), dtype=np.int64)
    nopen = np.zeros(max(n_r, 1), dtype=np.int64)
    scratch = np.zeros((max(n_o, 1) + 1, 4), dtype=np.int64)
    detours = np.zeros((4, width))
    arv = np.zeros((max(n_r, 1), width), dtype=np.int64)
    slk = np.zeros((max(n_r, 1), width), dtype=np.int64)
    hasbag = np.zeros(max(n_r, 1), dtype=np.bool_)
    s = (route, rlen, rcost, where, dep, cum, ld, pdep, nopen, scratch, detours, arv, slk, hasbag)
    for r in range(n_r):
        retime(p, s, r)
    return s


# ----------------------------------------------------------------------------------- timing


@nb.njit(cache=True)
def _loc(od: NDArray[np.int64], code: int) -> int:
    o = code >> 1
    if code & 1:
        return int(od[o, O_DROP])
    return int(od[o, O_PICK])


@nb.njit(cache=True)
def retime(p: Compiled, s: State, r: int) -> tuple[int, bool]:
    """Time route ``r`` exactly and refresh its node arrays and cost.

    Returns
    -------
    tuple
        (an open order of the route breaking a rule or -1, whether the load ever exceeds the
        capacity).
    """
    od, rd, w, t, d, nl = p
    route, rlen, rcost, where, dep, cum, ld, pdep, nopen, _scratch, _detours, arv, slk, hasbag = s
    n = rlen[r]
    pb = rd[r, R_PB]
    shift = rd[r, R_SHIFT]
    cap = rd[r, R_CAP]
    tc, dc, wc, lc, dlc, now = w[W_TC], w[W_DC], w[W_WC], w[W_LC], w[W_DLC], w[W_NOW]
    ec = w[W_EC]  # per second a drop-off starts after the ETA quoted to the student
    here = rd[r, R_LOC]
    clock = rd[r, R_START]
    load = rd[r, R_ONBOARD]
    bad = -1
    last_sl = -1
    for k in range(n):
        code = route[r, k]
        o = code >> 1
        where[o] = r
        if code & 1 and od[o, O_SL] == 1:
            load += od[o, O_SIZE]
            last_sl = o
    overload = load > cap
    if overload and last_sl >= 0:
        bad = last_sl
    dep[r, 0] = clock
    arv[r, 0] = clock
    cum[r, 0] = 0.0
    ld[r, 0] = load
    acc = 0.0
    n_open = 0
    last_open = -1
    bags = False
    for k in range(n):
        code = route[r, k]
        o = code >> 1
        there = _loc(od, code)
        idx = pb + here * nl + there
        leg = t[idx]
        acc += tc * leg + dc * d[idx]
        a = clock + leg
        is_open = od[o, O_OPEN] == 1
        if code & 1 == 0:
            st = max(a, od[o, O_READY])
            dp = st + od[o, O_SP]
            load += od[o, O_SIZE]
            acc += wc * (st - a)
            if is_open:
                pdep[o] = dp
                if bad < 0 and (a > shift or st > od[o, O_PL]):
                    bad = o
        else:
            st = max(a, od[o, O_DE])
            dp = st + od[o, O_SD]
            load -= od[o, O_SIZE]
            late = st - od[o, O_DUE]
            acc += wc * (st - a) + dlc * (st - now)
            if late > 0:
                acc += lc * late
            if st > od[o, O_QUOTE]:
                acc += ec * (st - od[o, O_QUOTE])
            if is_open:
                if bad < 0 and (a > shift or st > od[o, O_LATLIM]):
                    bad = o
                if bad < 0 and od[o, O_BAG] < BIG:
                    p_dep = pdep[o] if od[o, O_PICK] >= 0 else dep[r, 0]
                    if a - p_dep > od[o, O_BAG]:
                        bad = o
                last_open = o
        if is_open:
            n_open += 1
            lim = od[o, O_PL] if code & 1 == 0 else od[o, O_LATLIM]
            slk[r, k + 1] = min(shift, lim) - a  # this node's own limit (see below)
            if od[o, O_BAG] < BIG:
                bags = True
        else:
            slk[r, k + 1] = BIG
        arv[r, k + 1] = a
        if load > cap:
            overload = True
            if bad < 0:
                bad = _open_in_bag(od, route, r, k, n)
        dep[r, k + 1] = dp
        cum[r, k + 1] = acc
        ld[r, k + 1] = load
        clock = dp
        here = there
    end = rd[r, R_END]
    if end >= 0 and n > 0:
        idx = pb + here * nl + end
        leg = t[idx]
        acc += tc * leg + dc * d[idx]
        clock += leg
        if n_open > 0 and clock > shift and bad < 0:
            bad = last_open
    dep[r, n + 1] = clock
    arv[r, n + 1] = clock
    cum[r, n + 1] = acc
    ld[r, n + 1] = load
    moved = 0.0  # the route's orders moved off the rider they are assigned to
    for k in range(n):
        code = route[r, k]
        if code & 1:
            moved += moving_cost(od, w, code >> 1, r)
    rcost[r] = acc + moved
    nopen[r] = n_open
    hasbag[r] = bags
    # forward slack, backwards: a delay d at node k is left max(0, d - wait) at node k + 1
    slk[r, n + 1] = shift - clock if (end >= 0 and n > 0 and n_open > 0) else BIG
    for k in range(n, 0, -1):
        code = route[r, k - 1]
        serve = od[code >> 1, O_SD] if code & 1 else od[code >> 1, O_SP]
        nxt = slk[r, k + 1]
        if nxt < 0:
            slk[r, k] = nxt  # already broken further on
        elif nxt < BIG:
            slk[r, k] = min(slk[r, k], dep[r, k] - serve - arv[r, k] + nxt)
    return bad, overload


@nb.njit(cache=True)
def _open_in_bag(od: NDArray[np.int64], route: NDArray[np.int64], r: int, k: int, n: int) -> int:
    """The open order picked up last at or before visit ``k`` and dropped after it (or -1)."""
    for q in range(k, -1, -1):
        code = route[r, q]
        o = code >> 1
        if code & 1 == 0 and od[o, O_OPEN] == 1:
            for q2 in range(k + 1, n):
                if route[r, q2] == 2 * o + 1:
                    return o
    for q in range(n):  # start-loaded orders are in the bag from the start
        code = route[r, q]
        o = code >> 1
        if q > k and code & 1 and od[o, O_SL] == 1:
            return o
    return -1


@nb.njit(cache=True, inline="always")
def moving_cost(od: NDArray[np.int64], w: NDArray[np.float64], o: int, r: int) -> float:
    """The reassignment cost of order ``o`` served by rider ``r`` (0 on its assigned rider or
    when it is not assigned)."""
    a = od[o, O_ASG]
    if a == -1 or a == r:
        return 0.0
    return w[W_RC]


@nb.njit(cache=True, inline="always")
def out_cost(p: Compiled, o: int) -> float:
    """What leaving order ``o`` out of every route costs: the unassigned penalty, plus the
    reassignment cost when it is assigned to a rider."""
    w = p[2]
    if p[0][o, O_ASG] == -1:
        return w[W_PEN]
    return w[W_PEN] + w[W_RC]


@nb.njit(cache=True)
def outs_cost(p: Compiled, orders: NDArray[np.int64]) -> float:
    """:func:`out_cost` summed over ``orders``."""
    acc = 0.0
    for k in range(orders.shape[0]):
        acc += out_cost(p, orders[k])
    return acc


@nb.njit(cache=True)
def route_cost(p: Compiled, s: State, r: int) -> float:
    """Objective of route ``r`` (vehicle cost included when it has a stop)."""
    if s[1][r] == 0:
        return 0.0
    return s[2][r] + p[2][W_VEH]


@nb.njit(cache=True)
def total_cost(p: Compiled, s: State) -> float:
    """Objective of the routes (without unassigned penalties)."""
    acc = 0.0
    for r in range(p[1].shape[0]):
        acc += route_cost(p, s, r)
    return acc


# ---------------------------------------------------------------------------------- editing


@nb.njit(cache=True)
def insert_at(p: Compiled, s: State, r: int, o: int, i: int, j: int) -> tuple[int, bool]:
    """Insert order ``o`` on route ``r``: pickup after node ``i``, drop-off after node ``j``.

    Returns :func:`retime`'s result for the new route.
    """
    od = p[0]
    route, rlen = s[0], s[1]
    n = rlen[r]
    # drop-off at visit index j, then the pickup at visit index i (before it)
    for q in range(n, j, -1):
        route[r, q] = route[r, q - 1]
    route[r, j] = 2 * o + 1
    n += 1
    if od[o, O_PICK] >= 0:
        for q in range(n, i, -1):
            route[r, q] = route[r, q - 1]
        route[r, i] = 2 * o
        n += 1
    rlen[r] = n
    return retime(p, s, r)


@nb.njit(cache=True)
def remove_order(p: Compiled, s: State, o: int) -> int:
    """Take order ``o`` out of its route (not re-timed); returns the route or -1."""
    route, rlen, where = s[0], s[1], s[3]
    r = where[o]
    if r < 0:
        return -1
    n = rlen[r]
    q2 = 0
    for q in range(n):
        code = route[r, q]
        if code >> 1 != o:
            route[r, q2] = code
            q2 += 1
    rlen[r] = q2
    where[o] = -1
    return r


@nb.njit(cache=True)
def evict_broken(p: Compiled, s: State, r: int, out: NDArray[np.int64], n_out: int) -> int:
    """Re-time route ``r``, taking out open orders that break a rule until none does.

    The evicted orders are appended to ``out`` from ``n_out``; returns the new count.
    """
    while True:
        bad, _ = retime(p, s, r)
        if bad < 0:
            return n_out
        remove_order(p, s, bad)
        out[n_out] = bad
        n_out += 1


@nb.njit(cache=True)
def evict_all(p: Compiled, s: State, out: NDArray[np.int64]) -> int:
    """:func:`evict_broken` on every route; returns how many orders went to ``out``."""
    n_out = 0
    for r in range(p[1].shape[0]):
        n_out = evict_broken(p, s, r, out, n_out)
    return n_out


@nb.njit(cache=True)
def insert_pinned(p: Compiled, s: State, orders: NDArray[np.int64]) -> None:
    """Insert each pinned order on its rider at its cheapest position (they are mandatory):
    one that keeps every rule if any, else one that keeps the capacity, else any."""
    for x in range(orders.shape[0]):
        o = orders[x]
        r = p[0][o, O_RIDER]
        i, j = -1, -1
        for force in range(3):
            _, i, j = best_in_route(p, s, o, r, 0.0, force, INF, False)
            if i >= 0:
                break
        insert_at(p, s, r, o, i, j)


# ---------------------------------------------------------------------------------- pricing


@nb.njit(cache=True, inline="always")
def best_in_route(
    p: Compiled,
    s: State,
    o: int,
    r: int,
    blink: float,
    force: int,
    bound: float,
    prune: bool = False,
) -> tuple[float, int, int]:
    """Cheapest insertion of ``o`` on route ``r`` below ``bound``: (price, i, j) or (inf, -1, -1).

    The price is the exact increase of the timed objective (vehicle cost included when the
    route was empty); :func:`best_insertion` adds the order's reassignment cost. Every rule
    of the delayed open orders and of ``o`` (when open) is checked, and the capacity on the
    stretch the order is in the bag. ``force`` is for a pinned order that
    fits nowhere: 1 checks the capacity only, 2 nothing. ``blink`` is the chance of skipping
    a position.

    ``prune`` skips positions whose detour (the edges the insertion adds less the one it
    removes) already reaches the best price: a true lower bound when the edge costs obey the
    triangle inequality and waiting is free (every delay then only adds cost). With other
    matrices it may miss the cheapest position, never a rule: the search uses it, the greedy
    does not.
    """
    od, rd, w, t, d, nl = p
    route, rlen, _rcost, _where, dep, cum, ld, pdep, nopen, scratch, detours, arv, slk, hasbag = s
    n = rlen[r]
    pb = rd[r, R_PB]
    shift = rd[r, R_SHIFT]
    cap = rd[r, R_CAP]
    end = rd[r, R_END]
    tc, dc, wc, lc, dlc, now = w[W_TC], w[W_DC], w[W_WC], w[W_LC], w[W_DLC], w[W_NOW]
    ec = w[W_EC]  # per second a drop-off starts after the ETA quoted to the student
    base = cum[r, n + 1] - (w[W_VEH] if n == 0 else 0.0)  # the timed costs (no moves)
    pick = od[o, O_PICK]
    drop = od[o, O_DROP]
    size = od[o, O_SIZE]
    o_open = od[o, O_OPEN] == 1
    timed = force == 0  # the time rules are checked
    loaded = force < 2  # the capacity is checked
    check_own = o_open and timed
    # the load the order adds between pickup and drop-off (start-loaded: from the start)
    bag_size = size if (pick >= 0 or od[o, O_SL] == 1) else 0
    best = bound
    bi, bj = -1, -1
    n_i = n + 1 if pick >= 0 else 1
    prune = prune and timed and wc == 0.0
    # only edge costs depend on the position: a tail the slack accepts costs what it did
    fast = timed and wc == 0.0 and lc == 0.0 and dlc == 0.0 and ec == 0.0 and not hasbag[r]
    fast = fast and (end < 0 or nopen[r] > 0)
    # detours: of the drop-off after node j (dd), of the pickup after node i alone (pd) and of
    # both after node i (adj); sdd[j] = min(dd[j:]); veh: an empty route's vehicle
    dd, sdd, pd, adj = detours[0], detours[1], detours[2], detours[3]
    veh = w[W_VEH] if n == 0 else 0.0
    if prune:
        a_loc = rd[r, R_LOC]
        for q in range(n + 1):
            b_loc = _loc(od, route[r, q]) if q < n else (end if n > 0 else -1)
            c_ad = tc * t[pb + a_loc * nl + drop] + dc * d[pb + a_loc * nl + drop]
            if b_loc >= 0:
                c_ab = tc * t[pb + a_loc * nl + b_loc] + dc * d[pb + a_loc * nl + b_loc]
                c_db = tc * t[pb + drop * nl + b_loc] + dc * d[pb + drop * nl + b_loc]
            else:
                c_ab = 0.0
                c_db = 0.0
                if end >= 0:
                    c_db = tc * t[pb + drop * nl + end] + dc * d[pb + drop * nl + end]
            dd[q] = c_ad + c_db - c_ab
            if pick >= 0:
                c_ap = tc * t[pb + a_loc * nl + pick] + dc * d[pb + a_loc * nl + pick]
                c_pd = tc * t[pb + pick * nl + drop] + dc * d[pb + pick * nl + drop]
                if b_loc >= 0:
                    c_pb = tc * t[pb + pick * nl + b_loc] + dc * d[pb + pick * nl + b_loc]
                    pd[q] = c_ap + c_pb - c_ab
                else:
                    pd[q] = INF  # nothing after the pickup but the drop-off
                adj[q] = c_ap + c_pd + c_db - c_ab
            if b_loc >= 0 and q < n:
                a_loc = b_loc
        dd[n + 1] = INF
        sdd[n + 1] = INF
        for q in range(n, -1, -1):
            sdd[q] = min(dd[q], sdd[q + 1])
    for i in range(n_i):
        if loaded and ld[r, i] + bag_size > cap:
            continue
        if prune:
            if pick >= 0:
                if min(adj[i], pd[i] + sdd[i + 1]) + veh >= best:
                    continue
            elif sdd[0] + veh >= best:
                break
        here = rd[r, R_LOC] if i == 0 else _loc(od, route[r, i - 1])
        if pick >= 0:
            idx = pb + here * nl + pick
            leg = t[idx]
            a = dep[r, i] + leg
            st = max(a, od[o, O_READY])
            if check_own and (a > shift or st > od[o, O_PL]):
                continue
            clock = st + od[o, O_SP]
            acc = cum[r, i] + tc * leg + dc * d[idx] + wc * (st - a)
            here = pick
            p_dep = clock
        else:
            clock = dep[r, i]
            acc = cum[r, i]
            p_dep = dep[r, 0]
        scratch[0, 0] += 1
        seg = scratch[0, 0]
        # a pickup with a time-in-bag limit re-timed *earlier* (only with matrices that break
        # the triangle inequality): its drop-off must be checked, so no early stop
        seg_early = False
        for j in range(i, n + 1):
            if j > i:
                # node j, delayed by the pickup. This timing of a node and the one of the tail
                # below are alike on purpose: one shared helper (inlined or not) measured 2.5x
                # slower here (greedy 200/50: 9.8 -> 24 ms; ruin-and-recreate 12k -> 7k
                # iterations/s), so each loop keeps its own.
                code = route[r, j - 1]
                q = code >> 1
                there = _loc(od, code)
                if loaded and ld[r, j] + bag_size > cap:
                    break
                idx = pb + here * nl + there
                leg = t[idx]
                a = clock + leg
                if prune and a - arv[r, j] > slk[r, j]:
                    break  # so late that no drop-off position after it helps (metric times)
                acc += tc * leg + dc * d[idx]
                if code & 1 == 0:
                    st = max(a, od[q, O_READY])
                    clock = st + od[q, O_SP]
                    acc += wc * (st - a)
                    if od[q, O_OPEN] == 1:
                        if timed and (a > shift or st > od[q, O_PL]):
                            break
                        scratch[q + 1, 0] = seg
                        scratch[q + 1, 1] = clock
                        if clock < dep[r, j] and od[q, O_BAG] < BIG:
                            seg_early = True
                else:
                    st = max(a, od[q, O_DE])
                    clock = st + od[q, O_SD]
                    acc += wc * (st - a) + dlc * (st - now)
                    if st > od[q, O_DUE]:
                        acc += lc * (st - od[q, O_DUE])
                    if st > od[q, O_QUOTE]:
                        acc += ec * (st - od[q, O_QUOTE])
                    if od[q, O_OPEN] == 1 and timed:
                        if a > shift or st > od[q, O_LATLIM]:
                            break
                        if od[q, O_BAG] < BIG:
                            if scratch[q + 1, 0] == seg:
                                qd = scratch[q + 1, 1]
                            elif od[q, O_PICK] >= 0:
                                qd = pdep[q]
                            else:
                                qd = dep[r, 0]
                            if a - qd > od[q, O_BAG]:
                                break
                here = there
            if blink > 0.0 and np.random.random() < blink:
                continue
            if prune:
                if pick < 0:
                    lb = dd[j]
                elif j == i:
                    lb = adj[i]
                else:
                    lb = pd[i] + dd[j]
                if lb + veh >= best:
                    continue
            # the drop-off after node j
            idx = pb + here * nl + drop
            leg = t[idx]
            a = clock + leg
            st = max(a, od[o, O_DE])
            if check_own:
                if a > shift or st > od[o, O_LATLIM]:
                    continue
                if a - p_dep > od[o, O_BAG]:
                    continue
            c2 = acc + tc * leg + dc * d[idx] + wc * (st - a) + dlc * (st - now)
            if st > od[o, O_DUE]:
                c2 += lc * (st - od[o, O_DUE])
            if st > od[o, O_QUOTE]:
                c2 += ec * (st - od[o, O_QUOTE])
            t2 = st + od[o, O_SD]
            h2 = drop
            if j < n:
                nxt = _loc(od, route[r, j])
                if timed and t2 + t[pb + drop * nl + nxt] - arv[r, j + 1] > slk[r, j + 1]:
                    continue  # the rest of the route cannot take the delay
                if fast:
                    at_j = rd[r, R_LOC] if j == 0 else _loc(od, route[r, j - 1])  # node j
                    old_edge = tc * t[pb + at_j * nl + nxt] + dc * d[pb + at_j * nl + nxt]
                    c2 += tc * t[pb + drop * nl + nxt] + dc * d[pb + drop * nl + nxt]
                    price = c2 + cum[r, n + 1] - cum[r, j] - old_edge - base
                    if price < best:
                        best, bi, bj = price, i, j
                    continue
            ok = True
            done = False
            scratch[0, 1] += 1
            seg2 = scratch[0, 1]
            early = seg_early
            for k in range(j + 1, n + 1):
                code = route[r, k - 1]
                q = code >> 1
                there = _loc(od, code)
                idx = pb + h2 * nl + there
                leg = t[idx]
                a = t2 + leg
                c2 += tc * leg + dc * d[idx]
                if code & 1 == 0:
                    st = max(a, od[q, O_READY])
                    t2 = st + od[q, O_SP]
                    c2 += wc * (st - a)
                    if od[q, O_OPEN] == 1:
                        if timed and (a > shift or st > od[q, O_PL]):
                            ok = False
                            break
                        scratch[q + 1, 2] = seg2
                        scratch[q + 1, 3] = t2
                        if t2 < dep[r, k] and od[q, O_BAG] < BIG:
                            early = True
                else:
                    st = max(a, od[q, O_DE])
                    t2 = st + od[q, O_SD]
                    c2 += wc * (st - a) + dlc * (st - now)
                    if st > od[q, O_DUE]:
                        c2 += lc * (st - od[q, O_DUE])
                    if st > od[q, O_QUOTE]:
                        c2 += ec * (st - od[q, O_QUOTE])
                    if od[q, O_OPEN] == 1 and timed:
                        if a > shift or st > od[q, O_LATLIM]:
                            ok = False
                            break
                        if od[q, O_BAG] < BIG:
                            if scratch[q + 1, 2] == seg2:
                                qd = scratch[q + 1, 3]
                            elif scratch[q + 1, 0] == seg:
                                qd = scratch[q + 1, 1]
                            elif od[q, O_PICK] >= 0:
                                qd = pdep[q]
                            else:
                                qd = dep[r, 0]
                            if a - qd > od[q, O_BAG]:
                                ok = False
                                break
                h2 = there
                if t2 == dep[r, k] and not early:
                    c2 += cum[r, n + 1] - cum[r, k]
                    done = True
                    break
                # a lower bound of the price: what follows is only delayed, and a delay of x
                # saves at most x of waiting
                late_by = t2 - dep[r, k]
                if late_by >= 0 and c2 - cum[r, k] - wc * late_by - base + cum[r, n + 1] >= best:
                    ok = False
                    break
            if not ok:
                continue
            if not done and end >= 0:
                idx = pb + h2 * nl + end
                leg = t[idx]
                c2 += tc * leg + dc * d[idx]
                t2 += leg
            elif done and end >= 0:
                t2 = dep[r, n + 1]
            if end >= 0 and timed and (o_open or nopen[r] > 0) and t2 > shift:
                continue
            price = c2 - base
            if price < best:
                best, bi, bj = price, i, j
    if bi < 0:
        return INF, -1, -1
    return best, bi, bj


@nb.njit(cache=True)
def best_insertion(
    p: Compiled, s: State, o: int, active: NDArray[np.bool_], blink: float, prune: bool = False
) -> tuple[float, int, int, int]:
    """Cheapest insertion of ``o`` over the ``active`` routes (its own rider's if pinned):
    (price, route, i, j), route -1 when none is feasible; the price includes the reassignment
    cost on a rider other than the one ``o`` is assigned to. Of empty routes whose riders are
    alike (same start, times, capacity, profile, end) only the first is priced; an assigned
    order's own rider is always priced, first, so a tie keeps it there."""
    od, rd, w = p[0], p[1], p[2]
    rlen = s[1]
    mine = od[o, O_ASG]
    n_r = rd.shape[0]
    best, br, bi, bj = INF, -1, -1, -1
    pin = od[o, O_RIDER]
    priced_empty = np.zeros(n_r, dtype=np.bool_)  # by rider class
    # its own rider first: another rider must then be strictly cheaper (ties keep it)
    first = mine if 0 <= mine < n_r else -1
    for x in range(-1, n_r):
        r = first if x < 0 else x
        if r < 0 or (x >= 0 and r == first):
            continue
        if not active[r] or (pin >= 0 and r != pin):
            continue
        if rlen[r] == 0 and r != mine:
            if priced_empty[rd[r, R_CLASS]]:
                continue  # the same price as an empty route already priced
            priced_empty[rd[r, R_CLASS]] = True
        extra = moving_cost(od, w, o, r)
        price, i, j = best_in_route(p, s, o, r, blink, 0, best - extra, prune)
        if i >= 0:
            best, br, bi, bj = price + extra, r, i, j
    return best, br, bi, bj


@nb.njit(cache=True)
def insert_orders(
    p: Compiled,
    s: State,
    orders: NDArray[np.int64],
    active: NDArray[np.bool_],
    blink: float,
    price_out: NDArray[np.float64],
    route_out: NDArray[np.int64],
    snap: State,
    prune: bool = False,
) -> int:
    """Insert ``orders`` one by one, each at its cheapest feasible position if that costs no more
    than leaving it out (:func:`out_cost`); returns how many were left out.

    ``price_out[k]`` / ``route_out[k]`` get the price and route of order ``orders[k]`` (inf / -1
    when no position is feasible; the route of the cheapest when not profitable). Routes are
    saved to ``snap`` (see :func:`save_route`) before they change.
    """
    left = 0
    for k in range(orders.shape[0]):
        o = orders[k]
        price, r, i, j = best_insertion(p, s, o, active, blink, prune)
        price_out[k] = price
        route_out[k] = r
        if r < 0 or price > out_cost(p, o):
            left += 1
            continue
        save_route(s, snap, r)
        bad, _ = insert_at(p, s, r, o, i, j)
        if bad >= 0 and p[0][o, O_OPEN] == 1:
            # cannot happen with exact prices; keep the route valid regardless
            remove_order(p, s, o)
            retime(p, s, r)
            price_out[k] = INF
            left += 1
    return left


# ------------------------------------------------------------------------- undo of a move


def new_snap(s: State) -> State:
    """Storage to undo a move on ``s``: saved route rows, their lengths and which are saved."""
    route = s[0]
    n_r = route.shape[0]
    return (
        np.empty_like(route),
        np.zeros(n_r, dtype=np.int64),
        np.zeros(n_r, dtype=np.bool_),
        np.zeros(n_r + 1, dtype=np.int64),  # [0]: how many saved, then the saved routes
    )


@nb.njit(cache=True)
def save_route(s: State, snap: State, r: int) -> None:
    """Save route ``r`` before a move changes it (once per move)."""
    rows, lens, saved, order = snap
    if saved[r]:
        return
    saved[r] = True
    n = s[1][r]
    rows[r, :n] = s[0][r, :n]
    lens[r] = n
    order[0] += 1
    order[order[0]] = r


@nb.njit(cache=True)
def undo(p: Compiled, s: State, snap: State) -> None:
    """Put the saved routes back (and re-time them); clears ``snap``."""
    rows, lens, _saved, order = snap
    route, rlen, where = s[0], s[1], s[3]
    for k in range(1, order[0] + 1):
        r = order[k]
        for q in range(rlen[r]):
            o = route[r, q] >> 1
            if where[o] == r:
                where[o] = -1
    for k in range(1, order[0] + 1):
        r = order[k]
        n = lens[r]
        route[r, :n] = rows[r, :n]
        rlen[r] = n
        retime(p, s, r)
    commit(snap)


@nb.njit(cache=True)
def commit(snap: State) -> None:
    """Forget the saved routes (the move stands)."""
    saved, order = snap[2], snap[3]
    for k in range(1, order[0] + 1):
        saved[order[k]] = False
    order[0] = 0


# ------------------------------------------------------------------- ruin and recreate


@nb.njit(cache=True)
def load_routes(p: Compiled, s: State, rows: NDArray[np.int64], lens: NDArray[np.int64]) -> None:
    """Make ``rows[r, :lens[r]]`` the visits of every route (and time them)."""
    where = s[3]
    where[:] = -1
    for r in range(p[1].shape[0]):
        n = lens[r]
        s[0][r, :n] = rows[r, :n]
        s[1][r] = n
        retime(p, s, r)


@nb.njit(cache=True)
def ruin(
    p: Compiled,
    s: State,
    snap: State,
    neigh: NDArray[np.int64],
    movable: NDArray[np.bool_],
    seed_order: int,
    c_bar: float,
    max_string: float,
    per_order_visits: float,
    out: NDArray[np.int64],
) -> int:
    """SISR string removal around ``seed_order``: strings of consecutive orders are taken out of
    a few routes near it. The orders taken out (evictions of re-timed routes included) go to
    ``out``; returns their count. Routes are saved to ``snap`` first."""
    route, rlen, where = s[0], s[1], s[3]
    n_r = p[1].shape[0]
    used = 0
    total = 0
    for r in range(n_r):
        if rlen[r] > 0:
            used += 1
            total += rlen[r]
    if used == 0:
        return 0
    per_route = total / used / per_order_visits
    l_max = min(max_string, max(1.0, per_route))
    k_s_max = 4.0 * c_bar / (1.0 + l_max) - 1.0
    k_s = int(np.random.uniform(1.0, k_s_max + 1.0))
    ruined = np.zeros(n_r, dtype=np.bool_)
    orders = np.empty(route.shape[1], dtype=np.int64)
    n_ruined = 0
    n_out = 0
    for x in range(neigh.shape[1]):
        if n_ruined >= k_s:
            break
        o = neigh[seed_order, x]
        r = where[o]
        if r < 0 or ruined[r] or not movable[o]:
            continue
        ruined[r] = True
        n_ruined += 1
        # the route's orders in route order, once each (at their first visit)
        n = 0
        pos = 0
        for q in range(rlen[r]):
            code = route[r, q]
            v = code >> 1
            if code & 1 == 0 or p[0][v, O_PICK] < 0:
                if v == o:
                    pos = n
                orders[n] = v
                n += 1
        length = int(np.random.uniform(1.0, min(float(n), l_max) + 1.0))
        length = min(max(length, 1), n)
        lo = max(0, pos - length + 1)
        hi = min(pos, n - length)
        first = np.random.randint(lo, hi + 1)
        save_route(s, snap, r)
        for q in range(first, first + length):
            v = orders[q]
            if movable[v]:
                remove_order(p, s, v)
                out[n_out] = v
                n_out += 1
    for r in range(n_r):
        if ruined[r]:
            n_out = evict_broken(p, s, r, out, n_out)
    return n_out


@nb.njit(cache=True)
def sort_for_recreate(
    orders: NDArray[np.int64], size: NDArray[np.int64], far: NDArray[np.float64]
) -> None:
    """SISR's insertion order, in place: random (4/11), larger first (4/11), farthest first
    (2/11) or closest first (1/11)."""
    n = orders.shape[0]
    if n < 2:
        return
    how = np.random.random()
    if how < 4.0 / 11.0:
        np.random.shuffle(orders)
        return
    key = np.empty(n)
    for k in range(n):
        o = orders[k]
        if how < 8.0 / 11.0:
            key[k] = -size[o]
        elif how < 10.0 / 11.0:
            key[k] = -far[o]
        else:
            key[k] = far[o]
    idx = np.argsort(key, kind="mergesort")
    tmp = orders[idx]
    orders[:] = tmp


@nb.njit(cache=True)
def anneal_run(
    p: Compiled,
    s: State,
    snap: State,
    neigh: NDArray[np.int64],
    far: NDArray[np.float64],
    movable: NDArray[np.bool_],
    seeds: NDArray[np.int64],
    cfg: NDArray[np.float64],
    outs: NDArray[np.int64],
    ctl: NDArray[np.int64],
    fctl: NDArray[np.float64],
    best_rows: NDArray[np.int64],
    best_lens: NDArray[np.int64],
    iterations: int,
    temp: float,
) -> None:
    """``iterations`` of simulated annealing by ruin and recreate at temperature ``temp``.

    ``outs[:ctl[0]]`` are the orders out of the current state (retried at every recreate),
    ``fctl`` = (current objective, best objective); the best state goes to ``best_rows`` /
    ``best_lens``. ``cfg`` = (c_bar, max_string, blink, visits per order); ``ctl[1]`` counts
    iterations.
    """
    od = p[0]
    n_r = p[1].shape[0]
    active = np.ones(n_r, dtype=np.bool_)
    buf = np.empty(od.shape[0] * 2 + 1, dtype=np.int64)
    prices = np.empty(od.shape[0] + 1)
    routes = np.empty(od.shape[0] + 1, dtype=np.int64)
    size = od[:, O_SIZE].copy()
    for _ in range(iterations):
        ctl[1] += 1
        seed = seeds[np.random.randint(0, seeds.shape[0])]
        m = ruin(p, s, snap, neigh, movable, seed, cfg[0], cfg[1], cfg[3], buf)
        for k in range(ctl[0]):
            buf[m] = outs[k]
            m += 1
        todo = buf[:m]
        sort_for_recreate(todo, size, far)
        insert_orders(p, s, todo, active, cfg[2], prices, routes, snap, True)
        left_cost = 0.0
        for k in range(m):
            if s[3][todo[k]] < 0:
                left_cost += out_cost(p, todo[k])
        new = total_cost(p, s) + left_cost
        if new < fctl[0] - temp * np.log(1.0 - np.random.random()):
            commit(snap)
            fctl[0] = new
            n_left = 0
            for k in range(m):
                if s[3][todo[k]] < 0:
                    outs[n_left] = todo[k]
                    n_left += 1
            ctl[0] = n_left
            if new < fctl[1]:
                _keep_if_best(p, s, fctl, best_rows, best_lens, left_cost)
        else:
            undo(p, s, snap)


@nb.njit(cache=True)
def _keep_if_best(
    p: Compiled,
    s: State,
    fctl: NDArray[np.float64],
    best_rows: NDArray[np.int64],
    best_lens: NDArray[np.int64],
    penalties: float,
) -> None:
    """Save the routes to ``best_*`` when their objective (plus ``penalties``) beats
    ``fctl[1]``."""
    objective = total_cost(p, s) + penalties
    if objective < fctl[1]:
        fctl[1] = objective
        route, rlen = s[0], s[1]
        for r in range(p[1].shape[0]):
            best_lens[r] = rlen[r]
            best_rows[r, : rlen[r]] = route[r, : rlen[r]]


@nb.njit(cache=True)
def eliminate_run(
    p: Compiled,
    s: State,
    snap: State,
    neigh: NDArray[np.int64],
    far: NDArray[np.float64],
    movable: NDArray[np.bool_],
    pinned_rider: NDArray[np.bool_],
    cfg: NDArray[np.float64],
    pool: NDArray[np.int64],
    absence: NDArray[np.int64],
    active: NDArray[np.bool_],
    ctl: NDArray[np.int64],
    fctl: NDArray[np.float64],
    best_rows: NDArray[np.int64],
    best_lens: NDArray[np.int64],
    fixed_out_cost: float,
    iterations: int,
) -> bool:
    """``iterations`` of route elimination (SISR's fleet minimisation); False when no route is
    left to eliminate.

    ``pool[:ctl[0]]`` are the orders of eliminated routes not placed yet; a state is accepted
    when fewer orders are left out or those left out were left out less often (``absence``).
    When the pool is empty the state is complete: it becomes the best when its objective
    (plus ``fixed_out_cost``, what the orders left out by the input cost) is below
    ``fctl[1]``, and the smallest route without pinned orders is eliminated next.
    """
    od = p[0]
    n_r = p[1].shape[0]
    route, rlen, where = s[0], s[1], s[3]
    buf = np.empty(od.shape[0] * 2 + 1, dtype=np.int64)
    prices = np.empty(od.shape[0] * 2 + 1)
    routes = np.empty(od.shape[0] * 2 + 1, dtype=np.int64)
    size = od[:, O_SIZE].copy()
    for _ in range(iterations):
        if ctl[0] == 0:
            _keep_if_best(p, s, fctl, best_rows, best_lens, fixed_out_cost)
            # the smallest route without pinned orders (ties at random)
            pick, shortest, n_cands = -1, 0, 0
            start = np.random.randint(0, max(n_r, 1))
            for x in range(n_r):
                r = (start + x) % n_r
                if active[r] and rlen[r] > 0 and not pinned_rider[r]:
                    n_cands += 1
                    if pick < 0 or rlen[r] < shortest:
                        pick, shortest = r, rlen[r]
            if n_cands < 2:
                return False
            n = 0
            for q in range(rlen[pick]):
                code = route[pick, q]
                if code & 1:
                    pool[n] = code >> 1
                    n += 1
                where[code >> 1] = -1
            rlen[pick] = 0
            retime(p, s, pick)
            active[pick] = False
            todo = pool[:n]
            sort_for_recreate(todo, size, far)
            insert_orders(p, s, todo, active, cfg[2], prices, routes, snap, True)
            commit(snap)
            m = 0
            for k in range(n):
                if where[pool[k]] < 0:
                    pool[m] = pool[k]
                    m += 1
            ctl[0] = m
            if m == 0:
                _keep_if_best(p, s, fctl, best_rows, best_lens, fixed_out_cost)
            continue
        ctl[1] += 1
        n_pool = ctl[0]
        before = 0
        for k in range(n_pool):
            absence[pool[k]] += 1
            before += absence[pool[k]]
        seed = pool[np.random.randint(0, n_pool)]
        m = ruin(p, s, snap, neigh, movable, seed, cfg[0], cfg[1], cfg[3], buf[n_pool:])
        # the pool first, most often left out first, then the ruined orders
        key = np.empty(n_pool)
        for k in range(n_pool):
            key[k] = -absence[pool[k]]
        order = np.argsort(key, kind="mergesort")
        for k in range(n_pool):
            buf[k] = pool[order[k]]
        sort_for_recreate(buf[n_pool : n_pool + m], size, far)
        todo = buf[: n_pool + m]
        insert_orders(p, s, todo, active, cfg[2], prices, routes, snap, True)
        n_left = 0
        after = 0
        for k in range(n_pool + m):
            o = todo[k]
            if where[o] < 0:
                n_left += 1
                after += absence[o]
        if n_left < n_pool or after < before:
            commit(snap)
            n_left = 0
            for k in range(todo.shape[0]):
                o = todo[k]
                if where[o] < 0:
                    pool[n_left] = o
                    n_left += 1
            ctl[0] = n_left
            if n_left == 0:
                _keep_if_best(p, s, fctl, best_rows, best_lens, fixed_out_cost)
        else:
            undo(p, s, snap)
    return True


@nb.njit(cache=True)
def seed_rng(seed: int) -> None:
    """Seed the kernel's random generator (numba keeps its own)."""
    np.random.seed(seed)


_warm = False


def ensure_warm() -> None:
    """:func:`warm_up` once per process (free afterwards): solves call it before they start
    their clock, so a first solve never spends its budget on loading the kernel. That first
    solve pays the load (about 0.5 s) or, with no cache on disk, the compile (40-50 s) before
    its budget starts."""
    if not _warm:
        warm_up()


def warm_up() -> float:
    """Compile (or load from numba's cache) every kernel function on a tiny problem; returns
    the seconds it took. Services call it before they report ready, so no request pays it."""
    import time

    from solver.model import warm_problem

    global _warm

    began = time.perf_counter()
    problem = warm_problem()
    params = SolverParams(vehicle_fixed_cost=10.0)
    p = compile_problem(problem, params)
    s = new_state(p)
    snap = new_snap(s)
    n_o, n_r = p[0].shape[0], p[1].shape[0]
    seed_rng(0)
    orders = np.arange(n_o, dtype=np.int64)
    active = np.ones(n_r, dtype=np.bool_)
    prices = np.empty(n_o)
    routes = np.empty(n_o, dtype=np.int64)
    insert_orders(p, s, orders, active, 0.0, prices, routes, snap)
    commit(snap)
    best_in_route(p, s, 0, 0, 0.0, 2, INF)
    out = np.empty(2 * n_o + 1, dtype=np.int64)
    evict_broken(p, s, 0, out, 0)
    evict_all(p, s, out)
    insert_pinned(p, s, np.zeros(0, dtype=np.int64))
    rows, lens = s[0].copy(), s[1].copy()
    load_routes(p, s, rows, lens)
    neigh = np.tile(np.arange(n_o, dtype=np.int64), (n_o, 1))
    far = np.zeros(n_o)
    movable = np.ones(n_o, dtype=np.bool_)
    cfg = np.array([5.0, 10.0, 0.01, 2.0])
    ctl = np.zeros(2, dtype=np.int64)
    fctl = np.array([INF, INF])
    eliminate_run(
        p,
        s,
        snap,
        neigh,
        far,
        movable,
        np.zeros(n_r, dtype=np.bool_),
        cfg,
        np.empty(n_o, dtype=np.int64),
        np.zeros(n_o, dtype=np.int64),
        active.copy(),
        ctl,
        fctl,
        rows,
        lens,
        0.0,
        3,
    )
    load_routes(p, s, rows, lens)
    outs_cost(p, orders)
    out_cost(p, 0)  # called from Python too (the reasons of orders left out)
    fctl[0] = total_cost(p, s)
    anneal_run(
        p,
        s,
        snap,
        neigh,
        far,
        movable,
        orders,
        cfg,
        np.empty(n_o, dtype=np.int64),
        ctl,
        fctl,
        rows,
        lens,
        3,
        1.0,
    )
    undo(p, s, snap)
    _warm = True
    return time.perf_counter() - began
