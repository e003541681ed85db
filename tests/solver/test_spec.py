"""Problems before their matrices: array sources cut the right sub-matrices, a spec rebuilds its
problem and subproblems over only the points they use (numbered by first use), and the
ProblemBuilder numbers keyed points by first use, orders profiles by mode, keeps shifts from
ending before riders are available and refuses unknown modes by name."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campus_maps import MODES
from scenarios.model import Geometry, Point, Scenario, ScenarioOrder, ScenarioRider
from scenarios.replay.policies import make_policy
from scenarios.replay.simulate import Simulator
from scenarios.replay.travel import EuclideanTravel
from solver.model import OrderState, Problem, ProblemError
from solver.params import SolverParams
from solver.spec import ArrayMatrices, MatrixSource, ProblemBuilder, ProblemSpec
from tests.solver.conftest import random_problem


def assert_same_problem(a: Problem, b: Problem) -> None:
    assert (a.now_s, a.orders, a.riders) == (b.now_s, b.orders, b.riders)
    assert np.array_equal(a.time_s, b.time_s) and np.array_equal(a.distance_m, b.distance_m)


def matrices(n: int, profiles: int = 2, seed: int = 0) -> ArrayMatrices:
    rng = np.random.default_rng(seed)
    times = rng.integers(0, 1_000, size=(profiles, n, n)).astype(np.int64)
    return ArrayMatrices(times, times.astype(np.float64) * 1.5, rng.uniform(0, 100, size=(n, 2)))


# -------------------------------------------------------------------------- ArrayMatrices
def test_array_matrices_is_a_matrix_source_of_its_shapes() -> None:
    source = matrices(5, profiles=3)
    assert isinstance(source, MatrixSource)
    assert (source.num_points, source.num_profiles) == (5, 3)
    assert source.xy is source.points_xy


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=9))
def test_array_matrices_cut_the_rows_and_columns_asked_for(points: list[int]) -> None:
    source = matrices(7)
    idx = np.array(points, dtype=np.int64)
    times, dists = source.matrices(idx)
    assert times.shape == dists.shape == (2, len(points), len(points))
    for p in range(2):
        for i, a in enumerate(points):
            for j, b in enumerate(points):
                assert times[p, i, j] == source.time_s[p, a, b]
                assert dists[p, i, j] == source.distance_m[p, a, b]


# ---------------------------------------------------------------------------- ProblemSpec
def test_a_spec_of_a_problem_rebuilds_it() -> None:
    problem = random_problem(3, n_orders=6, n_riders=3, n_profiles=2, pinned_share=0.4)
    xy = np.zeros((problem.num_locations, 2))
    spec = ProblemSpec.of_problem(problem, xy)
    assert spec.source.xy is xy
    assert_same_problem(spec.problem(), problem)
    assert_same_problem(pickle.loads(pickle.dumps(spec)).problem(), problem)


def test_a_spec_refuses_geometry_of_the_wrong_shape() -> None:
    problem = random_problem(3, n_orders=2, n_riders=1)
    with pytest.raises(ProblemError) as err:
        ProblemSpec.of_problem(problem, np.zeros((problem.num_locations + 1, 2)))
    assert err.value.field == "xy"


def test_a_spec_validates_its_entities_against_its_source() -> None:
    problem = random_problem(3, n_orders=2, n_riders=1)
    small = ArrayMatrices(problem.time_s[:, :2, :2], problem.distance_m[:, :2, :2])
    with pytest.raises(ProblemError, match=r"must be in \[0, 2\)"):
        ProblemSpec(problem.now_s, problem.orders, problem.riders, small)


@st.composite
def subsets(draw: st.DrawFn) -> tuple[Problem, list[int], list[int]]:
    problem = random_problem(
        draw(st.integers(0, 2**31 - 1)),
        n_orders=draw(st.integers(0, 10)),
        n_riders=draw(st.integers(1, 4)),
        n_profiles=draw(st.integers(1, 3)),
        pinned_share=0.4,
        start_loaded_share=0.2,
        closed_share=0.5,
    )
    riders = draw(st.lists(st.sampled_from(range(len(problem.riders))), unique=True))
    kept = {problem.riders[r].id for r in riders}
    allowed = [k for k, o in enumerate(problem.orders) if o.rider_id is None or o.rider_id in kept]
    orders = draw(st.lists(st.sampled_from(allowed), unique=True)) if allowed else []
    return problem, orders, riders


@settings(max_examples=30, deadline=None)
@given(subsets())
def test_a_subproblem_uses_only_its_points_numbered_by_first_use(
    case: tuple[Problem, list[int], list[int]],
) -> None:
    problem, orders, riders = case
    spec = ProblemSpec.of_problem(problem)
    sub, points = spec.subproblem_with_points(orders, riders)
    used: list[int] = []  # the spec's points in the order the subproblem first uses them
    for r in riders:
        end = problem.riders[r].end_location
        used += [problem.riders[r].location] + ([] if end is None else [end])
    for k in orders:
        o = problem.orders[k]
        used += ([] if o.pickup is None else [o.pickup]) + [o.dropoff]
    assert points.tolist() == list(dict.fromkeys(used))
    assert [o.id for o in sub.orders] == [problem.orders[k].id for k in orders]
    assert [r.id for r in sub.riders] == [problem.riders[k].id for k in riders]
    for new, k in zip(sub.riders, riders, strict=True):
        old = problem.riders[k]
        assert points[new.location] == old.location
        assert (new.end_location is None) == (old.end_location is None)
        if new.end_location is not None:
            assert points[new.end_location] == old.end_location
        assert (new.profile, new.capacity, new.shift_end_s) == (
            old.profile,
            old.capacity,
            old.shift_end_s,
        )
    for new_o, k in zip(sub.orders, orders, strict=True):
        old_o = problem.orders[k]
        assert points[new_o.dropoff] == old_o.dropoff
        assert (new_o.pickup is None) == (old_o.pickup is None)
        if new_o.pickup is not None:
            assert points[new_o.pickup] == old_o.pickup
        assert (new_o.state, new_o.rider_id, new_o.due_s) == (
            old_o.state,
            old_o.rider_id,
            old_o.due_s,
        )
    grid = np.ix_(np.arange(problem.num_profiles), points, points)
    assert np.array_equal(sub.time_s, problem.time_s[grid])
    assert np.array_equal(sub.distance_m, problem.distance_m[grid])


def test_an_empty_subproblem_has_empty_matrices() -> None:
    problem = random_problem(1, n_orders=3, n_riders=2, n_profiles=2, pinned_share=0.0)
    sub, points = ProblemSpec.of_problem(problem).subproblem_with_points([], [])
    assert len(points) == 0 and sub.time_s.shape == (2, 0, 0) and sub.orders == ()


# ------------------------------------------------------------------------- ProblemBuilder
def test_points_are_numbered_by_first_use_and_remember_their_fields() -> None:
    build: ProblemBuilder[str] = ProblemBuilder(MODES)
    assert build.locate("depot", "setup") == 0
    build.add_rider(
        "r1", "north", "bike", available_s=0, shift_end_s=100, capacity=2, user="riders[0]"
    )
    build.add_order(
        "o1",
        "cafe",
        "north",
        pickup_user="orders[0].pickup",
        dropoff_user="orders[0].dropoff",
        ready_s=5,
        due_s=50,
    )
    build.add_order("o2", None, "dorm", dropoff_user="orders[1].dropoff", ready_s=0, due_s=60)
    build.add_order("o3", "cafe", "dorm", ready_s=0, due_s=70)  # no user names given
    assert build.keys == ["depot", "north", "cafe", "dorm"]
    assert [(o.pickup, o.dropoff) for o in build.orders] == [(2, 1), (None, 3), (2, 3)]
    assert build.riders[0].location == 1
    assert build.users(0) == ["setup"]
    assert build.users(1) == ["riders[0]", "orders[0].dropoff"]
    assert build.users(2) == ["orders[0].pickup"]
    assert build.users(3) == ["orders[1].dropoff"]


def test_order_fields_pass_through() -> None:
    build: ProblemBuilder[tuple[float, float]] = ProblemBuilder(MODES)
    build.add_rider("r", (0.0, 0.0), "walk", available_s=0, shift_end_s=10, capacity=3)
    build.add_order(
        "o",
        (1.0, 1.0),
        (2.0, 2.0),
        ready_s=3,
        due_s=40,
        size=2,
        pickup_service_s=7,
        dropoff_service_s=8,
        max_in_bag_s=900,
        state=OrderState.COMMITTED,
        rider_id="r",
    )
    [o] = build.orders
    assert (o.id, o.ready_s, o.due_s, o.size) == ("o", 3, 40, 2)
    assert (o.pickup_service_s, o.dropoff_service_s) == (7, 8)
    assert (o.max_in_bag_s, o.state, o.rider_id) == (900, OrderState.COMMITTED, "r")


def test_profiles_follow_the_mode_order_not_the_order_riders_come_in() -> None:
    build: ProblemBuilder[int] = ProblemBuilder(("walk", "bike", "ebike"))
    for rid, mode in (("e", "ebike"), ("w", "walk"), ("e2", "ebike")):
        build.add_rider(rid, 0, mode, available_s=0, shift_end_s=10, capacity=1)
    assert build.modes == ("walk", "ebike")  # bike is absent: no profile for it
    assert [(r.id, r.profile) for r in build.riders] == [("e", 1), ("w", 0), ("e2", 1)]
    assert ProblemBuilder[int](MODES).modes == ()


def test_an_unknown_mode_is_refused_by_name_and_takes_no_point() -> None:
    build: ProblemBuilder[str] = ProblemBuilder(MODES)
    build.add_rider("ok", "a", "bike", available_s=0, shift_end_s=10, capacity=1)
    with pytest.raises(ProblemError, match="'car'") as err:
        build.add_rider("bad", "b", "car", available_s=0, shift_end_s=10, capacity=1)
    assert (err.value.field, err.value.value) == ("mode", "car")
    assert "walk" in err.value.reason  # says what it must be
    assert build.keys == ["a"] and [r.id for r in build.riders] == ["ok"]


@settings(max_examples=40, deadline=None)
@given(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000))
def test_a_shift_never_ends_before_the_rider_is_available(available: int, end: int) -> None:
    build: ProblemBuilder[str] = ProblemBuilder(MODES)
    build.add_rider("r", "a", "walk", available_s=available, shift_end_s=end, capacity=1)
    [r] = build.riders
    assert r.available_s == available and r.shift_end_s == max(available, end)


Op = tuple[str, Any, Any]


@st.composite
def operations(draw: st.DrawFn) -> list[Op]:
    """Riders (key, mode) and orders (pickup key or None, drop-off key) over a few keys."""
    keys = st.sampled_from("ABCDEFG")
    ops = st.one_of(
        st.tuples(st.just("rider"), keys, st.sampled_from(MODES)),
        st.tuples(st.just("order"), st.one_of(st.none(), keys), keys),
    )
    return draw(st.lists(ops, max_size=14))


@settings(max_examples=40, deadline=None)
@given(operations())
def test_the_builder_numbers_keys_and_builds_a_valid_problem(ops: list[Op]) -> None:
    build: ProblemBuilder[str] = ProblemBuilder(MODES)
    first_use: list[str] = []
    rider_modes: list[str] = []
    for k, (kind, a, b) in enumerate(ops):
        if kind == "rider":
            build.add_rider(f"r{k}", a, b, available_s=k, shift_end_s=k + 100, capacity=2)
            first_use.append(a)
            rider_modes.append(b)
        else:
            build.add_order(f"o{k}", a, b, ready_s=0, due_s=500)
            first_use += ([] if a is None else [a]) + [b]
    keys = build.keys
    assert keys == list(dict.fromkeys(first_use))
    for (_, a, b), entity in zip([op for op in ops if op[0] == "rider"], build.riders, strict=True):
        assert keys[entity.location] == a and build.modes[entity.profile] == b
    for (_, a, b), o in zip([op for op in ops if op[0] == "order"], build.orders, strict=True):
        assert keys[o.dropoff] == b
        assert (None if o.pickup is None else keys[o.pickup]) == a
    assert build.modes == tuple(m for m in MODES if m in rider_modes)
    # positions on a line, one profile per mode present: the spec and the problem agree
    profiles = max(1, len(build.modes))
    x = np.array(["ABCDEFG".index(k) * 100.0 for k in keys])
    dist = np.abs(x[:, None] - x[None, :])
    times = np.repeat(np.ceil(dist)[None].astype(np.int64), profiles, axis=0)
    dists = np.repeat(dist[None], profiles, axis=0)
    problem = build.problem(7, times, dists)
    spec = build.spec(7, ArrayMatrices(times, dists))
    assert_same_problem(spec.problem(), problem)
    assert problem.num_locations == len(keys)


def test_the_replay_view_is_built_the_same_way() -> None:
    """The simulator's view goes through the builder: shared places are one point, numbered
    by first use (riders first), and profiles follow the campus mode order."""
    shop, flat = Point(0, 600), Point(0, 1200)
    scenario = Scenario(
        name="shared",
        geometry=Geometry("euclidean", metres_per_minute=60.0),
        riders=(
            ScenarioRider("e", 0, 3600, Point(0, 0), "ebike", 2),
            ScenarioRider("w", 0, 3600, shop, "walk", 2),
        ),
        orders=(
            ScenarioOrder("A", 0, shop, flat, 0, 1500),
            ScenarioOrder("B", 0, shop, Point(0, 0), 0, 1500),
        ),
    )
    params = SolverParams()
    sim = Simulator(scenario, EuclideanTravel(60.0), make_policy("greedy", params, 0.05), params)
    snapshot = sim.view(0)
    assert snapshot is not None
    problem = snapshot.problem
    assert snapshot.points.tolist() == [[0.0, 0.0], [0.0, 600.0], [0.0, 1200.0]]
    assert snapshot.modes == ("walk", "ebike")
    assert [(r.id, r.location, r.profile) for r in problem.riders] == [("e", 0, 1), ("w", 1, 0)]
    assert [(o.pickup, o.dropoff) for o in problem.orders] == [(1, 2), (1, 0)]
