"""Whether some rider could serve an order alone, and the one wording of every unassigned reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from solver.engines import kernel as k
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Unassigned, UnassignedReason

__all__ = ["AloneScreen", "not_profitable"]

#: Bits of :attr:`_Timeline.fails`, one per time rule an order served alone can break.
SHIFT_END, LATENESS, PICKUP_LATEST, IN_BAG, RETURN = 1, 2, 4, 8, 16


class _Timeline(NamedTuple):
    """Some orders (rows) each served alone on each rider's empty route (columns), as early as
    possible: times (s) of the kernel's clock and the rules kept."""

    a_p: NDArray[np.int64]  # arrival at the pickup (the start when there is none)
    s_p: NDArray[np.int64]  # service start at the pickup
    d_p: NDArray[np.int64]  # departure from the pickup: the order is in the bag from then on
    a_d: NDArray[np.int64]  # arrival at the drop-off
    s_d: NDArray[np.int64]  # service start at the drop-off
    back: NDArray[np.int64]  # back at the depot (closed routes)
    fits: NDArray[np.bool_]  # size <= capacity
    fails: NDArray[np.int64]  # bit mask of the broken time rules (SHIFT_END, ...)
    late: NDArray[np.float64]  # lateness (s) at the drop-off


def _timeline(od: NDArray[np.int64], p: k.Compiled) -> _Timeline:
    """Serve each order of table ``od`` alone on each rider of compiled problem ``p``
    (vectorised over orders x riders; the rules are the kernel's, see :func:`k.retime`)."""
    rd, tz, n_loc = p[1], p[3], int(p[5])

    def col(c: int) -> NDArray[np.int64]:
        return od[:, c][:, None]

    def row(c: int) -> NDArray[np.int64]:
        return rd[:, c][None, :]

    pick, drop = col(k.O_PICK), col(k.O_DROP)
    r_loc, r_pb, start, shift, r_end = (
        row(k.R_LOC),
        row(k.R_PB),
        row(k.R_START),
        row(k.R_SHIFT),
        row(k.R_END),
    )
    has_pick = pick >= 0
    pk = np.where(has_pick, pick, 0)
    a_p = np.where(has_pick, start + tz[r_pb + r_loc * n_loc + pk], start)
    s_p = np.where(has_pick, np.maximum(a_p, col(k.O_READY)), start)
    d_p = np.where(has_pick, s_p + col(k.O_SP), start)
    t_d = tz[r_pb + np.where(has_pick, pk, r_loc) * n_loc + drop]
    a_d = d_p + t_d
    s_d = np.maximum(a_d, col(k.O_DE))
    back = (
        s_d + col(k.O_SD) + np.where(r_end >= 0, tz[r_pb + drop * n_loc + np.maximum(r_end, 0)], 0)
    )
    fails = np.zeros(a_d.shape, dtype=np.int64)
    fails |= np.where(a_d > shift, SHIFT_END, 0)
    fails |= np.where(s_d > col(k.O_LATLIM), LATENESS, 0)
    fails |= np.where(s_p > col(k.O_PL), PICKUP_LATEST, 0)
    fails |= np.where(a_d - d_p > col(k.O_BAG), IN_BAG, 0)
    fails |= np.where((r_end >= 0) & (back > shift), RETURN, 0)
    fits = col(k.O_SIZE) <= row(k.R_CAP)
    late = np.maximum(s_d - col(k.O_DUE), 0).astype(np.float64)
    return _Timeline(a_p, s_p, d_p, a_d, s_d, back, fits, fails, late)


class AloneScreen:
    """Whether some rider could serve each of ``orders`` alone (on its empty route, from its
    start time and location, with its whole capacity) and, if none could, why.

    The verdicts are vectorised over orders x riders (the greedy engine screens every open
    order with it inside its latency budget). An order no rider can serve alone is ``NO_RIDERS``
    (no rider, or every shift has ended), ``CAPACITY`` (larger than every rider's capacity) or
    ``UNREACHABLE_IN_TIME`` (every rider it fits breaks a time rule: shift end, lateness cap,
    ``pickup_latest_s``, ``max_in_bag_s``, return to the depot).

    Parameters
    ----------
    problem, params
        The problem and the hard caps.
    orders
        Indices of the orders to screen (open orders: the kernel exempts pinned ones).
    compiled
        ``problem`` compiled by :func:`k.compile_problem` with ``params``, if at hand.

    Attributes
    ----------
    fits, in_time
        Boolean arrays (orders, riders): the order fits the rider's capacity; served alone
        by the rider it keeps every time rule.
    late
        Drop-off lateness (s) of the order served alone, (orders, riders).
    """

    def __init__(
        self,
        problem: Problem,
        params: SolverParams,
        orders: Sequence[int],
        compiled: k.Compiled | None = None,
    ) -> None:
        self.problem = problem
        self.params = params
        self.p = k.compile_problem(problem, params) if compiled is None else compiled
        self.orders = list(orders)
        self.row_of = {o: row for row, o in enumerate(self.orders)}
        od, rd = self.p[0], self.p[1]
        n_r = len(problem.riders)
        ids = [problem.orders[o].id for o in self.orders]
        self._verdicts: list[Unassigned | None] = [None] * len(ids)
        self.fits: NDArray[np.bool_]
        self.in_time: NDArray[np.bool_]
        self.late: NDArray[np.float64]
        riders_open = n_r > 0 and bool((rd[:, k.R_START] <= rd[:, k.R_SHIFT]).any())
        if not ids or not riders_open:
            self.fits = self.in_time = np.zeros((len(ids), n_r), dtype=np.bool_)
            self.late = np.zeros((len(ids), n_r))
            why = (
                "the problem has no riders"
                if not n_r
                else f"every rider's shift has ended (now {problem.now_s})"
            )
            self._verdicts = [Unassigned(i, UnassignedReason.NO_RIDERS, why) for i in ids]
            return
        idx = np.asarray(self.orders, dtype=np.intp)
        t = _timeline(od[idx], self.p)
        self.fits, self.in_time, self.late = t.fits, t.fails == 0, t.late
        max_cap = int(rd[:, k.R_CAP].max())
        sizes = od[idx, k.O_SIZE]
        too_big = sizes > max_cap
        for row in np.flatnonzero(too_big | ~(self.fits & self.in_time).any(axis=1)).tolist():
            if too_big[row]:
                self._verdicts[row] = Unassigned(
                    ids[row],
                    UnassignedReason.CAPACITY,
                    f"size {sizes[row]} > largest rider capacity {max_cap}",
                )
            else:
                self._verdicts[row] = Unassigned(
                    ids[row], UnassignedReason.UNREACHABLE_IN_TIME, self._unreachable(t, row)
                )

    def reason(self, o: int) -> Unassigned | None:
        """Why no rider can serve order ``o`` alone (``NO_RIDERS``, ``CAPACITY`` or
        ``UNREACHABLE_IN_TIME``), or None when some rider can."""
        return self._verdicts[self.row_of[o]]

    def _unreachable(self, t: _Timeline, row: int) -> str:
        """Say what the best rider alone (the least late of those the order fits) would achieve
        and which rules it breaks, each with its value and its limit."""
        o = self.orders[row]
        order, od = self.problem.orders[o], self.p[0][o]
        pool = np.flatnonzero(t.fits[row])
        j = int(pool[np.argmin(t.late[row, pool])])
        rider = self.problem.riders[j]
        bits, late = int(t.fails[row, j]), float(t.late[row, j])
        broken = []
        if bits & SHIFT_END:
            broken.append(
                f"drop-off after the shift end (arrival {t.a_d[row, j]} > shift end "
                f"{rider.shift_end_s})"
            )
        if bits & LATENESS:
            cap = od[k.O_LATLIM] - od[k.O_DUE]
            broken.append(f"lateness above the cap ({late:.0f} s > cap {cap} s)")
        if bits & PICKUP_LATEST:
            broken.append(
                f"pickup after pickup_latest_s (pickup {t.s_p[row, j]} > latest {od[k.O_PL]})"
            )
        if bits & IN_BAG:
            bag = t.a_d[row, j] - t.d_p[row, j]
            broken.append(f"time in bag above max_in_bag_s ({bag} s > max {od[k.O_BAG]} s)")
        if bits & RETURN:
            broken.append(
                f"return to the depot after the shift end (back {t.back[row, j]} > shift end "
                f"{rider.shift_end_s})"
            )
        return (
            f"best alone: rider {rider.id}, drop-off {late:.0f} s after due {order.due_s}; "
            f"breaks: {', '.join(broken)}"
        )

    def no_feasible_insertion(self, o: int, n_positions: int | None) -> Unassigned:
        """The reason of order ``o``, which some rider can serve alone, left out of routes
        holding the other orders: at none of ``n_positions`` positions of the current routes
        (the greedy engine), or not by the search (``None``)."""
        row = self.row_of[o]
        ok = self.fits[row] & self.in_time[row]
        best = int(np.flatnonzero(ok)[np.argmin(self.late[row][ok])])
        where = (
            f"at none of {n_positions} positions in the current routes"
            if n_positions is not None
            else "the search found no place for it among the other orders"
        )
        return Unassigned(
            self.problem.orders[o].id,
            UnassignedReason.NO_FEASIBLE_INSERTION,
            f"feasible alone on {int(ok.sum())} rider(s) (best: {self.problem.riders[best].id}, "
            f"{self.late[row, best]:.0f} s late) but {where}",
        )

    def cheapest_alone(self, o: int) -> tuple[float, int]:
        """The objective of serving order ``o`` alone on the cheapest rider that can (travel,
        distance, waiting, lateness, delivery time, delay against its quoted ETA, vehicle cost
        and the reassignment cost on a rider not its own), and that rider's index.
        Only for an order some rider can serve alone."""
        p = self.p
        od, rd, w, dz, n_loc = p[0][o], p[1], p[2], p[4], int(p[5])
        t = _timeline(p[0][o : o + 1], p)
        pick, drop = int(od[k.O_PICK]), int(od[k.O_DROP])
        pb, loc, end = rd[:, k.R_PB], rd[:, k.R_LOC], rd[:, k.R_END]
        closed = end >= 0
        if pick >= 0:
            dist = dz[pb + loc * n_loc + pick] + dz[pb + pick * n_loc + drop]
        else:
            dist = dz[pb + loc * n_loc + drop]
        dist = dist + np.where(closed, dz[pb + drop * n_loc + np.maximum(end, 0)], 0.0)
        home = np.where(closed, t.back[0] - t.s_d[0] - od[k.O_SD], 0)
        travel = (t.a_p[0] - rd[:, k.R_START]) + (t.a_d[0] - t.d_p[0]) + home
        wait = (t.s_p[0] - t.a_p[0]) + (t.s_d[0] - t.a_d[0])
        cost = (
            w[k.W_TC] * travel
            + w[k.W_DC] * dist
            + w[k.W_WC] * wait
            + w[k.W_LC] * t.late[0]
            + w[k.W_DLC] * (t.s_d[0] - w[k.W_NOW])
            + w[k.W_EC] * np.maximum(t.s_d[0] - od[k.O_QUOTE], 0)
            + w[k.W_VEH]
        )
        assigned = int(od[k.O_ASG])
        if assigned != -1:  # on any rider but its own, the move is paid too
            cost = cost + w[k.W_RC] * (np.arange(len(rd)) != assigned)
        row = self.row_of[o]
        ok = np.flatnonzero(self.fits[row] & self.in_time[row])
        best = int(ok[np.argmin(cost[ok])])
        return float(cost[best]), best

    def left_out(self, o: int) -> Unassigned:
        """The reason of order ``o`` left out by a search that says not why: the screen's
        verdict; else ``NOT_PROFITABLE`` when serving it alone costs more than the unassigned
        penalty; else ``NO_FEASIBLE_INSERTION``."""
        why = self.reason(o)
        if why is not None:
            return why
        cost, r = self.cheapest_alone(o)
        penalty = float(k.out_cost(self.p, o))
        if cost > penalty:
            return not_profitable(
                self.problem.orders[o].id, self.problem.riders[r].id, cost, penalty, alone=True
            )
        return self.no_feasible_insertion(o, None)


def not_profitable(
    order_id: str, rider_id: str, cost: float, penalty: float, *, alone: bool
) -> Unassigned:
    """``NOT_PROFITABLE``: the cheapest insertion in the current routes (or, ``alone``, the
    cheapest service alone) on rider ``rider_id`` costs ``cost`` > leaving it out (``penalty``:
    the unassigned penalty, plus the reassignment cost of an assigned order)."""
    how = "service alone" if alone else "insertion"
    return Unassigned(
        order_id,
        UnassignedReason.NOT_PROFITABLE,
        f"cheapest {how} (rider {rider_id}) costs {cost:.1f} > unassigned penalty {penalty:g}",
    )
