"""Load tests of the dispatch service: a locust gRPC user replaying recorded SolveRequests, load
shapes, an SLO gate, and drivers for one server, a two-replica cluster and capacity steps.

Only :mod:`load.users`, :mod:`load.locustfile` and :mod:`load.capacity` import locust (which
monkey-patches the process with gevent); every other module is plain Python and safe to import
anywhere, tests included.
"""
