"""The ``campus-dispatch`` command line: the composition root that assembles the subcommands
each package offers (:mod:`campus_dispatch.cli`).

The package also carries what the command ships besides code, in ``data/``: the default
configuration (:data:`solver.params.DEFAULT_CONFIG`; ``config/dispatch.toml`` in the repository
links to it) and example requests (:data:`EXAMPLES_DIR`; ``examples/`` in the repository links to
it), found the same way in a source tree and in an installed wheel."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    #: The installed distribution's version (``pyproject.toml``'s ``version``).
    __version__ = version("campus-dispatch")
except PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"

#: Data shipped inside the package (package data in the wheel).
DATA_DIR = Path(__file__).resolve().parent / "data"
#: Example requests: ``campus-dispatch solve <EXAMPLES_DIR>/solve_request.json``.
EXAMPLES_DIR = DATA_DIR / "examples"

__all__ = ["DATA_DIR", "EXAMPLES_DIR", "__version__"]
