"""Zones of a storm-sized request (分流): open orders clustered by where they are (k-means on the
plane), riders shared out to the zones by proximity and bag room in proportion to their orders,
committed and onboard orders (and open orders on a rider's current route) kept with their
rider."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.vq import kmeans2

from solver.model import OrderState
from solver.spec import ProblemSpec


@dataclass(frozen=True)
class Zone:
    """One zone: indices of its orders and riders in the spec, and its centre (metres)."""

    orders: tuple[int, ...]
    riders: tuple[int, ...]
    centre: tuple[float, float]


def zone_count(open_orders: int, riders: int, zone_orders: int, workers: int) -> int:
    """How many zones: about ``zone_orders`` open orders each, at least one per worker (so
    every worker has a zone to solve), never more than there are riders."""
    wanted = max(math.ceil(open_orders / max(zone_orders, 1)), workers)
    return max(1, min(wanted, riders, open_orders))


def partition(
    spec: ProblemSpec,
    zones: int,
    *,
    seed: int = 0,
    follow: Mapping[str, str] | None = None,
) -> list[Zone]:
    """Split ``spec`` into at most ``zones`` zones (fewer when some would be empty).

    An open order sits at the midpoint of its pickup and drop-off (an order whose ends lie in
    two zones goes where most of its ride is; its matrix is built on the whole network, so it
    is still served correctly). Riders go to the nearest zone centre that still needs bag
    room, each zone getting room (capacity left after committed and onboard orders) in
    proportion to its open orders, and at least one rider; a committed or onboard order goes
    with its rider, and so does an open order in ``follow`` (order id -> rider id: the plan
    being executed), so that re-planning keeps it where it is unless its zone's search moves
    it. Deterministic for a given ``seed``.
    """
    xy = spec.source.xy
    if xy is None:
        raise ValueError("the spec's points have no geometry (source.xy is None)")
    open_idx = [k for k, o in enumerate(spec.orders) if o.state is OrderState.OPEN]
    if zones <= 1 or len(open_idx) < 2 or len(spec.riders) < 2:
        return [_whole(spec, xy)]
    where = np.array([_order_xy(spec, k, xy) for k in open_idx], dtype=np.float64)
    distinct = len(np.unique(where, axis=0))  # k-means++ cannot seed more centres than this
    if distinct < 2:
        return [_whole(spec, xy)]
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # an empty cluster is dropped just below
        centres, label = kmeans2(where, min(zones, distinct), minit="++", seed=rng)
    used = np.unique(label)
    centres, label = centres[used], np.searchsorted(used, label)
    counts = np.bincount(label, minlength=len(used)).astype(np.float64)
    rider_xy = xy[[r.location for r in spec.riders]]
    rider_zone = _share_riders(rider_xy, centres, counts, _free_capacity(spec))
    # zones left without riders hand their orders to the nearest zone with riders
    staffed = np.unique(rider_zone)
    if len(staffed) < len(centres):
        gap = np.linalg.norm(centres[:, None, :] - centres[None, staffed, :], axis=2)
        label = staffed[np.argmin(gap, axis=1)][label]
    order_zone = np.full(len(spec.orders), -1, dtype=np.int64)
    order_zone[open_idx] = label
    index = {r.id: k for k, r in enumerate(spec.riders)}
    for k, o in enumerate(spec.orders):
        if o.state is not OrderState.OPEN:
            order_zone[k] = rider_zone[index[o.rider_id]]  # type: ignore[index]
        elif follow and follow.get(o.id) in index:
            order_zone[k] = rider_zone[index[follow[o.id]]]
    out = []
    for z in staffed.tolist():
        orders = tuple(np.flatnonzero(order_zone == z).tolist())
        riders = tuple(np.flatnonzero(rider_zone == z).tolist())
        out.append(Zone(orders, riders, (float(centres[z, 0]), float(centres[z, 1]))))
    return out


def _whole(spec: ProblemSpec, xy: NDArray[np.float64]) -> Zone:
    centre = xy.mean(axis=0) if len(xy) else np.zeros(2)
    return Zone(
        tuple(range(len(spec.orders))),
        tuple(range(len(spec.riders))),
        (float(centre[0]), float(centre[1])),
    )


def _order_xy(spec: ProblemSpec, k: int, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    o = spec.orders[k]
    if o.pickup is None:
        return xy[o.dropoff]
    return (xy[o.pickup] + xy[o.dropoff]) / 2.0


def _free_capacity(spec: ProblemSpec) -> NDArray[np.float64]:
    """Each rider's bag room left after its committed and onboard orders (at least a little,
    so that a full rider still counts for the zone it is in)."""
    index = {r.id: k for k, r in enumerate(spec.riders)}
    room = np.array([float(r.capacity) for r in spec.riders])
    for o in spec.orders:
        if o.state is not OrderState.OPEN and o.rider_id in index:
            room[index[o.rider_id]] -= o.size
    return np.maximum(room, 0.0) + 0.1


def _share_riders(
    rider_xy: NDArray[np.float64],
    centres: NDArray[np.float64],
    counts: NDArray[np.float64],
    room: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Each rider's zone: every zone gets bag room in proportion to its open orders (and at
    least one rider while riders last), filled nearest (rider, zone) pair first."""
    n_riders, n_zones = len(rider_xy), len(centres)
    want = counts / counts.sum() * room.sum()
    have = np.zeros(n_zones)
    staffed = np.zeros(n_zones, dtype=bool)
    dist = np.linalg.norm(rider_xy[:, None, :] - centres[None, :, :], axis=2)
    zone = np.full(n_riders, -1, dtype=np.int64)
    if n_riders >= n_zones:  # first the nearest rider of every zone, so none is left empty
        for flat in np.argsort(dist, axis=None, kind="stable"):
            r, z = divmod(int(flat), n_zones)
            if zone[r] < 0 and not staffed[z]:
                zone[r], staffed[z] = z, True
                have[z] += room[r]
                if staffed.all():
                    break
    for flat in np.argsort(dist, axis=None, kind="stable"):
        r, z = divmod(int(flat), n_zones)
        if zone[r] < 0 and have[z] < want[z]:
            zone[r] = z
            have[z] += room[r]
    left = zone < 0  # rounding left some over: the nearest zone
    zone[left] = np.argmin(dist[left], axis=1)
    return zone
