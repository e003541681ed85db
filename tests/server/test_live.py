"""The live configuration: updates swap one immutable config and bump the version, dry runs and
no-op updates change nothing, start-only keys and stale versions are refused (and the refusal
logged), listeners see every applied config, and reloads keep start-only keys running."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import RESTART_ONLY, ConfigError, ServerConfig, config_to_toml
from server.live import ConfigChange, LiveConfig, VersionConflictError
from tests.server.conftest import make_config

BASE = make_config()
ADMIN_LOG = "campus_dispatch.admin"

#: A valid value other than BASE's for every start-only key.
OTHER_VALUES: dict[str, Any] = {
    "host": "0.0.0.0",
    "port": 50999,
    "metrics_port": 9999,
    "campuses": ["tiny", "northwestern"],
    "workers": 3,
    "worker_nice": 5,
    "grpc_threads": 24,
    "max_request_bytes": 1024,
}


def live_config(path: Path | None = None) -> LiveConfig:
    return LiveConfig(BASE, path=path, env={}, campuses={"tiny"})


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The JSON change-log records of the admin logger, in order."""
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ADMIN_LOG]


# ------------------------------------------------------------------------------ updates
def test_an_update_swaps_the_config_bumps_the_version_and_tells_listeners(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = live_config()
    before = live.current
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger=ADMIN_LOG):
        change = live.update(
            {"solver": {"lateness_cost_per_s": 30}, "server": {"max_orders": 50}}, who="alice"
        )
    assert change.version == live.version == 2
    assert change.changes == {
        "solver.lateness_cost_per_s": (10.0, 30.0),
        "server.max_orders": (2000, 50),
    }
    assert not change.dry_run and change.who == "alice" and change.source == "UpdateConfig"
    assert seen == [live.current] and seen[0] is live.current
    assert live.current.solver.lateness_cost_per_s == 30.0 and live.current.max_orders == 50
    assert before.solver.lateness_cost_per_s == 10.0  # the old object is never mutated
    config, version, changed_at = live.snapshot()
    assert (config, version) == (live.current, 2) and changed_at == live.changed_at
    [event] = events(caplog)
    assert event["event"] == "config_change" and event["who"] == "alice"
    assert event["version"] == 2
    assert event["changes"]["solver.lateness_cost_per_s"] == [10.0, 30.0]


def test_an_update_that_changes_nothing_keeps_the_version(caplog: pytest.LogCaptureFixture) -> None:
    live = live_config()
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger=ADMIN_LOG):
        change = live.update({"solver": {"lateness_cost_per_s": 10.0}}, who="bob")
    assert change.changes == {} and change.version == live.version == 1
    assert live.current is BASE and seen == []
    assert [e["event"] for e in events(caplog)] == ["config_unchanged"]
    assert change.summary().startswith("config version 1: 0 change(s)")


def test_a_dry_run_reports_the_diff_and_applies_nothing() -> None:
    live = live_config()
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    change = live.update({"solver": {"max_lateness_s": 600}}, who="carol", dry_run=True)
    assert change.dry_run and change.changes == {"solver.max_lateness_s": (1800, 600)}
    assert change.version == live.version == 1 and live.current is BASE and seen == []
    assert change.summary().splitlines() == [
        "dry run, not applied: 1 change(s)",
        "solver.max_lateness_s: 1800 -> 600",
    ]


def test_every_start_only_key_is_refused_and_the_refusal_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert set(OTHER_VALUES) == RESTART_ONLY  # a new start-only key needs a value here
    live = live_config()
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger=ADMIN_LOG):
        for key, value in sorted(OTHER_VALUES.items()):
            document = {"solver": {"lateness_cost_per_s": 99}, "server": {key: value}}
            with pytest.raises(ConfigError, match="restart to change") as err:
                live.update(document, who="mallory")
            assert err.value.key == f"server.{key}"
    assert live.current is BASE and live.version == 1 and seen == []  # all or nothing
    refused = events(caplog)
    assert [e["event"] for e in refused] == ["config_refused"] * len(OTHER_VALUES)
    assert all(e["who"] == "mallory" and e["version"] == 1 for e in refused)
    assert [e["error"].split("=", 1)[0] for e in refused] == [
        f"server.{k}" for k in sorted(OTHER_VALUES)
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == ADMIN_LOG)


def test_a_start_only_key_at_its_running_value_is_not_a_change() -> None:
    live = live_config()
    change = live.update({"server": {"port": BASE.port, "workers": BASE.workers}}, who="dave")
    assert change.changes == {} and live.version == 1


def test_a_bad_value_changes_nothing_and_names_its_key(caplog: pytest.LogCaptureFixture) -> None:
    live = live_config()
    with caplog.at_level(logging.INFO, logger=ADMIN_LOG), pytest.raises(ConfigError) as err:
        live.update({"solver": {"lateness_cost_per_s": 30, "max_lateness_s": -5}}, who="erin")
    assert err.value.key == "solver.max_lateness_s"
    assert live.current is BASE and live.version == 1
    assert [e["event"] for e in events(caplog)] == ["config_refused"]


def test_a_default_campus_the_server_did_not_load_is_refused() -> None:
    live = live_config()
    with pytest.raises(ConfigError, match="not a campus this server loaded") as err:
        live.update({"server": {"default_campus": "northwestern"}}, who="frank")
    assert err.value.key == "server.default_campus" and live.current is BASE
    unchecked = LiveConfig(BASE, env={})  # no campuses given: not checked
    unchecked.update({"server": {"default_campus": "northwestern"}}, who="frank")
    assert unchecked.current.default_campus == "northwestern"


def test_a_stale_version_is_a_conflict(caplog: pytest.LogCaptureFixture) -> None:
    live = live_config()
    live.update({"solver": {"lateness_cost_per_s": 20}}, who="a", expected_version=1)
    assert live.version == 2
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger=ADMIN_LOG),
        pytest.raises(VersionConflictError) as err,
    ):
        live.update({"solver": {"lateness_cost_per_s": 40}}, who="b", expected_version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert "version 2, not 1" in str(err.value)
    assert live.current.solver.lateness_cost_per_s == 20.0 and live.version == 2
    [event] = events(caplog)
    assert event["event"] == "config_refused" and event["who"] == "b"
    live.update({"solver": {"lateness_cost_per_s": 40}}, who="b", expected_version=2)
    assert live.version == 3


def test_concurrent_updates_based_on_one_version_apply_once() -> None:
    """Compare-and-set: of writers that all read version 1, exactly one wins."""
    live = live_config()
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    won: list[float] = []
    lost: list[VersionConflictError] = []
    start = threading.Barrier(6)

    def writer(cost: float) -> None:
        start.wait()
        try:
            live.update({"solver": {"lateness_cost_per_s": cost}}, who="t", expected_version=1)
            won.append(cost)
        except VersionConflictError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=writer, args=(20.0 + k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 5
    assert live.version == 2 and live.current.solver.lateness_cost_per_s == won[0]
    assert seen == [live.current]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from([5.0, 10.0, 15.0, 30.0]), max_size=8))
def test_the_version_counts_the_applied_changes(costs: list[float]) -> None:
    live = live_config()
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    expected: list[float] = []  # the cost of every config the listeners should see
    running = BASE.solver.lateness_cost_per_s
    for cost in costs:
        change = live.update({"solver": {"lateness_cost_per_s": cost}}, who="h")
        if cost != running:
            expected.append(cost)
        assert bool(change.changes) == (cost != running)
        running = cost
        assert change.version == live.version == 1 + len(expected)
    assert [c.solver.lateness_cost_per_s for c in seen] == expected
    assert live.current.solver.lateness_cost_per_s == running


# ------------------------------------------------------------------------------ reloads
def test_a_reload_applies_the_file_and_keeps_start_only_keys(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.toml"
    changed = BASE.replace(port=50777, workers=4, max_orders=77)
    changed = changed.replace(solver=changed.solver.replace(lateness_cost_per_s=12.5))
    path.write_text(config_to_toml(changed))
    live = live_config(path)
    seen: list[ServerConfig] = []
    live.subscribe(seen.append)
    change = live.reload(who="ops")
    assert isinstance(change, ConfigChange) and change.source == "ReloadConfig"
    assert change.changes == {
        "solver.lateness_cost_per_s": (10.0, 12.5),
        "server.max_orders": (2000, 77),
    }
    assert change.restart_required == {
        "server.port": (BASE.port, 50777),
        "server.workers": (BASE.workers, 4),
    }
    assert live.current.port == BASE.port and live.current.workers == BASE.workers
    assert live.version == 2 and seen == [live.current]
    assert "server.port: 50777 in the file, 0 running until a restart" in change.summary()


def test_a_reload_of_an_unchanged_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.toml"
    path.write_text(config_to_toml(BASE))
    live = live_config(path)
    change = live.reload(who="ops", source="SIGHUP")
    assert change.changes == {} and change.restart_required == {} and live.version == 1
    assert change.source == "SIGHUP"


def test_a_reload_keeps_a_default_campus_that_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.toml"
    path.write_text(config_to_toml(BASE.replace(default_campus="northwestern")))
    live = live_config(path)
    change = live.reload(who="ops")
    assert live.current.default_campus == "tiny"
    assert change.restart_required == {"server.default_campus": ("tiny", "northwestern")}


def test_env_overrides_apply_on_reload_as_at_start(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.toml"
    path.write_text(config_to_toml(BASE))
    live = LiveConfig(BASE, path=path, env={"PORT": "6000"}, campuses={"tiny"})
    change = live.reload(who="ops")
    assert change.restart_required == {"server.port": (0, 6000)} and live.current.port == 0


@pytest.mark.parametrize(
    "text, words",
    [
        ("[solver\nlateness_cost_per_s = 1", "not valid TOML"),
        ("[solver]\nlateness_cost_per_s = -1\n", "solver.lateness_cost_per_s"),
        ("[server]\nno_such_key = 1\n", "unknown setting"),
    ],
)
def test_a_bad_file_keeps_the_running_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, words: str
) -> None:
    path = tmp_path / "dispatch.toml"
    path.write_text(text)
    live = live_config(path)
    with (
        caplog.at_level(logging.INFO, logger=ADMIN_LOG),
        pytest.raises(ConfigError, match=words),
    ):
        live.reload(who="ops")
    assert live.current is BASE and live.version == 1
    [event] = events(caplog)
    assert event["event"] == "config_refused" and event["source"] == "ReloadConfig"


def test_a_missing_file_keeps_the_running_config(tmp_path: Path) -> None:
    live = live_config(tmp_path / "gone.toml")
    with pytest.raises(ConfigError, match="no such file"):
        live.reload(who="ops")
    assert live.current is BASE
