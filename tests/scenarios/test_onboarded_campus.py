"""Scenarios, replays and the tuner work on a campus an operator onboarded (found in the maps
directory by its id), not only on the bundled ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campus_dispatch.cli import main
from campus_maps import MAPS_DIR_ENV
from campus_maps.config import DATA_DIR

TINY = DATA_DIR / "tiny" / "tiny.osm.xz"


@pytest.fixture
def onboarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny map onboarded as ``mygrid`` into a maps directory named by the environment."""
    maps, cache = tmp_path / "maps", tmp_path / "cache"
    monkeypatch.setenv(MAPS_DIR_ENV, str(maps))
    monkeypatch.setenv("CAMPUS_DISPATCH_CACHE", str(cache))
    code = main(["campus", "add", "mygrid", "--osm", str(TINY), "--name", "My grid"])
    assert code == 0 and (maps / "mygrid" / "campus.toml").is_file()
    return maps


def test_generate_replay_and_tune_on_an_onboarded_campus(
    onboarded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "mygrid-lunch.json"
    gen = ["scenario", "generate", "--campus", "mygrid", "--orders", "12", "--riders", "3"]
    assert main([*gen, "-o", str(scenario)]) == 0
    data = json.loads(scenario.read_text())
    assert data["geometry"]["campus_id"] == "mygrid" and len(data["orders"]) >= 12

    out = tmp_path / "replay"
    replay = ["replay", str(scenario), "--policy", "greedy", "--budget", "0.05", "-q"]
    assert main([*replay, "--out", str(out)]) == 0
    assert (out / "kpis.json").is_file()
    assert any(p.suffix == ".png" for p in out.iterdir())  # the route map is on the campus

    tune = ["tune", "--scenario", str(scenario), "--param", "solver.lateness_cost_per_s=1,100"]
    tune += ["--param", "budget_ms=20"]  # each set's dispatch budget: a quick replay
    assert main([*tune, "--jobs", "1", "-q", "--no-pictures", "--out", str(tmp_path / "t")]) == 0
    assert "on-time" in capsys.readouterr().out


def test_an_unknown_campus_names_the_onboarded_ones(
    onboarded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = ["scenario", "generate", "--campus", "nowhere", "-o", str(tmp_path / "x.json")]
    assert main(gen) != 0
    assert "mygrid" in capsys.readouterr().err
