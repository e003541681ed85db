"""Service configuration: the shipped file, env overrides, errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.config import ConfigError, ServerConfig, load_config


def test_shipped_config_is_the_defaults() -> None:
    assert load_config(env={}) == ServerConfig()


def test_zero_workers_leave_the_server_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServerConfig(workers=3).solver_workers == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert ServerConfig(workers=0).solver_workers == 7
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert ServerConfig(workers=0).solver_workers == 1


def test_env_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        env={"PORT": "0", "METRICS_PORT": "-1", "CAMPUS": "uce_quito", "WORKERS": "3"}
    )
    assert (cfg.port, cfg.metrics_port, cfg.default_campus, cfg.workers) == (0, -1, "uce_quito", 3)
    with pytest.raises(ConfigError, match="PORT"):
        load_config(env={"PORT": "fifty"})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nworkers = -1\n", "server.workers"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\ndefault_mode = 'skate'\n", "server.default_mode"),
        ("[server]\nwokers = 2\n", "server.wokers"),
        ("[server]\ncampuses = 'tiny'\n", "server.campuses"),
        ("[server]\nworker_nice = 20\n", "server.worker_nice"),
        ("[solver]\ndelivery_time_cost_per_s = -1\n", "solver.delivery_time_cost_per_s"),
        ("[solver]\nlateness_cost_per_s = -3\n", "solver.lateness_cost_per_s"),
        ("[server\n", "<file>"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert err.value.key == key
