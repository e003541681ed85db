"""Solver parameters: validation names the field and value; the shipped TOML is the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.params import ParamsError, SolverParams, load_params

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_documents_the_defaults() -> None:
    assert load_params(ROOT / "config" / "dispatch.toml") == SolverParams()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lateness_cost_per_s": -1.0}, "lateness_cost_per_s"),
        ({"max_lateness_s": 1.5}, "max_lateness_s"),
        ({"max_lateness_s": True}, "max_lateness_s"),
        ({"default_budget_s": 0}, "default_budget_s"),
        ({"travel_cost_per_s": float("nan")}, "travel_cost_per_s"),
        ({"metaheuristic": "MAGIC"}, "metaheuristic"),
        ({"objective": "fastest"}, "objective"),
        ({"ruin_orders": 0.5}, "ruin_orders"),
        ({"anneal_end_temp": 0.0}, "anneal_end_temp"),
        ({"anneal_start_temp": 0.001}, "anneal_start_temp"),
        ({"objective": "hierarchical", "vehicle_fixed_cost": 1e6}, "unassigned_penalty"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ParamsError) as err:
        SolverParams(**changes)  # type: ignore[arg-type]
    assert err.value.field == field
    assert f"solver.{field}=" in str(err.value)


def test_toml_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[solver]\nlateness_cost_per_s = 30\n")
    assert load_params(path).lateness_cost_per_s == 30
    path.write_text("[solver]\nlatenes_cost_per_s = 30\n")
    with pytest.raises(ParamsError, match=r"latenes_cost_per_s.*unknown parameter"):
        load_params(path)
    path.write_text("[solver\n")
    with pytest.raises(ParamsError, match="not valid TOML"):
        load_params(path)
    path.write_text("[other]\nx = 1\n")
    assert load_params(path) == SolverParams()
