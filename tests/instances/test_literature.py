"""Tests of the Li & Lim and Solomon readers on small self-made fixtures in the real formats."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from instances.literature import (
    BenchmarkFormatError,
    ceiled_time_matrix,
    full_precision_violations,
    max_lateness,
    plan_distance,
    plan_vehicles,
    read_bks_lilim,
    read_bks_solomon,
    read_instance,
    read_lilim,
    read_routes,
    read_solomon,
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


def test_matrices_round_scaled_times_up_and_keep_float_distances() -> None:
    inst = read_lilim(LILIM)
    d03 = _euclid((40, 50), (42, 60))
    assert inst.distance[0, 3] == pytest.approx(d03)
    assert inst.problem.distance_m[0, 0, 3] == pytest.approx(d03)
    assert inst.problem.time_s[0, 0, 3] == math.ceil(100 * d03)
    scaled = 100 * inst.distance
    assert np.all(inst.problem.time_s[0] >= scaled)  # never below the float value
    assert np.all(inst.problem.time_s[0] < scaled + 1)
    assert np.all(np.diag(inst.problem.time_s[0]) == 0)


def _exact_ceiling(a: Sequence[float], b: Sequence[float], scale: int) -> int:
    """The smallest integer ``k`` with ``k >= scale * euclid(a, b)``, in exact rationals."""
    dx = Fraction(a[0]) - Fraction(b[0])
    dy = Fraction(a[1]) - Fraction(b[1])
    target = scale * scale * (dx * dx + dy * dy)
    k = math.isqrt(math.floor(target))
    while k * k < target:
        k += 1
    return k


def test_ceiled_time_matrix_is_exact_on_perfect_squares() -> None:
    coords = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    times = ceiled_time_matrix(coords, 100)
    assert times[0, 1] == 500  # 5.0 exactly: no float excess to 501
    assert times[0, 2] == 142  # ceil(141.42...)
    assert times[1, 0] == 500 and times[2, 0] == 142 and np.all(np.diag(times) == 0)
    half = ceiled_time_matrix(np.array([[0.0, 0.0], [0.5, 0.0], [2.0, 1.5]]), 100)
    assert half[0, 1] == 50  # non-integer coordinates, exact on perfect squares too
    assert half[0, 2] == 250
    assert half[1, 2] == _exact_ceiling((0.5, 0.0), (2.0, 1.5), 100) == 213  # 212.13...
    coarse = ceiled_time_matrix(coords, 1)
    assert (coarse[0, 1], coarse[0, 2]) == (5, 2)


@pytest.mark.parametrize("decimals", [0, 1, 3, 8])
def test_ceiled_time_matrix_is_the_exact_ceiling(decimals: int) -> None:
    rng = np.random.default_rng(decimals)
    coords = rng.uniform(-50.0, 150.0, size=(25, 2)).round(decimals)
    for scale in (1, 7, 100):
        times = ceiled_time_matrix(coords, scale)
        assert times.dtype == np.int64
        assert np.array_equal(times, times.T)
        for i in range(len(coords)):
            for j in range(len(coords)):
                assert times[i, j] == _exact_ceiling(coords[i], coords[j], scale), (i, j)
        float_times = scale * np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
        assert np.all(times >= float_times)  # never below the float value
        assert np.all(times < float_times + 1)


def test_ceiled_time_matrix_beyond_int64_squares() -> None:
    # squares of these scaled differences overflow int64: the exact path takes over
    coords = np.array([[0.0, 0.0], [3e9, 4e9], [1e9, 1.0]])
    times = ceiled_time_matrix(coords, 100)
    assert times[0, 1] == 500_000_000_000
    assert times[0, 2] == _exact_ceiling((0.0, 0.0), (1e9, 1.0), 100) == 100_000_000_001
    assert times[1, 2] == _exact_ceiling((3e9, 4e9), (1e9, 1.0), 100)


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
    assert full_precision_violations(inst, plan) == []
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
    # at full precision, by hand: 5 at 15, waits to 200, leaves 210; 6 at 210 + sqrt(125),
    # waits to 250, leaves 260; 1 at 260 + sqrt(1009) (closed at 100), leaves 10 later; 2 at
    # 7 more (closed at 300); back at the depot in time
    late1 = 260 + math.sqrt(1009) - 100
    late2 = 260 + math.sqrt(1009) + 10 + 7 - 300
    found = full_precision_violations(inst, plan)
    assert [(v.rider, v.node, v.kind) for v in found] == [("v1", 1, "late"), ("v1", 2, "late")]
    assert [v.excess for v in found] == pytest.approx([late1, late2])
    assert max_lateness(found) == pytest.approx(late1)


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
    assert full_precision_violations(inst, plan) == []
    check = pytest.importorskip("solver.check")
    verdict = check.check_plan(inst.problem, plan, PARAMS)
    assert verdict.ok, verdict.violations
    # everything on one vehicle breaks the capacity (65 > 50)
    overloaded = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[3, 1, 2, 4, 5]]), [], engine=Engine.GREEDY
    )
    assert not check.check_plan(inst.problem, overloaded, PARAMS).ok
    found = full_precision_violations(inst, overloaded)
    assert [(v.node, v.kind, v.excess) for v in found if v.kind == "capacity"] == [
        (0, "capacity", 15)
    ]


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


# --- full precision ---------------------------------------------------------------------------


def _solomon_file(tmp_path: Path, customers: Sequence[tuple[int, int, int, int, int]]) -> Path:
    """A Solomon file: depot at (0, 0) open [0, 100]; customers ``(x, y, demand, ready, due)``
    with no service time."""
    lines = ["TIGHT", "", "VEHICLE", "NUMBER     CAPACITY", "  2          10", "", "CUSTOMER"]
    lines.append("CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME")
    lines.append("    0   0   0   0   0   100   0")
    lines += [f"    {k}   {x}   {y}   {q}   {a}   {b}   0" for k, (x, y, q, a, b) in
              enumerate(customers, start=1)]  # fmt: skip
    path = tmp_path / "tight.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rounding_up_rejects_what_full_precision_rejects(tmp_path: Path) -> None:
    # a customer sqrt(2) away that closes at 1: truncated at scale 1 the arc would take 1 and
    # the route would pass; rounded up it takes 2, and full precision is 0.414 late
    inst = read_solomon(_solomon_file(tmp_path, [(1, 1, 1, 0, 1)]), scale=1)
    assert inst.problem.time_s[0, 0, 1] == 2
    plan = build_plan(inst.problem, PARAMS, inst.visits_by_rider([[1]]), [], engine=Engine.GREEDY)
    found = full_precision_violations(inst, plan)
    assert [(v.node, v.kind) for v in found] == [(1, "late")]
    assert max_lateness(found) == pytest.approx(math.sqrt(2) - 1)
    check = pytest.importorskip("solver.check")
    assert not check.check_plan(inst.problem, plan, PARAMS).ok


def test_rounding_up_can_reject_a_route_feasible_at_full_precision(tmp_path: Path) -> None:
    # the price of rounding up: two arcs of sqrt(2) arrive at 2.83 <= 3 at full precision but
    # at 2 + 2 = 4 > 3 in the integer model at scale 1 (less than 1 / scale per arc too long)
    inst = read_solomon(_solomon_file(tmp_path, [(1, 1, 1, 0, 3), (2, 2, 1, 0, 3)]), scale=1)
    plan = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[1, 2]]), [], engine=Engine.GREEDY
    )
    assert full_precision_violations(inst, plan) == []
    check = pytest.importorskip("solver.check")
    assert not check.check_plan(inst.problem, plan, PARAMS).ok
    fine = read_solomon(_solomon_file(tmp_path, [(1, 1, 1, 0, 3), (2, 2, 1, 0, 3)]), scale=100)
    plan = build_plan(
        fine.problem, PARAMS, fine.visits_by_rider([[1, 2]]), [], engine=Engine.GREEDY
    )
    assert check.check_plan(fine.problem, plan, PARAMS).ok  # 142 + 142 <= 300


def _random_routes(
    rng: random.Random, pairs: Sequence[tuple[int, ...]], vehicles: int
) -> list[list[int]]:
    """Each pair (or single node) on a random vehicle, pickups before their deliveries."""
    routes: list[list[int]] = [[] for _ in range(vehicles)]
    for pair in pairs:
        route = routes[rng.randrange(vehicles)]
        at = rng.randint(0, len(route))
        route.insert(at, pair[0])
        if len(pair) > 1:
            route.insert(rng.randint(at + 1, len(route)), pair[1])
    return [r for r in routes if r]


@pytest.mark.parametrize("scale", [1, 3, 10])
def test_feasible_in_the_integer_model_means_feasible_at_full_precision(
    tmp_path: Path, scale: int
) -> None:
    # tight windows on a small grid at coarse scales, where rounding matters most: truncated
    # travel times accepted 48 (scale 1) and 27 (scale 3) of these routes that are late at
    # full precision
    check = pytest.importorskip("solver.check")
    rng = random.Random(scale)
    feasible = 0
    for _ in range(20):
        customers = [
            (rng.randint(0, 6), rng.randint(0, 6), 1, 0, rng.randint(3, 16)) for _ in range(4)
        ]
        inst = read_solomon(_solomon_file(tmp_path, customers), scale=scale)
        for _ in range(30):
            routes = _random_routes(rng, [(k,) for k in range(1, 5)], inst.num_vehicles)
            plan = build_plan(
                inst.problem, PARAMS, inst.visits_by_rider(routes), [], engine=Engine.GREEDY
            )
            if check.check_plan(inst.problem, plan, PARAMS).ok:
                feasible += 1
                assert full_precision_violations(inst, plan) == [], (customers, routes)
    assert feasible > 100  # the property was exercised


def test_full_precision_precedence_and_visits() -> None:
    inst = read_lilim(LILIM)
    swapped = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[2, 1], [3, 4]]), [], engine=Engine.GREEDY
    )
    kinds = {(v.node, v.kind) for v in full_precision_violations(inst, swapped)}
    assert {(2, "precedence"), (1, "precedence")} <= kinds  # delivered first, never delivered
    split = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[1], [2]]), [], engine=Engine.GREEDY
    )
    assert {v.kind for v in full_precision_violations(inst, split)} == {"precedence"}
    heavy = build_plan(
        inst.problem, PARAMS, inst.visits_by_rider([[3, 5, 4, 6]]), [], engine=Engine.GREEDY
    )
    assert [(v.node, v.kind, v.excess) for v in full_precision_violations(inst, heavy)] == [
        (5, "capacity", 5)
    ]


def test_non_integer_windows_and_service_round_conservatively(tmp_path: Path) -> None:
    path = _corrupt(tmp_path, SOLOMON, 12, "50        150         10", "50.25   149.5   9.5")
    order = read_solomon(path, scale=10).problem.orders[1]
    # earliest and service up, latest down: the integer model allows nothing more
    assert (order.dropoff_earliest_s, order.due_s, order.dropoff_service_s) == (503, 1495, 95)
    inst = read_solomon(path, scale=1)
    assert (inst.problem.orders[1].dropoff_earliest_s, inst.problem.orders[1].due_s) == (51, 149)
    assert inst.windows[2].tolist() == [50.25, 149.5]  # the file's values, for full precision
    assert inst.problem.orders[1].dropoff_service_s == 10
    narrow = _corrupt(tmp_path, SOLOMON, 12, "50        150", "50.25   50.75")
    with pytest.raises(BenchmarkFormatError) as info:
        read_solomon(narrow, scale=1)
    assert (info.value.line, info.value.field) == (12, "due_date")
    assert read_solomon(narrow, scale=100).problem.orders[1].due_s == 5075
