"""The ``campus-dispatch`` command: ``serve`` the gRPC service, ``solve`` a request file,
``admin`` the running configuration, ``scenario`` files (generate, import MDRP, show),
``replay`` them against dispatch policies, ``tune`` solver parameters on them, and bring a
``campus`` from an OpenStreetMap extract (add, check, list, remove).

The command is assembled here from each package's own subcommands (``serve``, ``solve`` and
``admin`` from :mod:`server.cli`; ``scenario``, ``replay`` and ``tune`` from
:mod:`scenarios.cli`; ``campus`` from :mod:`campus_maps.cli`), so no package imports another's
command line. Each package also names the errors its commands report as one ``error:`` line
rather than a traceback.

Exit status (:data:`EXIT_OK`, :data:`EXIT_SERVER_ERROR`, :data:`EXIT_USAGE`): 0 done; 1 the
server answered a call with an error, or no server answered; 2 bad usage, bad input (a file,
a setting) or a misconfiguration the command refused (a port in use, an unknown campus);
130 interrupted (Ctrl-C)."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence

import campus_dispatch
import campus_maps.cli
import scenarios.cli
import server.cli

#: The packages whose subcommands make the command, in help order.
PARTS = (server.cli, scenarios.cli, campus_maps.cli)

#: Exit status: done.
EXIT_OK = 0
#: Exit status: the server answered with an error (or no server answered).
EXIT_SERVER_ERROR = 1
#: Exit status: bad usage, bad input or a refused misconfiguration (argparse's own code too).
EXIT_USAGE = 2
#: Exit status: interrupted by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

DESCRIPTION = (
    "Rider dispatch for campus food delivery: serve the gRPC service, solve a request file "
    "against a server, admin a running server's configuration, generate or import scenario "
    "files, replay them against dispatch policies, tune solver parameters on them, and "
    "onboard campus maps from OpenStreetMap extracts."
)
EPILOG = (
    "Run 'campus-dispatch COMMAND --help' for a command's options. Exit status: 0 done; 1 the "
    "server answered with an error (or no server answered); 2 bad usage, bad input or "
    "misconfiguration (one 'error:' line says what and what to do); 130 interrupted."
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one worth showing (not ``None``, not a flag's
    ``False``, not empty, and not when the help already speaks of its default)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or default in ("", [], ())
            or (not action.option_strings and action.nargs not in ("?", "*"))
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults; every subcommand's parser is one too
    (argparse makes subparsers of the parent's class)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def version() -> str:
    """The installed version (``campus_dispatch.__version__``, else the package metadata, else
    ``0+unknown`` for a source tree that was never installed)."""
    found = getattr(campus_dispatch, "__version__", None)
    if isinstance(found, str) and found:
        return found
    try:
        return importlib.metadata.version("campus-dispatch")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The whole command's parser."""
    parser = Parser(prog="campus-dispatch", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()}", help="print the version"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )
    for part in PARTS:
        part.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``campus-dispatch``."""
    args = build_parser().parse_args(argv)
    errors = {kind: label for part in PARTS for kind, label in part.ERRORS.items()}
    try:
        return int(args.func(args))
    except tuple(errors) as exc:
        label = next(label for kind, label in errors.items() if isinstance(exc, kind))
        print(f"error: {label}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
