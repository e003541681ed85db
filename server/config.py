"""Service configuration: the ``[server]`` table of the TOML file, environment overrides, the
solver parameters of its ``[solver]`` table and the storm guard's ``[guard]`` table, validated
together; flat ``table.key`` views of a
configuration, diffs between two, and its TOML form."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from campus_maps import MODES
from solver.params import (
    DEFAULT_CONFIG,
    ParamsError,
    SolverParams,
    format_toml,
    normalize_value,
    parse_value,
)
from storm.settings import GuardSettings, GuardSettingsError, setting_types

#: Environment variables that override ``[server]`` keys.
ENV_OVERRIDES = {
    "PORT": "port",
    "METRICS_PORT": "metrics_port",
    "HOST": "host",
    "CAMPUS": "default_campus",
    "WORKERS": "workers",
    "CAMPUS_DISPATCH_MAPS_DIR": "maps_dir",
}

#: ``[server]`` keys read only when the server starts (sockets, processes, loaded campuses):
#: a running server refuses to change them live (restart it instead).
RESTART_ONLY = frozenset(
    {
        "host",
        "port",
        "metrics_port",
        "campuses",
        "workers",
        "worker_nice",
        "grpc_threads",
        "max_request_bytes",
    }
)
#: The tables of a configuration file.
TABLES = ("solver", "server", "guard")
#: Tables whose settings are a dataclass of their own (the rest is ``[server]``).
NESTED = ("solver", "guard")


class ConfigError(ValueError):
    """An invalid setting: names the key, the value and the reason."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"{key}={value!r}: {reason}")


class StartError(RuntimeError):
    """The server cannot start as configured (a port in use, an unknown default campus): the
    message names the setting and what to do."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything the service needs; see ``config/dispatch.toml`` for each key's meaning.

    Attributes
    ----------
    host, port, metrics_port
        Listening address of gRPC (port 0: any free port) and of Prometheus metrics
        (0: any free port, -1: no metrics endpoint).
    campuses, default_campus
        Campus ids to load at start (empty: only the default campus; the others load on
        their first request) and the one used when a request names none.
    maps_dir
        Folder of onboarded campuses (``<maps_dir>/<id>/campus.toml``); empty: the default
        maps directory (``$CAMPUS_DISPATCH_MAPS_DIR``, else ``~/.local/share/...``).
    serve_bundled
        Whether the campuses bundled in the package are served too (false: only those of
        ``maps_dir``, ``campuses`` and the default campus).
    max_loaded_campuses, max_loaded_bytes
        Least recently used campuses are dropped past this many loaded campuses or this many
        bytes of travel tables (never the default campus); solver workers keep at most
        ``max_loaded_campuses`` campuses each (the value at start).
    workers
        Solver worker processes (one solve each at a time); 0: one per core but one, at least
        one (:attr:`solver_workers`), so the server's own work keeps a core.
    worker_nice
        How much lower the workers' CPU priority is than the server's (0-19). Default 0: with
        the default ``workers`` the server keeps a core anyway; with a worker per core, a
        positive value lets the server's conversions and greedy answers go first. Other
        busy processes on the host then starve niced workers into overruns.
    grpc_threads
        Threads serving RPCs (greedy plans and conversions run on them).
    default_mode, default_capacity, default_pickup_service_s, default_dropoff_service_s,
    default_shift_s
        Values for unset request fields.
    deadline_margin_s
        Kept back from the gRPC deadline for sending the answer.
    max_orders, max_riders
        Size caps of one request (larger: INVALID_ARGUMENT naming the cap).
    max_request_bytes
        Largest serialized request gRPC accepts (``grpc.max_receive_message_length``); a
        larger one is refused by gRPC itself with RESOURCE_EXHAUSTED before it is read.
    max_budget_s
        Largest ``time_budget`` a request may ask for (larger: INVALID_ARGUMENT).
    max_inflight
        Requests being worked on at once (searched and greedy); past it: RESOURCE_EXHAUSTED.
        Below ``grpc_threads``, so that threads are left to refuse quickly (and to answer
        health checks); gRPC itself refuses calls past ``grpc_threads`` instead of queueing
        them until their deadline.
    max_greedy_inflight
        Shed requests whose greedy plan is being computed at once; past it: RESOURCE_EXHAUSTED.
        Greedy plans share the server process (one GIL): more of them at once only wait.
    shedding
        Whether to answer with greedy when no worker can finish within the budget (off: wait).
    breaker_failures, breaker_window_s, breaker_cooldown_s
        Circuit breaker: this many worker overruns/crashes within the window send every request
        to greedy for the cooldown.
    rate_limit_per_s, rate_limit_burst
        Token bucket per ``client-id`` metadata value (0: no rate limit).
    drain_s
        On SIGTERM, how long the server reports NOT_SERVING in health checks while it still
        answers (health checks and requests) before it stops taking calls: a load balancer
        polling health sees NOT_SERVING and moves traffic away (0: stop at once).
    shutdown_grace_s
        On SIGTERM, after the drain, time given to in-flight requests before the server stops.
    retry_after_s
        Retry hint sent with RESOURCE_EXHAUSTED.
    solver
        The solver parameters (``[solver]`` table).
    guard
        The storm guard's settings (``[guard]`` table).
    """

    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9464
    campuses: tuple[str, ...] = ()
    default_campus: str = "northwestern"
    maps_dir: str = ""
    serve_bundled: bool = True
    max_loaded_campuses: int = 10
    max_loaded_bytes: int = 2 * 1024**3
    workers: int = 0
    worker_nice: int = 0
    grpc_threads: int = 16
    default_mode: str = "bike"
    default_capacity: int = 4
    default_pickup_service_s: int = 60
    default_dropoff_service_s: int = 60
    default_shift_s: int = 4 * 3600
    deadline_margin_s: float = 0.02
    max_orders: int = 2000
    max_riders: int = 600
    max_request_bytes: int = 4 * 1024 * 1024
    max_budget_s: float = 60.0
    max_inflight: int = 12
    max_greedy_inflight: int = 4
    shedding: bool = True
    breaker_failures: int = 3
    breaker_window_s: float = 60.0
    breaker_cooldown_s: float = 30.0
    rate_limit_per_s: float = 0.0
    rate_limit_burst: int = 20
    drain_s: float = 1.0
    shutdown_grace_s: float = 5.0
    retry_after_s: float = 0.5
    solver: SolverParams = field(default_factory=SolverParams)
    guard: GuardSettings = field(default_factory=GuardSettings)

    def __post_init__(self) -> None:
        if self.default_mode not in MODES:
            raise ConfigError("server.default_mode", self.default_mode, f"must be one of {MODES}")
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type == "str" and not isinstance(value, str):
                raise ConfigError(f"server.{spec.name}", value, "must be text")
            if spec.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"server.{spec.name}", value, "must be true or false")
            if spec.type in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(
                        f"server.{spec.name}", value, f"must be a number ({spec.type})"
                    )
                if spec.type == "int" and not float(value).is_integer():
                    raise ConfigError(f"server.{spec.name}", value, "must be a whole number")
                if not math.isfinite(value):
                    raise ConfigError(f"server.{spec.name}", value, "must be finite")
                floor = -1 if spec.name == "metrics_port" else 0
                if value < floor:
                    raise ConfigError(f"server.{spec.name}", value, f"must be >= {floor}")
        for name in (
            "default_capacity",
            "grpc_threads",
            "max_orders",
            "max_riders",
            "max_inflight",
            "max_greedy_inflight",
            "max_request_bytes",
            "max_loaded_campuses",
            "max_loaded_bytes",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"server.{name}", getattr(self, name), "must be >= 1")
        if self.max_inflight >= self.grpc_threads:
            raise ConfigError(
                "server.max_inflight",
                self.max_inflight,
                f"must be below grpc_threads ({self.grpc_threads}): the threads left over "
                "refuse calls past it and answer health checks",
            )
        if self.max_budget_s <= 0:
            raise ConfigError("server.max_budget_s", self.max_budget_s, "must be > 0")
        if self.worker_nice > 19:
            raise ConfigError("server.worker_nice", self.worker_nice, "must be between 0 and 19")
        for name in ("port", "metrics_port"):
            if getattr(self, name) > 65535:
                raise ConfigError(f"server.{name}", getattr(self, name), "must be <= 65535")

    @property
    def solver_workers(self) -> int:
        """Worker processes to start: ``workers``, or for 0 one per core but one (at least 1).

        The server process converts requests and computes shed requests' greedy plans on one
        GIL: with as many workers as cores, a surge leaves it no core and every answer late.
        """
        if self.workers > 0:
            return self.workers
        return max(1, (os.cpu_count() or 1) - 1)

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)


def _coerce(key: str, raw: str, like: object) -> object:
    try:
        if isinstance(like, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
    except ValueError:
        raise ConfigError(key, raw, f"not a valid {type(like).__name__}") from None
    return raw


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(name, table, f"[{name}] must be a table")
    return dict(table)


def _normalized(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """Whole numbers given to float settings as floats, whole floats to int settings as ints
    (TOML writes ``30`` and ``30.0`` differently; the configuration should not care)."""
    types = _field_types()
    return {
        name: normalize_value(types.get(f"{table}.{name}", ""), value)
        for name, value in values.items()
    }


T = TypeVar("T")


def _nested(
    data: Mapping[str, Any],
    name: str,
    current: Mapping[str, Any],
    build: Callable[[Mapping[str, Any]], T],
) -> T:
    """The ``[name]`` table of ``data`` over ``current``, built and validated by ``build``
    (its errors as :class:`ConfigError` naming ``name.key``)."""
    try:
        return build({**current, **_normalized(name, _table(data, name))})
    except (ParamsError, GuardSettingsError) as exc:
        raise ConfigError(f"{name}.{exc.field}", exc.value, exc.reason) from exc
    except TypeError as exc:
        raise ConfigError(name, data.get(name), str(exc)) from exc


def merge_config(
    base: ServerConfig, data: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> ServerConfig:
    """``base`` with the keys of a parsed TOML document (``[server]``, ``[solver]`` and
    ``[guard]`` tables; keys it does not set keep their value in ``base``) and then the env
    overrides, validated."""
    for name in data:
        if name not in TABLES:
            raise ConfigError(str(name), data[name], f"unknown table; tables are {TABLES}")
    server = _normalized("server", _table(data, "server"))
    known = {f.name for f in dataclasses.fields(ServerConfig)} - set(NESTED)
    for key in server:
        if key not in known:
            raise ConfigError(f"server.{key}", server[key], "unknown setting")
    for var, key in ENV_OVERRIDES.items():
        if env and var in env:
            server[key] = _coerce(var, env[var], getattr(base, key))
    if "campuses" in server:
        campuses = server["campuses"]
        if not isinstance(campuses, list | tuple) or not all(isinstance(c, str) for c in campuses):
            raise ConfigError("server.campuses", campuses, "must be a list of campus ids")
        server["campuses"] = tuple(campuses)
    solver = _nested(data, "solver", base.solver.to_dict(), SolverParams.from_mapping)
    guard = _nested(data, "guard", base.guard.to_dict(), GuardSettings.from_mapping)
    try:
        return base.replace(**server, solver=solver, guard=guard)
    except TypeError as exc:
        raise ConfigError("server", server, str(exc)) from exc


def config_from_mapping(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> ServerConfig:
    """Validate a parsed TOML document (``[server]``, ``[solver]``, ``[guard]``) plus env
    overrides."""
    return merge_config(ServerConfig(), data, env)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a configuration file; :class:`ConfigError` (key ``<file>``) when it cannot be."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("<file>", str(path), "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", str(path), f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError("<file>", str(path), f"cannot be read: {exc.strerror}") from exc


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> ServerConfig:
    """Read the TOML file (default ``config/dispatch.toml``) and apply env overrides
    (``PORT``, ``METRICS_PORT``, ``HOST``, ``CAMPUS``, ``WORKERS``, ``CAMPUS_DISPATCH_MAPS_DIR``;
    ``os.environ`` by default)."""
    data = read_toml(DEFAULT_CONFIG if path is None else path)
    return config_from_mapping(data, os.environ if env is None else env)


# ------------------------------------------------------------------ flat views, diffs, TOML
def flatten_config(config: ServerConfig) -> dict[str, Any]:
    """Every setting under its ``table.key`` name (``solver.*`` first, then ``server.*``, then
    ``guard.*``)."""
    flat = {f"solver.{k}": v for k, v in config.solver.to_dict().items()}
    for spec in dataclasses.fields(config):
        if spec.name not in NESTED:
            flat[f"server.{spec.name}"] = getattr(config, spec.name)
    flat.update({f"guard.{k}": v for k, v in config.guard.to_dict().items()})
    return flat


def diff_configs(old: ServerConfig, new: ServerConfig) -> dict[str, tuple[Any, Any]]:
    """``table.key`` -> ``(old, new)`` for every setting that differs."""
    before, after = flatten_config(old), flatten_config(new)
    return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def _field_types() -> dict[str, str]:
    types = {f"solver.{f.name}": str(f.type) for f in dataclasses.fields(SolverParams)}
    for spec in dataclasses.fields(ServerConfig):
        if spec.name not in NESTED:
            types[f"server.{spec.name}"] = str(spec.type)
    types.update({f"guard.{name}": kind for name, kind in setting_types().items()})
    return types


def parse_setting(key: str, raw: str) -> tuple[str, str, Any]:
    """``("solver", "lateness_cost_per_s", 30.0)`` from ``"solver.lateness_cost_per_s"`` and
    ``"30"``: the value is read as a TOML value (``30``, ``0.5``, ``true``, ``"TABU_SEARCH"``,
    ``["tiny"]``); a text setting also takes the bare text. Whole floats given to integer
    settings become integers. Unknown keys raise :class:`ConfigError`."""
    types = _field_types()
    if key not in types:
        hint = (
            "" if key.rpartition(".")[0] in TABLES else f" (write it as table.key, tables {TABLES})"
        )
        raise ConfigError(key, raw, f"unknown setting{hint}")
    table, name = key.split(".", 1)
    try:
        return table, name, parse_value(key, raw, types[key])
    except ParamsError as exc:
        raise ConfigError(key, raw, exc.reason) from None


def settings_document(settings: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """A TOML-like document (``{"solver": {...}, "server": {...}}``) from ``table.key`` ->
    text settings (see :func:`parse_setting`)."""
    document: dict[str, dict[str, Any]] = {}
    for key, raw in settings.items():
        table, name, value = parse_setting(key, raw)
        document.setdefault(table, {})[name] = value
    return document


def config_to_toml(config: ServerConfig, header: str = "") -> str:
    """The whole configuration as a TOML document that :func:`load_config` reads back."""
    tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    for key, value in flatten_config(config).items():
        table, name = key.split(".", 1)
        tables[table][name] = value
    return format_toml(tables, header)
