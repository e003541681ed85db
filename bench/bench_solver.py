"""Benchmark our solver against VROOM and PyVRP on Li & Lim PDPTW and Solomon VRPTW, gap to BKS.

Usage::

    python bench/bench_solver.py --data ../shared/data [--set lilim|solomon|both]
        [--budgets 0.2,1] [--instances N | name,name,...] [--solvers ours,vroom,pyvrp]
        [--out bench/results] [--quick] [--verify-bks]

For each instance and budget, every solver runs in the same process one after the other (so the
machine's noise hits them alike) on the very same integer model (``instance.problem``: travel
times scaled and rounded up, see :mod:`instances.literature`). Every plan is judged twice: by our
independent checker (:func:`solver.check.check_plan`) in the integer model, and re-timed at full
double precision (:func:`instances.literature.full_precision_violations`: float Euclidean travel
times from the coordinates, the file's windows, service times and capacity). The table gives,
per set, solver and budget: plans feasible, plans complete (feasible with every order routed),
all unassigned orders, the mean and median distance gap to the best-known solution (%) and the
mean number of extra vehicles over complete plans only (an infeasible or incomplete plan is
reported, never counted as a gap), the plans with any violation at full precision and their
largest lateness (time units), and the mean wall time. Distances are the float Euclidean ones,
in the benchmark's units. The command exits with status 1 if any of our plans breaks a rule at
full precision.

Best-known: Li & Lim from the SINTEF table; Solomon from the hierarchical table (vehicles first,
then distance at full precision), see :mod:`instances.literature`. All solvers optimise the same
hierarchical objective: a fixed cost of ``VEHICLE_FIXED_COST`` per vehicle (far above any total
distance of these instances), then distance; see :mod:`peers` for how the peers are set up and
budgeted. ``--verify-bks`` instead checks the published best-known routes at full precision and
in our integer model.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers import PEERS

from instances.literature import (
    DEFAULT_SCALE,
    BenchmarkInstance,
    BestKnown,
    full_precision_violations,
    max_lateness,
    plan_distance,
    plan_vehicles,
    read_bks_lilim,
    read_bks_solomon,
    read_lilim,
    read_routes,
    read_solomon,
)
from solver.engines.kernel import warm_up
from solver.params import SolverParams
from solver.plan import Engine, Plan
from solver.routes import build_plan

#: Cost of one used vehicle in distance units: above any total distance of these instances, so
#: fewer vehicles always wins (hierarchical objective).
VEHICLE_FIXED_COST = 10_000.0
#: Integer costs = round(COST_SCALE * cost): distances kept to 0.01 benchmark units.
COST_SCALE = 100.0

LILIM_DIR = "li_lim_pdptw_100"
SOLOMON_DIR = "solomon_vrptw"
QUICK_INSTANCES = 6
QUICK_BUDGET_S = 0.2

# Our search keeps the product's ruin_recreate_share (1.0: ruin-and-recreate only). With the
# compiled kernel it measured best here too: on 28 + 28 Li & Lim / Solomon instances at 1 s
# -0.49 % / 1.30 % mean gap against 0.12 % / 1.69 % with 0.7 (OR-Tools polishing the last
# 30 %, which was best before the kernel).

#: Average orders one ruin takes out on these instances' long routes (10-50 orders per route):
#: 15 against the product default 5 (tuned on meal batches of 3-4 orders per rider).
OURS_RUIN_ORDERS = 15.0
#: Annealing temperatures for the distance objective: on 10 Solomon type-2 instances at 1 s
#: (3, 0.1) gave a 1.98 % mean gap against 8.95 % with the product's (0.1, 0.002), tuned on meal
#: batches; on 28 + 28 Li & Lim / Solomon instances -0.47 % / 1.35 % against 1.8 % / 2.6 %.
OURS_ANNEAL_TEMPS = (3.0, 0.1)

Solver = Callable[[BenchmarkInstance, SolverParams, float], Plan]


def benchmark_params() -> SolverParams:
    """The hierarchical objective every solver is given."""
    return SolverParams(
        objective="hierarchical",
        vehicle_fixed_cost=VEHICLE_FIXED_COST,
        distance_cost_per_m=1.0,
        travel_cost_per_s=0.0,
        waiting_cost_per_s=0.0,
        lateness_cost_per_s=0.0,
        unassigned_penalty=100 * VEHICLE_FIXED_COST,
        cost_scale=COST_SCALE,
        ruin_orders=OURS_RUIN_ORDERS,
        anneal_start_temp=OURS_ANNEAL_TEMPS[0],
        anneal_end_temp=OURS_ANNEAL_TEMPS[1],
    )


# --------------------------------------------------------------------------------------------
# solvers and checker


def solve_ours(instance: BenchmarkInstance, params: SolverParams, budget_s: float) -> Plan:
    """Our solver: :func:`solver.runtime.dispatch.solve` on the instance's problem."""
    from solver.runtime.dispatch import solve

    return solve(instance.problem, params, budget_s=budget_s)


def available_solvers() -> dict[str, Solver | str]:
    """Solvers by name; a string instead of a solver says why that one cannot run."""
    solvers: dict[str, Solver | str] = {}
    try:
        import solver.runtime.dispatch  # noqa: F401

        solvers["ours"] = solve_ours
    except ImportError as exc:
        solvers["ours"] = f"solver.runtime.dispatch not importable ({exc})"
    solvers.update(PEERS)
    return solvers


def make_checker() -> Callable[[BenchmarkInstance, SolverParams, Plan], list[str]] | None:
    """A function returning the checker's violations of a plan (empty: feasible), or ``None``."""
    try:
        from solver.check import check_plan
    except ImportError:
        return None

    def check(instance: BenchmarkInstance, params: SolverParams, plan: Plan) -> list[str]:
        return list(check_plan(instance.problem, plan, params).violations)

    return check


# --------------------------------------------------------------------------------------------
# instances


@dataclass(frozen=True)
class Case:
    """One instance to run, with its set and best-known figures."""

    set: str
    instance: BenchmarkInstance
    bks: BestKnown | None


def _spread(items: Sequence[Path], count: int) -> list[Path]:
    """``count`` items evenly spread over ``items`` (so every instance class is sampled)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(k * step)] for k in range(count)]


def load_cases(data: Path, which: str, instances: str | None) -> list[Case]:
    """Read the selected instances of the selected sets.

    ``instances``: ``None`` (all), a count ``N`` (``N`` per set, spread over the classes; with
    both sets, ``N`` is split between them), or comma-separated names (case-insensitive).
    """
    sets: list[tuple[str, list[Path], Callable[..., BenchmarkInstance], dict[str, BestKnown]]] = []
    if which in ("lilim", "both"):
        root = data / LILIM_DIR
        sets.append(
            (
                "lilim",
                sorted((root / "instances").glob("*.txt")),
                read_lilim,
                read_bks_lilim(root / "bks_lilim_100.csv"),
            )
        )
    if which in ("solomon", "both"):
        root = data / SOLOMON_DIR
        sets.append(
            (
                "solomon",
                sorted((root / "solomon_txt").glob("*.txt")),
                read_solomon,
                read_bks_solomon(root / "bks_solomon_100.csv", "hierarchical"),
            )
        )
    cases: list[Case] = []
    names: set[str] | None = None
    count: int | None = None
    if instances:
        if instances.strip().isdigit():
            count = int(instances)
        else:
            names = {n.strip().lower() for n in instances.split(",") if n.strip()}
    for k, (label, paths, reader, bks) in enumerate(sets):
        if names is not None:
            paths = [p for p in paths if p.stem.lower() in names]
        elif count is not None:
            share = count // len(sets) + (1 if k < count % len(sets) else 0)
            paths = _spread(paths, share)
        bks_lower = {key.lower(): value for key, value in bks.items()}
        for path in paths:
            instance = reader(path)
            cases.append(Case(label, instance, bks_lower.get(instance.name.lower())))
    if names is not None:
        found = {c.instance.name.lower() for c in cases}
        missing = names - found
        if missing:
            raise SystemExit(f"unknown instance(s): {', '.join(sorted(missing))}")
    return cases


# --------------------------------------------------------------------------------------------
# running


@dataclass
class Run:
    """One solve of one instance by one solver at one budget."""

    set: str
    instance: str
    solver: str
    budget_s: float
    wall_s: float
    feasible: bool | None
    complete: bool
    unassigned: int
    vehicles: int
    distance: float
    bks_vehicles: int | None
    bks_distance: float | None
    gap_pct: float | None
    extra_vehicles: int | None
    engine: str
    shed_reason: str
    violations: str
    fp_violations: int
    fp_max_late: float
    error: str


def run_one(
    case: Case,
    name: str,
    solver: Solver,
    params: SolverParams,
    budget_s: float,
    checker: Callable[[BenchmarkInstance, SolverParams, Plan], list[str]] | None,
) -> Run:
    """Solve, check and score one case."""
    inst = case.instance
    bks = case.bks

    def scored(**fields: Any) -> Run:
        return Run(
            set=case.set,
            instance=inst.name,
            solver=name,
            budget_s=budget_s,
            bks_vehicles=bks.vehicles if bks else None,
            bks_distance=bks.distance if bks else None,
            **fields,
        )

    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = solver(inst, params, budget_s)
    except Exception as exc:  # a solver crash is a result, not the end of the benchmark
        wall = time.perf_counter() - started
        traceback.print_exc(file=sys.stderr)
        return scored(
            wall_s=wall,
            feasible=False,
            complete=False,
            unassigned=inst.num_orders,
            vehicles=0,
            distance=math.nan,
            gap_pct=None,
            extra_vehicles=None,
            engine="",
            shed_reason="",
            violations="",
            fp_violations=0,
            fp_max_late=math.nan,
            error=f"{type(exc).__name__}: {exc}",
        )
    wall = time.perf_counter() - started
    violations = checker(inst, params, plan) if checker else None
    feasible = None if violations is None else not violations
    full = full_precision_violations(inst, plan)
    complete = bool(feasible) and not plan.unassigned
    vehicles = plan_vehicles(plan)
    distance = plan_distance(plan)
    gap = extra = None
    if complete and bks is not None:
        gap = 100.0 * (distance - bks.distance) / bks.distance
        extra = vehicles - bks.vehicles
    return scored(
        wall_s=wall,
        feasible=feasible,
        complete=complete,
        unassigned=len(plan.unassigned),
        vehicles=vehicles,
        distance=distance,
        gap_pct=gap,
        extra_vehicles=extra,
        engine=plan.stats.engine.value,
        shed_reason=plan.stats.shed_reason,
        violations="; ".join([*(violations or [])[:3], *(str(v) for v in full[:3])]),
        fp_violations=len(full),
        fp_max_late=max_lateness(full),
        error="",
    )


def run_all(
    cases: Sequence[Case],
    solvers: dict[str, Solver],
    budgets: Sequence[float],
    params: SolverParams,
    checker: Callable[[BenchmarkInstance, SolverParams, Plan], list[str]] | None,
) -> list[Run]:
    """Every case × budget × solver, sequentially; prints one progress line per case."""
    runs: list[Run] = []
    for k, case in enumerate(cases, start=1):
        parts = []
        for budget in budgets:
            for name, solver in solvers.items():
                run = run_one(case, name, solver, params, budget, checker)
                runs.append(run)
                mark = "ERR" if run.error else ("INF" if run.feasible is False else "")
                if run.fp_violations:
                    mark += f"FP{run.fp_max_late:.3g}"
                if run.unassigned and not run.error:
                    mark += f"U{run.unassigned}"
                gap = f"{run.gap_pct:+.1f}%" if run.gap_pct is not None else "-"
                parts.append(f"{name}@{budget:g}:{run.vehicles}v {gap}{mark}")
        bks = f"bks {case.bks.vehicles}v {case.bks.distance:.1f}" if case.bks else "no bks"
        print(f"[{k}/{len(cases)}] {case.instance.name} ({bks}) " + "  ".join(parts), flush=True)
    return runs


# --------------------------------------------------------------------------------------------
# reporting


@dataclass
class Summary:
    """Aggregates of the runs of one set, solver and budget."""

    set: str
    solver: str
    budget_s: float
    runs: int
    feasible: int
    complete: int
    unassigned: int
    errors: int
    shed: int
    mean_gap_pct: float
    median_gap_pct: float
    mean_extra_vehicles: float
    at_bks_vehicles: int
    mean_gap_at_bks_vehicles_pct: float
    fp_infeasible: int
    fp_max_late: float
    mean_wall_s: float
    max_wall_s: float


def summarise(runs: Sequence[Run]) -> list[Summary]:
    """One summary per (set, solver, budget), plus set ``all`` when there are several sets."""
    sets = sorted({r.set for r in runs})
    groups: dict[tuple[str, str, float], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.set, run.solver, run.budget_s), []).append(run)
        if len(sets) > 1:
            groups.setdefault(("all", run.solver, run.budget_s), []).append(run)
    summaries = []
    for (label, solver, budget), group in groups.items():
        gaps = [r.gap_pct for r in group if r.gap_pct is not None]
        extras = [r.extra_vehicles for r in group if r.extra_vehicles is not None]
        same = [r.gap_pct for r in group if r.gap_pct is not None and r.extra_vehicles == 0]
        walls = [r.wall_s for r in group]
        summaries.append(
            Summary(
                set=label,
                solver=solver,
                budget_s=budget,
                runs=len(group),
                feasible=sum(1 for r in group if r.feasible),
                complete=sum(1 for r in group if r.complete),
                unassigned=sum(r.unassigned for r in group),
                errors=sum(1 for r in group if r.error),
                shed=sum(1 for r in group if r.shed_reason),
                mean_gap_pct=statistics.fmean(gaps) if gaps else math.nan,
                median_gap_pct=statistics.median(gaps) if gaps else math.nan,
                mean_extra_vehicles=statistics.fmean(extras) if extras else math.nan,
                at_bks_vehicles=sum(1 for e in extras if e <= 0),
                mean_gap_at_bks_vehicles_pct=statistics.fmean(same) if same else math.nan,
                fp_infeasible=sum(1 for r in group if r.fp_violations),
                fp_max_late=max((r.fp_max_late for r in group if not r.error), default=0.0),
                mean_wall_s=statistics.fmean(walls),
                max_wall_s=max(walls),
            )
        )
    order = {s: k for k, s in enumerate([*sets, "all"])}
    summaries.sort(key=lambda s: (order[s.set], s.budget_s, s.solver))
    return summaries


def format_table(summaries: Sequence[Summary]) -> str:
    """A fixed-width table of the summaries."""
    header = (
        f"{'set':<8} {'solver':<7} {'budget':>6} {'runs':>4} {'feas':>4} {'compl':>5} "
        f"{'unasg':>5} {'gap%mean':>8} {'gap%med':>7} {'+veh':>5} {'=bksV':>5} {'gap%=V':>6} "
        f"{'fpInf':>5} {'fpLate':>6} {'wall':>5} {'max':>5}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.set:<8} {s.solver:<7} {s.budget_s:>6g} {s.runs:>4} {s.feasible:>4} "
            f"{s.complete:>5} {s.unassigned:>5} {s.mean_gap_pct:>8.2f} {s.median_gap_pct:>7.2f} "
            f"{s.mean_extra_vehicles:>5.2f} {s.at_bks_vehicles:>5} "
            f"{s.mean_gap_at_bks_vehicles_pct:>6.2f} {s.fp_infeasible:>5} {s.fp_max_late:>6.3f} "
            f"{s.mean_wall_s:>5.2f} "
            f"{s.max_wall_s:>5.2f}"
            + (f"  errors={s.errors}" if s.errors else "")
            + (f"  shed={s.shed}" if s.shed else "")
        )
    lines.append(
        "feas: checker-feasible plans; compl: feasible with no order unassigned (only these "
        "count in the gaps);\nunasg: unassigned orders over all runs; gap%: distance vs BKS; "
        "+veh: mean vehicles above BKS;\n=bksV: complete plans at (or below) the BKS vehicle "
        "count; gap%=V: mean distance gap of the plans with exactly the BKS vehicle count;\n"
        "fpInf: plans breaking a rule when re-timed at full double precision; fpLate: their\n"
        "largest lateness (time units); wall: mean / max wall seconds per solve; shed: plans\n"
        "answered without the main search."
    )
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[Any]) -> None:
    """Write dataclass rows to ``path`` (header from the first row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dicts = [asdict(r) for r in rows]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dicts[0]) if dicts else [])
        writer.writeheader()
        writer.writerows(dicts)


# --------------------------------------------------------------------------------------------
# verifying the published best-known routes


def verify_bks(data: Path, params: SolverParams) -> int:
    """Check the published best-known routes; returns how many Li & Lim routes fail.

    Li & Lim: every SINTEF route file (hierarchical BKS) must be feasible at full precision
    (:func:`instances.literature.full_precision_violations`) with the table's distance; a
    failure there counts. In our integer model (travel times rounded up) a route that is tight
    at full precision may be infeasible: those are listed and counted, for information, as
    best-knowns out of our reach. Solomon: the CVRPLIB (DIMACS) routes are shown for
    information: 8 of them are infeasible at full precision.
    """
    checker = make_checker()
    if checker is None:
        print("solver.check is not available yet", file=sys.stderr)
        return 1
    failures = integer_failures = 0
    root = data / LILIM_DIR
    table = list(csv.DictReader((root / "bks_lilim_100.csv").open()))
    bks = read_bks_lilim(root / "bks_lilim_100.csv")
    for row in table:
        inst = read_lilim(root / "instances" / f"{row['instance']}.txt")
        routes = read_routes(root / row["sintef_solution_file"])
        plan = build_plan(
            inst.problem, params, inst.visits_by_rider(routes), [], engine=Engine.GREEDY
        )
        full = full_precision_violations(inst, plan)
        dist_ok = abs(plan_distance(plan) - bks[inst.name].distance) < 1e-3
        if full or not dist_ok:
            failures += 1
            print(f"lilim {inst.name}: FAIL {full[:2]} distance {plan_distance(plan):.4f}")
        problems = checker(inst, params, plan)
        if problems:
            integer_failures += 1
            print(f"lilim {inst.name}: infeasible in the integer model: {problems[0]}")
    passed = len(table) - failures
    print(f"Li & Lim SINTEF BKS routes: {passed}/{len(table)} feasible at full precision")
    print(
        f"Li & Lim SINTEF BKS routes: {len(table) - integer_failures}/{len(table)} feasible in "
        f"the integer model (scale {DEFAULT_SCALE}, travel times rounded up)"
    )
    root = data / SOLOMON_DIR
    passed = full_passed = total = 0
    for path in sorted((root / "solomon_txt").glob("*.txt")):
        inst = read_solomon(path)
        sol = root / "vrplib" / f"{inst.name}.sol"
        if not sol.exists():
            continue
        total += 1
        plan = build_plan(
            inst.problem, params, inst.visits_by_rider(read_routes(sol)), [], engine=Engine.GREEDY
        )
        problems = checker(inst, params, plan)
        full = full_precision_violations(inst, plan)
        passed += not problems
        full_passed += not full
        if problems or full:
            late = f"{max_lateness(full):.3f}" if full else "feasible"
            first = problems[0] if problems else "feasible"
            print(f"solomon {inst.name} (DIMACS route): full precision {late}; integer: {first}")
    print(
        f"Solomon DIMACS routes (for information): {full_passed}/{total} feasible at full "
        f"precision, {passed}/{total} in the integer model"
    )
    return failures


# --------------------------------------------------------------------------------------------
# command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data")
    parser.add_argument("--set", choices=("lilim", "solomon", "both"), default="both")
    parser.add_argument("--budgets", default="0.2,1", help="comma-separated seconds")
    parser.add_argument("--instances", default=None, help="N (spread over the set) or names")
    parser.add_argument("--solvers", default="ours,vroom,pyvrp")
    parser.add_argument("--out", type=Path, default=here / "results")
    parser.add_argument(
        "--quick", action="store_true",
        help=f"smoke run: {QUICK_INSTANCES} instances, budget {QUICK_BUDGET_S} s",
    )  # fmt: skip
    parser.add_argument("--verify-bks", action="store_true", help="check the BKS routes only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    warm_up()  # the compiled kernel: loaded before anything is timed
    params = benchmark_params()
    if args.verify_bks:
        return 1 if verify_bks(args.data, params) else 0
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    instances = args.instances
    if args.quick:
        budgets = [QUICK_BUDGET_S]
        instances = instances or str(QUICK_INSTANCES)
    if not budgets or any(b <= 0 for b in budgets):
        raise SystemExit(f"--budgets must be positive seconds, got {args.budgets!r}")
    known = available_solvers()
    solvers: dict[str, Solver] = {}
    for name in (s.strip() for s in args.solvers.split(",") if s.strip()):
        if name not in known:
            raise SystemExit(f"unknown solver {name!r}; known: {', '.join(known)}")
        entry = known[name]
        if isinstance(entry, str):
            print(f"skipping {name}: {entry}", file=sys.stderr)
            continue
        solvers[name] = entry
    if not solvers:
        raise SystemExit("no solver to run")
    checker = make_checker()
    if checker is None:
        print("warning: solver.check not available: feasibility is unchecked", file=sys.stderr)
    cases = load_cases(args.data, args.set, instances)
    print(
        f"{len(cases)} instances × budgets {budgets} × solvers {list(solvers)}; "
        f"vehicle cost {VEHICLE_FIXED_COST:g}, cost scale {COST_SCALE:g}",
        flush=True,
    )
    runs = run_all(cases, solvers, budgets, params, checker)
    summaries = summarise(runs)
    print()
    print(format_table(summaries))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_csv(args.out / f"bench_solver_{stamp}_runs.csv", runs)
    write_csv(args.out / f"bench_solver_{stamp}_summary.csv", summaries)
    print(f"\nwrote {args.out}/bench_solver_{stamp}_{{runs,summary}}.csv")
    broken = [r for r in runs if r.solver == "ours" and r.fp_violations]
    if broken:
        print(
            f"\nFAIL: {len(broken)} of our plans break a rule at full precision: "
            + ", ".join(f"{r.instance}@{r.budget_s:g} ({r.violations})" for r in broken[:5]),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
