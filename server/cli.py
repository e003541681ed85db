"""The ``campus-dispatch`` command: ``serve`` the gRPC service, ``solve`` a request file."""

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
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: config: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
