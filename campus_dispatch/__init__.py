"""The ``campus-dispatch`` command line: the composition root that assembles the subcommands
each package offers (:mod:`campus_dispatch.cli`)."""
