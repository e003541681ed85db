"""The ``scenario`` (generate, import MDRP, info), ``replay`` and ``tune`` subcommands of
``campus-dispatch`` (assembled by :mod:`campus_dispatch.cli`), and the errors they report."""

from __future__ import annotations

import argparse
from pathlib import Path

from campus_maps import default_maps_dir
from scenarios.model import ScenarioError
from scenarios.tune import TuneError
from solver.params import DEFAULT_CONFIG, ParamsError

#: Errors a command reports as ``error: <label>: <message>`` (exit 2) instead of a traceback.
ERRORS: dict[type[Exception], str] = {
    ParamsError: "config",
    ScenarioError: "scenario",
    TuneError: "tune",
}


def cmd_scenario_generate(args: argparse.Namespace) -> int:
    """Generate a peak-period scenario on a bundled campus and write it."""
    from campus_maps import load_campus
    from scenarios.generate import generate_scenario
    from scenarios.model import save_scenario

    scenario = generate_scenario(
        load_campus(args.campus, maps_dir=args.maps_dir),
        period=args.period,
        orders=args.orders,
        riders=args.riders,
        seed=args.seed,
        variant=args.variant,
    )
    path = save_scenario(scenario, args.output)
    print(f"{path}: {scenario.summary()}")
    return 0


def cmd_scenario_import_mdrp(args: argparse.Namespace) -> int:
    """Convert a Grubhub MDRPLIB instance folder into a scenario file."""
    from scenarios.mdrp import scenario_from_mdrp
    from scenarios.model import save_scenario

    scenario = scenario_from_mdrp(args.folder, capacity=args.capacity)
    path = save_scenario(scenario, args.output)
    print(f"{path}: {scenario.summary()}")
    return 0


def cmd_scenario_info(args: argparse.Namespace) -> int:
    """Validate scenario files and print one line each."""
    from scenarios.model import load_scenario

    for path in args.files:
        print(f"{path}: {load_scenario(path).summary()}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a scenario against dispatch policies (or a server) and report delivery KPIs."""
    from scenarios.mdrp import scenario_from_mdrp
    from scenarios.model import save_scenario
    from scenarios.replay.runner import replay_scenario
    from scenarios.replay.simulate import ReplayConfig
    from solver.params import load_params

    path = Path(args.scenario)
    if path.is_dir():  # an MDRPLIB instance folder: import it on the fly
        out = Path(args.out or ".") / f"{path.name}.json"
        path = save_scenario(scenario_from_mdrp(path), out)
    params = load_params(args.config or DEFAULT_CONFIG)
    config = ReplayConfig(
        batch_interval_s=args.batch_interval,
        realtime_speed=args.realtime,
        check_plans=args.check,
    )
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    _, report = replay_scenario(
        path,
        policies,
        params=params,
        budget_s=args.budget,
        config=config,
        server=args.server or "",
        out_dir=Path(args.out) if args.out else None,
        processes=args.jobs,
        progress=not args.quiet,
        record_dir=Path(args.record) if args.record else None,
        pictures=not args.no_pictures,
    )
    print(report)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Replay scenarios with a grid (or a search) of solver parameter sets and compare KPIs."""
    from scenarios.replay.simulate import ReplayConfig
    from scenarios.tune import (
        grid_candidates,
        parse_axis,
        search_candidates,
        tune,
        write_tuning,
    )
    from solver.params import load_params

    base = load_params(args.config or DEFAULT_CONFIG)
    axes = [parse_axis(text) for text in args.param]
    if args.trials:
        candidates = search_candidates(base, axes, args.trials, seed=args.seed)
    else:
        candidates = grid_candidates(base, axes)
    front = tuple(k.strip() for k in args.front.split(",") if k.strip())
    report = tune(
        args.scenario,
        candidates,
        config=ReplayConfig(batch_interval_s=args.batch_interval),
        processes=args.jobs,
        front_kpis=front,
        max_latency_ms=args.max_latency_ms,
        progress=not args.quiet,
    )
    print(report.table())
    written = write_tuning(report, args.out, picture=not args.no_pictures)
    print("written: " + ", ".join(str(p) for p in written))
    print(f"apply the chosen set: campus-dispatch admin update --file {written[2]}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``scenario``, ``replay`` and ``tune`` to the ``campus-dispatch`` subcommands."""
    from scenarios.generate import PERIODS, VARIANTS
    from scenarios.replay.policies import POLICIES

    scenario = sub.add_parser("scenario", help="generate, import and check scenario files")
    verbs = scenario.add_subparsers(dest="verb", required=True)
    gen = verbs.add_parser("generate", help="a peak period on a bundled campus")
    gen.add_argument(
        "--campus", default="northwestern", help="campus id: bundled, or onboarded in --maps-dir"
    )
    gen.add_argument(
        "--maps-dir",
        type=Path,
        default=default_maps_dir(),
        help="onboarded campuses (default: $CAMPUS_DISPATCH_MAPS_DIR or "
        "~/.local/share/campus-dispatch/maps)",
    )
    gen.add_argument("--period", choices=sorted(PERIODS), default="lunch")
    gen.add_argument("--orders", type=int, default=600, help="orders in the base stream")
    gen.add_argument("--riders", type=int, default=40)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--variant", choices=VARIANTS, default="normal")
    gen.add_argument("-o", "--output", type=Path, required=True, help="scenario JSON to write")
    gen.set_defaults(func=cmd_scenario_generate)
    mdrp = verbs.add_parser("import-mdrp", help="a Grubhub MDRPLIB instance folder")
    mdrp.add_argument("folder", type=Path)
    mdrp.add_argument("--capacity", type=int, default=4, help="courier bag capacity (orders)")
    mdrp.add_argument("-o", "--output", type=Path, required=True)
    mdrp.set_defaults(func=cmd_scenario_import_mdrp)
    info = verbs.add_parser("info", help="validate scenario files, one summary line each")
    info.add_argument("files", type=Path, nargs="+")
    info.set_defaults(func=cmd_scenario_info)

    replay = sub.add_parser("replay", help="replay a scenario and report delivery KPIs")
    replay.add_argument("scenario", help="scenario JSON (or an MDRPLIB instance folder)")
    replay.add_argument(
        "--policy",
        default=",".join(POLICIES),
        help=f"comma-separated, from {', '.join(POLICIES)} (default: all)",
    )
    replay.add_argument("--server", default="", help="host:port: dispatch through the service")
    replay.add_argument("--out", default="", help="folder for kpis.json/csv, orders CSVs, PNGs")
    replay.add_argument("--budget", type=float, default=0.2, help="budget per dispatch (s)")
    replay.add_argument("--batch-interval", type=int, default=30, help="virtual s per batch")
    replay.add_argument(
        "--realtime", type=float, default=0.0, help="virtual/wall speed (1: real time; 0: fast)"
    )
    replay.add_argument("--config", type=Path, default=None, help="TOML with a [solver] table")
    replay.add_argument("--jobs", type=int, default=1, help="policies replayed in parallel")
    replay.add_argument("--record", default="", help="write each SolveRequest JSON here")
    replay.add_argument("--check", action="store_true", help="check every plan (slower)")
    replay.add_argument("--no-pictures", action="store_true")
    replay.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(func=cmd_replay)

    tune = sub.add_parser(
        "tune", help="compare solver parameter sets by replaying scenarios (grid or search)"
    )
    tune.add_argument(
        "--scenario",
        type=Path,
        nargs="+",
        action="extend",
        required=True,
        help="scenario JSON files (each set is replayed on all; KPIs are their mean)",
    )
    tune.add_argument(
        "--param",
        action="append",
        required=True,
        help="KEY=v1,v2,... (grid values / search choices) or KEY=[log:]low..high (search), "
        "KEY as solver.lateness_cost_per_s, or budget_ms; repeat per parameter",
    )
    tune.add_argument(
        "--trials", type=int, default=0, help="a seeded search of N sets instead of the grid"
    )
    tune.add_argument("--seed", type=int, default=0, help="seed of the search")
    tune.add_argument(
        "--config", type=Path, default=None, help="base parameters ([solver] of a TOML file)"
    )
    tune.add_argument("--jobs", type=int, default=2, help="replays run at once (processes)")
    tune.add_argument("--out", type=Path, default=Path("tune-out"), help="output folder")
    tune.add_argument(
        "--front",
        default="on_time_rate,solver_latency_p99_ms",
        help="KPIs of the Pareto front (comma-separated KPI names)",
    )
    tune.add_argument(
        "--max-latency-ms", type=float, default=None, help="latency p99 cap of the chosen set"
    )
    tune.add_argument("--batch-interval", type=int, default=30, help="virtual s per batch")
    tune.add_argument("--no-pictures", action="store_true")
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tune.set_defaults(func=cmd_tune)
