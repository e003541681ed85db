"""The ``scenario``, ``replay`` and ``tune`` commands as a user meets them: every failure a user
can cause is one ``error:`` line naming the thing and what to do, with its documented exit
status (2 bad usage or input, 1 no dispatch service at ``replay --server``), never a traceback;
``scenario info`` reports every file; the help shows defaults and choices, every option has
help, and no reStructuredText markup leaks into it."""

from __future__ import annotations

import argparse
import pickle
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import scenarios.cli
from campus_dispatch.cli import main
from scenarios.model import ScenarioError, load_scenario

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data"
TINY = DATA / "tiny-lunch.json"
NORTHWESTERN = DATA / "northwestern-lunch.json"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``campus-dispatch ARGV`` (argparse's exits too)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ scenario generate
def test_an_unknown_campus_is_one_line_naming_it_the_known_ones_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["scenario", "generate", "--campus", "harvard", "-o", str(tmp_path / "h.json")], capsys
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: scenario: --campus='harvard': unknown campus")
    assert "known: northwestern, tiny, uce_quito" in err
    assert "campus-dispatch campus add harvard --osm" in err
    assert not (tmp_path / "h.json").exists()


# ------------------------------------------------------------------ scenario info
def test_info_reports_every_file_and_fails_if_any_is_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{bad")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    missing = tmp_path / "missing.json"
    files = [TINY, bad_json, missing, empty, DATA / "uce_quito-lunch.json"]
    code, out, err = run(["scenario", "info", *map(str, files)], capsys)
    assert code == 2
    assert out.splitlines() == [
        f"{TINY}: {load_scenario(TINY).summary()}",
        f"{files[4]}: {load_scenario(files[4]).summary()}",
    ]
    lines = err.splitlines()
    assert len(lines) == 4 and "Traceback" not in err
    assert lines[0] == (
        f"error: scenario: {bad_json}:1: (file)='Expecting property name enclosed in double "
        "quotes': not valid JSON"
    )
    assert lines[1].startswith("error: scenario: ") and str(missing) in lines[1]
    assert "no such file" in lines[1]
    assert lines[2] == f"error: scenario: {empty}: format=None: missing"
    assert lines[3] == "3 of 5 files are not valid scenarios"


def test_info_of_good_files_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["scenario", "info", str(TINY), str(NORTHWESTERN)], capsys)
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2


def test_a_scenario_error_names_the_file_and_survives_a_process_boundary(
    tmp_path: Path,
) -> None:
    with pytest.raises(ScenarioError, match="no such file") as info:
        load_scenario(tmp_path / "nope.json")
    assert str(tmp_path / "nope.json") in str(info.value)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(ScenarioError) as info:
        load_scenario(empty)
    assert str(info.value) == f"{empty}: format=None: missing"
    back = pickle.loads(pickle.dumps(info.value))  # from a worker process, as itself
    assert type(back) is ScenarioError and str(back) == str(info.value)
    assert (back.field, back.line, back.source) == ("format", None, str(empty))


# ------------------------------------------------------------------ bad option values
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["replay", "{tiny}", "--policy", "fastest"], "unknown policy 'fastest': choose from"),
        (["replay", "{tiny}", "--policy", ","], "no policy named: choose from nearest"),
        (["replay", "{tiny}", "--budget", "-1"], "--budget: '-1': must be > 0"),
        (["replay", "{tiny}", "--budget", "nan"], "--budget: 'nan': must be > 0"),
        (["replay", "{tiny}", "--budget", "abc"], "--budget: 'abc': not a number"),
        (["replay", "{tiny}", "--batch-interval", "0"], "--batch-interval: '0': must be >= 1"),
        (["replay", "{tiny}", "--jobs", "0"], "--jobs: '0': must be >= 1"),
        (["replay", "{tiny}", "--realtime", "-2"], "--realtime: '-2': must be >= 0"),
        (["replay", "{tmp}/nope.json"], "nope.json: no such file or folder"),
        (["replay", "{tiny}", "--config", "{tmp}/no.toml"], "no.toml: no such file"),
        (["replay", "{tiny}", "--out", "{tmp}/file"], "file: is a file, not a folder"),
        (["replay", "{tiny}", "--record", "{tmp}/file"], "file: is a file, not a folder"),
        (["tune", "--scenario", "{tmp}/nope.json", "--param", "budget_ms=1"], "no such file"),
        (
            ["tune", "--scenario", "{tiny}", "--param", "budget_ms=100", "--front", "speed"],
            "unknown front KPI 'speed': choose from delivered, undelivered, on_time_rate",
        ),
        (["tune", "--scenario", "{tiny}", "--param", "budget_ms=1", "--front", ","], "no KPI"),
        (["tune", "--scenario", "{tiny}", "--param", "a=1", "--trials", "-3"], "must be >= 0"),
        (["tune", "--scenario", "{tiny}", "--param", "a=1", "--batch-interval", "0"], ">= 1"),
        (["tune", "--scenario", "{tiny}", "--param", "a=1", "--out", "{tmp}/file"], "a file"),
        (["tune", "--scenario", "{tiny}", "--param", "a=1", "--max-latency-ms", "0"], "> 0"),
        (["scenario", "generate", "--orders", "-5", "-o", "{tmp}/x.json"], "must be >= 0"),
        (["scenario", "generate", "--riders", "0", "-o", "{tmp}/x.json"], "must be >= 1"),
        (["scenario", "generate", "-o", "{tmp}"], "is a folder; name a file"),
        (["scenario", "generate", "-o", "{tmp}/file/x.json"], "file is a file, not a folder"),
        (["scenario", "import-mdrp", "{tmp}", "--capacity", "0", "-o", "{tmp}/m.json"], ">= 1"),
    ],
)
def test_a_bad_option_value_is_refused_before_anything_runs(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder")
    argv = [a.format(tiny=TINY, tmp=tmp_path) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    last = err.splitlines()[-1]  # argparse: the usage, then one error line
    assert "error: argument" in last and words in last


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["tune", "--scenario", "{tiny}", "--param", "speed=1,2"], "error: tune: speed: "),
        (["tune", "--scenario", "{empty}", "--param", "budget_ms=1"], "error: scenario: "),
        (["replay", "{empty}"], "error: scenario: "),
        (["scenario", "import-mdrp", "{tmp}/none", "-o", "{tmp}/m.json"], "error: scenario: "),
    ],
)
def test_bad_input_is_one_error_line(
    argv: list[str], start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    argv = [a.format(tiny=TINY, tmp=tmp_path, empty=empty) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith(start) and err.count("\n") == 1, err


# ------------------------------------------------------------------ replay --server
def test_replay_through_no_server_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{closed_port()}"
    code, out, err = run(["replay", str(TINY), "--server", address, "-q"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: replay: no dispatch service answered at --server {address}")
    assert "UNAVAILABLE" in err and "campus-dispatch serve" in err


@pytest.fixture(scope="module")
def tiny_service() -> Iterator[str]:
    from campus_maps import load_campus
    from server.app import create_server
    from tests.server.conftest import make_config

    svc = create_server(make_config(), campuses={"tiny": load_campus("tiny")})
    yield svc.address
    svc.stop(0.5)


def test_replay_on_a_campus_the_server_does_not_plan_on_is_one_line_exit_1(
    tiny_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["replay", str(NORTHWESTERN), "--server", tiny_service, "-q"], capsys)
    assert code == 1 and out == ""
    assert err == (
        f"error: replay: the service at {tiny_service} does not plan on campus 'northwestern' "
        "(it plans on tiny): add the campus to its configuration, or replay a scenario on one "
        "of those\n"
    )


def test_replay_on_a_plane_through_a_server_is_one_line(
    tiny_service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scenarios.mdrp import scenario_from_mdrp
    from scenarios.model import save_scenario

    plane = save_scenario(
        scenario_from_mdrp(Path(__file__).parent / "data" / "mdrp_tiny"), tmp_path / "p.json"
    )
    code, _, err = run(["replay", str(plane), "--server", tiny_service, "-q"], capsys)
    assert code == 2
    assert err.startswith("error: replay: ") and "needs a campus scenario" in err


# ------------------------------------------------------------------ help
def _parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    root = argparse.ArgumentParser(prog="campus-dispatch")
    scenarios.cli.add_commands(root.add_subparsers())
    stack = [("campus-dispatch", root)]
    while stack:
        name, parser = stack.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{name} {verb}", p) for verb, p in action.choices.items()]


def test_every_option_has_help_and_no_markup_leaks() -> None:
    seen = 0
    for name, parser in _parsers():
        assert "`" not in (parser.description or ""), name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            text = action.help or ""
            assert text.strip(), f"{name} {action.option_strings or action.dest}: no help"
            assert "`" not in text and "``" not in text, f"{name} {action.dest}: {text}"
            seen += 1
    assert seen > 40


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (
            ["tune"],
            [
                "(default: 2)",
                "(default: tune-out)",
                "from: delivered, undelivered, on_time_rate",
                "(default: on_time_rate,solver_latency_p99_ms)",
                "--no-pictures         no tradeoff.png",
            ],
        ),
        (
            ["replay"],
            [
                "(default: 0.2)",
                "(default: 30)",
                "from: nearest, greedy, search, search-free, ortools",
                "--no-pictures         with --out: no kpis.png nor route maps",
                "1 no service answered at --server",
            ],
        ),
        (["scenario", "generate"], ["(default: northwestern)", "{dinner,lunch}", "(default: 600)"]),
        (["scenario", "info"], ["2 any bad"]),
    ],
)
def test_help_shows_defaults_choices_and_exit_status(
    command: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([*command, "--help"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    for word in words:
        assert " ".join(word.split()) in flat, word
    assert "`" not in out


def test_the_accept_delay_default_is_the_replays() -> None:
    from scenarios.cli import ACCEPT_DELAY_S
    from scenarios.replay.simulate import ReplayConfig

    assert ReplayConfig().accept_delay_s == ACCEPT_DELAY_S
