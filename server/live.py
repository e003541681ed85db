"""The running configuration: one immutable :class:`ServerConfig` swapped atomically by updates
and file reloads, each validated first (a bad change leaves the running config as it was) and
logged with who made it and the diff."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import (
    DEFAULT_CONFIG,
    RESTART_ONLY,
    ConfigError,
    ServerConfig,
    diff_configs,
    merge_config,
    read_toml,
)

LOG = logging.getLogger("campus_dispatch.admin")


class VersionConflictError(Exception):
    """An update named the version it was based on, and the config has changed since."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"config is at version {actual}, not {expected}: read it again and retry")


@dataclass(frozen=True)
class ConfigChange:
    """What one update or reload did.

    Attributes
    ----------
    version
        The config version after it (unchanged when nothing changed or on a dry run).
    changes
        ``table.key`` -> ``(old, new)`` of every setting it changed.
    restart_required
        ``table.key`` -> ``(running, in the file)`` of start-only settings a reload found
        changed in the file; they keep their running value until a restart.
    source
        ``UpdateConfig``, ``ReloadConfig`` or ``SIGHUP``.
    who
        Who asked (token name, client id, peer).
    dry_run
        Validated and diffed, not applied.
    """

    version: int
    changes: dict[str, tuple[Any, Any]]
    restart_required: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    source: str = "UpdateConfig"
    who: str = ""
    dry_run: bool = False

    def summary(self) -> str:
        """One line per change (``key: old -> new``), or that nothing changed."""
        lines = [f"{k}: {old!r} -> {new!r}" for k, (old, new) in self.changes.items()]
        lines += [
            f"{k}: {new!r} in the file, {old!r} running until a restart"
            for k, (old, new) in self.restart_required.items()
        ]
        head = "dry run, not applied" if self.dry_run else f"config version {self.version}"
        return "\n".join([f"{head}: {len(self.changes)} change(s)", *lines])


class LiveConfig:
    """The configuration a running server reads, request by request.

    Readers take :attr:`current` once per request and use that object throughout: it is never
    mutated, only replaced (a single reference assignment), so a request sees either the old
    or the new configuration, never a mix.

    Parameters
    ----------
    config
        The configuration the server started with.
    path
        The file :meth:`reload` reads (default ``config/dispatch.toml``).
    env
        Environment overrides applied on reload as at start (default ``os.environ``).
    campuses
        Campus ids the server has loaded (``server.default_campus`` must be one of them);
        empty: not checked.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        campuses: Collection[str] = (),
    ) -> None:
        self._config = config
        self.path = Path(path) if path is not None else DEFAULT_CONFIG
        self.env = dict(os.environ if env is None else env)
        self.campuses = frozenset(campuses)
        self.version = 1
        self.changed_at = time.time()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[ServerConfig], None]] = []

    @property
    def current(self) -> ServerConfig:
        """The configuration in force now (immutable)."""
        return self._config

    def snapshot(self) -> tuple[ServerConfig, int, float]:
        """The configuration, its version and when it was set, read together."""
        with self._lock:
            return self._config, self.version, self.changed_at

    def subscribe(self, listener: Callable[[ServerConfig], None]) -> None:
        """Call ``listener`` with the new configuration after every applied change."""
        self._listeners.append(listener)

    # ----------------------------------------------------------------- changes
    def update(
        self,
        document: Mapping[str, Any],
        *,
        who: str,
        source: str = "UpdateConfig",
        dry_run: bool = False,
        expected_version: int = 0,
    ) -> ConfigChange:
        """Apply the keys of ``document`` (``{"solver": {...}, "server": {...}}``) over the
        running configuration, all or nothing.

        Raises
        ------
        ConfigError
            A bad value (naming the key and the reason), or a start-only ``[server]`` key
            (:data:`server.config.RESTART_ONLY`) with a value other than the running one.
        VersionConflictError
            ``expected_version`` is given and is not the current version.
        """
        with self._lock:
            try:
                if expected_version and expected_version != self.version:
                    raise VersionConflictError(expected_version, self.version)
                new = merge_config(self._config, document)
                for key, (old, value) in diff_configs(self._config, new).items():
                    table, name = key.split(".", 1)
                    if table == "server" and name in RESTART_ONLY:
                        raise ConfigError(
                            key, value, f"read only at start (running: {old!r}); restart to change"
                        )
                return self._apply(new, {}, source=source, who=who, dry_run=dry_run)
            except (ConfigError, VersionConflictError) as exc:
                self._log_refused(source, who, exc)
                raise

    def reload(self, *, who: str, source: str = "ReloadConfig") -> ConfigChange:
        """Read :attr:`path` again (with the env overrides) and apply it.

        Start-only keys keep their running values; those the file changes are reported in
        ``restart_required`` (so is a ``default_campus`` the server has not loaded: it needs a
        restart that loads it). A bad file raises :class:`ConfigError` and changes nothing.
        """
        with self._lock:
            try:
                from_file = merge_config(ServerConfig(), read_toml(self.path), self.env)
                keep = {name: getattr(self._config, name) for name in RESTART_ONLY}
                if self.campuses and from_file.default_campus not in self.campuses:
                    # as at start: a default campus that is not loaded cannot take over
                    keep["default_campus"] = self._config.default_campus
                pending = {
                    f"server.{name}": (running, getattr(from_file, name))
                    for name, running in sorted(keep.items())
                    if getattr(from_file, name) != running
                }
                new = from_file.replace(**keep)
                return self._apply(new, pending, source=source, who=who, dry_run=False)
            except ConfigError as exc:
                self._log_refused(source, who, exc)
                raise

    def _apply(
        self,
        new: ServerConfig,
        pending: dict[str, tuple[Any, Any]],
        *,
        source: str,
        who: str,
        dry_run: bool,
    ) -> ConfigChange:
        if self.campuses and new.default_campus not in self.campuses:
            raise ConfigError(
                "server.default_campus",
                new.default_campus,
                f"not a campus this server loaded ({', '.join(sorted(self.campuses))})",
            )
        changes = diff_configs(self._config, new)
        if changes and not dry_run:
            self._config = new  # the swap: one reference assignment
            self.version += 1
            self.changed_at = time.time()
            for listener in self._listeners:
                listener(new)
        change = ConfigChange(self.version, changes, pending, source, who, dry_run)
        LOG.info(
            json.dumps(
                {
                    "event": "config_change" if changes and not dry_run else "config_unchanged",
                    "source": source,
                    "who": who,
                    "dry_run": dry_run,
                    "version": self.version,
                    "changes": {k: [old, value] for k, (old, value) in changes.items()},
                    "restart_required": {k: [old, value] for k, (old, value) in pending.items()},
                },
                default=str,
            )
        )
        return change

    def _log_refused(self, source: str, who: str, exc: Exception) -> None:
        LOG.warning(
            json.dumps(
                {
                    "event": "config_refused",
                    "source": source,
                    "who": who,
                    "result": "version_conflict"
                    if isinstance(exc, VersionConflictError)
                    else "invalid",
                    "version": self.version,
                    "error": str(exc),
                }
            )
        )
