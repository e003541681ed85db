"""Prometheus metrics of the service (one registry per server, served over HTTP)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    """The service's metrics.

    Attributes
    ----------
    latency
        ``dispatch_solve_latency_seconds{engine}``: whole Solve RPC time.
    requests
        ``dispatch_requests_total{code}``: RPCs by gRPC status code.
    shed
        ``dispatch_shed_total{reason}``: answers given by greedy instead of OR-Tools.
    rejected
        ``dispatch_rejected_total{reason}``: refused requests (invalid, not_found,
        rate_limited, overloaded, deadline).
    unassigned
        ``dispatch_unassigned_orders_total{reason}``: orders answered as unassigned.
    inflight, queue_depth
        Requests being worked on; OR-Tools solves waiting for a worker.
    worker_restarts
        Worker processes replaced after a timeout or a crash.
    breaker_open
        1 while the circuit breaker sends every request to greedy.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "dispatch_solve_latency_seconds",
            "Solve RPC latency",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
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
        self.inflight = Gauge("dispatch_inflight_requests", "Requests in flight", registry=r)
        self.queue_depth = Gauge("dispatch_queue_depth", "Solves waiting for a worker", registry=r)
        self.worker_restarts = Gauge(
            "dispatch_worker_restarts", "Solver workers replaced so far", registry=r
        )
        self.breaker_open = Gauge(
            "dispatch_breaker_open", "1 while the breaker is open", registry=r
        )

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); returns the port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return int(server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint, if any."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()
