"""The tuning harness: parameter specs and their errors, grid and seeded search sets, the
Pareto front and the choice, and a two-point grid on the tiny scenario end to end (table,
CSV/JSON, a chosen.toml the admin API takes, the trade-off PNG); plan stability traded
against delivery (reassignment cost and freeze horizon as axes, a front on stability KPIs)."""

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
    TABLE_KPIS,
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
    picture_kpis,
    plot_report,
    search_candidates,
    shown,
    table_kpis,
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


def _result(
    index: int, on_time: float, latency_ms: float, c2d: float = 30.0, **more: float
) -> TuneResult:
    kpis = {kpi: 0.0 for kpi in KPI_INFO}
    kpis |= {
        "on_time_rate": on_time,
        "solver_latency_p99_ms": latency_ms,
        "click_to_door_p90_min": c2d,
        **more,
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


# ------------------------------------------------------- plan stability against delivery
STABILITY_FRONT = ("reassigned_share", "click_to_door_mean_min")


def test_stability_parameters_as_axes() -> None:
    cost = parse_axis("reassignment_cost=0,100,300,1000")
    horizon = parse_axis("solver.freeze_horizon_s=0,300.0")
    assert cost.values == (0.0, 100.0, 300.0, 1000.0)
    assert all(type(v) is float for v in cost.values)
    assert horizon.values == (0, 300) and all(type(v) is int for v in horizon.values)
    sets = grid_candidates(SolverParams(), [cost, horizon])
    assert len(sets) == 8 and sets[1].label() == "reassignment_cost=0.0, freeze_horizon_s=300"
    assert (sets[7].params.reassignment_cost, sets[7].params.freeze_horizon_s) == (1000.0, 300)
    # a search range of the horizon stays whole seconds
    span = search_candidates(SolverParams(), [parse_axis("freeze_horizon_s=0..900")], 6, seed=1)
    assert all(type(c.params.freeze_horizon_s) is int for c in span)
    with pytest.raises(TuneError, match="whole number"):
        grid_candidates(SolverParams(), [parse_axis("freeze_horizon_s=0,300.5")])
    with pytest.raises(TuneError, match=">= 0"):
        grid_candidates(SolverParams(), [parse_axis("reassignment_cost=-1,10")])


def test_the_table_always_shows_the_front_kpis() -> None:
    assert table_kpis(FRONT_KPIS) == TABLE_KPIS
    assert table_kpis(STABILITY_FRONT) == (*TABLE_KPIS, *STABILITY_FRONT)
    assert table_kpis(("shed_rate", "eta_churn_p90_min")) == (*TABLE_KPIS, "eta_churn_p90_min")
    results = [
        _result(1, 0.95, 100.0, reassigned_share=0.12, click_to_door_mean_min=20.0),
        _result(2, 0.95, 100.0, reassigned_share=0.01, click_to_door_mean_min=24.0),
    ]
    mark_front(results, STABILITY_FRONT)
    report = TuneReport(["s"], results, STABILITY_FRONT, results[0], "note")
    lines = report.table().splitlines()
    assert lines[0].split("  ")[-3:] == ["reassigned (%)", "c2d mean (min)", "front"]
    assert lines[2].split()[-4:-1] == ["12.0", "20.0", "*"]
    assert lines[3].split()[-3:] == ["1.0", "24.0", "*"]
    assert "Pareto front on reassigned vs c2d mean" in lines[-1]
    header = report.chosen_toml()
    assert "reassigned 12.0 %" in header and "c2d mean 20.0 min" in header
    assert "Pareto front on reassigned_share, click_to_door_mean_min" in header


def test_the_choice_on_a_stability_front_is_the_front_set_with_the_best_on_time_rate() -> None:
    results = [  # on-time, latency, c2d p90; reassigned share, c2d mean
        _result(1, 0.90, 90.0, reassigned_share=0.20, click_to_door_mean_min=18.0),
        _result(2, 0.93, 90.0, reassigned_share=0.05, click_to_door_mean_min=20.0),
        _result(3, 0.93, 80.0, reassigned_share=0.02, click_to_door_mean_min=21.0),
        _result(4, 0.97, 90.0, reassigned_share=0.06, click_to_door_mean_min=20.5),  # off
        _result(5, 0.80, 60.0, reassigned_share=0.00, click_to_door_mean_min=25.0),
    ]
    mark_front(results, STABILITY_FRONT)
    assert [r.on_front for r in results] == [True, True, True, False, True]
    # set 4 has the best on-time rate but is dominated (by 2) on the stability front: never
    # chosen; 2 and 3 tie on on-time rate, the first front KPI (reassigned share) decides
    best, note = choose(results, front_kpis=STABILITY_FRONT)
    assert best.candidate.index == 3 and note == "best on-time rate on the front"
    # the front KPIs in the order given break the tie: c2d mean first picks set 2
    best, _ = choose(results, front_kpis=STABILITY_FRONT[::-1])
    assert best.candidate.index == 2
    best, note = choose(results, max_latency_ms=70, front_kpis=STABILITY_FRONT)
    assert best.candidate.index == 5 and "<= 70 ms" in note


def test_the_picture_plots_the_first_two_front_kpis() -> None:
    assert picture_kpis(FRONT_KPIS) == ("on_time_rate", "solver_latency_p99_ms")
    assert picture_kpis(STABILITY_FRONT) == STABILITY_FRONT
    assert picture_kpis((*STABILITY_FRONT, "on_time_rate")) == STABILITY_FRONT
    assert picture_kpis(("reassigned_share",)) == ("reassigned_share", "solver_latency_p99_ms")
    assert picture_kpis(("solver_latency_p99_ms",)) == FRONT_KPIS


def test_the_picture_of_a_three_kpi_front_steps_through_its_two_drawn_kpis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scenarios.replay.plots as plots

    front3 = (*STABILITY_FRONT, "on_time_rate")
    results = [
        _result(1, 0.90, 90.0, reassigned_share=0.20, click_to_door_mean_min=18.0),
        _result(2, 0.93, 90.0, reassigned_share=0.05, click_to_door_mean_min=20.0),
        _result(3, 0.99, 90.0, reassigned_share=0.10, click_to_door_mean_min=21.0),
    ]
    mark_front(results, front3)  # 3 is on the front by its on-time rate alone
    assert all(r.on_front for r in results)
    seen: dict[str, object] = {}
    monkeypatch.setattr(plots, "plot_tradeoff", lambda *a, **k: seen.update(args=a, **k))
    plot_report(TuneReport(["s"], results, front3, results[2], "note"), tmp_path / "t.png")
    assert (seen["y_kpi"], seen["x_kpi"]) == STABILITY_FRONT
    assert seen["on_line"] == [True, True, False]  # 3 is beaten by 2 on both drawn KPIs
    # drawn as the table shows them (a share stays a share: the picture puts it in %)
    results[0].kpis["click_to_door_mean_min"] = 18.04
    plot_report(TuneReport(["s"], results, front3, results[2], "note"), tmp_path / "t.png")
    labels, y, x, on_front, chosen = seen["args"][:5]
    assert (labels, on_front, chosen) == ([1, 2, 3], [True] * 3, 2)
    assert y == pytest.approx([0.20, 0.05, 0.10]) and x == [18.0, 20.0, 21.0]


def test_a_stability_grid_on_the_tiny_scenario(short_tiny: Path, tmp_path: Path) -> None:
    axes = [parse_axis("reassignment_cost=0,1000"), parse_axis("freeze_horizon_s=0,300")]
    sets = grid_candidates(SolverParams(default_budget_s=0.03), axes)
    report = tune([short_tiny], sets, front_kpis=STABILITY_FRONT)
    assert report.front_kpis == STABILITY_FRONT
    for r in report.results:
        assert r.kpis["orders"] == 8
        assert 0 <= r.kpis["reassigned_share"] <= 1 and r.kpis["click_to_door_mean_min"] > 0
    expected = [r.on_front for r in report.results]
    mark_front(report.results, STABILITY_FRONT)
    assert [r.on_front for r in report.results] == expected and any(expected)
    assert report.chosen.on_front
    table = report.table()
    assert "reassigned (%)" in table and "c2d mean (min)" in table
    rows = [line.split() for line in table.splitlines()[2:6]]
    assert [row[:3] for row in rows] == [
        ["1", "0.0", "0"],
        ["2", "0.0", "300"],
        ["3", "1000.0", "0"],
        ["4", "1000.0", "300"],
    ]
    written = write_tuning(report, tmp_path)
    assert written[3].name == "tradeoff.png" and written[3].read_bytes()[:4] == b"\x89PNG"
    data = json.loads(written[1].read_text())
    assert data["front_kpis"] == list(STABILITY_FRONT)
    assert data["sets"][3]["changes"] == {"reassignment_cost": 1000.0, "freeze_horizon_s": 300}
    assert load_params(written[2]) == report.chosen.candidate.params


def test_tune_command_trades_stability_against_click_to_door(
    short_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "--scenario", str(short_tiny), "--out", str(tmp_path), "--jobs", "1", "-q"]
    args += ["--param", "reassignment_cost=0,100,300,1000", "--param", "freeze_horizon_s=0,300"]
    args += ["--param", "budget_ms=30", "--front", "reassigned_share,click_to_door_mean_min"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reassigned (%)" in out and "c2d mean (min)" in out
    assert "Pareto front on reassigned vs c2d mean" in out
    data = json.loads((tmp_path / "tune.json").read_text())
    assert len(data["sets"]) == 8 and data["front_kpis"] == list(STABILITY_FRONT)
    grid = {(c, h) for c in (0.0, 100.0, 300.0, 1000.0) for h in (0, 300)}
    assert {tuple(s["changes"].values())[:2] for s in data["sets"]} == grid
    assert (tmp_path / "tradeoff.png").exists()
