"""Service configuration: the shipped file documents every key, env overrides, errors that name
the key, settings given as text, the TOML form and diffs."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from server.config import (
    DEFAULT_CONFIG,
    RESTART_ONLY,
    ConfigError,
    ServerConfig,
    config_from_mapping,
    config_to_toml,
    diff_configs,
    flatten_config,
    load_config,
    merge_config,
    parse_setting,
)


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
        ("[server]\ndefault_capacity = 0\n", "server.default_capacity"),
        ("[server]\ndrain_s = -1\n", "server.drain_s"),
        ("[server]\nmax_inflight = 16\ngrpc_threads = 16\n", "server.max_inflight"),
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


def test_every_setting_is_documented_in_the_shipped_file() -> None:
    """Each key of both tables has a line in config/dispatch.toml with a comment (on the line or
    just above it), and the keys marked (restart) are exactly those a running server refuses to
    change."""
    table, above, documented, restart = "", "", {}, set()
    key = ""
    for line in DEFAULT_CONFIG.read_text().splitlines():
        if line.startswith("#"):
            above += line
        elif line.lstrip().startswith("#") and key:  # an indented comment goes on with the key's
            documented[key] += " " + line.strip()
            if "(restart)" in line:
                restart.add(key)
        elif line.startswith("["):
            table, above, key = line.strip("[]"), "", ""
        elif "=" in line:
            key = f"{table}.{line.split('=', 1)[0].strip()}"
            documented[key] = line.partition("#")[2].strip() or above
            above = ""
            if "(restart)" in line:
                restart.add(key)
        else:
            above, key = "", ""
    for key in flatten_config(ServerConfig()):
        assert documented.get(key), f"{key} is not documented in {DEFAULT_CONFIG.name}"
    assert restart == {f"server.{name}" for name in RESTART_ONLY}


def test_toml_form_reads_back_and_diffs() -> None:
    config = ServerConfig(campuses=("tiny",), default_campus="tiny", shedding=False)
    config = config.replace(solver=config.solver.replace(metaheuristic="TABU_SEARCH"))
    assert config_from_mapping(tomllib.loads(config_to_toml(config, "a\nb"))) == config
    assert diff_configs(ServerConfig(), config) == {
        "solver.metaheuristic": ("GUIDED_LOCAL_SEARCH", "TABU_SEARCH"),
        "server.campuses": ((), ("tiny",)),
        "server.default_campus": ("northwestern", "tiny"),
        "server.shedding": (True, False),
    }


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("solver.lateness_cost_per_s", "30", 30.0),
        ("solver.max_lateness_s", "900.0", 900),
        ("solver.metaheuristic", "TABU_SEARCH", "TABU_SEARCH"),
        ("solver.metaheuristic", '"TABU_SEARCH"', "TABU_SEARCH"),
        ("server.shedding", "false", False),
        ("server.campuses", '["tiny"]', ["tiny"]),
    ],
)
def test_settings_parse_as_toml_values(key: str, raw: str, value: object) -> None:
    table, name, parsed = parse_setting(key, raw)
    assert f"{table}.{name}" == key and parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("key", "raw", "words"),
    [
        ("lateness_cost_per_s", "30", "write it as table.key"),
        ("solver.speed", "3", "unknown setting"),
        ("server.max_inflight", "many", "not a valid int"),
    ],
)
def test_bad_settings_name_the_key(key: str, raw: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_setting(key, raw)
    assert err.value.key == key and words in err.value.reason


def test_merge_keeps_unset_keys_and_refuses_bad_ones() -> None:
    base = ServerConfig(max_inflight=8)
    merged = merge_config(base, {"solver": {"lateness_cost_per_s": 25}})
    assert merged.max_inflight == 8 and merged.solver.lateness_cost_per_s == 25.0
    assert isinstance(merged.solver.lateness_cost_per_s, float)
    for document, key in (
        ({"solvr": {}}, "solvr"),
        ({"solver": 3}, "solver"),
        ({"server": {"shedding": "yes"}}, "server.shedding"),
        ({"server": {"host": 1}}, "server.host"),
    ):
        with pytest.raises(ConfigError) as err:
            merge_config(base, document)
        assert err.value.key == key
