"""Random lunch-peak meal instances on a real campus's travel tables (for benchmarks and tests)."""

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
        ready = int(rng.integers(-300, 900))
        due = ready + int(time_s[bike, pickup, dropoff]) + int(rng.integers(600, 1500))
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
            Order(
                id=f"o{k}",
                pickup=pickup,
                dropoff=dropoff,
                ready_s=ready,
                due_s=due,
                size=1,
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
