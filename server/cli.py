"""The ``serve``, ``solve`` and ``admin`` subcommands of ``campus-dispatch`` (assembled by
:mod:`campus_dispatch.cli`): run the gRPC service, send it a request file, read or change its
running configuration; and the errors they report."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from google.protobuf import json_format

from server.config import ENV_OVERRIDES, ConfigError, StartError, load_config
from solver.params import ParamsError
from storm import GuardMode

#: Errors a command reports as ``error: <label>: <message>`` (exit 2) instead of a traceback.
ERRORS: dict[type[Exception], str] = {
    ConfigError: "config",
    ParamsError: "config",
    StartError: "serve",
}
#: What ``serve --help`` says about the environment (each variable overrides its key of the
#: configuration file; an option overrides the variable).
SERVE_EPILOG = (
    "environment: "
    + ", ".join(f"{var} (server.{key})" for var, key in ENV_OVERRIDES.items())
    + " override the configuration file; the options above override them. Admin tokens: "
    "CAMPUS_DISPATCH_ADMIN_TOKEN_FILE or CAMPUS_DISPATCH_ADMIN_TOKEN. "
    "SIGTERM/SIGINT: health NOT_SERVING for server.drain_s, then in-flight calls get "
    "server.shutdown_grace_s, exit 0 (a second signal skips the drain); SIGHUP: read the "
    "configuration file again."
)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM."""
    from server.app import serve
    from server.auth import AdminAuth

    config = load_config(args.config)
    given = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("metrics_port", args.metrics_port),
        )
        if value is not None
    }
    if given:
        config = config.replace(**given)
    auth = AdminAuth.from_env(token_file=args.admin_token_file)
    return serve(config, config_path=args.config, auth=auth)


def _print_rpc_error(err: grpc.RpcError, args: argparse.Namespace) -> None:
    """The status code, message and every bad field of a failed call, on stderr (with what to
    do when no server answered, or not in time)."""
    from api.client import bad_fields

    code, details = err.code(), err.details()
    if code is grpc.StatusCode.UNAVAILABLE:
        details = (
            f"no server answered at {args.server} (start one with `campus-dispatch serve`, or "
            f"pass --server host:port): {details}"
        )
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        details = f"no answer within --timeout {args.timeout:g} s (raise it): {details}"
    print(f"error: {code.name}: {details}", file=sys.stderr)
    for field, description in bad_fields(err):
        print(f"  {field}: {description}", file=sys.stderr)


def campus_zone(campus_id: str) -> tzinfo:
    """The time zone of a campus this machine knows (bundled, or onboarded in the maps
    directory): its ``timezone`` setting; UTC when the campus or its zone is not known here."""
    from campus_maps import (
        CampusConfigError,
        UnknownCampusError,
        default_maps_dir,
        load_campus_config,
    )

    if not campus_id:
        return UTC
    try:
        return ZoneInfo(load_campus_config(campus_id, maps_dir=default_maps_dir()).timezone)
    except (UnknownCampusError, CampusConfigError, ZoneInfoNotFoundError, OSError, ValueError):
        return UTC


def solve_format(requested: str | None) -> str:
    """The output of ``solve``: as asked, else JSON when stdout is not a terminal (a pipe, a
    file: ``| jq`` works) and JSON then the table on a terminal."""
    if requested:
        return requested
    return "both" if sys.stdout.isatty() else "json"


def cmd_solve(args: argparse.Namespace) -> int:
    """Send a SolveRequest JSON file to a server; print the plan as JSON and/or as a table."""
    from api.client import DispatchClient, dumps, format_response, read_request

    try:
        request = read_request(args.request)
    except OSError as exc:
        print(f"error: {args.request}: cannot read it: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except json_format.ParseError as exc:
        print(f"error: {args.request}: not a SolveRequest in JSON: {exc}", file=sys.stderr)
        return 2
    output = solve_format(args.format)
    with DispatchClient(args.server, client_id=args.client_id) as client:
        try:
            response = client.solve(request, timeout_s=args.timeout)
        except grpc.RpcError as err:
            _print_rpc_error(err, args)
            return 1
        campus_id = request.campus_id
        if output != "json" and not campus_id:  # the server's default campus
            try:
                listed = client.list_campuses(timeout_s=args.timeout).campuses
                campus_id = next((c.id for c in listed if c.is_default), "")
            except grpc.RpcError:
                campus_id = ""
    if output in ("json", "both"):
        print(dumps(response))
    if output in ("table", "both"):
        print(format_response(response, tz=campus_zone(campus_id)))
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    """GetConfig / UpdateConfig / ReloadConfig / LoadCampus and the storm guard's calls on a
    running server."""
    from api.client import AdminClient, format_change, format_held
    from api.pb.campus_dispatch.v1 import admin_pb2 as apb
    from api.tokens import read_admin_token

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
            if args.verb == "load-campus":
                loaded = client.load_campus(
                    args.campus_id, reload=args.reload, reason=args.reason, timeout_s=args.timeout
                )
                state = "loaded" if loaded.loaded else "loading"
                print(f"campus {loaded.campus_id}: {state} ({loaded.detail})")
                return 0
            if args.verb == "held":
                print(format_held(client.list_held(args.campus, timeout_s=args.timeout)))
                return 0
            if args.verb in ("release", "confirm"):
                if not args.order_ids and not args.customer:
                    print("error: name held orders and/or --customer accounts", file=sys.stderr)
                    return 2
                verdict = apb.VERDICT_RELEASE if args.verb == "release" else apb.VERDICT_CONFIRM
                reviewed = client.review_orders(
                    verdict,
                    args.order_ids,
                    customer_ids=args.customer,
                    campus_id=args.campus,
                    reason=args.reason,
                    timeout_s=args.timeout,
                )
                done = ", ".join(reviewed.order_ids) or "no held order"
                past = "released" if args.verb == "release" else "confirmed"
                print(f"{past}: {done} (by {reviewed.reviewed_by})")
                if reviewed.unknown_order_ids:
                    missing = ", ".join(reviewed.unknown_order_ids)
                    print(f"not held or flagged (nothing done): {missing}", file=sys.stderr)
                return 0
            if args.verb == "guard-mode":
                mode = apb.GuardMode.Value(f"GUARD_MODE_{args.mode.upper()}")
                changed = client.set_guard_mode(
                    mode, campus_id=args.campus, reason=args.reason, timeout_s=args.timeout
                )
                old = apb.GuardMode.Name(changed.old_mode).removeprefix("GUARD_MODE_").lower()
                print(f"campus {changed.campus_id}: guard mode {old} -> {args.mode}")
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
            _print_rpc_error(err, args)
            return 1
    print(format_change(change))
    return 0


def _split_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"setting {text!r}: expected table.key=value")
    return key.strip(), value.strip()


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``solve`` and ``admin`` to the ``campus-dispatch`` subcommands."""
    serve = sub.add_parser(
        "serve",
        help="run the gRPC service",
        description="Run the gRPC dispatch service (with health, reflection, the admin API "
        "and a Prometheus endpoint) until SIGTERM; prints one ready line on stdout, logs JSON "
        "lines on stderr.",
        epilog=SERVE_EPILOG,
    )
    serve.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML configuration file (default: the shipped dispatch.toml, config/dispatch.toml "
        "in the repository)",
    )
    serve.add_argument(
        "--host",
        default=None,
        help="listen address of gRPC and metrics (default: server.host, env HOST; "
        "0.0.0.0: every interface)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="gRPC port; 0: any free port (default: server.port, env PORT)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus /metrics port; 0: any free port, -1: no endpoint (default: "
        "server.metrics_port, env METRICS_PORT)",
    )
    serve.add_argument(
        "--admin-token-file",
        type=Path,
        default=None,
        help="admin API tokens, one per line ('token' or 'name token') (default: "
        "$CAMPUS_DISPATCH_ADMIN_TOKEN_FILE, and $CAMPUS_DISPATCH_ADMIN_TOKEN; none: the "
        "admin API is off)",
    )
    serve.set_defaults(func=cmd_serve)
    solve = sub.add_parser(
        "solve",
        help="send a SolveRequest JSON file to a server",
        description="Send a SolveRequest (proto3 JSON) to a running server and print the plan. "
        "Exit status: 0 planned, 1 the server answered an error (the status, the message and "
        "every bad field on stderr) or none answered, 2 the file cannot be read.",
    )
    solve.add_argument(
        "request", type=Path, help="SolveRequest as JSON (e.g. examples/solve_request.json)"
    )
    solve.add_argument("--server", default="127.0.0.1:50051", help="host:port of the server")
    solve.add_argument("--timeout", type=float, default=5.0, help="deadline of the call (s)")
    solve.add_argument("--client-id", default="cli", help="client-id metadata (rate limits)")
    solve.add_argument(
        "--format",
        choices=("json", "table", "both"),
        default=None,
        help="json: the SolveResponse as JSON only; table: one line per stop, times of day in "
        "the campus's time zone; both: JSON then the table (default: json when stdout is "
        "not a terminal, so that '| jq' works; both on a terminal)",
    )
    solve.set_defaults(func=cmd_solve)
    _add_admin_commands(sub)


def _add_admin_commands(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser(
        "admin",
        help="read or change a running server's configuration, review held orders (admin "
        "token needed)",
        description="Call a running server's admin API (a bearer token from --token-file, "
        "$CAMPUS_DISPATCH_ADMIN_TOKEN_FILE or $CAMPUS_DISPATCH_ADMIN_TOKEN). Exit status: 0 "
        "done, 1 the server refused or failed the call, 2 bad usage or no token.",
    )
    verbs = admin.add_subparsers(
        dest="verb", required=True, metavar="VERB", help="what to do (VERB --help: its options)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default="127.0.0.1:50051", help="host:port of the server")
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
        "--if-version",
        type=int,
        default=0,
        help="apply only if the server is at this config version (0: at any)",
    )
    update.add_argument("--reason", default="", help="written to the change log")
    reload = verbs.add_parser(
        "reload", parents=[common], help="make the server read its config file again"
    )
    reload.add_argument("--reason", default="", help="written to the change log")
    load_campus = verbs.add_parser(
        "load-campus",
        parents=[common],
        help="make the server load a campus onboarded in its maps directory (no restart)",
    )
    load_campus.add_argument("campus_id", help="campus id (folder name)")
    load_campus.add_argument(
        "--reload", action="store_true", help="load it again (e.g. after campus add --force)"
    )
    load_campus.add_argument("--reason", default="", help="written to the change log")
    campus = argparse.ArgumentParser(add_help=False)
    campus.add_argument("--campus", default="", help="campus id (default: the server's default)")
    verbs.add_parser(
        "held",
        parents=[common, campus],
        help="storm guard: a campus's mode, storm level and held orders with their evidence",
    )
    for verb, what in (
        ("release", "legitimate: dispatch them, never flag them or their accounts again"),
        ("confirm", "malicious: keep them held, hold their accounts' later orders too"),
    ):
        review = verbs.add_parser(verb, parents=[common, campus], help=f"storm guard: {what}")
        review.add_argument("order_ids", nargs="*", help="held (or flagged) order ids")
        review.add_argument(
            "--customer",
            action="append",
            default=[],
            help="every held order of this account (repeatable)",
        )
        review.add_argument("--reason", default="", help="written to the log")
    guard_mode = verbs.add_parser(
        "guard-mode", parents=[common, campus], help="storm guard: set a campus's mode live"
    )
    guard_mode.add_argument(
        "mode",
        choices=[m.value for m in GuardMode],
        help="off, flag (report only), deprioritise, quarantine, auto (by level)",
    )
    guard_mode.add_argument("--reason", default="", help="written to the log")
    admin.set_defaults(func=cmd_admin)
