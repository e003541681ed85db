"""Travel matrices against an independent networkx Dijkstra, metric sanity, one-way rules."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from campus_maps import Campus
from campus_maps.places import PlaceKind
from tests.campus_maps.reference import reference_times


def _random_places(campus: Campus, k: int, seed: int) -> np.ndarray:
    places = campus.places()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(places), size=min(k, len(places)), replace=False)
    return np.array([[places[i].lat, places[i].lng] for i in pick])


@pytest.mark.parametrize("mode", ["walk", "bike"])
@pytest.mark.parametrize("campus_name", ["tiny", "northwestern"])
def test_matrix_equals_networkx_dijkstra(
    campus_name: str, mode: str, request: pytest.FixtureRequest
) -> None:
    campus: Campus = request.getfixturevalue(campus_name)
    points = _random_places(campus, 12, seed=7)
    # add points on streets and off them, so some share an edge with each other
    points = np.vstack([points, points[:3] + [0.00004, -0.00003]])
    snapped = campus.snap(points, mode)
    matrix = campus.matrix(snapped, mode)
    expected = reference_times(campus.network(mode), snapped, list(range(len(snapped))))
    np.testing.assert_allclose(matrix.time_s, expected, rtol=1e-9, atol=1e-6)
    assert np.all(np.diag(matrix.time_s) == 0.0)


def test_node_tables_equal_networkx(northwestern: Campus) -> None:
    net = northwestern.network("bike")
    graph = net.graph
    rng = np.random.default_rng(3)
    ids = net.arrays.node_osmid
    for s in rng.choice(net.arrays.num_nodes, size=5, replace=False):
        ref = nx.single_source_dijkstra_path_length(graph, int(ids[s]), weight="travel_time")
        for t in rng.choice(net.arrays.num_nodes, size=40, replace=False):
            assert net.tables.time_s[s, t] == pytest.approx(ref[int(ids[t])], rel=1e-9, abs=1e-9)
        path = net.node_path(int(s), int(t))
        assert path[0] == int(ids[s]) and path[-1] == int(ids[t])
        assert nx.path_weight(graph, path, weight="travel_time") >= 0


def test_distance_is_length_of_fastest_path(northwestern: Campus) -> None:
    net = northwestern.network("walk")
    rng = np.random.default_rng(5)
    for s, t in rng.choice(net.arrays.num_nodes, size=(20, 2)):
        nodes = net.tables.node_path(int(s), int(t))
        edges = net.tables.edge_between(np.array(nodes[:-1]), np.array(nodes[1:]))
        assert net.tables.distance_m[s, t] == pytest.approx(net.arrays.edge_length_m[edges].sum())
        assert net.tables.time_s[s, t] == pytest.approx(net.arrays.edge_time_s[edges].sum())


@pytest.mark.parametrize("mode", ["walk", "bike", "ebike"])
def test_triangle_inequality(northwestern: Campus, mode: str) -> None:
    points = _random_places(northwestern, 60, seed=11)
    m = northwestern.matrix(points, mode).time_s
    via = m[:, :, None] + m[None, :, :]  # via[i, k, j] = m[i, k] + m[k, j]
    assert np.all(m <= via.min(axis=1) + 1e-6)
    assert np.all(np.diag(m) == 0)
    assert np.all(m[~np.eye(len(m), dtype=bool)] > 0)


def test_solver_tables_stack_the_modes_in_whole_seconds(northwestern: Campus) -> None:
    points = _random_places(northwestern, 12, seed=5)
    time_s, dist_m = northwestern.matrices(points, ("bike", "walk"))
    assert time_s.shape == dist_m.shape == (2, 12, 12)
    assert time_s.dtype == np.int64
    for k, mode in enumerate(("bike", "walk")):
        m = northwestern.matrix(points, mode)
        assert np.array_equal(time_s[k], np.rint(m.time_s))
        assert np.array_equal(dist_m[k], m.distance_m)
    slow, same_dist = northwestern.matrices(points, ("bike",), speed_factor=0.5)
    assert np.array_equal(slow[0], np.rint(northwestern.matrix(points, "bike").time_s / 0.5))
    assert np.array_equal(same_dist[0], dist_m[0])


def test_faster_modes_are_faster(northwestern: Campus) -> None:
    points = _random_places(northwestern, 40, seed=2)
    walk = northwestern.matrix(points, "walk").time_s
    bike = northwestern.matrix(points, "bike").time_s
    ebike = northwestern.matrix(points, "ebike").time_s
    off = ~np.eye(len(points), dtype=bool)
    assert np.median(walk[off] / bike[off]) > 1.5
    assert np.median(bike[off] / ebike[off]) > 1.05


def test_one_way_street_binds_bikes_not_walkers(tiny: Campus) -> None:
    # East Street (4th column of the grid) is one-way northbound.
    north = (10.0 + 2.9 * 0.000898, 10.0 + 3 * 0.000912)
    south = (10.0 + 0.1 * 0.000898, 10.0 + 3 * 0.000912)
    walk = tiny.matrix([north, south], "walk").time_s
    bike = tiny.matrix([north, south], "bike").time_s
    assert walk[0, 1] == pytest.approx(walk[1, 0])
    assert bike[1, 0] < bike[0, 1] / 2  # northbound rides straight up; southbound detours
    street = 280.0  # ~2.8 blocks of 100 m
    assert bike[1, 0] == pytest.approx(street / 4.0, rel=0.1)
    assert walk[0, 1] == pytest.approx(street / 1.3, rel=0.1)


def test_edge_rules_per_mode(tiny: Campus) -> None:
    def highways(mode: str) -> set[str]:
        return set(tiny.network(mode).arrays.edge_highway.tolist())

    assert "steps" in highways("walk")
    assert "steps" not in highways("bike")
    assert "service" not in highways("walk")  # access=private, not allowed on this campus
    graph = tiny.network("bike").graph
    garden_path = {1001, 1011, 1021, 1031}  # bicycle=no footway
    assert not any(u in garden_path and v in garden_path for u, v in graph.edges())


def test_places_on_bundled_campus(northwestern: Campus) -> None:
    food = northwestern.places(PlaceKind.FOOD)
    dorms = northwestern.places(PlaceKind.DORM)
    assert len(food) >= 20
    assert len(dorms) >= 40
    assert all(p.category.startswith("amenity=") for p in food)
    names = {p.name for p in dorms}
    assert any("Hall" in n or "Residen" in n for n in names)
    b = northwestern.bounds
    assert all(b[0] <= p.lat <= b[2] and b[1] <= p.lng <= b[3] for p in food + dorms)
    snapped = northwestern.snap([(p.lat, p.lng) for p in food], "bike")
    assert np.all(snapped.access_m <= northwestern.config.snap_max_distance_m)


def test_places_on_tiny_campus(tiny: Campus) -> None:
    by_name = {p.name: p for p in tiny.places()}
    assert by_name["Tiny Canteen"].kind is PlaceKind.FOOD
    assert by_name["Deli Corner"].kind is PlaceKind.FOOD  # a building outline with amenity
    assert by_name["Deli Corner"].id.startswith("way/")
    assert by_name["Maple Hall"].kind is PlaceKind.DORM
    assert by_name["Science Hall"].kind is PlaceKind.BUILDING
    assert "Far Fries" not in by_name  # outside the service area


def test_path_polyline_runs_from_a_to_b(northwestern: Campus) -> None:
    a, b = _random_places(northwestern, 2, seed=9)
    line = northwestern.path(tuple(a), tuple(b), "bike")
    assert line[0] == pytest.approx(tuple(a))
    assert line[-1] == pytest.approx(tuple(b))
    from campus_maps.snap import LocalProjection

    proj = LocalProjection(*a)
    x, y = proj.to_xy([p[0] for p in line], [p[1] for p in line])
    drawn = float(np.hypot(np.diff(x), np.diff(y)).sum())
    dist = northwestern.matrix([tuple(a), tuple(b)], "bike").distance_m[0, 1]
    assert drawn == pytest.approx(dist, rel=0.02)
