"""The ``campus-dispatch`` command: ``serve`` the gRPC service, ``solve`` a request file,
``admin`` the running configuration, ``scenario`` files (generate, import MDRP, show),
``replay`` them against dispatch policies and ``tune`` solver parameters on them."""

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
    from server.auth import AdminAuth

    config = load_config(args.config)
    if args.port is not None:
        config = config.replace(port=args.port)
    auth = AdminAuth.from_env(token_file=args.admin_token_file)
    return serve(config, config_path=args.config, auth=auth)


def _print_rpc_error(err: grpc.RpcError) -> None:
    """The status code, message and every bad field of a failed call, on stderr."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
    status = rpc_status.from_call(err)
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            for v in bad.field_violations:
                print(f"  {v.field}: {v.description}", file=sys.stderr)


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
            _print_rpc_error(err)
            return 1
    if args.format in ("json", "both"):
        print(dumps(response))
    if args.format in ("table", "both"):
        print(format_response(response))
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """GetConfig / UpdateConfig / ReloadConfig on a running server."""
    from server.client import AdminClient, format_change, read_admin_token

    token = read_admin_token(args.token_file)
    if not token:
        print(
            "error: no admin token: pass --token-file or set CAMPUS_DISPATCH_ADMIN_TOKEN",
            file=sys.stderr,
        )
        return 2
    with AdminClient(args.server, token, client_id=args.client_id) as client:
        try:
            if args.verb == "get":
                got = client.get_config(timeout_s=args.timeout)
                if args.keys:
                    values = {s.key: s.value for s in got.settings}
                    unknown = [k for k in args.keys if k not in values]
                    if unknown:
                        print(f"error: unknown setting(s): {', '.join(unknown)}", file=sys.stderr)
                        return 2
                    for key in args.keys:
                        print(f"{key} = {values[key]}")
                else:
                    print(got.toml, end="")
                return 0
            if args.verb == "update":
                settings = dict(_split_setting(text) for text in args.settings)
                toml = Path(args.file).read_text() if args.file else ""
                if not settings and not toml:
                    print("error: give KEY=VALUE settings and/or --file", file=sys.stderr)
                    return 2
                change = client.update_config(
                    settings,
                    toml=toml,
                    dry_run=args.dry_run,
                    if_version=args.if_version,
                    reason=args.reason,
                    timeout_s=args.timeout,
                )
            else:
                change = client.reload_config(reason=args.reason, timeout_s=args.timeout)
        except grpc.RpcError as err:
            _print_rpc_error(err)
            return 1
    print(format_change(change))
    return 0


def _split_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"setting {text!r}: expected table.key=value")
    return key.strip(), value.strip()


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


def cmd_tune(args: argparse.Namespace) -> int:
    """Replay scenarios with a grid (or a search) of solver parameter sets and compare KPIs."""
    from scenarios.simulate import ReplayConfig
    from scenarios.tune import (
        grid_candidates,
        parse_axis,
        search_candidates,
        tune,
        write_tuning,
    )
    from server.config import DEFAULT_CONFIG
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``campus-dispatch``."""
    parser = argparse.ArgumentParser(prog="campus-dispatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--config", type=Path, default=None, help="TOML file (config/dispatch.toml)")
    serve.add_argument("--port", type=int, default=None, help="override the port (0: any)")
    serve.add_argument(
        "--admin-token-file",
        type=Path,
        default=None,
        help="admin API tokens, one per line (`token` or `name token`); also "
        "$CAMPUS_DISPATCH_ADMIN_TOKEN_FILE or $CAMPUS_DISPATCH_ADMIN_TOKEN",
    )
    serve.set_defaults(func=cmd_serve)
    solve = sub.add_parser("solve", help="send a SolveRequest JSON file to a server")
    solve.add_argument("request", type=Path, help="SolveRequest as JSON")
    solve.add_argument("--server", default="127.0.0.1:50051", help="host:port")
    solve.add_argument("--timeout", type=float, default=5.0, help="deadline of the call (s)")
    solve.add_argument("--client-id", default="cli", help="client-id metadata (rate limits)")
    solve.add_argument("--format", choices=("json", "table", "both"), default="both")
    solve.set_defaults(func=cmd_solve)
    _add_admin_commands(sub)
    _add_scenario_commands(sub)
    args = parser.parse_args(argv)
    from scenarios.model import ScenarioError
    from scenarios.tune import TuneError
    from solver.params import ParamsError

    try:
        return int(args.func(args))
    except (ConfigError, ParamsError) as exc:
        print(f"error: config: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"error: scenario: {exc}", file=sys.stderr)
        return 2
    except TuneError as exc:
        print(f"error: tune: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_admin_commands(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser(
        "admin", help="read or change a running server's configuration (admin token needed)"
    )
    verbs = admin.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default="127.0.0.1:50051", help="host:port")
    common.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file with the admin token (default: $CAMPUS_DISPATCH_ADMIN_TOKEN_FILE, "
        "else $CAMPUS_DISPATCH_ADMIN_TOKEN)",
    )
    common.add_argument("--client-id", default="cli", help="client-id metadata (change log)")
    common.add_argument("--timeout", type=float, default=5.0, help="deadline of the call (s)")
    get = verbs.add_parser("get", parents=[common], help="print the configuration in force")
    get.add_argument("keys", nargs="*", help="only these table.key settings")
    update = verbs.add_parser(
        "update", parents=[common], help="change settings live (all or nothing); prints the diff"
    )
    update.add_argument(
        "settings", nargs="*", help="table.key=value, e.g. solver.lateness_cost_per_s=30"
    )
    update.add_argument("--file", type=Path, default=None, help="TOML file (e.g. from tune)")
    update.add_argument("--dry-run", action="store_true", help="validate and diff only")
    update.add_argument(
        "--if-version", type=int, default=0, help="apply only at this config version"
    )
    update.add_argument("--reason", default="", help="written to the change log")
    reload = verbs.add_parser(
        "reload", parents=[common], help="make the server read its config file again"
    )
    reload.add_argument("--reason", default="", help="written to the change log")
    admin.set_defaults(func=cmd_admin)


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


if __name__ == "__main__":
    sys.exit(main())
