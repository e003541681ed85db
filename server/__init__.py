"""The gRPC adapter over the solver: request validation, conversion to a problem, admission,
the dispatch and admin servicers, live configuration, metrics and the server's lifecycle.
Outside server/, code reaches it only through :mod:`server.app` (its public face) and the
command line through :mod:`server.cli`; the protocol itself lives in :mod:`api`."""
