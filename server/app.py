"""Building, starting and stopping the service: campuses, worker pool, gRPC server with the
dispatch and admin services, health and reflection, metrics endpoint; ``serve()`` with graceful
SIGTERM drain and SIGHUP configuration reload.

This module is the server's public face: code outside server/ (benchmarks, load tests) starts a
server and reads its configuration and answers only through the names in ``__all__``."""

from __future__ import annotations

import errno
import functools
import gc
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from api.pb.campus_dispatch.v1 import admin_pb2_grpc as apb_grpc
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from api.pb.campus_dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from campus_maps import Campus, campus_ids, load_campus, preload_campuses
from campus_maps.config import campus_folders
from campus_maps.matrices import set_max_loaded
from server.admin import ADMIN_SERVICE_NAME, AdminServicer
from server.admission import Admission
from server.auth import AdminAuth
from server.campuses import CampusRegistry, maps_dir_of
from server.config import (
    DEFAULT_CONFIG,
    ENV_OVERRIDES,
    ConfigError,
    ServerConfig,
    StartError,
    config_from_mapping,
    load_config,
)
from server.convert import plan_from_response, problem_from_request
from server.guard import DecodeGuard
from server.live import ConfigChange, LiveConfig
from server.logs import configure_logging
from server.metrics import Metrics
from server.servicer import DispatchServicer
from solver.engines.kernel import ensure_warm
from solver.runtime.dispatch import prepare_worker
from solver.runtime.workers import SolverPool
from storm import Guards, named_places

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DispatchService"].full_name
LOG = logging.getLogger("campus_dispatch.server")

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_OVERRIDES",
    "ConfigError",
    "ServerConfig",
    "Service",
    "StartError",
    "config_from_mapping",
    "create_server",
    "load_config",
    "plan_from_response",
    "problem_from_request",
    "serve",
]


def check_default_campus(config: ServerConfig) -> None:
    """Refuse a default campus the server would not serve (``CAMPUS`` or
    ``server.default_campus`` naming no bundled, onboarded or listed campus), naming the known
    ones: :class:`ConfigError` (key ``server.default_campus``)."""
    known = campus_folders(maps_dir_of(config)) | set(config.campuses)
    if config.serve_bundled:
        known |= set(campus_ids())
    if config.default_campus not in known:
        raise ConfigError(
            "server.default_campus",
            config.default_campus,
            f"unknown campus; known campuses: {', '.join(sorted(known)) or 'none'} (set CAMPUS "
            "or [server] default_campus to one of them, or onboard it with "
            "`campus-dispatch campus add`)",
        )


def _check_free(host: str, port: int, what: str, fix: str) -> None:
    """Refuse at once a ``host:port`` that is taken or cannot be listened on (gRPC's own bind
    error is a vague RuntimeError, with a C-level log line before it)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise StartError(f"{what} {host}:{port}: cannot resolve the host ({exc}); {fix}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise StartError(f"{what} {host}:{port}: cannot listen ({reason}); {fix}") from None


GRPC_PORT_FIX = "stop what holds it or choose another with --port or PORT (0: any free port)"
METRICS_PORT_FIX = (
    "stop what holds it or choose another with --metrics-port or METRICS_PORT (0: any free "
    "port, -1: no metrics endpoint)"
)


def load_campuses(config: ServerConfig) -> dict[str, Campus]:
    """Load the campuses to load at start (``campuses``, else the default campus) and every
    mode's travel tables (cached on disk; built now when not)."""
    maps_dir = maps_dir_of(config)
    ids = list(config.campuses) or [config.default_campus]
    campuses = {}
    for campus_id in ids:
        campus = load_campus(campus_id, maps_dir=maps_dir)
        campus.load_tables(page_in=True)
        campus.places()
        campuses[campus_id] = campus
    return campuses


@dataclass
class Service:
    """A running service (what :func:`create_server` returns).

    Attributes
    ----------
    live
        The live configuration (:attr:`config` is its current value).
    server
        The started gRPC server.
    port
        The gRPC port it listens on.
    metrics_port
        The Prometheus port, or ``None`` when metrics are off.
    """

    live: LiveConfig
    server: grpc.Server
    port: int
    metrics_port: int | None
    pool: SolverPool
    health: health.HealthServicer
    servicer: DispatchServicer
    metrics: Metrics
    admin: AdminServicer
    campuses: CampusRegistry | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _drain_cut: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    @property
    def config(self) -> ServerConfig:
        """The configuration in force now."""
        return self.live.current

    def reload(self, source: str = "SIGHUP") -> ConfigChange | None:
        """Read the configuration file again and apply it (what SIGHUP does); a bad file is
        logged and counted, and the running configuration stays (returns ``None``)."""
        try:
            change = self.live.reload(
                who=f"signal {source}" if source == "SIGHUP" else source, source=source
            )
        except ConfigError:
            self.metrics.config_updates.labels(source, "invalid").inc()
            return None  # LiveConfig logged the refusal with the key and the reason
        self.metrics.config_updates.labels(
            source, "applied" if change.changes else "unchanged"
        ).inc()
        return change

    @property
    def address(self) -> str:
        """``host:port`` to connect to."""
        return f"{self.config.host}:{self.port}"

    def drain(self) -> None:
        """Report NOT_SERVING so that load balancers stop sending traffic."""
        self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.health.set(ADMIN_SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)

    def stop(self, grace_s: float | None = None, *, drain_s: float = 0.0) -> None:
        """Drain, let in-flight RPCs finish within ``grace_s``, stop workers and metrics.

        ``drain_s``: for that long first, health checks answer NOT_SERVING while the server
        still takes calls (so that a load balancer polling health sees it and moves traffic
        away); :meth:`cut_drain` ends that wait early (a second SIGTERM)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.drain()
        if drain_s > 0:
            self._drain_cut.wait(drain_s)
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        self.server.stop(grace).wait()
        if self.campuses is not None:
            self.campuses.close()
        self.pool.close()
        self.metrics.close()
        self._done.set()

    def cut_drain(self) -> None:
        """End a :meth:`stop`'s drain period now."""
        self._drain_cut.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` has been called."""
        return self._stopped.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`stop` has stopped everything (or ``timeout_s`` passed); whether
        it has."""
        return self._done.wait(timeout_s)


def create_server(
    config: ServerConfig,
    *,
    campuses: dict[str, Campus] | None = None,
    config_path: str | Path | None = None,
    auth: AdminAuth | None = None,
    env: Mapping[str, str] | None = None,
) -> Service:
    """Load campuses, start the worker pool and a gRPC server (port 0: any free port).

    Parameters
    ----------
    config
        The starting configuration.
    campuses
        Campuses already loaded (default: load ``config.campuses``, else the default campus);
        every other campus served (bundled, in ``maps_dir``) loads on its first request.
    config_path
        The file ReloadConfig and SIGHUP read (default ``config/dispatch.toml``).
    auth
        Admin tokens (default: none, the admin API answers UNAUTHENTICATED).
    env
        Environment overrides re-applied on reload (default ``os.environ``, as at start).
    """
    given = campuses is not None
    if not given:
        check_default_campus(config)
    metrics = Metrics()
    # the ports first: one in use is refused before minutes of loading campuses and workers
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.grpc_threads, thread_name_prefix="rpc"),
        # past this many calls gRPC answers RESOURCE_EXHAUSTED at once: without it, calls
        # beyond the threads wait in gRPC's queue until their deadline passes
        maximum_concurrent_rpcs=config.grpc_threads,
        interceptors=[DecodeGuard(metrics)],
        options=[
            ("grpc.max_receive_message_length", config.max_request_bytes),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    _check_free(config.host, config.port, "gRPC port", GRPC_PORT_FIX)
    try:
        port = server.add_insecure_port(f"{config.host}:{config.port}")
    except RuntimeError:  # taken between the check and the bind
        port = 0
    if port == 0:
        raise StartError(f"gRPC port {config.host}:{config.port}: cannot listen; {GRPC_PORT_FIX}")
    metrics_port = None
    pool: SolverPool | None = None
    registry: CampusRegistry | None = None
    try:
        if config.metrics_port >= 0:
            _check_free(config.host, config.metrics_port, "metrics port", METRICS_PORT_FIX)
            metrics_port = metrics.serve(config.host, config.metrics_port)
        campuses = campuses if campuses is not None else load_campuses(config)
        if given and config.default_campus not in campuses:
            config = config.replace(default_campus=sorted(campuses)[0])
        live_ref: list[LiveConfig] = []
        registry = CampusRegistry(
            lambda: live_ref[0].current if live_ref else config,
            metrics,
            extra=(*config.campuses, *campuses),
        )
        known = registry.known()
        if config.default_campus not in known:
            config = config.replace(default_campus=sorted(campuses)[0])
        live = LiveConfig(config, path=config_path, env=env, campuses=known)
        live_ref.append(live)
        ensure_warm()  # the compiled kernel (greedy answers are computed here too)
        # the campuses and imports live as long as the server: keep them out of the garbage
        # collector's full passes, which storm-sized answers (thousands of stops) set off
        gc.collect()
        gc.freeze()
        for campus in campuses.values():
            registry.add(campus)
        # workers build the travel matrices: they load the campuses loaded at start
        # (memory-mapped) when they start, any other on its first request, and keep
        # max_loaded_campuses of them
        tables = [(c.config, c.cache_dir.parent) for c in registry.loaded().values()]
        pool = SolverPool(
            config.solver_workers,
            nice=config.worker_nice,
            initializer=functools.partial(
                prepare_worker,
                functools.partial(set_max_loaded, config.max_loaded_campuses),
                functools.partial(preload_campuses, tables),
            ),
        ).start()
    except BaseException:
        server.stop(None)
        if registry is not None:
            registry.close()
        if pool is not None:
            pool.close()
        metrics.close()
        raise

    assert registry is not None and pool is not None
    campus_registry, workers = registry, pool

    def show(current: ServerConfig) -> None:
        metrics.config_version.set(live.version)
        metrics.default_budget.set(current.solver.default_budget_s)

    show(config)
    live.subscribe(show)
    live.subscribe(lambda _: campus_registry.trim())  # caps lowered live apply at once
    admission = Admission(live)
    # read at every scrape, so they stay right when traffic stops (an open breaker, a restart)
    metrics.queue_depth.set_function(lambda: workers.queue_depth)
    metrics.worker_restarts.set_function(lambda: workers.restarts)
    metrics.breaker_open.set_function(lambda: 1 if admission.breaker_open else 0)
    guards = Guards(lambda campus_id: named_places(campus_registry.get(campus_id)))
    servicer = DispatchServicer(live, registry, pool, admission, metrics, guards)
    admin = AdminServicer(live, auth or AdminAuth(), metrics, registry, guards)
    pb_grpc.add_DispatchServiceServicer_to_server(servicer, server)
    apb_grpc.add_AdminServiceServicer_to_server(admin, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            ADMIN_SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    health_servicer.set("", serving)
    health_servicer.set(SERVICE_NAME, serving)
    # the admin API without a token answers every call UNAUTHENTICATED: not a service to use
    health_servicer.set(
        ADMIN_SERVICE_NAME,
        serving if admin.auth.enabled else health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    return Service(
        live, server, port, metrics_port, pool, health_servicer, servicer, metrics, admin, registry
    )


def serve(
    config: ServerConfig, *, config_path: str | Path | None = None, auth: AdminAuth | None = None
) -> int:
    """Run until SIGTERM/SIGINT: then NOT_SERVING in health checks for ``drain_s`` while still
    answering (a second signal cuts it short), then finish in-flight calls within
    ``shutdown_grace_s``, exit 0. SIGHUP reads ``config_path`` again and applies it (a bad file
    changes nothing). Every log line is a JSON object with ``time`` and ``level`` on stderr
    (:mod:`server.logs`); admin tokens never appear in it."""
    auth = auth or AdminAuth()
    configure_logging(token.secret.decode() for token in auth.tokens)
    started = time.perf_counter()
    service = create_server(config, config_path=config_path, auth=auth)
    registry = service.servicer.registry
    loaded = sorted(registry.loaded())
    campuses = (
        f"{len(registry.known())} known, {len(loaded)} loaded: {', '.join(loaded)}; "
        f"maps {registry.maps_dir}"
    )
    metrics = (
        f"http://{config.host}:{service.metrics_port}/metrics" if service.metrics_port else "off"
    )

    # handlers before the ready line: a supervisor may signal as soon as it reads it
    signalled = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signalled.is_set():  # a second signal: no more draining
            LOG.info(json.dumps({"event": "shutdown_now", "signal": name}))
            service.cut_drain()
            return
        signalled.set()
        current = service.config
        LOG.info(
            json.dumps(
                {
                    "event": "shutdown",
                    "signal": name,
                    "drain_s": current.drain_s,
                    "grace_s": current.shutdown_grace_s,
                }
            )
        )
        threading.Thread(
            target=functools.partial(service.stop, drain_s=current.drain_s), name="shutdown"
        ).start()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        # off the signal handler: the reload takes a lock and logs
        threading.Thread(target=service.reload, args=("SIGHUP",), name="reload").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    admin = "on" if service.admin.auth.enabled else "off (no admin token)"
    n = config.solver_workers
    workers = f"{n} solver worker" + ("" if n == 1 else "s")
    print(
        f"campus-dispatch ready on {service.address} (campuses: {campuses}; default "
        f"{service.servicer.config.default_campus}; {workers}; "
        f"metrics {metrics}; admin API {admin}; config {service.live.path}; "
        f"started in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )

    service.wait()
    LOG.info(json.dumps({"event": "stopped"}))
    return 0
