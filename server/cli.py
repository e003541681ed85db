"""The ``campus-dispatch`` command: ``serve`` the gRPC service, ``solve`` a request file,
``scenario`` files (generate, import MDRP, show) and ``replay`` them against dispatch policies."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from server.config import ConfigError, load_config


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM."""
    from server.app import serve

    config = load_config(args.config)
    if args.port is not None:
        config = config.replace(port=args.port)
    return serve(config)


def cmd_solve(args: argparse.Namespace) -> int:
    """Send a SolveRequest JSON file to a server; print the plan as JSON and as a table."""
    from server.client import DispatchClient, dumps, format_response, read_request

    try:
        request = read_request(args.request)
    except (OSError, json_format.ParseError) as exc:
        print(f"error: {args.request}: {exc}", file=sys.stderr)
        return 2
    with DispatchClient(args.server, client_id=args.client_id) as client:
        try:
            response = client.solve(request, timeout_s=args.timeout)
        except grpc.RpcError as err:
            print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
            from grpc_status import rpc_status

            status = rpc_status.from_call(err)
            for detail in status.details if status else ():
                from google.rpc import error_details_pb2

                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    for v in bad.field_violations:
                        print(f"  {v.field}: {v.description}", file=sys.stderr)
            return 1
    if args.format in ("json", "both"):
        print(dumps(response))
    if args.format in ("table", "both"):
        print(format_response(response))
    return 0


def cmd_scenario_generate(args: argparse.Namespace) -> int:
    """Generate a peak-period scenario on a bundled campus and write it."""
    from campus_maps import load_campus
    from scenarios.generate import generate_scenario
    from scenarios.model import save_scenario

    scenario = generate_scenario(
        load_campus(args.campus),
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
    from scenarios.runner import replay_scenario
    from scenarios.simulate import ReplayConfig
    from solver.params import load_params

    path = Path(args.scenario)
    if path.is_dir():  # an MDRPLIB instance folder: import it on the fly
        out = Path(args.out or ".") / f"{path.name}.json"
        path = save_scenario(scenario_from_mdrp(path), out)
    from server.config import DEFAULT_CONFIG

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``campus-dispatch``."""
    parser = argparse.ArgumentParser(prog="campus-dispatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--config", type=Path, default=None, help="TOML file (config/dispatch.toml)")
    serve.add_argument("--port", type=int, default=None, help="override the port (0: any)")
    serve.set_defaults(func=cmd_serve)
    solve = sub.add_parser("solve", help="send a SolveRequest JSON file to a server")
    solve.add_argument("request", type=Path, help="SolveRequest as JSON")
    solve.add_argument("--server", default="127.0.0.1:50051", help="host:port")
    solve.add_argument("--timeout", type=float, default=5.0, help="deadline of the call (s)")
    solve.add_argument("--client-id", default="cli", help="client-id metadata (rate limits)")
    solve.add_argument("--format", choices=("json", "table", "both"), default="both")
    solve.set_defaults(func=cmd_solve)
    _add_scenario_commands(sub)
    args = parser.parse_args(argv)
    from scenarios.model import ScenarioError
    from solver.params import ParamsError

    try:
        return int(args.func(args))
    except (ConfigError, ParamsError) as exc:
        print(f"error: config: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"error: scenario: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_scenario_commands(sub: argparse._SubParsersAction) -> None:
    from scenarios.generate import PERIODS, VARIANTS
    from scenarios.policies import POLICIES

    scenario = sub.add_parser("scenario", help="generate, import and check scenario files")
    verbs = scenario.add_subparsers(dest="verb", required=True)
    gen = verbs.add_parser("generate", help="a peak period on a bundled campus")
    gen.add_argument("--campus", default="northwestern", help="bundled campus id")
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


if __name__ == "__main__":
    sys.exit(main())
