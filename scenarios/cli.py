"""The ``scenario`` (generate, import MDRP, info), ``replay`` and ``tune`` subcommands of
``campus-dispatch`` (assembled by :mod:`campus_dispatch.cli`), and the errors they report.

Exit status of each: 0 done; 1 (``replay --server``) no dispatch service answered, or it does
not plan on the scenario's campus; 2 bad usage (an option's value, told by argparse) or bad
input (a scenario file, a campus, a parameter, an output path): one ``error:`` line naming it
and what to do."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from campus_maps import UnknownCampusError, default_maps_dir
from scenarios.model import ScenarioError
from scenarios.replay.kpis import KPI_INFO
from scenarios.replay.policies import POLICIES
from scenarios.replay.runner import ReplayError, ServerUnreachableError
from scenarios.tune import FRONT_KPIS, TuneError
from solver.params import DEFAULT_CONFIG, ParamsError

#: Errors a command reports as ``error: <label>: <message>`` (exit 2) instead of a traceback.
ERRORS: dict[type[Exception], str] = {
    ParamsError: "config",
    ScenarioError: "scenario",
    TuneError: "tune",
    ReplayError: "replay",
}
#: Exit status when no dispatch service answered (``replay --server``), as ``solve``/``admin``.
EXIT_NO_SERVER = 1
#: Exit status of bad usage or bad input.
EXIT_USAGE = 2
#: KPIs a Pareto front can be drawn on (those with a better direction).
FRONT_CHOICES = tuple(k for k, info in KPI_INFO.items() if info[2])


# ------------------------------------------------------------------ option values
def _number(
    convert: Callable[[str], float], low: float, *, above: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: ``convert`` the text, then require ``>= low`` (``> low`` with
    ``above``) and a finite value."""
    kind = "an integer" if convert is int else "a number"

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not {kind}") from None
        if not math.isfinite(value) or value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {'>' if above else '>='} {low:g}")
        return value

    parse.__name__ = convert.__name__
    return parse


POSITIVE = _number(float, 0, above=True)
NON_NEGATIVE = _number(float, 0)
POSITIVE_INT = _number(int, 1)
NON_NEGATIVE_INT = _number(int, 0)
#: ``--accept-delay``'s default: ``ReplayConfig.accept_delay_s`` (not imported here: the replay
#: loads the solver, and ``--help`` should not wait for it; a test keeps them equal).
ACCEPT_DELAY_S = 60


def policy_list(text: str) -> list[str]:
    """``--policy``: comma-separated policy names (each once, in the order given)."""
    names = list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in POLICIES]
    if unknown or not names:
        what = f"unknown policy {unknown[0]!r}" if unknown else "no policy named"
        raise argparse.ArgumentTypeError(f"{what}: choose from {', '.join(POLICIES)}")
    return names


def front_list(text: str) -> tuple[str, ...]:
    """``--front``: comma-separated KPI names, each with a better direction."""
    names = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in names if k not in FRONT_CHOICES]
    if unknown or not names:
        what = f"unknown front KPI {unknown[0]!r}" if unknown else "no KPI named"
        raise argparse.ArgumentTypeError(f"{what}: choose from {', '.join(FRONT_CHOICES)}")
    return names


def existing_file(text: str) -> Path:
    """An input file that must exist (``--config``, ``tune --scenario``)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{text}: {'is a folder, not a file' if path.is_dir() else 'no such file'}"
        )
    return path


def existing_path(text: str) -> Path:
    """An input file or folder that must exist (``replay SCENARIO``)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def folder_to_write(text: str) -> Path:
    """An output folder: may not exist yet (it is made), but may not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder; name a folder")
    return path


def file_to_write(text: str) -> Path:
    """An output file: not a folder, and no parent is a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; name a file such as lunch.json")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            break
    return path


# ------------------------------------------------------------------ commands
def cmd_scenario_generate(args: argparse.Namespace) -> int:
    """Generate a peak-period scenario on a bundled campus and write it."""
    from campus_maps import load_campus
    from scenarios.generate import generate_scenario
    from scenarios.model import save_scenario

    try:
        campus = load_campus(args.campus, maps_dir=args.maps_dir)
    except UnknownCampusError as exc:
        raise ScenarioError(
            "--campus",
            args.campus,
            f"unknown campus (known: {', '.join(exc.known) or 'none'}); pick one of those, "
            f"or onboard it first: campus-dispatch campus add {args.campus} --osm EXTRACT.osm.pbf",
        ) from None
    scenario = generate_scenario(
        campus,
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
    """Validate scenario files: one line each, a summary on stdout or the error on stderr;
    exit 2 when any file is bad (every file is still checked)."""
    from scenarios.model import load_scenario

    bad = 0
    for path in args.files:
        try:
            summary = load_scenario(path).summary()
        except ScenarioError as exc:
            bad += 1
            print(f"error: scenario: {exc}", file=sys.stderr, flush=True)
            continue
        print(f"{path}: {summary}", flush=True)
    if bad and len(args.files) > 1:
        print(f"{bad} of {len(args.files)} files are not valid scenarios", file=sys.stderr)
    return EXIT_USAGE if bad else 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a scenario against dispatch policies (or a server) and report delivery KPIs."""
    from scenarios.mdrp import scenario_from_mdrp
    from scenarios.model import save_scenario
    from scenarios.replay.runner import replay_scenario
    from scenarios.replay.simulate import ReplayConfig
    from solver.params import load_params

    path = Path(args.scenario)
    if path.is_dir():  # an MDRPLIB instance folder: import it on the fly
        out = (args.out or Path(".")) / f"{path.name}.json"
        path = save_scenario(scenario_from_mdrp(path), out)
    params = load_params(args.config or DEFAULT_CONFIG)
    config = ReplayConfig(
        batch_interval_s=args.batch_interval,
        realtime_speed=args.realtime,
        check_plans=args.check,
        accept_delay_s=args.accept_delay,
    )
    try:
        _, report = replay_scenario(
            path,
            args.policy,
            params=params,
            budget_s=args.budget,
            config=config,
            server=args.server or "",
            out_dir=args.out,
            processes=args.jobs,
            progress=not args.quiet,
            record_dir=args.record,
            pictures=not args.no_pictures,
        )
    except ServerUnreachableError as exc:
        print(f"error: replay: {exc}", file=sys.stderr)
        return EXIT_NO_SERVER
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
    report = tune(
        args.scenario,
        candidates,
        config=ReplayConfig(batch_interval_s=args.batch_interval, accept_delay_s=args.accept_delay),
        processes=args.jobs,
        front_kpis=args.front,
        max_latency_ms=args.max_latency_ms,
        progress=not args.quiet,
    )
    print(report.table())
    written = write_tuning(report, args.out, picture=not args.no_pictures)
    print("written: " + ", ".join(str(p) for p in written))
    print(f"apply the chosen set: campus-dispatch admin update --file {written[2]}")
    return 0


def _add_backend_rules(parser: argparse.ArgumentParser) -> None:
    """The replay's order-backend options (``replay`` and ``tune`` replay alike)."""
    parser.add_argument(
        "--batch-interval", type=POSITIVE_INT, default=30, help="virtual seconds between batches"
    )
    parser.add_argument(
        "--accept-delay",
        type=NON_NEGATIVE_INT,
        default=ACCEPT_DELAY_S,
        metavar="SECONDS",
        help="seconds a rider takes to accept an order pushed to it: the order is assigned "
        "(soft) until then, committed (hard) after",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``scenario``, ``replay`` and ``tune`` to the ``campus-dispatch`` subcommands."""
    from scenarios.generate import PERIODS, VARIANTS

    scenario = sub.add_parser(
        "scenario",
        help="generate, import and check scenario files",
        description="Scenario files: generate a peak period on a campus, import a Grubhub "
        "MDRPLIB instance, or check files. Exit status: 0 done, 2 bad usage or a bad file "
        "(one 'error:' line each).",
    )
    verbs = scenario.add_subparsers(dest="verb", required=True, metavar="VERB")
    gen = verbs.add_parser(
        "generate",
        help="a peak period on a bundled or onboarded campus",
        description="Generate a peak-period scenario (riders and an order stream) on a campus "
        "and write it as JSON.",
    )
    gen.add_argument(
        "--campus",
        default="northwestern",
        help="campus id: bundled, or onboarded in --maps-dir ('campus-dispatch campus list')",
    )
    gen.add_argument(
        "--maps-dir",
        type=Path,
        metavar="DIR",
        default=default_maps_dir(),
        help="onboarded campuses (default: $CAMPUS_DISPATCH_MAPS_DIR or "
        "~/.local/share/campus-dispatch/maps)",
    )
    gen.add_argument("--period", choices=sorted(PERIODS), default="lunch", help="the peak period")
    gen.add_argument(
        "--orders", type=NON_NEGATIVE_INT, default=600, help="orders in the base stream"
    )
    gen.add_argument("--riders", type=POSITIVE_INT, default=40, help="riders on shift")
    gen.add_argument("--seed", type=int, default=1, help="seed of the random streams")
    gen.add_argument(
        "--variant",
        choices=VARIANTS,
        default="normal",
        help="what comes on top of the base stream (see the README)",
    )
    gen.add_argument(
        "-o", "--output", type=file_to_write, required=True, help="scenario JSON to write"
    )
    gen.set_defaults(func=cmd_scenario_generate)
    mdrp = verbs.add_parser(
        "import-mdrp",
        help="a Grubhub MDRPLIB instance folder",
        description="Convert a Grubhub MDRPLIB instance folder into a scenario file (on the "
        "instance's Euclidean plane).",
    )
    mdrp.add_argument("folder", type=Path, help="the instance folder")
    mdrp.add_argument(
        "--capacity", type=POSITIVE_INT, default=4, help="courier bag capacity (orders)"
    )
    mdrp.add_argument(
        "-o", "--output", type=file_to_write, required=True, help="scenario JSON to write"
    )
    mdrp.set_defaults(func=cmd_scenario_import_mdrp)
    info = verbs.add_parser(
        "info",
        help="validate scenario files, one summary line each",
        description="Validate scenario files: one line each, the summary (stdout) or the "
        "error (stderr); every file is checked. Exit status: 0 all valid, 2 any bad.",
    )
    info.add_argument("files", type=Path, nargs="+", help="scenario JSON files")
    info.set_defaults(func=cmd_scenario_info)

    replay = sub.add_parser(
        "replay",
        help="replay a scenario and report delivery KPIs",
        description="Replay a scenario on a virtual clock against dispatch policies (or a "
        "running service) and print a KPI table; with --out also KPI files, each order's "
        "life, kpis.png and one routes-POLICY.png per policy (all at the same moment). "
        "Exit status: 0 done, 1 no service answered at --server (or it does not plan on the "
        "scenario's campus), 2 bad usage or a bad file.",
    )
    replay.add_argument("scenario", type=existing_path, help="scenario JSON, or an MDRPLIB folder")
    replay.add_argument(
        "--policy",
        type=policy_list,
        default=",".join(POLICIES),
        metavar="P[,P...]",
        help=f"comma-separated policies from: {', '.join(POLICIES)} (default: all, one after "
        "another)",
    )
    replay.add_argument(
        "--server",
        default="",
        metavar="HOST:PORT",
        help="dispatch through the running service there instead (the policy is the service; "
        "campus scenarios)",
    )
    replay.add_argument(
        "--out",
        type=folder_to_write,
        default=None,
        metavar="DIR",
        help="folder for kpis.json/csv, orders CSVs and PNGs (default: none written)",
    )
    replay.add_argument(
        "--budget",
        type=POSITIVE,
        default=0.2,
        metavar="SECONDS",
        help="time budget of each dispatch call (s)",
    )
    _add_backend_rules(replay)
    replay.add_argument(
        "--realtime",
        type=NON_NEGATIVE,
        default=0.0,
        help="virtual/wall clock speed: 1 real time, 10 ten times faster, 0 as fast as possible",
    )
    replay.add_argument(
        "--config",
        type=existing_file,
        default=None,
        metavar="FILE",
        help="TOML file with a [solver] table (default: config/dispatch.toml)",
    )
    replay.add_argument(
        "--jobs", type=POSITIVE_INT, default=1, help="policies replayed at once (processes)"
    )
    replay.add_argument(
        "--record",
        type=folder_to_write,
        default=None,
        metavar="DIR",
        help="write each SolveRequest sent as JSON there (campus scenarios; default: none)",
    )
    replay.add_argument("--check", action="store_true", help="check every plan (slower)")
    replay.add_argument(
        "--no-pictures", action="store_true", help="with --out: no kpis.png nor route maps"
    )
    replay.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(func=cmd_replay)

    tune = sub.add_parser(
        "tune",
        help="compare solver parameter sets by replaying scenarios (grid or search)",
        description="Replay scenarios with a grid (or a seeded search) of solver parameter "
        "sets, print a table (* the Pareto front on the --front KPIs, < the chosen set: the "
        "front set with the best on-time rate) and write tune.csv, tune.json, chosen.toml and "
        "tradeoff.png (the first front KPI against the second). Plan stability against "
        "delivery, for instance: --param reassignment_cost=0,100,300,1000 --param "
        "freeze_horizon_s=0,300 --front reassigned_share,click_to_door_mean_min. Exit status: "
        "0 done, 2 bad usage, a bad file or a bad parameter.",
    )
    tune.add_argument(
        "--scenario",
        type=existing_file,
        nargs="+",
        action="extend",
        required=True,
        help="scenario JSON files (each set is replayed on all; KPIs are their mean)",
    )
    tune.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="KEY=VALUES",
        help="KEY=v1,v2,... (grid values / search choices) or KEY=[log:]low..high (search), "
        "KEY as solver.lateness_cost_per_s, or budget_ms; repeat per parameter",
    )
    tune.add_argument(
        "--trials",
        type=NON_NEGATIVE_INT,
        default=0,
        help="a seeded search of N sets instead of the grid (0: the grid)",
    )
    tune.add_argument("--seed", type=int, default=0, help="seed of the search")
    tune.add_argument(
        "--config",
        type=existing_file,
        default=None,
        metavar="FILE",
        help="base parameters: the [solver] table of a TOML file (default: config/dispatch.toml)",
    )
    tune.add_argument(
        "--jobs", type=POSITIVE_INT, default=2, help="replays run at once (processes)"
    )
    tune.add_argument(
        "--out",
        type=folder_to_write,
        default=Path("tune-out"),
        metavar="DIR",
        help="output folder (made if missing)",
    )
    tune.add_argument(
        "--front",
        type=front_list,
        default=",".join(FRONT_KPIS),
        metavar="KPI,KPI",
        help="KPIs of the Pareto front, comma-separated (the table shows them; tradeoff.png "
        "plots the first up and the second across, a single one against latency p99; the "
        "chosen set is the front set with the best on-time rate, ties going to the front KPIs "
        "in order), from: " + ", ".join(FRONT_CHOICES),
    )
    tune.add_argument(
        "--max-latency-ms",
        type=POSITIVE,
        default=None,
        help="latency p99 cap of the chosen set (ms; default: none): the best on-time rate "
        "among the front sets within it, or the fastest front set when none is",
    )
    _add_backend_rules(tune)
    tune.add_argument("--no-pictures", action="store_true", help="no tradeoff.png")
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tune.set_defaults(func=cmd_tune)
