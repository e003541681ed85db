"""Random lunch-peak meal batches for benchmarks and tests, on a synthetic square or a campus.

Two generators, one recipe: riders at random points, orders from merchants to customers with
ready times spread around "now" and promised times a random slack after them, some orders
already onboard or committed to a rider.

* :func:`meal_instance`: random points in a square, straight-line travel at a fixed speed
  (profile ``p`` rides ``1 + 0.5 p`` times faster); quick to build, any size.
* :func:`campus_meal_instance`: merchants at a real campus's food places, customers at its
  dorms and buildings, riders anywhere with the :data:`RIDER_MIX` of modes, on the bike /
  e-bike / walk travel tables of its road graph.

They share the promise draw (:func:`_promise`) and the order record (:func:`_meal_order`). Their
rider draws and their onboard / committed draws differ in detail (the synthetic one draws a
rider for every order and turns a full rider's onboard roll into a commitment; the campus one
draws only among riders with room), and each keeps its own so that a seed draws exactly the
instance it drew before: benchmark figures stay comparable across versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from campus_maps import Campus, PlaceKind
from solver.model import Order, OrderState, Problem, Rider

#: Rider mix: (mode, share, bag capacity).
RIDER_MIX = (("bike", 0.6, 4), ("ebike", 0.3, 6), ("walk", 0.1, 2))


@dataclass(frozen=True)
class MealInstance:
    """A meal problem and where its locations are on the campus.

    Attributes
    ----------
    problem
        The dispatch problem (times in seconds from ``now_s = 0``).
    points
        ``(n, 2)`` latitude/longitude of each location index.
    modes
        Travel mode of each profile index.
    """

    problem: Problem
    points: np.ndarray
    modes: tuple[str, ...]


def _promise(
    rng: np.random.Generator,
    now_s: int,
    ready: tuple[int, int],
    slack: tuple[int, int],
    direct_s: int = 0,
) -> tuple[int, int]:
    """Ready time ``now_s + U[ready)`` and promised time ``ready + direct_s + U[slack)``."""
    ready_s = now_s + int(rng.integers(*ready))
    return ready_s, ready_s + direct_s + int(rng.integers(*slack))


def _meal_order(
    k: int,
    pickup: int | None,
    dropoff: int,
    ready_s: int,
    due_s: int,
    *,
    pickup_service_s: int,
    dropoff_service_s: int,
    max_in_bag_s: int | None,
    state: OrderState,
    rider_id: str | None,
    picked_up_s: int | None,
) -> Order:
    """Order ``o<k>``: one bag slot from ``pickup`` (``None``: start-loaded) to ``dropoff``."""
    return Order(
        id=f"o{k}",
        pickup=pickup,
        dropoff=dropoff,
        ready_s=ready_s,
        due_s=due_s,
        size=1,
        pickup_service_s=pickup_service_s,
        dropoff_service_s=dropoff_service_s,
        max_in_bag_s=max_in_bag_s,
        state=state,
        rider_id=rider_id,
        picked_up_s=picked_up_s,
    )


def meal_instance(
    num_riders: int,
    num_orders: int,
    *,
    seed: int = 0,
    side_m: float = 2000.0,
    speed_mps: float = 4.0,
    num_merchants: int | None = None,
    onboard_share: float = 0.1,
    committed_share: float = 0.1,
    profiles: int = 1,
    closed_share: float = 0.0,
    start_loaded_share: float = 0.0,
) -> Problem:
    """A synthetic meal problem: random points in a square, straight-line travel.

    Locations: riders ``0 … num_riders - 1``, then the merchants, then one customer per order.
    ``now_s`` is 36,000 (10:00). Riders are available now or within 5 minutes, for 1 to 3
    hours, with 3 to 5 bag slots, profiles round-robin. Orders are ready from 5 minutes ago to
    20 minutes ahead and promised 15 to 35 minutes after; half have a 40-minute bag limit.

    Parameters
    ----------
    num_riders, num_orders
        Size of the instance.
    seed
        Random seed.
    side_m, speed_mps
        Square side (m) and riding speed (m/s) of profile 0; profile ``p`` rides
        ``1 + 0.5 p`` times faster.
    num_merchants
        Distinct pickup locations (default: about a third of the orders, at least 3).
    onboard_share, committed_share
        Shares of the orders already onboard / committed to a rider.
    profiles
        Number of travel profiles; riders get them round-robin.
    closed_share, start_loaded_share
        Shares of riders with a closed route (back to their start) and of open orders that are
        start-loaded (``pickup=None``).
    """
    rng = np.random.default_rng(seed)
    merchants = num_merchants or max(3, num_orders // 3)
    n = num_riders + merchants + num_orders
    points = rng.uniform(0.0, side_m, size=(n, 2))
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    times = np.stack([np.rint(dist / (speed_mps * (1 + 0.5 * p))) for p in range(profiles)])
    dists = np.stack([dist] * profiles)
    now = 36_000
    riders = []
    for k in range(num_riders):
        riders.append(
            Rider(
                id=f"r{k}",
                location=k,
                available_s=now + int(rng.integers(0, 300)) * int(rng.random() < 0.3),
                shift_end_s=now + int(rng.integers(3600, 3 * 3600)),
                capacity=int(rng.integers(3, 6)),
                profile=k % profiles,
                end_location=k if rng.random() < closed_share else None,
            )
        )
    orders = []
    load = dict.fromkeys(range(num_riders), 0)
    for k in range(num_orders):
        merchant = num_riders + int(rng.integers(0, merchants))
        customer = num_riders + merchants + k
        ready, due = _promise(rng, now, (-300, 1200), (900, 2100))
        state = OrderState.OPEN
        rider_id = None
        roll = rng.random()
        rider = int(rng.integers(0, num_riders)) if num_riders else 0
        if num_riders and roll < onboard_share and load[rider] < riders[rider].capacity:
            state, rider_id = OrderState.ONBOARD, f"r{rider}"
            load[rider] += 1
            ready = now - int(rng.integers(60, 600))
            due = now + int(rng.integers(-120, 1200))
        elif num_riders and roll < onboard_share + committed_share:
            state, rider_id = OrderState.COMMITTED, f"r{rider}"
        pickup: int | None = merchant
        if state is OrderState.OPEN and rng.random() < start_loaded_share:
            pickup = None
        orders.append(
            _meal_order(
                k,
                pickup,
                customer,
                ready,
                due,
                pickup_service_s=60,
                dropoff_service_s=30,
                max_in_bag_s=2400 if rng.random() < 0.5 else None,
                state=state,
                rider_id=rider_id,
                picked_up_s=ready if state is OrderState.ONBOARD else None,
            )
        )
    return Problem.build(now_s=now, orders=orders, riders=riders, time_s=times, distance_m=dists)


def campus_meal_instance(
    campus: Campus,
    *,
    orders: int = 60,
    riders: int = 20,
    seed: int = 0,
    onboard_share: float = 0.1,
    committed_share: float = 0.1,
    service_s: int = 60,
) -> MealInstance:
    """A lunch-peak batch on ``campus``: merchants from its food places, customers from its
    dorms and buildings, riders at random places with a mix of modes; some orders already
    onboard or committed to a rider.

    Ready times spread over the next 15 minutes (some already ready); promised times are the
    ready time plus the direct bike ride plus 10–25 minutes.
    """
    rng = np.random.default_rng(seed)
    food = campus.places(PlaceKind.FOOD)
    homes = campus.places(PlaceKind.DORM) + campus.places(PlaceKind.BUILDING)
    everywhere = campus.places()
    rider_pts = [everywhere[i] for i in rng.integers(len(everywhere), size=riders)]
    pick_pts = [food[i] for i in rng.integers(len(food), size=orders)]
    drop_pts = [homes[i] for i in rng.integers(len(homes), size=orders)]
    points = np.array([(p.lat, p.lng) for p in rider_pts + pick_pts + drop_pts])
    shares = np.array([s for _, s, _ in RIDER_MIX])
    kinds = rng.choice(len(RIDER_MIX), size=riders, p=shares / shares.sum())
    modes = tuple(RIDER_MIX[k][0] for k in sorted(set(kinds.tolist())))
    time_s = np.stack([np.rint(campus.matrix(points, m).time_s) for m in modes]).astype(np.int64)
    dist_m = np.stack([campus.matrix(points, m).distance_m for m in modes])
    bike = modes.index("bike") if "bike" in modes else 0

    rider_list = [
        Rider(
            id=f"r{k}",
            location=k,
            available_s=int(rng.integers(0, 120)),
            shift_end_s=int(rng.integers(5400, 10800)),
            capacity=RIDER_MIX[kind][2],
            profile=modes.index(RIDER_MIX[kind][0]),
        )
        for k, kind in enumerate(kinds.tolist())
    ]
    free = {r.id: r.capacity for r in rider_list}
    order_list = []
    for k in range(orders):
        pickup, dropoff = riders + k, riders + orders + k
        direct = int(time_s[bike, pickup, dropoff])
        ready, due = _promise(rng, 0, (-300, 900), (600, 1500), direct)
        state, rider_id, picked = OrderState.OPEN, None, None
        roll = rng.random()
        if roll < onboard_share + committed_share:
            candidates = [r for r in rider_list if free[r.id] >= 1]
            if candidates:
                rider = candidates[int(rng.integers(len(candidates)))]
                rider_id = rider.id
                if roll < onboard_share:
                    state, picked = OrderState.ONBOARD, -int(rng.integers(60, 600))
                    ready = min(ready, picked)
                    free[rider.id] -= 1
                else:
                    state = OrderState.COMMITTED
        order_list.append(
            _meal_order(
                k,
                pickup,
                dropoff,
                ready,
                due,
                pickup_service_s=service_s,
                dropoff_service_s=service_s,
                max_in_bag_s=2700,
                state=state,
                rider_id=rider_id,
                picked_up_s=picked,
            )
        )
    problem = Problem.build(
        now_s=0, orders=order_list, riders=rider_list, time_s=time_s, distance_m=dist_m
    )
    return MealInstance(problem, points, modes)
