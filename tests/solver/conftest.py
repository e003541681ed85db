"""Shared builders for solver tests: hand-made line problems and a random problem generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Plan, StopKind


def order(
    oid: str, pickup: int | None, dropoff: int, *, ready: int = 0, due: int = 10_000, **kw: Any
) -> Order:
    """An order with test-friendly defaults (ready at 0, due at 10 000 s, size 1)."""
    return Order(id=oid, pickup=pickup, dropoff=dropoff, ready_s=ready, due_s=due, **kw)


def rider(
    rid: str,
    location: int = 0,
    *,
    available: int = 0,
    shift_end: int = 100_000,
    capacity: int = 10,
    **kw: Any,
) -> Rider:
    """A rider with test-friendly defaults (available at 0, long shift, capacity 10)."""
    return Rider(
        id=rid,
        location=location,
        available_s=available,
        shift_end_s=shift_end,
        capacity=capacity,
        **kw,
    )


def line_matrices(
    positions: Sequence[float], speeds: Sequence[float] = (1.0,)
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Travel times (s, rounded up) and distances (m) between points on a line, per speed."""
    x = np.asarray(positions, dtype=np.float64)
    dist = np.abs(x[:, None] - x[None, :])
    times = np.stack([np.ceil(dist / s - 1e-9) for s in speeds]).astype(np.int64)
    return times, np.stack([dist] * len(speeds))


def line_problem(
    positions: Sequence[float],
    orders: Sequence[Order],
    riders: Sequence[Rider],
    *,
    now: int = 0,
    speeds: Sequence[float] = (1.0,),
) -> Problem:
    """A problem whose locations are points on a line (location k at ``positions[k]`` m)."""
    times, dists = line_matrices(positions, speeds)
    return Problem.build(now_s=now, orders=orders, riders=riders, time_s=times, distance_m=dists)


def euclid_matrices(
    points: NDArray[np.float64], speeds: Sequence[float]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Travel times (s, rounded up, so still metric) and distances (m) between 2-D points."""
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt((diff**2).sum(axis=2))
    times = np.stack([np.ceil(dist / s) for s in speeds]).astype(np.int64)
    return times, np.stack([dist] * len(speeds))


def random_problem(
    seed: int,
    *,
    n_orders: int = 12,
    n_riders: int = 4,
    n_profiles: int = 1,
    pinned_share: float = 0.3,
    start_loaded_share: float = 0.0,
    closed_share: float = 0.0,
    extras: bool = False,
    non_metric: bool = False,
    tight: bool = False,
) -> Problem:
    """A random meal-like problem.

    Parameters
    ----------
    seed
        Random seed (the problem is a pure function of the arguments).
    n_orders, n_riders, n_profiles
        Sizes; riders get random profiles (speeds 4, 6 and 2 m/s).
    pinned_share
        Share of orders made onboard or committed (on a random rider, within capacity).
    start_loaded_share
        Share of open orders that are start-loaded (no pickup).
    closed_share
        Share of riders with a depot to return to.
    extras
        Also draw ``max_in_bag_s``, ``pickup_latest_s``, ``dropoff_earliest_s`` and services.
    non_metric
        Perturb the travel times so that they break the triangle inequality.
    tight
        Short due times and shifts, so that some orders cannot be served.
    """
    rng = np.random.default_rng(seed)
    now = 1_000
    n_points = 2 * n_orders + 2 * n_riders + 1
    points = rng.uniform(0.0, 2_000.0, size=(n_points, 2))
    speeds = (4.0, 6.0, 2.0)[:n_profiles]
    times, dists = euclid_matrices(points, speeds)
    if non_metric:
        noise = rng.integers(0, 200, size=times.shape)
        times = times + noise * (rng.random(times.shape) < 0.3)
    riders: list[Rider] = []
    for k in range(n_riders):
        closed = rng.random() < closed_share
        riders.append(
            Rider(
                id=f"r{k}",
                location=2 * n_orders + k,
                available_s=now + int(rng.integers(-300, 300)),
                shift_end_s=now + int(rng.integers(900, 2_400) if tight else 7_200),
                capacity=int(rng.integers(2, 6)),
                profile=int(rng.integers(0, n_profiles)),
                end_location=(2 * n_orders + n_riders + k) if closed else None,
            )
        )
    loads = [0] * n_riders
    orders: list[Order] = []
    for k in range(n_orders):
        ready = now + int(rng.integers(-600, 1_200))
        due = ready + int(rng.integers(300, 1_200) if tight else rng.integers(900, 1_800))
        size = int(rng.integers(1, 3))
        kw: dict[str, Any] = {}
        if extras:
            if rng.random() < 0.3:
                kw["max_in_bag_s"] = int(rng.integers(300, 1_500))
            if rng.random() < 0.3:
                kw["pickup_latest_s"] = ready + int(rng.integers(0, 900))
            if rng.random() < 0.2:
                kw["dropoff_earliest_s"] = due - int(rng.integers(0, 600))
            kw["pickup_service_s"] = int(rng.integers(0, 120))
            kw["dropoff_service_s"] = int(rng.integers(0, 120))
        pickup: int | None = 2 * k
        roll = rng.random()
        state = OrderState.OPEN
        rider_id = None
        if roll < pinned_share:
            r = int(rng.integers(0, n_riders))
            onboard = rng.random() < 0.5
            if onboard and loads[r] + size <= riders[r].capacity:
                state = OrderState.ONBOARD
                loads[r] += size
                rider_id = riders[r].id
            elif size <= riders[r].capacity:
                state = OrderState.COMMITTED
                rider_id = riders[r].id
        elif roll < pinned_share + start_loaded_share:
            pickup = None
        orders.append(
            Order(
                id=f"o{k}",
                pickup=pickup,
                dropoff=2 * k + 1,
                ready_s=ready,
                due_s=due,
                size=size,
                state=state,
                rider_id=rider_id,
                picked_up_s=now - 60 if state is OrderState.ONBOARD else None,
                **kw,
            )
        )
    return Problem.build(now_s=now, orders=orders, riders=riders, time_s=times, distance_m=dists)


def travel_lateness(**changes: Any) -> SolverParams:
    """Parameters priced by travel and lateness only (delivery-time cost 0), with ``changes``:
    hand-made optima stay easy to write down."""
    return SolverParams(**{"delivery_time_cost_per_s": 0.0, **changes})


@pytest.fixture
def params() -> SolverParams:
    """Delivery parameters priced by travel and lateness only: exact optima are easy to write
    down by hand, and OR-Tools models them fully (the delivery-time cost, which it cannot price
    next to lateness, has tests of its own)."""
    return travel_lateness()


def assert_pinned_kept(problem: Problem, plan: Plan) -> None:
    """Every onboard or committed order is on its rider with exactly its remaining stops."""
    for o in problem.orders:
        if not o.is_pinned:
            continue
        route = plan.route_of(o.rider_id or "")
        assert route is not None
        kinds = [s.kind for s in route.stops if s.order_id == o.id]
        if o.state is OrderState.ONBOARD:
            assert kinds == [StopKind.DROPOFF], o
        else:
            assert kinds == [StopKind.PICKUP, StopKind.DROPOFF], o
