"""Tests of the MDRPLIB reader on the small self-made fixture in the real layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instances.mdrp import (
    REQUIRED_FILES,
    MdrpCourier,
    MdrpFormatError,
    MdrpOrder,
    MdrpParameters,
    MdrpRestaurant,
    list_mdrp_instances,
    read_mdrp,
)
from scenarios.mdrp import scenario_from_mdrp
from scenarios.model import ScenarioError

TINY = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "mdrp_tiny"


def test_records_keep_the_files_values_in_file_order() -> None:
    instance = read_mdrp(TINY)
    assert instance.name == "mdrp_tiny" and instance.folder == TINY
    assert instance.parameters == MdrpParameters(
        metres_per_minute=320.0,
        pickup_service_s=240,
        dropoff_service_s=180,
        target_click_to_door_s=2400,
        max_click_to_door_s=5400,
        pay_per_order=10.0,
        guaranteed_pay_per_hour=15.0,
    )
    assert list(instance.restaurants) == ["r1", "r2", "r3"]
    assert instance.restaurants["r2"] == MdrpRestaurant("r2", 2200.0, 3100.0, 3)
    assert instance.couriers == (
        MdrpCourier("c1", 1000.0, 2000.0, 0, 5400, 2),
        MdrpCourier("c2", 4000.0, 500.0, 600, 7200, 3),
        MdrpCourier("c3", 2500.0, 3000.0, 1800, 4500, 4),
    )
    assert [o.id for o in instance.orders] == ["o1", "o2", "o3", "o4", "o5", "o6"]
    # o3 is ready (12 min) before it is placed (15 min): the reader keeps the file's value
    assert instance.orders[2] == MdrpOrder("o3", 2500.0, 2500.0, 900, "r3", 720, 4)
    with pytest.raises(TypeError):
        instance.restaurants["r9"] = MdrpRestaurant("r9", 0.0, 0.0, 9)  # type: ignore[index]


def test_list_instances(tmp_path: Path) -> None:
    shutil.copytree(TINY, tmp_path / "b")
    shutil.copytree(TINY, tmp_path / "a")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("not an instance\n")
    assert list_mdrp_instances(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert list_mdrp_instances(tmp_path / "a") == [tmp_path / "a"]
    with pytest.raises(MdrpFormatError) as info:
        list_mdrp_instances(tmp_path / "missing")
    assert info.value.field == "root"


def _broken(tmp_path: Path, name: str, line: int, text: str) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(TINY, folder)
    path = folder / name
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("".join(f"{item}\n" for item in lines))
    return folder


@pytest.mark.parametrize(
    ("name", "line", "text", "field"),
    [
        ("orders.txt", 4, "o3\t2500\t2500\t15\tr9\t12", "restaurant"),
        ("couriers.txt", 3, "c2\tabc\t500\t10\t120", "x"),
        ("restaurants.txt", 4, "r1\t800\t2600", "restaurant"),
        ("instance_parameters.txt", 2, "320\t4\t3\t40\t30\t10\t15", "maximum click-to-door"),
    ],
)
def test_errors_name_file_line_and_column_as_the_scenario_import_reports_them(
    tmp_path: Path, name: str, line: int, text: str, field: str
) -> None:
    folder = _broken(tmp_path, name, line, text)
    with pytest.raises(MdrpFormatError) as info:
        read_mdrp(folder)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert (Path(exc.source), exc.line, exc.field) == (folder / name, line, field)
    assert str(exc).startswith(f"{folder / name}:{line}: {field}=")
    with pytest.raises(ScenarioError) as scenario_info:
        scenario_from_mdrp(folder)
    converted = scenario_info.value
    assert str(converted) == str(exc)
    assert (converted.field, converted.value, converted.reason, converted.line) == (
        exc.field,
        exc.value,
        exc.reason,
        exc.line,
    )


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_missing_file(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(TINY, folder)
    (folder / name).unlink()
    with pytest.raises(MdrpFormatError) as info:
        read_mdrp(folder)
    assert (info.value.field, info.value.line, info.value.reason) == (name, None, "missing file")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MdrpFormatError) as info:
        read_mdrp(tmp_path / "nowhere")
    assert info.value.field == "folder" and "nowhere" in str(info.value)
