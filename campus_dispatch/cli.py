"""The ``campus-dispatch`` command: ``serve`` the gRPC service, ``solve`` a request file,
``admin`` the running configuration, ``scenario`` files (generate, import MDRP, show),
``replay`` them against dispatch policies, ``tune`` solver parameters on them, and bring a
``campus`` from an OpenStreetMap extract (add, check, list, remove).

The command is assembled here from each package's own subcommands (``serve``, ``solve`` and
``admin`` from :mod:`server.cli`; ``scenario``, ``replay`` and ``tune`` from
:mod:`scenarios.cli`; ``campus`` from :mod:`campus_maps.cli`), so no package imports another's
command line. Each package also names the errors
its commands report as one ``error:`` line (exit 2) rather than a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import campus_maps.cli
import scenarios.cli
import server.cli

#: The packages whose subcommands make the command, in help order.
PARTS = (server.cli, scenarios.cli, campus_maps.cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``campus-dispatch``."""
    parser = argparse.ArgumentParser(prog="campus-dispatch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for part in PARTS:
        part.add_commands(sub)
    args = parser.parse_args(argv)
    errors = {kind: label for part in PARTS for kind, label in part.ERRORS.items()}
    try:
        return int(args.func(args))
    except tuple(errors) as exc:
        label = next(label for kind, label in errors.items() if isinstance(exc, kind))
        print(f"error: {label}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
