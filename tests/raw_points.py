"""Hypothesis strategies for the coordinates a backend really sends: exact OSM node coordinates
(junctions, corners, entrances), points on edges at fraction 0, 1 or anywhere on one-way and
two-way edges, points off the network within the snap limit, and the same point again."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
from hypothesis import strategies as st
from numpy.typing import NDArray

from campus_maps import MODES, Campus

LatLng = tuple[float, float]

#: How a drawn point was made (the hypothesis output names it when a test fails).
KINDS = ("node", "vertex", "edge", "off")


@dataclass(frozen=True)
class PointPool:
    """What points of one campus can be drawn from, for one mode or for all modes at once.

    Attributes
    ----------
    nodes, vertices
        ``(k, 2)`` usable node coordinates and edge-geometry vertex coordinates (OSM nodes
        inside ways), each inside the service area and within the snap limit of every mode
        in ``modes``.
    oneway, twoway
        Edge indices of ``mode``'s network without and with a reverse edge.
    """

    campus: Campus
    mode: str
    modes: tuple[str, ...]
    nodes: NDArray[np.float64]
    vertices: NDArray[np.float64]
    oneway: NDArray[np.int64]
    twoway: NDArray[np.int64]

    def usable(self, points: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Which of ``points`` every mode of the pool can snap."""
        ok = np.ones(len(points), dtype=bool)
        for mode in self.modes:
            for err in self.campus.point_errors(points, mode):
                assert err.index is not None
                ok[err.index] = False
        return ok


@cache
def point_pool(campus: Campus, mode: str, every_mode: bool = False) -> PointPool:
    """The pool of ``mode``'s network on ``campus``; with ``every_mode`` only the node and
    vertex points that every mode can use (a request mixing riders of all modes)."""
    net = campus.network(mode)
    a = net.arrays
    modes = MODES if every_mode else (mode,)
    pool = PointPool(
        campus,
        mode,
        modes,
        np.empty((0, 2)),
        np.empty((0, 2)),
        np.nonzero(net.snapper.reverse < 0)[0],
        np.nonzero(net.snapper.reverse >= 0)[0],
    )
    nodes = np.unique(np.column_stack([a.node_lat, a.node_lng]), axis=0)
    vertices = np.unique(np.column_stack([a.geom_lat, a.geom_lng]), axis=0)
    return PointPool(
        campus,
        mode,
        modes,
        nodes[pool.usable(nodes)],
        vertices[pool.usable(vertices)],
        pool.oneway,
        pool.twoway,
    )


def edge_point(pool: PointPool, edge: int, fraction: float) -> LatLng:
    """The point ``fraction`` of the way along ``edge``'s geometry (0: its u node, 1: v)."""
    campus = pool.campus
    coords = campus.network(pool.mode).arrays.edge_coords(edge)
    x, y = campus.projection.to_xy(coords[:, 0], coords[:, 1])
    line = shapely.LineString(np.column_stack([x, y]))
    if fraction in (0.0, 1.0):  # the end node's own coordinates, not a projection of them
        lat, lng = coords[0] if fraction == 0.0 else coords[-1]
        return float(lat), float(lng)
    p = shapely.line_interpolate_point(line, fraction, normalized=True)
    lat_a, lng_a = campus.projection.to_latlng(shapely.get_x(p), shapely.get_y(p))
    return float(lat_a), float(lng_a)


@st.composite
def raw_points(draw: st.DrawFn, pool: PointPool, min_size: int = 1, max_size: int = 12) -> list:
    """A list of (lat, lng) points every mode of ``pool`` can use, with repeats."""
    size = draw(st.integers(min_size, max_size))
    out: list[LatLng] = []
    for _ in range(size):
        if out and draw(st.integers(0, 5)) == 0:  # the same place again
            out.append(draw(st.sampled_from(out)))
            continue
        out.append(draw(raw_point(pool)))
    return out


@st.composite
def raw_point(draw: st.DrawFn, pool: PointPool) -> LatLng:
    """One usable point of ``pool`` (see the module docstring for the kinds)."""
    kind = draw(st.sampled_from(KINDS))
    if kind in ("node", "vertex"):
        arr = pool.nodes if kind == "node" else pool.vertices
        if len(arr):
            i = draw(st.integers(0, len(arr) - 1))
            return float(arr[i, 0]), float(arr[i, 1])
    edges = [e for e in (pool.oneway, pool.twoway) if len(e)]
    group = draw(st.sampled_from(edges))
    edge = int(group[draw(st.integers(0, len(group) - 1))])
    fraction = draw(
        st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0, allow_nan=False, width=32))
    )
    lat, lng = edge_point(pool, edge, float(fraction))
    if kind == "off":
        limit = pool.campus.config.snap_max_distance_m
        away = draw(st.floats(0.0, 0.9 * limit, allow_nan=False))
        angle = draw(st.floats(0.0, 2 * math.pi, allow_nan=False))
        x, y = pool.campus.projection.to_xy(lat, lng)
        lat_a, lng_a = pool.campus.projection.to_latlng(
            x + away * math.cos(angle), y + away * math.sin(angle)
        )
        lat, lng = float(lat_a), float(lng_a)
    if pool.usable(np.array([[lat, lng]]))[0]:
        return lat, lng
    # off the service area or too far for another mode: fall back to a usable OSM node
    arr = pool.nodes if len(pool.nodes) else pool.vertices
    i = draw(st.integers(0, len(arr) - 1))
    return float(arr[i, 0]), float(arr[i, 1])
