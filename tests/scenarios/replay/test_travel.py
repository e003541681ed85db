"""Travel models of the replay: great-circle distances, Euclidean matrices timed as the MDRP
instances define them (symmetric, zero diagonal, speed scaling, never faster than the stated top
speed), campus travel consistent with the campus's own matrices and paths, and points along a
polyline (where a rider is mid-leg, and what is left of its path)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from campus_maps import MODES, Campus, load_campus
from scenarios.model import Geometry, Point, Scenario, ScenarioOrder, ScenarioRider
from scenarios.replay.travel import (
    EARTH_RADIUS_M,
    CampusTravel,
    EuclideanTravel,
    TravelModel,
    haversine_m,
    point_along,
    rest_of_path,
    travel_for_scenario,
)
from tests.raw_points import PointPool, point_pool, raw_points


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


def length(path: NDArray[np.float64], travel: TravelModel) -> float:
    pts = [Point(float(a), float(b)) for a, b in path]
    return sum(travel.straight_m(p, q) for p, q in itertools.pairwise(pts))


# ------------------------------------------------------------------------------ haversine
lats = st.floats(-80.0, 80.0, allow_nan=False)
lngs = st.floats(-179.0, 179.0, allow_nan=False)
points = st.builds(Point, lats, lngs)


def test_a_degree_of_latitude_is_an_arc_of_the_earth() -> None:
    """Along a meridian, the great circle is the meridian: 1 degree is R * pi / 180."""
    arc = EARTH_RADIUS_M * math.pi / 180
    assert haversine_m(Point(10.0, 20.0), Point(11.0, 20.0)) == pytest.approx(arc, rel=1e-12)
    assert haversine_m(Point(0.0, 0.0), Point(0.0, 1.0)) == pytest.approx(arc, rel=1e-12)
    assert haversine_m(Point(0.0, 0.0), Point(0.0, 180.0)) == pytest.approx(
        math.pi * EARTH_RADIUS_M
    )


@settings(max_examples=60, deadline=None)
@given(points, points, points)
def test_haversine_is_a_metric(a: Point, b: Point, c: Point) -> None:
    assert haversine_m(a, a) == 0.0
    assert haversine_m(a, b) == pytest.approx(haversine_m(b, a), rel=1e-9, abs=1e-6)
    assert haversine_m(a, b) <= math.pi * EARTH_RADIUS_M + 1e-6
    assert haversine_m(a, c) <= haversine_m(a, b) + haversine_m(b, c) + 1e-3


# ------------------------------------------------------------------------ Euclidean plane
plane_points = st.lists(
    st.tuples(st.floats(-5_000, 5_000, allow_nan=False), st.floats(-5_000, 5_000, allow_nan=False)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(
    plane_points,
    st.floats(30.0, 600.0),
    st.sampled_from([0.5, 0.75, 1.0, 1.5]),
    st.lists(st.sampled_from(MODES), max_size=3),
)
def test_euclidean_matrices(
    pts: list[tuple[float, float]], mpm: float, factor: float, modes: list[str]
) -> None:
    travel = EuclideanTravel(mpm, factor)
    arr = np.array(pts)
    times, dists = travel.matrices(arr, modes)
    k, profiles = len(pts), max(1, len(modes))
    assert times.shape == dists.shape == (profiles, k, k) and times.dtype == np.int64
    for p in range(profiles):
        assert np.array_equal(times[p], times[p].T) and np.allclose(dists[p], dists[p].T)
        assert np.all(np.diag(times[p]) == 0) and np.all(np.diag(dists[p]) == 0)
        assert np.array_equal(times[p], times[0]) and np.array_equal(dists[p], dists[0])
    for i, j in itertools.product(range(k), repeat=2):
        d = math.dist(pts[i], pts[j])
        assert dists[0, i, j] == pytest.approx(d, abs=1e-9)
        assert dists[0, i, j] == pytest.approx(travel.straight_m(Point(*pts[i]), Point(*pts[j])))
        minutes = math.ceil(d / mpm - 1e-9)  # whole minutes, as the MDRP instances count
        assert times[0, i, j] == round(minutes * 60 / factor)
        # nobody is faster than the top speed (up to rounding to whole seconds)
        assert d <= travel.max_speed_mps("bike") * (times[0, i, j] + 0.5) + 1e-6


def test_slower_riders_take_proportionally_longer() -> None:
    pts = np.array([[0.0, 0.0], [0.0, 600.0], [450.0, 0.0], [1.0, 1.0]])
    base = EuclideanTravel(60.0).matrices(pts, ["bike"])[0]
    for factor in (0.5, 0.8, 2.0):
        scaled = EuclideanTravel(60.0, factor).matrices(pts, ["bike"])[0]
        assert np.array_equal(scaled, np.rint(base / factor).astype(np.int64))
    assert EuclideanTravel(60.0, 0.5).max_speed_mps("walk") == pytest.approx(0.5)


def test_the_euclidean_plane_is_its_own_geometry() -> None:
    travel = EuclideanTravel(100.0)
    a, b = Point(3.0, 4.0), Point(0.0, 0.0)
    assert travel.straight_m(a, b) == 5.0
    assert travel.path(a, b, "bike").tolist() == [[3.0, 4.0], [0.0, 0.0]]
    pts = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(travel.planar(pts), pts)


# ------------------------------------------------------------------------------ campus
def test_campus_travel_is_the_campus_matrices_scaled(tiny: Campus) -> None:
    pool = point_pool(tiny, "bike", every_mode=True)
    pts = np.vstack([pool.nodes[:5], pool.vertices[:4]])
    for factor in (1.0, 0.8):
        times, dists = CampusTravel(tiny, factor).matrices(pts, MODES)
        for p, mode in enumerate(MODES):
            m = tiny.matrix(pts, mode)
            assert np.array_equal(times[p], np.rint(m.time_s / factor).astype(np.int64))
            assert np.allclose(dists[p], m.distance_m)
    assert CampusTravel(tiny, 0.8).max_speed_mps("bike") == pytest.approx(
        0.8 * CampusTravel(tiny).max_speed_mps("bike")
    )


@pytest.fixture(scope="module")
def every_mode_pool(tiny: Campus) -> PointPool:
    return point_pool(tiny, "bike", every_mode=True)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_no_campus_leg_beats_the_top_speed(
    tiny: Campus, every_mode_pool: PointPool, data: st.DataObject
) -> None:
    raw = data.draw(raw_points(every_mode_pool, min_size=2, max_size=8))
    factor = data.draw(st.sampled_from([0.75, 1.0]))
    travel = CampusTravel(tiny, factor)
    pts = np.array(raw)
    times, dists = travel.matrices(pts, MODES)
    assert np.all(np.diagonal(times, axis1=1, axis2=2) == 0)
    for p, mode in enumerate(MODES):
        vmax = travel.max_speed_mps(mode)
        for i, j in itertools.product(range(len(raw)), repeat=2):
            straight = travel.straight_m(Point(*raw[i]), Point(*raw[j]))
            assert straight <= dists[p, i, j] * 1.01 + 1.0  # no route is shorter than straight
            assert straight <= vmax * (times[p, i, j] + 0.5) * 1.01 + 1.0, (mode, i, j)


def test_campus_paths_run_from_a_to_b_no_shorter_than_the_crow_flies(tiny: Campus) -> None:
    pool = point_pool(tiny, "bike", every_mode=True)
    travel = CampusTravel(tiny)
    a = Point(*map(float, pool.nodes[0]))
    b = Point(*map(float, pool.vertices[len(pool.vertices) // 2]))
    for mode in MODES:
        path = travel.path(a, b, mode)
        assert path.shape[1] == 2 and len(path) >= 2
        assert path[0].tolist() == [a.a, a.b] and path[-1].tolist() == [b.a, b.b]
        assert length(path, travel) >= travel.straight_m(a, b) * 0.999


def test_planar_coordinates_are_the_campus_projection(tiny: Campus) -> None:
    pool = point_pool(tiny, "bike", every_mode=True)
    pts = pool.nodes[:6]
    xy = CampusTravel(tiny).planar(pts)
    x, y = tiny.projection.to_xy(pts[:, 0], pts[:, 1])
    assert np.allclose(xy, np.column_stack([x, y]))
    # on a campus-sized area the plane keeps distances (within 0.5 %)
    for i, j in itertools.combinations(range(len(pts)), 2):
        straight = haversine_m(Point(*pts[i]), Point(*pts[j]))
        assert math.dist(xy[i], xy[j]) == pytest.approx(straight, rel=5e-3, abs=0.5)


def test_a_scenario_gets_the_travel_model_it_asks_for(tiny: Campus) -> None:
    rider = ScenarioRider("r", 0, 600, Point(0.0, 0.0))
    order = ScenarioOrder("o", 0, Point(0.0, 0.0), Point(1.0, 1.0), 0, 600)
    plane = Scenario(
        "plane",
        Geometry("euclidean", metres_per_minute=250.0),
        (rider,),
        (order,),
        speed_factor=0.8,
    )
    travel = travel_for_scenario(plane)
    assert isinstance(travel, EuclideanTravel) and travel.geometry == "euclidean"
    assert (travel.metres_per_minute, travel.speed_factor) == (250.0, 0.8)
    lat, lng = map(float, point_pool(tiny, "bike", every_mode=True).nodes[0])
    here = Point(lat, lng)
    on_campus = Scenario(
        "campus",
        Geometry("campus", campus_id="tiny"),
        (ScenarioRider("r", 0, 600, here),),
        (ScenarioOrder("o", 0, here, here, 0, 600),),
        speed_factor=1.25,
    )
    given_campus = travel_for_scenario(on_campus, tiny)
    assert isinstance(given_campus, CampusTravel) and given_campus.campus is tiny
    assert given_campus.speed_factor == 1.25 and given_campus.geometry == "campus"
    loaded = travel_for_scenario(on_campus)
    assert isinstance(loaded, CampusTravel) and loaded.campus.id == "tiny"


# ------------------------------------------------------------------------ along a polyline
coords = st.integers(-50, 50).map(float)
polylines = st.lists(st.tuples(coords, coords), min_size=1, max_size=6).map(
    lambda pts: np.array(pts, dtype=np.float64)
)


@settings(max_examples=80, deadline=None)
@given(polylines, st.floats(-0.5, 1.5, allow_nan=False))
def test_the_point_along_splits_the_path_at_its_fraction(
    path: NDArray[np.float64], fraction: float
) -> None:
    travel = EuclideanTravel(60.0)
    total = length(path, travel)
    here = point_along(path, fraction, travel)
    rest = rest_of_path(path, fraction, travel)
    f = min(1.0, max(0.0, fraction))
    tol = 1e-9 * max(1.0, total)  # float sums of the same legs in another order
    assert rest[-1].tolist() == path[-1].tolist()  # it still ends at the stop
    if fraction <= 0.0:
        assert here == Point(*path[0]) and rest.tolist() == path.tolist()
        return
    assert rest[0].tolist() == [here.a, here.b]  # it starts where the rider is
    assert length(rest, travel) == pytest.approx((1 - f) * total, abs=1e-6 * max(1.0, total))
    # the point is on the path: the vertices passed, then the point, are ``f`` of its length
    legs = [math.dist(p, q) for p, q in itertools.pairwise(path.tolist())]
    passed = path[np.concatenate([[0.0], np.cumsum(legs)]) <= f * total + tol]
    ridden = np.vstack([passed, [[here.a, here.b]]])
    assert length(ridden, travel) == pytest.approx(f * total, abs=1e-6 * max(1.0, total))
    if fraction >= 1.0:
        assert here == Point(*path[-1])


def test_points_along_a_hand_drawn_path() -> None:
    travel = EuclideanTravel(60.0)
    path = np.array([[0.0, 0.0], [0.0, 30.0], [40.0, 30.0]])  # 30 m then 40 m: 70 m
    assert point_along(path, 0.5, travel) == Point(5.0, 30.0)  # 35 m: 5 m into the second leg
    assert point_along(path, 3 / 7, travel) == Point(0.0, 30.0)
    assert point_along(path, 0.0, travel) == Point(0.0, 0.0)
    assert point_along(path, 2.0, travel) == Point(40.0, 30.0)
    assert rest_of_path(path, 0.5, travel).tolist() == [[5.0, 30.0], [40.0, 30.0]]
    still = np.array([[1.0, 1.0], [1.0, 1.0]])  # a leg of no length
    assert point_along(still, 0.5, travel) == Point(1.0, 1.0)
    assert rest_of_path(still, 0.5, travel).tolist() == [[1.0, 1.0]]
