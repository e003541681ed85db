"""The tuning harness: parameter specs and their errors, grid and seeded search sets, the
Pareto front and the choice, and a two-point grid on the tiny scenario end to end (table,
CSV/JSON, a chosen.toml the admin API takes, the trade-off PNG)."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from campus_dispatch.cli import main
from scenarios.model import load_scenario, save_scenario
from scenarios.replay.kpis import KPI_INFO
from scenarios.replay.simulate import ReplayConfig
from scenarios.tune import (
    FRONT_KPIS,
    Candidate,
    ParamAxis,
    TuneError,
    TuneReport,
    TuneResult,
    choose,
    grid_candidates,
    mark_front,
    pareto_front,
    parse_axis,
    search_candidates,
    shown,
    tune,
    write_tuning,
)
from server.config import ServerConfig, merge_config
from solver.params import SolverParams, load_params

DATA = Path(__file__).resolve().parents[2] / "scenarios" / "data"


@pytest.fixture(scope="module")
def short_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 8 orders of the shipped tiny lunch (a replay takes well under a second)."""
    full = load_scenario(DATA / "tiny-lunch.json")
    short = dataclasses.replace(full, name="tiny-short", orders=full.orders[:8])
    return save_scenario(short, tmp_path_factory.mktemp("tune") / "tiny-short.json")


# --------------------------------------------------------------------------- parameters
def test_param_specs() -> None:
    assert parse_axis("solver.lateness_cost_per_s=10,30,100") == ParamAxis(
        "lateness_cost_per_s", values=(10.0, 30.0, 100.0)
    )
    assert parse_axis("budget_ms=200,500").values == (0.2, 0.5)
    assert parse_axis("max_lateness_s=600,900.0").values == (600, 900)
    assert parse_axis("solver.metaheuristic=TABU_SEARCH,GUIDED_LOCAL_SEARCH").values == (
        "TABU_SEARCH",
        "GUIDED_LOCAL_SEARCH",
    )
    axis = parse_axis("solver.lateness_cost_per_s=log:5..500")
    assert (axis.low, axis.high, axis.log, axis.is_range) == (5.0, 500.0, True, True)
    assert axis.pick(0.0) == 5.0 and axis.pick(0.5) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("solver.lateness_cost=10,30", "did you mean lateness_cost_per_s"),
        ("server.max_inflight=8,16", "server settings do not act"),
        ("solver.lateness_cost_per_s=ten", "not a valid float"),
        ("solver.lateness_cost_per_s=10,10", "repeated value"),
        ("solver.lateness_cost_per_s=100..10", "from low to high"),
        ("solver.lateness_cost_per_s=log:0..10", "above 0"),
        ("solver.lateness_cost_per_s=log:1,2", "goes with a range"),
        ("solver.lateness_cost_per_s", "expected key=v1,v2"),
    ],
)
def test_bad_param_specs_say_why(text: str, words: str) -> None:
    with pytest.raises(TuneError, match=words):
        parse_axis(text)


def test_grid_is_every_combination_and_values_are_validated() -> None:
    axes = [parse_axis("lateness_cost_per_s=1,10,100"), parse_axis("budget_ms=200,500")]
    sets = grid_candidates(SolverParams(), axes)
    assert [(c.index, c.params.lateness_cost_per_s, c.params.default_budget_s) for c in sets][
        :3
    ] == [(1, 1.0, 0.2), (2, 1.0, 0.5), (3, 10.0, 0.2)]
    assert len(sets) == 6 and sets[5].label() == "lateness_cost_per_s=100.0, default_budget_s=0.5"
    with pytest.raises(TuneError, match="needs --trials"):
        grid_candidates(SolverParams(), [parse_axis("lateness_cost_per_s=1..10")])
    with pytest.raises(TuneError, match=r"solver.ruin_recreate_share=2.0: must be between"):
        grid_candidates(SolverParams(), [parse_axis("ruin_recreate_share=0.5,2")])
    with pytest.raises(TuneError, match="given twice"):
        grid_candidates(SolverParams(), [axes[0], axes[0]])


def test_search_is_seeded_and_spreads_over_the_ranges() -> None:
    axes = [
        parse_axis("lateness_cost_per_s=log:1..1000"),
        parse_axis("max_lateness_s=600..1800"),
        parse_axis("metaheuristic=TABU_SEARCH,GUIDED_LOCAL_SEARCH"),
    ]
    sets = search_candidates(SolverParams(), axes, 10, seed=3)
    assert [c.changes for c in sets] == [
        c.changes for c in search_candidates(SolverParams(), axes, 10, seed=3)
    ]
    assert [c.changes for c in sets] != [
        c.changes for c in search_candidates(SolverParams(), axes, 10, seed=4)
    ]
    costs = np.log10([c.params.lateness_cost_per_s for c in sets])
    # Latin hypercube: one set in each tenth of the (log) range
    assert sorted(np.floor(costs / 0.3).astype(int).tolist()) == list(range(10))
    assert all(isinstance(c.params.max_lateness_s, int) for c in sets)
    assert {c.params.metaheuristic for c in sets} == {"TABU_SEARCH", "GUIDED_LOCAL_SEARCH"}


def test_pareto_front_and_choice() -> None:
    #            on-time, latency ms
    points = [(0.90, 100.0), (0.95, 300.0), (0.90, 200.0), (0.97, 900.0), (0.95, 300.0)]
    assert pareto_front(points, [1, -1]) == [True, True, False, True, True]
    results = [
        TuneResult(
            _candidate(k),
            {"on_time_rate": r, "solver_latency_p99_ms": ms, "click_to_door_p90_min": 30.0},
            {},
            on_front=front,
        )
        for k, ((r, ms), front) in enumerate(
            zip(points, pareto_front(points, [1, -1]), strict=True), 1
        )
    ]
    best, note = choose(results)
    assert best.candidate.index == 4 and "best on-time" in note
    best, note = choose(results, max_latency_ms=500)
    assert best.candidate.index == 2 and "<= 500 ms" in note
    best, note = choose(results, max_latency_ms=50)
    assert best.candidate.index == 1 and "no set" in note


def _candidate(index: int) -> Candidate:
    return Candidate(index, {"lateness_cost_per_s": float(index)}, SolverParams())


# ------------------------------------------------------------------------------ end to end
def test_two_point_grid_on_the_tiny_scenario(short_tiny: Path, tmp_path: Path) -> None:
    axes = [parse_axis("solver.lateness_cost_per_s=1,100")]
    base = SolverParams(default_budget_s=0.03)
    report = tune([short_tiny], grid_candidates(base, axes), config=ReplayConfig())
    table = report.table()
    rows = [line.split() for line in table.splitlines()[2:4]]
    assert [row[:2] for row in rows] == [["1", "1.0"], ["2", "100.0"]]
    assert "on-time (%)" in table and "latency p99 (ms)" in table and "busy rider-h" in table
    assert any(r.on_front for r in report.results) and report.chosen in report.results
    for r in report.results:
        assert r.kpis["orders"] == 8 and 0 <= r.kpis["on_time_rate"] <= 1
        assert list(r.per_scenario) == ["tiny-short"]
    written = write_tuning(report, tmp_path / "out")
    assert [p.name for p in written] == ["tune.csv", "tune.json", "chosen.toml", "tradeoff.png"]
    assert written[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(written[1].read_text())
    assert [s["changes"] for s in data["sets"]] == [
        {"lateness_cost_per_s": 1.0},
        {"lateness_cost_per_s": 100.0},
    ]
    assert len(written[0].read_text().splitlines()) == 1 + 2 * 2  # header, scenario + mean
    chosen = report.chosen.candidate.params
    assert load_params(written[2]) == chosen
    # ready for UpdateConfig: the admin API merges the same document over a running config
    merged = merge_config(ServerConfig(), tomllib.loads(written[2].read_text()))
    assert merged.solver == chosen


def test_tune_command_runs_replays_in_parallel(
    short_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "--scenario", str(short_tiny), "--param", "budget_ms=20,30"]
    args += ["--param", "lateness_cost_per_s=10", "--jobs", "2", "--out", str(tmp_path)]
    assert main([*args, "--max-latency-ms", "1000", "-q", "--no-pictures"]) == 0
    out = capsys.readouterr().out
    assert "default_budget_s" in out and "0.02" in out and "0.03" in out
    assert "admin update --file" in out and (tmp_path / "chosen.toml").exists()
    assert not (tmp_path / "tradeoff.png").exists()
    assert main(["tune", "--scenario", str(short_tiny), "--param", "server.workers=1,2"]) == 2
    assert "server settings do not act" in capsys.readouterr().err


def test_tune_on_a_scenario_whose_points_sit_on_osm_nodes(tmp_path: Path) -> None:
    from campus_maps import load_campus
    from tests.scenarios.replay.test_simulate import on_osm_nodes, short_tiny

    path = save_scenario(on_osm_nodes(load_campus("tiny"), short_tiny(6)), tmp_path / "nodes.json")
    axes = [parse_axis("solver.lateness_cost_per_s=10")]
    report = tune([path], grid_candidates(SolverParams(default_budget_s=0.03), axes))
    assert [r.kpis["orders"] for r in report.results] == [6]


def _result(index: int, on_time: float, latency_ms: float, c2d: float = 30.0) -> TuneResult:
    kpis = {kpi: 0.0 for kpi in KPI_INFO}
    kpis |= {
        "on_time_rate": on_time,
        "solver_latency_p99_ms": latency_ms,
        "click_to_door_p90_min": c2d,
    }
    return TuneResult(_candidate(index), kpis, {})


def test_sets_the_table_shows_equal_are_ties_starred_alike() -> None:
    # 1 and 2 show as 95.0 % and 120.0 ms; raw, 2 is a hair better on both (noise below the
    # table's precision): both are on the front, not 2 alone
    results = [
        _result(1, 0.95, 120.04),
        _result(2, 0.950001, 120.01),
        _result(3, 0.90, 80.0),
        _result(4, 0.90, 80.04),  # shows as 80.0 too: tied with 3
        _result(5, 0.90, 95.0),  # dominated by 3 and 4 alike
    ]
    mark_front(results, FRONT_KPIS)
    assert [r.on_front for r in results] == [True, True, True, True, False]
    report = TuneReport(["s"], results, FRONT_KPIS, results[0], "note")
    starred = [line.split()[0] for line in report.table().splitlines()[2:] if "*" in line[-4:]]
    assert starred == ["1", "2", "3", "4"]
    # a tie on everything shown: the lower set number is chosen
    best, _ = choose(results)
    assert best.candidate.index == 1
    assert shown("on_time_rate", 0.950001) == shown("on_time_rate", 0.95) == 95.0
    assert shown("solver_latency_p99_ms", 120.04) == 120.0
    assert shown("orders_per_trip", 1.234) == 1.23
