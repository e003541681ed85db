"""Benchmark of the dispatch engines on synthetic meal instances (objective against time).

Usage::

    python bench/bench_meal.py            # 3 seeds per size, 30 s reference runs (~4 min)
    python bench/bench_meal.py --quick    # 1 seed per size, 3 s reference runs (~15 s)
    python bench/bench_meal.py --campus northwestern   # real campus travel tables

For every instance (random points in a 2 km square, 4 m/s, some onboard and committed orders;
or, with ``--campus``, merchants, customers and riders at the campus's real places with the
bike / e-bike / walk travel tables of its road graph; both drawn by :mod:`instances.meal`;
20 riders / 60 orders and 50 riders / 200 orders) it runs the greedy insertion alone,
:func:`solver.runtime.dispatch.solve` at each budget with the default parameters (greedy, then
ruin-and-recreate; in this process unless ``--pool``), the same with ``ruin_recreate_share = 0``
(greedy, then OR-Tools warm-started from it: the engine before ruin-and-recreate), and a long
reference run of our own engine (``solve`` with the default parameters and a 30 s budget).
It prints each objective, its ratio to the reference and the wall time, and checks every plan
with :func:`solver.check.assert_valid_plan`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campus_maps import Campus, load_campus
from instances.meal import campus_meal_instance, meal_instance
from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.engines.kernel import warm_up
from solver.model import Problem
from solver.params import SolverParams
from solver.plan import Plan
from solver.runtime.dispatch import solve
from solver.runtime.workers import SolverPool

SIZES = ((20, 60), (50, 200))


@dataclass
class Run:
    """One engine run on one instance."""

    instance: str
    method: str
    objective: float
    wall_s: float
    unassigned: int
    engine: str
    shed_reason: str
    ratio: float = float("nan")


def _timed(
    instance: str, method: str, problem: Problem, params: SolverParams, call: Callable[[], Plan]
) -> Run:
    started = time.perf_counter()
    plan = call()
    wall = time.perf_counter() - started
    assert_valid_plan(problem, plan, params)
    return Run(
        instance=instance,
        method=method,
        objective=plan.stats.objective,
        wall_s=wall,
        unassigned=len(plan.unassigned),
        engine=plan.stats.engine.value,
        shed_reason=plan.stats.shed_reason,
    )


def bench_instance(
    riders: int,
    orders: int,
    seed: int,
    *,
    budgets: tuple[float, ...],
    reference_s: float,
    params: SolverParams,
    pool: SolverPool | None,
    campus: Campus | None = None,
) -> list[Run]:
    """Greedy alone, dispatch at each budget and the reference run on one instance."""
    if campus is None:
        problem = meal_instance(riders, orders, seed=seed)
    else:
        problem = campus_meal_instance(campus, orders=orders, riders=riders, seed=seed).problem
    name = f"{riders}r/{orders}o/s{seed}"
    runs = [_timed(name, "greedy", problem, params, lambda: solve_greedy(problem, params))]
    ortools_only = params.replace(ruin_recreate_share=0.0)
    for label, chosen in (("dispatch", params), ("ortools-only", ortools_only)):
        for budget in budgets:

            def dispatch(budget: float = budget, chosen: SolverParams = chosen) -> Plan:
                return solve(problem, chosen, budget_s=budget, pool=pool)

            runs.append(_timed(name, f"{label} {budget:g}s", problem, params, dispatch))
    reference = _timed(
        name,
        f"reference {reference_s:g}s",
        problem,
        params,
        lambda: solve(problem, params, budget_s=reference_s),
    )
    runs.append(reference)
    for run in runs:
        run.ratio = run.objective / reference.objective if reference.objective else float("nan")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and the summary of ratios per size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 s reference")
    parser.add_argument("--seeds", type=int, default=None, help="instances per size (3)")
    parser.add_argument("--reference-s", type=float, default=None, help="reference run (30 s)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.2, 1.0])
    parser.add_argument("--pool", action="store_true", help="run OR-Tools in a worker pool")
    parser.add_argument("--json", type=Path, default=None, help="also write the runs here")
    parser.add_argument("--campus", default=None, help="use this campus's travel tables")
    args = parser.parse_args(argv)
    warm_up()  # the compiled kernel: loaded before anything is timed
    campus = load_campus(args.campus) if args.campus else None
    print(f"instances: {'synthetic 2 km square' if campus is None else campus.name}")
    seeds = args.seeds or (1 if args.quick else 3)
    reference_s = args.reference_s or (3.0 if args.quick else 30.0)
    params = SolverParams()
    pool = SolverPool(1).start() if args.pool else None
    runs: list[Run] = []
    try:
        header = f"{'instance':<14} {'method':<16} {'objective':>12} {'ratio':>7} {'wall s':>7}"
        print(header + f" {'unassigned':>10}  engine / shed")
        for riders, orders in SIZES:
            for seed in range(seeds):
                for run in bench_instance(
                    riders,
                    orders,
                    seed,
                    budgets=tuple(args.budgets),
                    reference_s=reference_s,
                    params=params,
                    pool=pool,
                    campus=campus,
                ):
                    runs.append(run)
                    print(
                        f"{run.instance:<14} {run.method:<16} {run.objective:>12.0f} "
                        f"{run.ratio:>7.3f} {run.wall_s:>7.3f} {run.unassigned:>10}  "
                        f"{run.engine}" + (f" / {run.shed_reason}" if run.shed_reason else "")
                    )
    finally:
        if pool is not None:
            pool.close()
    print("\nmedian ratio to the reference run (all plans checker-valid):")
    for riders, orders in SIZES:
        size = f"{riders}r/{orders}o/"
        methods = dict.fromkeys(r.method for r in runs if r.instance.startswith(size))
        cells = []
        for method in methods:
            ratios = [r.ratio for r in runs if r.instance.startswith(size) and r.method == method]
            walls = [r.wall_s for r in runs if r.instance.startswith(size) and r.method == method]
            cells.append(
                f"{method}: {statistics.median(ratios):.3f} ({statistics.median(walls):.2f} s)"
            )
        print(f"  {riders} riders / {orders} orders: " + ", ".join(cells))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
