"""Prometheus metrics of the service (one registry per server, served over HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from server.config import StartError

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
#: Buckets of latency / budget: 1 is exactly the budget; above 1 the answer came late.
BUDGET_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)
#: Prefixes of the series the default collectors add (process, platform, garbage collector).
DEFAULT_COLLECTOR_PREFIXES = ("process_", "python_")


class FunctionCounter(Collector):
    """A counter whose value is read from a function at every scrape (``name_total``), for
    counts another object keeps (e.g. the worker pool's restarts): a Gauge with
    ``set_function`` would be typed as a gauge."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self._read: Callable[[], float] = lambda: 0.0
        registry.register(self)

    def set_function(self, read: Callable[[], float]) -> None:
        """Read the count from ``read`` (it must only go up while the process runs)."""
        self._read = read

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=float(self._read()))


class Metrics:
    """The service's metrics.

    Attributes
    ----------
    latency
        ``dispatch_solve_latency_seconds{engine}``: whole Solve RPC time.
    budget_ratio
        ``dispatch_solve_budget_ratio{engine}``: whole Solve RPC time over the request's
        effective budget (above 1: the answer came after the budget).
    default_budget
        ``dispatch_default_budget_seconds``: ``solver.default_budget_s`` in force.
    requests
        ``dispatch_requests_total{code}``: RPCs by gRPC status code.
    shed
        ``dispatch_shed_total{reason}``: answers given by the greedy (or the best plan found so
        far) instead of the search.
    rejected
        ``dispatch_rejected_total{reason}``: refused requests (invalid, not_found,
        rate_limited, overloaded, deadline, campus_loading, campus_failed).
    unassigned
        ``dispatch_unassigned_orders_total{reason}``: orders answered as unassigned.
    orders
        ``dispatch_orders_total``: orders in answered Solve requests (the base of the
        unassigned share).
    reassigned
        ``dispatch_reassigned_orders_total{campus}``: orders assigned to a rider
        (``assigned_rider_id``, not accepted yet) that an answer moved to another rider or left
        out, each answer's ``stats.reassigned_orders`` (an order moved in two answers counts
        twice).
    inflight, queue_depth
        Requests being worked on; searches waiting for a worker.
    worker_restarts
        ``dispatch_worker_restarts_total``: worker processes replaced after a timeout or a
        crash (a counter read from the pool; it starts at 0 with the process).
    breaker_open
        1 while the circuit breaker sends every request to greedy.

    ``queue_depth``, ``worker_restarts`` and ``breaker_open`` are read from the admission
    and the pool at every scrape (``create_server`` wires them).
    config_version
        ``dispatch_config_version``: 1 at start, +1 per applied configuration change.
    config_updates
        ``dispatch_config_updates_total{source,result}``: admin updates, reloads and SIGHUPs
        (source ``UpdateConfig``, ``ReloadConfig``, ``SIGHUP``) by result (``applied``,
        ``unchanged``, ``invalid``, ``denied``).
    campus_loads
        ``dispatch_campus_loads_total{campus,result}``: campuses loaded after start, by result
        (``cached``: memory-mapped from the table cache, ``built``: tables built in the
        background, ``failed``: bad settings or map).
    campus_evictions
        ``dispatch_campus_evictions_total``: campuses dropped past ``max_loaded_campuses`` or
        ``max_loaded_bytes``.
    campuses_loaded, campus_loaded_bytes
        ``dispatch_campuses_loaded``, ``dispatch_campus_loaded_bytes``: campuses loaded now and
        the bytes of their travel tables (read at every scrape).
    storm_level
        ``dispatch_storm_level{campus}``: the storm guard's level after the campus's last
        batch (0 normal, 1 elevated, 2 storm, 3 severe).
    guard_flagged
        ``dispatch_guard_flagged_orders_total{campus,detector}``: orders flagged (each once).
    guard_held
        ``dispatch_guard_held_orders{campus,state}``: orders held now, ``awaiting_review`` (no
        one has judged them) or ``confirmed`` (malicious, kept held until the backend stops
        sending them).
    guard_reviews
        ``dispatch_guard_reviews_total{campus,verdict}``: operators' verdicts (release,
        confirm), one per order.
    guard_volume_ratio
        ``dispatch_guard_volume_ratio{campus}``: orders of the last volume window over the
        normal for this time of day, as it counts for the level (0 until learned, and with
        fewer than ``volume_min_orders`` orders in the window).
    guard_mode
        ``dispatch_guard_mode{campus,mode}``: 1 for the guard mode in force, 0 for the others.
    guard_errors
        ``dispatch_guard_errors_total``: batches the guard failed on (dispatched unguarded; a
        bug, logged).

    The registry also holds prometheus_client's default collectors: ``process_*`` (CPU,
    resident memory, open file descriptors, start time) and ``python_*`` (version, garbage
    collector) of the server process.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.latency = Histogram(
            "dispatch_solve_latency_seconds",
            "Solve RPC latency",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.budget_ratio = Histogram(
            "dispatch_solve_budget_ratio",
            "Solve RPC latency over the request's effective budget",
            ["engine"],
            buckets=BUDGET_RATIO_BUCKETS,
            registry=r,
        )
        self.default_budget = Gauge(
            "dispatch_default_budget_seconds", "solver.default_budget_s in force", registry=r
        )
        self.requests = Counter(
            "dispatch_requests", "Solve RPCs by status code", ["code"], registry=r
        )
        self.shed = Counter(
            "dispatch_shed", "Answers shed to the greedy engine", ["reason"], registry=r
        )
        self.rejected = Counter("dispatch_rejected", "Refused Solve RPCs", ["reason"], registry=r)
        self.unassigned = Counter(
            "dispatch_unassigned_orders", "Orders answered as unassigned", ["reason"], registry=r
        )
        self.orders = Counter("dispatch_orders", "Orders in answered Solve RPCs", registry=r)
        self.reassigned = Counter(
            "dispatch_reassigned_orders",
            "Assigned orders answers moved off their rider (to another, or left out)",
            ["campus"],
            registry=r,
        )
        self.inflight = Gauge("dispatch_inflight_requests", "Requests in flight", registry=r)
        self.queue_depth = Gauge("dispatch_queue_depth", "Solves waiting for a worker", registry=r)
        self.worker_restarts = FunctionCounter(
            "dispatch_worker_restarts", "Solver workers replaced so far", registry=r
        )
        self.breaker_open = Gauge(
            "dispatch_breaker_open", "1 while the breaker is open", registry=r
        )
        self.config_version = Gauge(
            "dispatch_config_version", "Configuration version in force", registry=r
        )
        self.config_updates = Counter(
            "dispatch_config_updates",
            "Configuration updates and reloads by source and result",
            ["source", "result"],
            registry=r,
        )

        self.campus_loads = Counter(
            "dispatch_campus_loads",
            "Campuses loaded after start by result (cached, built, failed)",
            ["campus", "result"],
            registry=r,
        )
        self.campus_evictions = Counter(
            "dispatch_campus_evictions", "Campuses dropped past the loaded caps", registry=r
        )
        self.campuses_loaded = Gauge("dispatch_campuses_loaded", "Campuses loaded", registry=r)
        self.campus_loaded_bytes = Gauge(
            "dispatch_campus_loaded_bytes",
            "Bytes of the loaded campuses' travel tables",
            registry=r,
        )
        self.storm_level = Gauge(
            "dispatch_storm_level",
            "Storm guard level per campus (0 normal, 1 elevated, 2 storm, 3 severe)",
            ["campus"],
            registry=r,
        )
        self.guard_flagged = Counter(
            "dispatch_guard_flagged_orders",
            "Orders flagged by the storm guard, by detector",
            ["campus", "detector"],
            registry=r,
        )
        self.guard_held = Gauge(
            "dispatch_guard_held_orders",
            "Orders held by the storm guard (awaiting_review, confirmed)",
            ["campus", "state"],
            registry=r,
        )
        self.guard_reviews = Counter(
            "dispatch_guard_reviews",
            "Operators' verdicts on held orders (release, confirm)",
            ["campus", "verdict"],
            registry=r,
        )
        self.guard_volume_ratio = Gauge(
            "dispatch_guard_volume_ratio",
            "Orders of the last volume window over the normal for this time of day",
            ["campus"],
            registry=r,
        )
        self.guard_mode = Gauge(
            "dispatch_guard_mode",
            "1 for the storm guard mode in force",
            ["campus", "mode"],
            registry=r,
        )
        self.guard_errors = Counter(
            "dispatch_guard_errors", "Batches the storm guard failed on (a bug)", registry=r
        )

    def show_guard(
        self,
        campus: str,
        level: int,
        held: dict[str, int],
        volume_ratio: float,
        mode: str,
        modes: list[str],
    ) -> None:
        """Set a campus's storm guard gauges (``held``: orders by state)."""
        self.storm_level.labels(campus).set(level)
        self.show_held(campus, held)
        self.guard_volume_ratio.labels(campus).set(volume_ratio)
        self.show_guard_mode(campus, mode, modes)

    def show_held(self, campus: str, held: dict[str, int]) -> None:
        """Set a campus's held orders by state (a missing state: 0)."""
        for state in ("awaiting_review", "confirmed"):
            self.guard_held.labels(campus, state).set(held.get(state, 0))

    def show_guard_mode(self, campus: str, mode: str, modes: list[str]) -> None:
        """Set a campus's guard mode gauge (1 for ``mode``, 0 for the other ``modes``)."""
        for name in modes:
            self.guard_mode.labels(campus, name).set(1 if name == mode else 0)

    def exported_names(self, *, defaults: bool = True) -> set[str]:
        """Every series name ``/metrics`` can show (``_total``, ``_bucket`` ... included), also
        for labelled metrics that have seen no value yet; ``defaults=False``: without those of
        the default collectors (``process_*``, ``python_*``)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }
        return {
            family.name + suffix
            for family in self.registry.collect()
            if defaults or not family.name.startswith(DEFAULT_COLLECTOR_PREFIXES)
            for suffix in suffixes.get(family.type, ("",))
        }

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); returns the port.

        Raises
        ------
        StartError
            The address is in use or cannot be listened on (the message names it and says
            what to do).
        """
        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise StartError(
                f"metrics port {host}:{port}: cannot listen ({exc.strerror or exc}); stop what "
                "holds it or choose another with --metrics-port or METRICS_PORT (0: any free "
                "port, -1: no metrics endpoint)",
            ) from None
        self._http = server
        return int(server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint, if any."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()
