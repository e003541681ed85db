"""Service replicas for load runs: ``campus-dispatch serve`` processes on loopback ports, each
with its own config file and log, started, waited for, killed and counted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.app import DEFAULT_CONFIG, ENV_OVERRIDES, config_from_mapping

READY = re.compile(r"campus-dispatch ready on (\S+) ")


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    raise ValueError(f"{key}={value!r}: cannot write a {type(value).__name__} to TOML")


def dump_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of tables of scalars and lists (what ``config/dispatch.toml`` holds)."""
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(f'{table}.{key}', v)}" for key, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(out: Path, server: Mapping[str, Any], base: Path = DEFAULT_CONFIG) -> Path:
    """Write ``base`` with the ``[server]`` keys in ``server`` replaced, after checking that the
    service accepts it (:class:`server.app.ConfigError` names a bad key)."""
    with base.open("rb") as handle:
        data = tomllib.load(handle)
    data.setdefault("server", {}).update(server)
    config_from_mapping(data, env={})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_toml(data))
    return out


@dataclass
class Replica:
    """One running ``campus-dispatch serve`` process."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, in-flight calls are lost (what failover must absorb)."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (graceful drain), SIGKILL if it is not gone within ``timeout_s``."""
        if not self.alive:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def solve_calls(self) -> dict[str, int]:
        """Solve calls in this replica's access log, by status and, for the OK answers shed
        to greedy, by shed reason (``shed:workers_busy``, ``shed:budget_too_small`` …)."""
        counts: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{") or '"rpc": "Solve"' not in line:
                continue
            entry = json.loads(line)
            keys = [str(entry.get("status", "?"))]
            if entry.get("shed"):
                keys.append(f"shed:{entry['shed']}")
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
        return counts


def start_replica(name: str, config: Path, log_path: Path, *, timeout_s: float = 180.0) -> Replica:
    """Start ``campus-dispatch serve --config config`` (stdout and stderr to ``log_path``) and
    wait for its ready line; the config should use port 0 (any free port).

    Raises
    ------
    RuntimeError
        The server exited or did not get ready within ``timeout_s`` (with its log's tail).
    """
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "campus_dispatch", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = READY.search(log_path.read_text(errors="replace"))
        if found:
            return Replica(name, process, found.group(1), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
        process.wait()
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"replica {name} did not start (log {log_path}):\n{tail}")


@contextmanager
def running_replicas(
    count: int, folder: Path, *, campuses: Sequence[str] = ("northwestern",), **server: Any
) -> Iterator[list[Replica]]:
    """``count`` replicas on loopback (any free ports, no metrics endpoint), each with
    ``config-N.toml`` and ``replica-N.log`` in ``folder`` and the ``[server]`` overrides in
    ``server`` (e.g. ``shedding=False``); all stopped on exit."""
    if count < 1:
        raise ValueError(f"count={count}: at least one replica is needed")
    settings = {
        "host": "127.0.0.1",
        "port": 0,
        "metrics_port": -1,
        "campuses": list(campuses),
        "default_campus": campuses[0],
    }
    settings.update(server)
    replicas: list[Replica] = []
    try:
        for k in range(1, count + 1):
            config = write_config(folder / f"config-{k}.toml", settings)
            replicas.append(start_replica(f"replica-{k}", config, folder / f"replica-{k}.log"))
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
