"""Travel matrices against an independent networkx Dijkstra, metric sanity, one-way rules; the
compact stored tables (dtypes, rounding bound, cache format)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from campus_maps import Campus, load_campus
from campus_maps import tables as tables_module
from campus_maps.campus import RiderNetwork
from campus_maps.network import NetworkArrays
from campus_maps.places import PlaceKind
from campus_maps.tables import (
    CACHE_FORMAT,
    TABLE_REL_ERROR,
    TravelTables,
    compute_travel_tables,
    load_arrays,
    predecessor_dtype,
    save_arrays,
)
from tests.campus_maps.reference import reference_times

#: Matrices against float64 references: one rounded table entry each (plus float64 noise).
RTOL = 2 * TABLE_REL_ERROR


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
    np.testing.assert_allclose(matrix.time_s, expected, rtol=RTOL, atol=1e-6)
    assert np.all(np.diag(matrix.time_s) == 0.0)


def test_node_tables_equal_networkx(northwestern: Campus) -> None:
    net = northwestern.network("bike")
    graph = net.graph
    rng = np.random.default_rng(3)
    ids = net.arrays.node_osmid
    for s in rng.choice(net.arrays.num_nodes, size=5, replace=False):
        ref = nx.single_source_dijkstra_path_length(graph, int(ids[s]), weight="travel_time")
        for t in rng.choice(net.arrays.num_nodes, size=40, replace=False):
            assert net.tables.time_s[s, t] == pytest.approx(ref[int(ids[t])], rel=RTOL, abs=1e-9)
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


# --- compact tables: dtypes, rounding against float64, cache format -------------------------


def test_predecessor_dtype_fits_the_node_count() -> None:
    for n in (0, 1, 200, 1539, 32766):
        assert predecessor_dtype(n) == np.int16
    for n in (32767, 40_000, 2**31 - 2):
        assert predecessor_dtype(n) == np.int32
    assert predecessor_dtype(2**31 - 1) == np.int64
    # the largest index and the -1 of "no predecessor" fit
    for n in (32766, 32767):
        info = np.iinfo(predecessor_dtype(n))
        assert info.min <= -1 and n - 1 <= info.max
    with pytest.raises(ValueError, match="num_nodes"):
        predecessor_dtype(-1)


@pytest.mark.parametrize("campus_name", ["tiny", "northwestern"])
def test_stored_tables_have_the_compact_dtypes(
    campus_name: str, request: pytest.FixtureRequest
) -> None:
    campus: Campus = request.getfixturevalue(campus_name)
    for mode in ("walk", "bike", "ebike"):
        net = campus.network(mode)
        n = net.arrays.num_nodes
        assert net.tables.time_s.dtype == np.float32
        assert net.tables.distance_m.dtype == np.float32
        assert net.tables.predecessor.dtype == predecessor_dtype(n) == np.int16
        # what the cache holds (and a warm start memory-maps) is the same
        loaded = load_arrays(campus.cache_dir / f"{mode}-{net.stats.cache_key}")
        assert loaded is not None
        stored, meta = loaded
        assert meta["format"] == CACHE_FORMAT
        assert isinstance(stored["tab_time_s"], np.memmap)
        assert stored["tab_time_s"].dtype == stored["tab_distance_m"].dtype == np.float32
        assert stored["tab_predecessor"].dtype == np.int16
        assert (
            stored["tab_time_s"].nbytes == n * n * 4
            and stored["tab_predecessor"].nbytes == n * n * 2
        )


def _assert_within_bound(compact: TravelTables, exact: TravelTables) -> None:
    """``compact`` is ``exact`` rounded entry by entry to float32: same paths, same infinities,
    every time and distance within :data:`TABLE_REL_ERROR` of the float64 value."""
    np.testing.assert_array_equal(compact.predecessor, exact.predecessor)
    for name in ("time_s", "distance_m"):
        got = getattr(compact, name).astype(np.float64)
        want = getattr(exact, name)
        assert want.dtype == np.float64
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        finite = np.isfinite(want)
        err = np.abs(got[finite] - want[finite])
        assert np.all(err <= TABLE_REL_ERROR * np.abs(want[finite])), name


@pytest.mark.parametrize(("campus_name", "mode"), [("tiny", "bike"), ("uce_quito", "walk")])
def test_compact_tables_within_the_documented_bound_of_float64(
    campus_name: str, mode: str, cache_dir: Path
) -> None:
    campus = load_campus(campus_name, cache_dir=cache_dir)
    net = campus.network(mode)
    exact = compute_travel_tables(net.arrays, dtype=np.float64)
    _assert_within_bound(net.tables, exact)
    # matrices between points stay float64 and carry only the entries' rounding (the legs are
    # added in float64 after the lookup), against the same matrices over the float64 tables
    wide = RiderNetwork(mode, net.arrays, exact, net.snapper, net.stats)
    places = campus.places()
    points = np.array([[p.lat, p.lng] for p in places])
    snapped = campus.snap(points, mode)
    got, want = net.matrix(snapped), wide.matrix(snapped)
    for name in ("time_s", "distance_m"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype == np.float64
        # one rounded entry per pair: float32 arithmetic on the legs would double the error
        np.testing.assert_allclose(a, b, rtol=TABLE_REL_ERROR, atol=1e-9)
    # whole seconds (the solver's tables): a rounding can only flip an exact half
    assert np.abs(np.rint(got.time_s) - np.rint(want.time_s)).max() <= 1


def _toy_network() -> NetworkArrays:
    """Three nodes on a one-way street 0 -> 1 -> 2 and a two-way spur 1 <-> 3: nothing leads
    back to 0."""
    u = np.array([0, 1, 1, 3], dtype=np.int32)
    v = np.array([1, 2, 3, 1], dtype=np.int32)
    length = np.array([100.0, 250.5, 70.25, 70.25])
    return NetworkArrays(
        node_osmid=np.arange(4, dtype=np.int64) + 10,
        node_lat=np.zeros(4),
        node_lng=np.arange(4) * 0.001,
        edge_u=u,
        edge_v=v,
        edge_length_m=length,
        edge_time_s=length / 1.3,
        edge_highway=np.array(["residential"] * 4, dtype=np.str_),
        geom_offsets=np.arange(0, 10, 2, dtype=np.int64),
        geom_lat=np.zeros(8),
        geom_lng=np.zeros(8),
    )


def test_unreachable_pairs_stay_inf_in_the_compact_tables() -> None:
    arrays = _toy_network()
    compact = compute_travel_tables(arrays)
    exact = compute_travel_tables(arrays, dtype=np.float64)
    assert compact.time_s.dtype == np.float32 and compact.predecessor.dtype == np.int16
    _assert_within_bound(compact, exact)
    assert np.isinf(compact.time_s[1:, 0]).all() and (compact.predecessor[1:, 0] == -1).all()
    assert compact.time_s[0, 2] == np.float32((100.0 + 250.5) / 1.3)
    assert compact.distance_m[0, 2] == np.float32(350.5)
    assert compact.node_path(0, 2) == [0, 1, 2]
    with pytest.raises(ValueError, match="not reachable"):
        compact.node_path(2, 0)


def test_old_format_cache_entries_are_rebuilt_not_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_campus("tiny", cache_dir=tmp_path).network("bike")
    folder = tmp_path / "tiny" / f"bike-{first.stats.cache_key}"
    good_time = np.array(first.tables.time_s)
    # the format is part of the key: a format-3 entry of the same network has another folder
    config = load_campus("tiny", cache_dir=tmp_path).config
    digest = _osm_digest(config.osm_path)
    assert first.stats.cache_key == config.network_key("bike", digest)
    with monkeypatch.context() as patch:
        patch.setattr(tables_module, "CACHE_FORMAT", 3)
        assert config.network_key("bike", digest) != first.stats.cache_key
    # a fake old-format entry (float64 garbage, format 3) where the new entry is: refused
    _fake_old_entry(folder)
    assert load_arrays(folder) is None
    again = load_campus("tiny", cache_dir=tmp_path).network("bike")
    assert not again.stats.from_cache  # rebuilt, not read
    assert again.tables.time_s.dtype == np.float32
    np.testing.assert_array_equal(again.tables.time_s, good_time)
    # and the rebuilt entry replaced the stale one: the next start memory-maps it
    third = load_campus("tiny", cache_dir=tmp_path).network("bike")
    assert third.stats.from_cache
    np.testing.assert_array_equal(third.tables.time_s, good_time)
    assert json.loads((folder / "meta.json").read_text())["format"] == CACHE_FORMAT
    assert sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) == [folder.name]


def test_save_arrays_keeps_a_valid_entry_written_meanwhile(tmp_path: Path) -> None:
    folder = tmp_path / "entry"
    save_arrays(folder, {"a": np.arange(3)}, {"who": "first"})
    save_arrays(folder, {"a": np.arange(5)}, {"who": "second"})  # lost the race: no harm
    loaded = load_arrays(folder)
    assert loaded is not None and loaded[1]["who"] == "first" and loaded[0]["a"].shape == (3,)
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def _osm_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_old_entry(folder: Path) -> None:
    """Overwrite ``folder`` with what format 3 stored: float64 tables, int32 predecessors."""
    loaded = load_arrays(folder)
    assert loaded is not None
    stored, meta = loaded
    arrays = {name: np.array(a) for name, a in stored.items()}
    n = arrays["tab_time_s"].shape[0]
    arrays["tab_time_s"] = np.full((n, n), 1e9)  # wrong on purpose: must never be read
    arrays["tab_distance_m"] = np.zeros((n, n))
    arrays["tab_predecessor"] = arrays["tab_predecessor"].astype(np.int32)
    for p in folder.glob("*.npy"):
        p.unlink()
    for name, a in arrays.items():
        np.save(folder / f"{name}.npy", a)
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 3}))
