"""Tests of the Li & Lim and Solomon readers on small self-made fixtures in the real formats."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from instances.literature import (
    BenchmarkFormatError,
    plan_distance,
    plan_vehicles,
    read_bks_lilim,
    read_bks_solomon,
    read_instance,
    read_lilim,
    read_routes,
    read_solomon,
    truncated_time_matrix,
)
from solver.model import OrderState
from solver.params import SolverParams
from solver.plan import Engine, StopKind
from solver.routes import build_plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LILIM = FIXTURES / "lilim_tiny.txt"
SOLOMON = FIXTURES / "solomon_tiny.txt"
PARAMS = SolverParams(
    objective="hierarchical",
    vehicle_fixed_cost=10_000.0,
    distance_cost_per_m=1.0,
    travel_cost_per_s=0.0,
    lateness_cost_per_s=0.0,
    cost_scale=100.0,
)


def _euclid(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _corrupt(tmp_path: Path, source: Path, line: int, old: str, new: str) -> Path:
    """A copy of ``source`` with ``old`` replaced by ``new`` on 1-based ``line``."""
    lines = source.read_bytes().decode().split("\n")
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path = tmp_path / source.name
    path.write_bytes("\n".join(lines).encode())
    return path


# --- Li & Lim ----------------------------------------------------------------------------------


def test_lilim_counts_and_pairing() -> None:
    inst = read_lilim(LILIM)
    problem = inst.problem
    assert inst.name == "lilim_tiny" and inst.kind == "lilim"
    assert inst.num_vehicles == 3 and inst.capacity == 30 and inst.scale == 100
    assert problem.num_locations == 7
    assert [o.id for o in problem.orders] == ["1-2", "3-4", "5-6"]
    assert [(o.pickup, o.dropoff, o.size) for o in problem.orders] == [
        (1, 2, 10),
        (3, 4, 20),
        (5, 6, 15),
    ]
    assert all(o.state is OrderState.OPEN for o in problem.orders)
    assert inst.node_visits[3] == ("3-4", StopKind.PICKUP)
    assert inst.node_visits[4] == ("3-4", StopKind.DROPOFF)
    assert 0 not in inst.node_visits


def test_lilim_windows_and_service_are_scaled() -> None:
    order = read_lilim(LILIM).problem.orders[0]
    # pickup 1: window [0, 100], service 10; delivery 2: window [50, 300], service 10
    assert (order.ready_s, order.pickup_latest_s) == (0, 10_000)
    assert (order.dropoff_earliest_s, order.due_s) == (5_000, 30_000)
    assert (order.pickup_service_s, order.dropoff_service_s) == (1_000, 1_000)
    coarse = read_lilim(LILIM, scale=10).problem.orders[0]
    assert (coarse.pickup_latest_s, coarse.due_s) == (1_000, 3_000)


def test_lilim_riders_close_routes_at_the_depot() -> None:
    problem = read_lilim(LILIM).problem
    assert len(problem.riders) == 3
    for rider in problem.riders:
        assert rider.location == 0 and rider.end_location == 0
        assert (rider.available_s, rider.shift_end_s) == (0, 100_000)
        assert rider.capacity == 30
    assert problem.now_s == 0


def test_matrices_truncate_scaled_times_and_keep_float_distances() -> None:
    inst = read_lilim(LILIM)
    d03 = _euclid((40, 50), (42, 60))
    assert inst.distance[0, 3] == pytest.approx(d03)
    assert inst.problem.distance_m[0, 0, 3] == pytest.approx(d03)
    assert inst.problem.time_s[0, 0, 3] == math.floor(100 * d03)
    scaled = 100 * inst.distance
    assert np.all(inst.problem.time_s[0] <= scaled + 1e-9)
    assert np.all(inst.problem.time_s[0] > scaled - 1)
    assert np.all(np.diag(inst.problem.time_s[0]) == 0)


def test_truncated_time_matrix_is_exact_on_perfect_squares() -> None:
    coords = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    times = truncated_time_matrix(coords, 100)
    assert times[0, 1] == 500  # 5.0 exactly: no float shortfall to 499
    assert times[0, 2] == 141  # floor(141.42...)
    half = truncated_time_matrix(np.array([[0.0, 0.0], [0.5, 0.0]]), 100)
    assert half[0, 1] == 50


def test_lilim_hand_made_routes_are_feasible() -> None:
    inst = read_lilim(LILIM)
    routes = [[3, 1, 2, 4], [5, 6]]
    plan = build_plan(inst.problem, PARAMS, inst.visits_by_rider(routes), [], engine=Engine.GREEDY)
    assert plan_vehicles(plan) == 2
    expected = sum(
        _euclid(a, b)
        for a, b in [
            ((40, 50), (42, 60)), ((42, 60), (45, 68)), ((45, 68), (45, 75)),
            ((45, 75), (30, 60)), ((30, 60), (40, 50)), ((40, 50), (55, 50)),
            ((55, 50), (60, 40)), ((60, 40), (40, 50)),
        ]
    )  # fmt: skip
    assert plan_distance(plan) == pytest.approx(expected)
    stops = plan.routes[0].stops
    assert [s.load_after for s in stops] == [20, 30, 20, 0]
    assert stops[2].start_s == 5_000  # waits for the delivery window to open
    check = pytest.importorskip("solver.check")
    verdict = check.check_plan(inst.problem, plan, PARAMS)
    assert verdict.ok, verdict.violations


def test_lilim_route_breaking_a_window_is_rejected() -> None:
    check = pytest.importorskip("solver.check")
    inst = read_lilim(LILIM)
    # pickup 5 opens at 200 and delivery 2 closes at 300: serving 5 first makes 1 too late
    plan = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[5, 6, 1, 2], [3, 4]]), [],
        engine=Engine.GREEDY,
    )  # fmt: skip
    assert not check.check_plan(inst.problem, plan, PARAMS).ok


@pytest.mark.parametrize(
    ("line", "old", "new", "field"),
    [
        (1, "30", "x", "capacity"),
        (3, "68", "6a8", "y"),
        (4, "-10", "-1.5", "demand"),
        (5, "\t0\t4", "\t0", "delivery_sibling"),
        (6, "4\t30", "9\t30", "id"),
        (7, "200\t500", "600\t500", "latest"),
        (8, "\t5\t0", "\t3\t0", "pickup_sibling"),
        (4, "-10", "-12", "demand"),
    ],
)
def test_lilim_malformed_line_names_file_line_and_field(
    tmp_path: Path, line: int, old: str, new: str, field: str
) -> None:
    path = _corrupt(tmp_path, LILIM, line, old, new)
    with pytest.raises(BenchmarkFormatError) as info:
        read_lilim(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.field, err.line) == (field, line)
    assert f"{path}:{line}: field {field!r}" in str(err)


# --- Solomon -----------------------------------------------------------------------------------


def test_solomon_start_loaded_orders() -> None:
    inst = read_solomon(SOLOMON)
    problem = inst.problem
    assert inst.name == "TINY5" and inst.kind == "solomon"
    assert inst.num_vehicles == 3 and inst.capacity == 50
    assert problem.num_locations == 6
    assert [o.id for o in problem.orders] == ["1", "2", "3", "4", "5"]
    assert all(o.pickup is None for o in problem.orders)
    assert [o.dropoff for o in problem.orders] == [1, 2, 3, 4, 5]
    assert [o.size for o in problem.orders] == [10, 20, 10, 15, 10]
    second = problem.orders[1]  # window [50, 150], service 10
    assert (second.dropoff_earliest_s, second.due_s, second.dropoff_service_s) == (
        5_000,
        15_000,
        1_000,
    )
    for rider in problem.riders:
        assert rider.end_location == 0 and rider.shift_end_s == 50_000
    assert inst.node_visits[4] == ("4", StopKind.DROPOFF)


def test_solomon_hand_made_routes_are_feasible() -> None:
    inst = read_solomon(SOLOMON)
    plan = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[3, 1, 2], [4, 5]]), [], engine=Engine.GREEDY
    )
    route = plan.routes[0]
    assert route.stops[0].load_after == 30  # started with 40 on board, dropped 10
    assert route.stops[2].start_s == 5_000
    check = pytest.importorskip("solver.check")
    verdict = check.check_plan(inst.problem, plan, PARAMS)
    assert verdict.ok, verdict.violations
    # everything on one vehicle breaks the capacity (65 > 50)
    overloaded = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[3, 1, 2, 4, 5]]), [], engine=Engine.GREEDY
    )
    assert not check.check_plan(inst.problem, overloaded, PARAMS).ok


@pytest.mark.parametrize(
    ("line", "old", "new", "field"),
    [
        (5, "50", "fifty", "capacity"),
        (11, "45", "4x5", "x"),
        (12, "150", "40", "due_date"),
        (13, "  3", "  7", "cust_no"),
        (14, "100 ", "100 7 ", "<line>"),
    ],
)
def test_solomon_malformed_line_names_file_line_and_field(
    tmp_path: Path, line: int, old: str, new: str, field: str
) -> None:
    path = _corrupt(tmp_path, SOLOMON, line, old, new)
    with pytest.raises(BenchmarkFormatError) as info:
        read_solomon(path)
    assert info.value.field == field and info.value.line == line
    assert f"{path}:{line}: field {field!r}" in str(info.value)


def test_solomon_missing_section(tmp_path: Path) -> None:
    path = tmp_path / "broken.txt"
    path.write_text("X\n\nVEHICLE\nNUMBER CAPACITY\n3 50\n")
    with pytest.raises(BenchmarkFormatError, match="cust_no"):
        read_solomon(path)


def test_read_instance_detects_the_format() -> None:
    assert read_instance(LILIM).kind == "lilim"
    assert read_instance(SOLOMON).kind == "solomon"


# --- tables and route files ---------------------------------------------------------------------


def test_read_bks_tables(tmp_path: Path) -> None:
    lilim = tmp_path / "bks_lilim.csv"
    lilim.write_text(
        "instance,sintef_vehicles,sintef_distance,other\nlc101,10,828.9369,x\nlr201,4,1253.2,y\n"
    )
    table = read_bks_lilim(lilim)
    assert table["lc101"].vehicles == 10 and table["lc101"].distance == pytest.approx(828.9369)
    assert table["lr201"].convention == "hierarchical"
    solomon = tmp_path / "bks_solomon.csv"
    solomon.write_text(
        "instance,bks_hier_vehicles,bks_hier_distance,dimacs_sol_vehicles,dimacs_sol_cost_file\n"
        "R101,19,1645.79,20,1637.7\n"
    )
    assert read_bks_solomon(solomon)["R101"].vehicles == 19
    dimacs = read_bks_solomon(solomon, convention="dimacs")["R101"]
    assert (dimacs.vehicles, dimacs.distance, dimacs.convention) == (20, 1637.7, "dimacs")
    with pytest.raises(ValueError, match="convention"):
        read_bks_solomon(solomon, convention="best")
    bad = tmp_path / "bad.csv"
    bad.write_text("instance,sintef_vehicles,sintef_distance\nlc101,ten,828.9\n")
    with pytest.raises(BenchmarkFormatError) as info:
        read_bks_lilim(bad)
    assert info.value.line == 2 and info.value.field == "sintef_vehicles"


def test_read_routes_both_formats(tmp_path: Path) -> None:
    sintef = tmp_path / "a.txt"
    sintef.write_text("Instance name : x\nSolution\nRoute 1 : 3 1 2 4\nRoute 2 : 5 6\n")
    vrplib = tmp_path / "b.sol"
    vrplib.write_text("Route #1: 3 1 2\nRoute #2: 4 5\nCost 85.7\n")
    assert read_routes(sintef) == [[3, 1, 2, 4], [5, 6]]
    assert read_routes(vrplib) == [[3, 1, 2], [4, 5]]


def test_too_many_routes_for_the_fleet() -> None:
    inst = read_solomon(SOLOMON)
    with pytest.raises(ValueError, match="routes"):
        inst.visits_by_rider([[1], [2], [3], [4]])
