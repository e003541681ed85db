"""Benchmark of the numpy greedy insertion on random meal-like instances (time and objective).

Run: ``.venv/bin/python bench/bench_greedy.py`` (options: ``--repeats``, ``--instances``,
``--ordering``, ``--sizes 200x50``). Every plan is checked with :func:`solver.check.check_plan`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from solver.check import check_plan
from solver.engines.greedy import ORDERINGS, solve_greedy
from solver.engines.kernel import warm_up
from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams

SPEED_M_S = 4.0
SIDE_M = 2_000.0


def meal_problem(n_orders: int, n_riders: int, seed: int, pinned_share: float = 0.2) -> Problem:
    """A random meal-like instance.

    Uniform points in a 2 km square, travel time = euclidean / 4 m/s (rounded up), ready times
    over 20 minutes, due = ready + 15-30 min, capacity 3-6, one minute of service at each end, a
    45-minute freshness limit on a third of the orders, and ``pinned_share`` of the orders
    already onboard (half) or committed (half) on a random rider.
    """
    rng = np.random.default_rng(seed)
    now = 0
    n_points = 2 * n_orders + n_riders
    points = rng.uniform(0.0, SIDE_M, size=(n_points, 2))
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    times = np.ceil(dist / SPEED_M_S).astype(np.int64)
    riders = [
        Rider(
            id=f"r{k}",
            location=2 * n_orders + k,
            available_s=now + int(rng.integers(0, 300)),
            shift_end_s=now + 4 * 3600,
            capacity=int(rng.integers(3, 7)),
        )
        for k in range(n_riders)
    ]
    loads = [0] * n_riders
    orders = []
    for k in range(n_orders):
        ready = now + int(rng.integers(0, 1_200))
        due = ready + int(rng.integers(900, 1_800))
        size = int(rng.integers(1, 3))
        state, rider_id, pickup_time = OrderState.OPEN, None, None
        if rng.random() < pinned_share:
            r = int(rng.integers(0, n_riders))
            if rng.random() < 0.5 and loads[r] + size <= riders[r].capacity:
                state, rider_id, pickup_time = OrderState.ONBOARD, riders[r].id, now - 120
                loads[r] += size
                ready = now - 120
            else:
                state, rider_id = OrderState.COMMITTED, riders[r].id
        orders.append(
            Order(
                id=f"o{k}",
                pickup=2 * k,
                dropoff=2 * k + 1,
                ready_s=ready,
                due_s=due,
                size=size,
                pickup_service_s=60,
                dropoff_service_s=60,
                max_in_bag_s=2_700 if rng.random() < 0.33 else None,
                state=state,
                rider_id=rider_id,
                picked_up_s=pickup_time,
            )
        )
    return Problem.build(now_s=now, orders=orders, riders=riders, time_s=times, distance_m=dist)


def run(sizes: list[tuple[int, int]], instances: int, repeats: int, orderings: list[str]) -> int:
    """Time every ordering on every size; return the number of invalid plans."""
    params = SolverParams()
    invalid = 0
    print(
        f"{'size':>8} {'ordering':>8} {'median ms':>10} {'p90 ms':>8} {'objective':>12} "
        f"{'unassigned':>10} {'late':>6}"
    )
    for n_orders, n_riders in sizes:
        problems = [meal_problem(n_orders, n_riders, seed) for seed in range(instances)]
        for ordering in orderings:
            times: list[float] = []
            objective: list[float] = []
            unassigned = late = 0
            for problem in problems:
                solve_greedy(problem, params, ordering=ordering)  # warm-up
                for _ in range(repeats):
                    began = time.perf_counter()
                    plan = solve_greedy(problem, params, ordering=ordering)
                    times.append(time.perf_counter() - began)
                check = check_plan(problem, plan, params)
                if not check.ok:
                    invalid += 1
                    print("INVALID:", *check.violations[:5], sep="\n  ")
                objective.append(check.objective)
                unassigned += len(plan.unassigned)
                late += check.late_orders
            times.sort()
            median_ms = statistics.median(times) * 1e3
            p90_ms = times[int(0.9 * (len(times) - 1))] * 1e3
            print(
                f"{n_orders:>4}/{n_riders:<3} {ordering:>8} {median_ms:>10.1f} {p90_ms:>8.1f} "
                f"{statistics.mean(objective):>12.0f} {unassigned / len(problems):>10.1f} "
                f"{late / len(problems):>6.1f}"
            )
    return invalid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ordering", action="append", choices=ORDERINGS)
    parser.add_argument("--sizes", nargs="*", default=["60x20", "200x50", "400x80"])
    args = parser.parse_args()
    warm_up()  # the compiled kernel: loaded before anything is timed
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    invalid = run(
        [(a, b) for a, b in sizes], args.instances, args.repeats, args.ordering or ["ready"]
    )
    print("all plans valid" if not invalid else f"{invalid} INVALID plans")
    sys.exit(1 if invalid else 0)


if __name__ == "__main__":
    main()
