"""Running replays end to end: one route map per policy, all at the scenario's demand peak and
in the same frame, and a progress bar that ends at 100 % (its total is the period replayed,
not the drain allowance after it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pytest

from campus_maps import load_campus
from scenarios.model import Point, Scenario, ScenarioOrder, load_scenario, save_scenario
from scenarios.replay.policies import make_policy
from scenarios.replay.runner import ReplayError, ReplayJob, replay_scenario, run_job
from scenarios.replay.simulate import ReplayConfig, Simulator, busiest_moment
from scenarios.replay.travel import CampusTravel
from solver.params import SolverParams

DATA = Path(__file__).resolve().parents[3] / "scenarios" / "data"


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 orders of the tiny lunch, as a file."""
    full = load_scenario(DATA / "tiny-lunch.json")
    scenario = dataclasses.replace(full, name="tiny-12", orders=full.orders[:12])
    return save_scenario(scenario, tmp_path_factory.mktemp("runner") / "tiny-12.json")


# ----------------------------------------------------------------------------- route maps
def test_every_policy_gets_its_route_map_at_the_same_moment(short: Path, tmp_path: Path) -> None:
    results, report = replay_scenario(
        short, ["greedy", "nearest"], budget_s=0.05, out_dir=tmp_path, pictures=True
    )
    maps = sorted(p.name for p in tmp_path.glob("routes-*.png"))
    assert maps == ["routes-greedy.png", "routes-nearest.png"]
    for name in maps:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in report
    peak = busiest_moment(load_scenario(short), ReplayConfig().batch_interval_s)
    assert peak is not None
    moments = {r.policy: r.snapshot.t_s for r in results if r.snapshot is not None}
    assert set(moments) == {"greedy", "nearest"}
    assert len(set(moments.values())) == 1 and min(moments.values()) >= peak


def test_a_map_policy_alone_when_asked(short: Path, tmp_path: Path) -> None:
    from scenarios.replay.runner import report_replays

    results, _ = replay_scenario(short, ["greedy", "nearest"], budget_s=0.05)
    report_replays(results, tmp_path, map_policy="nearest")
    assert [p.name for p in tmp_path.glob("routes-*.png")] == ["routes-nearest.png"]


def test_an_unknown_or_no_policy_is_refused_before_any_replay(short: Path) -> None:
    with pytest.raises(ReplayError, match="unknown policy 'fastest': choose from nearest"):
        replay_scenario(short, ["greedy", "fastest"])
    with pytest.raises(ReplayError, match="no policy to replay"):
        replay_scenario(short, [])


def _order(k: int, placed: int, promised: int) -> ScenarioOrder:
    here = Point(42.05, -87.67)
    return ScenarioOrder(f"o{k}", placed, here, here, placed, promised)


def test_the_busiest_moment_is_the_peak_of_orders_placed_and_not_yet_promised() -> None:
    full = load_scenario(DATA / "tiny-lunch.json")
    orders = (
        _order(1, 10, 2000),
        _order(2, 100, 700),
        _order(3, 650, 900),
        _order(4, 1000, 1500),
        _order(5, 1100, 1600),
        _order(6, 1190, 1400),
    )
    scenario: Scenario = dataclasses.replace(full, orders=orders)
    # at 1200 s: o1, o4, o5 and o6 (four); at 660 s o1, o2, o3 (three)
    assert busiest_moment(scenario, 60) == 1200
    assert busiest_moment(scenario, 30) == 1200
    assert busiest_moment(dataclasses.replace(full, orders=()), 30) is None


# ----------------------------------------------------------------------------- progress
def test_progress_ends_at_the_end_of_the_replay_not_of_the_drain_allowance() -> None:
    tiny = load_campus("tiny")
    full = load_scenario(DATA / "tiny-lunch.json")
    scenario = dataclasses.replace(full, orders=full.orders[:8])
    calls: list[tuple[int, int]] = []
    simulator = Simulator(
        scenario,
        CampusTravel(tiny),
        make_policy("greedy", SolverParams(), 0.05),
        SolverParams(),
        ReplayConfig(batch_interval_s=60),
        progress=lambda t, end: calls.append((t, end)),
    )
    result = simulator.run()
    assert calls[-1] == (result.end_s, result.end_s)
    assert all(t <= end for t, end in calls)
    last_shift = max(r.shift_end_s for r in scenario.riders)
    # the expected end is the period, never the drain allowance (7200 s) after it
    assert max(end for _, end in calls[:-1]) < last_shift + ReplayConfig().drain_s


class FakeBar:
    """Records what the runner does to its tqdm bar."""

    made: ClassVar[list[FakeBar]] = []

    def __init__(self, *, total: int, **_: Any) -> None:
        self.total, self.n, self.closed = total, 0, False
        FakeBar.made.append(self)

    def update(self, n: int) -> None:
        self.n += n
        assert 0 <= self.n <= self.total

    def close(self) -> None:
        self.closed = True


def test_the_progress_bar_reaches_100_percent(short: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", FakeBar)
    FakeBar.made.clear()
    result = run_job(ReplayJob(short, "greedy", budget_s=0.05, progress=True))
    (bar,) = FakeBar.made
    assert bar.closed and bar.total > 1
    assert bar.n == bar.total == round(result.end_s / 60)
