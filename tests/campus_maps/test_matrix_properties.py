"""Property tests of travel matrices over the coordinates backends send (OSM nodes, edge ends,
one-way edges, points off the network, repeats), on every bundled campus and every mode."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campus_maps import MODES, Campus, campus_ids, load_campus
from campus_maps.tables import TABLE_REL_ERROR
from tests.campus_maps.reference import reference_times
from tests.raw_points import edge_point, point_pool, raw_points

#: (examples in the default run, examples behind the ``slow`` marker)
DEPTHS = [
    pytest.param(12, id="quick"),
    pytest.param(200, id="deep", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def campuses(cache_dir: Path) -> dict[str, Campus]:
    return {cid: load_campus(cid, cache_dir=cache_dir) for cid in campus_ids()}


def check_matrix(campus: Campus, mode: str, points: list[tuple[float, float]], seed: int) -> None:
    """Every property a travel matrix between ``points`` must have."""
    snapped = campus.snap(points, mode)
    m = campus.matrix(snapped, mode)
    k = len(points)
    for name, arr in (("time_s", m.time_s), ("distance_m", m.distance_m)):
        assert arr.shape == (k, k)
        assert np.all(np.isfinite(arr)), f"{name} not finite at {np.argwhere(~np.isfinite(arr))}"
        assert np.all(arr >= 0), name
        assert np.all(np.diag(arr) == 0), name
    # equal to Dijkstra on the network with the points spliced in (a few sources), within the
    # rounding of the float32 tables (one entry per pair, TABLE_REL_ERROR relative)
    sources = sorted(set(np.random.default_rng(seed).integers(0, k, size=min(k, 3)).tolist()))
    expected = reference_times(campus.network(mode), snapped, sources)
    np.testing.assert_allclose(m.time_s[sources], expected, rtol=2 * TABLE_REL_ERROR, atol=1e-6)
    # the triangle inequality, within float rounding: three rounded table entries can break it
    # by at most 2 * TABLE_REL_ERROR * (d(i, j) + d(j, k)) (a 4x margin here)
    via = (m.time_s[:, :, None] + m.time_s[None, :, :]).min(axis=1)
    assert np.all(m.time_s <= via * (1 + 8 * TABLE_REL_ERROR) + 1e-6)
    # the solver's whole-second tables: finite, >= 0, zero diagonal, triangle within rounding
    times, dists = campus.matrices(np.array(points), [mode], snapped={mode: snapped})
    assert times.dtype == np.int64 and np.all(times >= 0) and np.all(np.isfinite(dists))
    assert np.all(np.diagonal(times, axis1=1, axis2=2) == 0)
    t = times[0]
    assert np.all(t <= (t[:, :, None] + t[None, :, :]).min(axis=1) + 1)


@pytest.mark.parametrize("examples", DEPTHS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("campus_id", campus_ids())
def test_matrix_over_raw_coordinates(
    campuses: dict[str, Campus], campus_id: str, mode: str, examples: int
) -> None:
    campus = campuses[campus_id]
    pool = point_pool(campus, mode)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples < 100,  # the default run draws the same examples every time
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(points=raw_points(pool, min_size=1, max_size=14), seed=st.integers(0, 2**16))
    def run(points: list[tuple[float, float]], seed: int) -> None:
        check_matrix(campus, mode, points, seed)

    run()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("campus_id", campus_ids())
def test_points_at_both_ends_of_every_kind_of_edge(
    campuses: dict[str, Campus], campus_id: str, mode: str
) -> None:
    """The regression of the NaN: a point exactly at an end node of a one-way edge (fraction 0
    or 1) made ``0 * inf`` in the reverse leg, and the matrix carried NaN to the solver."""
    campus = campuses[campus_id]
    pool = point_pool(campus, mode)
    rng = np.random.default_rng(0)
    points = []
    for group in (pool.oneway, pool.twoway):
        for edge in rng.choice(group, size=min(len(group), 6), replace=False) if len(group) else []:
            points += [edge_point(pool, int(edge), f) for f in (0.0, 1.0, 0.5)]
    usable = pool.usable(np.array(points))
    points = [p for p, ok in zip(points, usable, strict=True) if ok]
    assert len(points) >= 6
    check_matrix(campus, mode, points, seed=0)


def test_one_way_end_node_regression(campuses: dict[str, Campus]) -> None:
    """A hand-picked case: both ends of a one-way bike street on the tiny grid."""
    tiny = campuses["tiny"]
    pool = point_pool(tiny, "bike")
    assert len(pool.oneway)
    edge = int(pool.oneway[0])
    points = [edge_point(pool, edge, 0.0), edge_point(pool, edge, 1.0)]
    m = tiny.matrix(points, "bike")
    assert np.all(np.isfinite(m.time_s)) and np.all(np.isfinite(m.distance_m))
    assert m.time_s[0, 1] > 0 and m.time_s[1, 0] > 0


def test_campus_matrices_pickle_small_and_rebuild_in_any_process(
    campuses: dict[str, Campus],
) -> None:
    """What a solver worker gets is the snapped points and the campus's identity, not a
    matrix; unpickled, it finds the campus (loaded once per process) and builds the same
    matrices, for any subset of the points."""
    from campus_maps import CampusMatrices
    from campus_maps import matrices as source_module

    campus = campuses["northwestern"]
    pool = point_pool(campus, "bike", every_mode=True)
    points = np.vstack([pool.nodes[:150], pool.vertices[:150]])
    modes = ("walk", "bike")
    snapped = {m: campus.snap(points, m) for m in modes}
    source = CampusMatrices(campus, modes, snapped, points=points)
    whole_t, whole_d = campus.matrices(points, modes, snapped=snapped)
    blob = pickle.dumps(source)
    assert len(blob) < whole_t.nbytes / 10  # 300 points: no matrix inside
    source_module._LOADED.clear()  # as in a fresh worker process
    again = pickle.loads(blob)
    subset = np.array([299, 3, 150, 3], dtype=np.int64)
    times, dists = again.matrices(subset)
    assert np.array_equal(times, whole_t[:, subset][:, :, subset])
    assert np.allclose(dists, whole_d[:, subset][:, :, subset])
    assert again.campus is not campus and again.campus.config == campus.config
    assert again.xy.shape == (300, 2) and np.allclose(again.xy, source.xy)
