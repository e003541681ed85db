"""Tests of the MDRPLIB import as a scenario on a small self-made fixture in the real layout.

The reader itself (records, instance listing) is tested in ``tests/instances/test_mdrp.py``;
the errors are tested here, end to end, as the :class:`ScenarioError` the import raises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from instances.mdrp import REQUIRED_FILES, list_mdrp_instances
from scenarios.mdrp import scenario_from_mdrp
from scenarios.model import (
    Geometry,
    Point,
    ScenarioError,
    ScenarioOrder,
    ScenarioRider,
    load_scenario,
    save_scenario,
    with_orders,
)

TINY = Path(__file__).resolve().parent / "data" / "mdrp_tiny"
REAL = Path("/work/shared/data/mdrplib/public_instances")


def _order(
    ident: str, placed: int, merchant: tuple[str, Point], customer: Point, ready: int
) -> ScenarioOrder:
    return ScenarioOrder(
        id=ident,
        placed_s=placed,
        merchant=merchant[1],
        customer=customer,
        ready_s=ready,
        promised_s=placed + 2400,  # target click-to-door 40 min
        size=1,
        pickup_service_s=240,  # 4 min
        dropoff_service_s=180,  # 3 min
        merchant_id=merchant[0],
    )


R1 = ("r1", Point(1500.0, 1500.0))
R2 = ("r2", Point(2200.0, 3100.0))
R3 = ("r3", Point(800.0, 2600.0))


def test_field_mapping() -> None:
    scenario = scenario_from_mdrp(TINY)
    assert scenario.name == "mdrp_tiny"
    assert scenario.geometry == Geometry("euclidean", metres_per_minute=320.0)
    assert scenario.riders == (
        ScenarioRider("c1", 0, 5400, Point(1000.0, 2000.0), "bike", 4),
        ScenarioRider("c2", 600, 7200, Point(4000.0, 500.0), "bike", 4),
        ScenarioRider("c3", 1800, 4500, Point(2500.0, 3000.0), "bike", 4),
    )
    assert scenario.orders == (
        _order("o4", 0, R1, Point(100.0, 4200.0), 600),
        _order("o2", 300, R1, Point(500.0, 800.0), 1200),
        _order("o6", 300, R3, Point(1800.0, 900.0), 1500),
        _order("o1", 900, R2, Point(1200.0, 3400.0), 1800),
        _order("o3", 900, R3, Point(2500.0, 2500.0), 900),  # ready 12 min < placed 15: clamped
        _order("o5", 2400, R2, Point(3000.0, 150.0), 3120),
    )
    assert dict(scenario.extra) == {
        "source": "mdrplib",
        "instance": "mdrp_tiny",
        "target_click_to_door_s": 2400,
        "max_click_to_door_s": 5400,
        "pay_per_order": 10.0,
        "guaranteed_pay_per_hour": 15.0,
        "clamped_ready": 1,
    }
    assert "MDRPLIB" in scenario.description
    assert "Reyes et al." in scenario.description
    assert "research use" in scenario.description
    assert scenario.end_s == 7200


def test_orders_sorted_by_placed_then_id() -> None:
    scenario = scenario_from_mdrp(TINY)
    keys = [(o.placed_s, o.id) for o in scenario.orders]
    assert keys == sorted(keys)
    assert with_orders(scenario, scenario.orders) == scenario


def test_options() -> None:
    scenario = scenario_from_mdrp(str(TINY), capacity=6, mode="ebike", name="lunch")
    assert scenario.name == "lunch"
    assert scenario.extra["instance"] == "mdrp_tiny"
    assert {(r.mode, r.capacity) for r in scenario.riders} == {("ebike", 6)}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"mode": "car"}, "mode"), ({"capacity": 0}, "capacity"), ({"capacity": True}, "capacity")],
)
def test_bad_options(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mdrp(TINY, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_round_trip(tmp_path: Path) -> None:
    scenario = scenario_from_mdrp(TINY)
    path = save_scenario(scenario, tmp_path / "tiny.json")
    assert load_scenario(path) == scenario


def test_crlf_and_blank_lines_are_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    for name in REQUIRED_FILES:
        path = folder / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    assert scenario_from_mdrp(folder).orders == scenario_from_mdrp(TINY).orders
    assert scenario_from_mdrp(folder).riders == scenario_from_mdrp(TINY).riders


# ------------------------------------------------------------------------------ errors


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(TINY, folder)
    return folder


def _edit(folder: Path, name: str, line: int, text: str | None) -> None:
    """Replace 1-based ``line`` of ``name`` with ``text`` (``None`` deletes it)."""
    path = folder / name
    lines = path.read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("".join(f"{item}\n" for item in lines))


def _raises(folder: Path, name: str, line: int | None, field: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mdrp(folder)
    exc = info.value
    assert Path(exc.source) == folder / name
    assert exc.line == line
    assert exc.field == field
    message = str(exc)
    assert name in message
    assert field in message
    if line is not None:
        assert f"{name}:{line}:" in message
    return exc


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_missing_file(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    (folder / name).unlink()
    exc = _raises(folder, name, None, name)
    assert exc.reason == "missing file"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mdrp(tmp_path / "nowhere")
    assert info.value.field == "folder"
    assert "nowhere" in str(info.value)


def test_characteristics_file_is_optional(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "instance_characteristics.txt").unlink()
    assert scenario_from_mdrp(folder).orders == scenario_from_mdrp(TINY).orders


# (file, line, new text or None to delete, expected line, field, words in the reason)
BROKEN = [
    pytest.param(
        "orders.txt",
        1,
        "order\tx\ty\tplacement_time\trestaurant\tready",
        1,
        "ready_time",
        "missing column",
        id="missing-column",
    ),
    pytest.param(
        "instance_parameters.txt",
        1,
        "meters_per_minute\tpickup service minutes\tdropoff service minutes\t"
        "target click-to-door\tmaximum click-to-door\tpay per order",
        1,
        "guaranteed pay per hour",
        "missing column",
        id="missing-parameter-column",
    ),
    pytest.param(
        "couriers.txt", 3, "c2\tabc\t500\t10\t120", 3, "x", "not a number", id="courier-x"
    ),
    pytest.param(
        "orders.txt",
        5,
        "o4\t100\t4200\tsoon\tr1\t10",
        5,
        "placement_time",
        "not a number",
        id="placement-time",
    ),
    pytest.param("restaurants.txt", 2, "r1\t1500\tnan", 2, "y", "finite", id="restaurant-y-nan"),
    pytest.param(
        "orders.txt", 4, "o3\t2500\t2500\t15\tr9\t12", 4, "restaurant", "unknown", id="unknown"
    ),
    pytest.param(
        "orders.txt", 2, "o1\t1200\t3400\t15", 2, "restaurant", "missing value", id="short-row"
    ),
    pytest.param(
        "orders.txt", 7, "o1\t1800\t900\t5\tr3\t25", 7, "order", "duplicate", id="duplicate-order"
    ),
    pytest.param(
        "restaurants.txt", 4, "r1\t800\t2600", 4, "restaurant", "duplicate", id="dup-restaurant"
    ),
    pytest.param(
        "couriers.txt", 2, "\t1000\t2000\t0\t90", 2, "courier", "empty", id="empty-courier-id"
    ),
    pytest.param(
        "couriers.txt", 4, "c3\t2500\t3000\t30\t30", 4, "off_time", "after", id="off-before-on"
    ),
    pytest.param(
        "couriers.txt", 2, "c1\t1000\t2000\t-5\t90", 2, "on_time", ">= 0", id="negative-on"
    ),
    pytest.param(
        "orders.txt", 3, "o2\t500\t800\t-1\tr1\t20", 3, "placement_time", ">= 0", id="neg-placed"
    ),
    pytest.param(
        "instance_parameters.txt",
        2,
        "0\t4\t3\t40\t90\t10\t15",
        2,
        "meters_per_minute",
        "> 0",
        id="zero-speed",
    ),
    pytest.param(
        "instance_parameters.txt",
        2,
        "320\t4\t3\t40\t30\t10\t15",
        2,
        "maximum click-to-door",
        "target",
        id="max-below-target",
    ),
    pytest.param(
        "instance_parameters.txt",
        2,
        "320\t4\t3\t0\t90\t10\t15",
        2,
        "target click-to-door",
        "> 0",
        id="zero-target",
    ),
    pytest.param("instance_parameters.txt", 2, None, 2, "(row)", "one row", id="no-parameter-row"),
    pytest.param("couriers.txt", 1, "", 1, "(header)", "empty file", id="empty-file"),
]


@pytest.mark.parametrize(("name", "line", "text", "at", "field", "words"), BROKEN)
def test_broken_input(
    tmp_path: Path, name: str, line: int, text: str | None, at: int, field: str, words: str
) -> None:
    folder = _copy(tmp_path)
    if field == "(header)":
        (folder / name).write_text("")
    else:
        _edit(folder, name, line, text)
    exc = _raises(folder, name, at, field)
    assert words in exc.reason


def test_blank_lines_count_for_line_numbers(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "orders.txt"
    lines = path.read_text().splitlines()
    lines.insert(2, "")  # a blank line 3: o2 moves to line 4, o3 to line 5
    lines[4] = "o3\t2500\t2500\t15\tr9\t12"
    path.write_text("\n".join(lines) + "\n")
    _raises(folder, "orders.txt", 5, "restaurant")


def test_no_couriers(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "couriers.txt"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    _raises(folder, "couriers.txt", 2, "courier")


# ------------------------------------------------------------------------------ real data


@pytest.mark.slow
def test_every_real_instance_imports(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"no MDRPLIB instances at {REAL}")
    folders = list_mdrp_instances(REAL)
    assert folders
    for folder in folders:
        scenario = scenario_from_mdrp(folder)  # the Scenario validates itself
        assert scenario.name == folder.name
        assert scenario.riders and scenario.orders
        assert scenario.geometry.metres_per_minute > 0
    # one round trip through the file format is enough to show it carries real sizes
    path = save_scenario(scenario, tmp_path / "real.json")
    assert load_scenario(path) == scenario
