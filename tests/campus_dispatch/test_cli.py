"""The command is assembled from each package's subcommands, and each package's errors end in
one ``error:`` line with exit 2 (no traceback)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import campus_maps.cli
import scenarios.cli
import server.cli
from campus_dispatch.cli import PARTS, main


def subcommands(part: object) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    part.add_commands(sub)  # type: ignore[attr-defined]
    return set(sub.choices)


def test_each_package_brings_its_own_subcommands() -> None:
    assert subcommands(server.cli) == {"serve", "solve", "admin"}
    assert subcommands(scenarios.cli) == {"scenario", "replay", "tune"}
    assert subcommands(campus_maps.cli) == {"campus"}
    assert (server.cli, scenarios.cli, campus_maps.cli) == PARTS


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("serve", "solve", "admin", "scenario", "replay", "tune", "campus"):
        assert name in out


def test_a_bad_scenario_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "nonsense"}')
    assert main(["scenario", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scenario: ") and "Traceback" not in err


def test_a_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dispatch.toml"
    config.write_text("[solver]\nlateness_cost_per_s = -3.0\n")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config: ") and "lateness_cost_per_s" in err


def test_a_bad_tune_axis_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text("{}")
    assert main(["tune", "--scenario", str(scenario), "--param", "server.port=1,2"]) == 2
    assert capsys.readouterr().err.startswith("error: tune: ")
