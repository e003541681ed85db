"""The command is assembled from each package's subcommands, and each package's errors end in
one ``error:`` line with exit 2 (no traceback); its help shows defaults and choices, gives
every option a help text, names the exit codes and the version."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import campus_maps.cli
import scenarios.cli
import server.cli
from campus_dispatch.cli import EXIT_INTERRUPTED, PARTS, build_parser, main, version


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


def parsers(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser under ``parser``, by its command path."""
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= parsers(child, f"{path} {name}".strip())
    return found


#: The commands this package's parts own whose options are checked here (scenario, replay and
#: tune are scenarios/'s).
CHECKED = ("serve", "solve", "admin", "campus")


def test_every_option_has_help_and_shows_its_default() -> None:
    commands = parsers(build_parser())
    checked = {p: c for p, c in commands.items() if p.split(" ")[0] in CHECKED}
    assert {"serve", "solve", "admin update", "admin guard-mode", "campus add"} <= set(checked)
    for path, parser in checked.items():
        for action in parser._actions:
            assert action.help, (path, action.dest)
    help_of = {path: parser.format_help() for path, parser in checked.items()}
    assert (
        "--server SERVER       host:port of the server (default: 127.0.0.1:50051)"
        in (help_of["solve"])
    )
    assert (
        "(default: 5.0)" in help_of["solve"] and "--format {json,table,both}" in (help_of["solve"])
    )
    assert "(default: UTC)" in " ".join(help_of["campus add"].split())
    assert "{off,flag,deprioritise,quarantine,auto}" in help_of["admin guard-mode"]
    assert "(default: None)" not in "".join(help_of.values())


def test_serve_documents_host_metrics_port_and_the_environment() -> None:
    text = " ".join(parsers(build_parser())["serve"].format_help().split())
    for words in ("--host HOST", "--metrics-port METRICS_PORT", "--port PORT", "env HOST"):
        assert words in text, words
    for variable in ("HOST", "PORT", "METRICS_PORT", "CAMPUS", "WORKERS", "drain_s"):
        assert variable in text, variable


def test_top_level_help_is_plain_text_with_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "`" not in out and ":mod:" not in out
    assert "Exit status: 0 done; 1 the server answered with an error" in " ".join(out.split())


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"campus-dispatch {version()}" and version() != ""


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(server.cli, "cmd_solve", interrupted)
    assert main(["solve", "x.json"]) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted\n"
