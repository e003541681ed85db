"""Snapping latitude/longitude points to the nearest edge of a rider network, and the typed errors
for points off the network or outside the campus service area."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from campus_maps.network import NetworkArrays

EARTH_RADIUS_M = 6_371_008.8


class OffCampusError(ValueError):
    """A point the service cannot use: names the point, the distance and the limit.

    Attributes
    ----------
    lat, lng
        The point.
    distance_m
        Its distance from the network (or from the service area).
    limit_m
        The largest distance allowed.
    index
        Position of the point in the batch that was snapped (``None`` for a single point).
    """

    what = "is off campus"

    def __init__(
        self, lat: float, lng: float, distance_m: float, limit_m: float, index: int | None = None
    ) -> None:
        self.lat, self.lng = lat, lng
        self.distance_m, self.limit_m, self.index = distance_m, limit_m, index
        where = "" if index is None else f"point {index} "
        super().__init__(f"{where}({lat:.6f}, {lng:.6f}) {self.describe()}")

    def describe(self) -> str:
        """What is wrong with the point, with the distance and the limit."""
        return f"{self.what}: {self.distance_m:.0f} m (limit {self.limit_m:.0f} m)"


class PointOffNetworkError(OffCampusError):
    """The point is farther from the mode's network than the snapping limit."""

    what = "is too far from the rider network"


class OutsideServiceAreaError(OffCampusError):
    """The point lies outside the campus service area."""

    what = "is outside the campus service area"

    def describe(self) -> str:
        """How far outside the service area the point is."""
        return f"{self.what} by {self.distance_m:.0f} m"


@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular projection to metres around a campus centre (exact enough at km scale)."""

    lat0: float
    lng0: float

    def to_xy(
        self, lat: ArrayLike, lng: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Metres east (x) and north (y) of the centre."""
        k = math.pi / 180 * EARTH_RADIUS_M
        x = (np.asarray(lng, dtype=np.float64) - self.lng0) * k * math.cos(math.radians(self.lat0))
        y = (np.asarray(lat, dtype=np.float64) - self.lat0) * k
        return x, y

    def to_latlng(
        self, x: ArrayLike, y: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Inverse of :meth:`to_xy`."""
        k = math.pi / 180 * EARTH_RADIUS_M
        lat = np.asarray(y, dtype=np.float64) / k + self.lat0
        lng = np.asarray(x, dtype=np.float64) / (k * math.cos(math.radians(self.lat0))) + self.lng0
        return lat, lng


@dataclass(frozen=True)
class SnappedPoints:
    """Points attached to a network edge.

    A point on edge ``e`` (u→v) at fraction ``f`` of its length is reached from the network via
    ``u`` (then ``f`` of the edge) or, if the reverse edge ``r`` (v→u) exists, via ``v`` (then
    ``1 - f`` of ``r``); and left towards ``v`` (``1 - f`` of ``e``) or towards ``u`` (``f`` of
    ``r``). The access leg joins the point itself to its projection on the edge.

    Attributes
    ----------
    lat, lng
        The original points.
    edge, reverse
        Edge index and its reverse edge index (-1 if the edge is one-way).
    fraction
        Position along ``edge`` from u (0) to v (1).
    access_m, access_s
        Length (m) and time (s) of the off-network leg.
    snap_lat, snap_lng
        The projection on the edge.
    """

    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    edge: NDArray[np.int64]
    reverse: NDArray[np.int64]
    fraction: NDArray[np.float64]
    access_m: NDArray[np.float64]
    access_s: NDArray[np.float64]
    snap_lat: NDArray[np.float64]
    snap_lng: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.lat.shape[0])

    def take(self, index: ArrayLike) -> SnappedPoints:
        """A subset (or reordering) of the points."""
        idx = np.asarray(index, dtype=np.int64)
        return SnappedPoints(**{k: v[idx] for k, v in self.__dict__.items()})


def pair_reverse_edges(arrays: NetworkArrays) -> NDArray[np.int64]:
    """For each edge u→v, the edge v→u with the same geometry (-1 if none)."""
    by_pair: dict[tuple[int, int], list[int]] = {}
    for e, (u, v) in enumerate(zip(arrays.edge_u.tolist(), arrays.edge_v.tolist(), strict=True)):
        by_pair.setdefault((u, v), []).append(e)
    reverse = np.full(arrays.num_edges, -1, dtype=np.int64)
    for (u, v), edges in by_pair.items():
        back = by_pair.get((v, u), [])
        for e in edges:
            close = [
                r for r in back if abs(arrays.edge_length_m[r] - arrays.edge_length_m[e]) < 1.0
            ]
            if close and (u != v):
                reverse[e] = min(
                    close, key=lambda r: abs(arrays.edge_length_m[r] - arrays.edge_length_m[e])
                )
    return reverse


class EdgeSnapper:
    """Nearest-edge lookup over one network (a shapely STRtree in local metres).

    Each two-way street is indexed once (the edge with the lower index of the pair), so both
    directions of a street give the same answer.
    """

    def __init__(
        self,
        arrays: NetworkArrays,
        reverse: NDArray[np.int64],
        projection: LocalProjection,
        *,
        max_distance_m: float,
        access_speed_mps: float,
    ) -> None:
        self.arrays = arrays
        self.reverse = np.asarray(reverse, dtype=np.int64)
        self.projection = projection
        self.max_distance_m = max_distance_m
        self.access_speed_mps = access_speed_mps
        indexed = np.nonzero((self.reverse < 0) | (np.arange(arrays.num_edges) < self.reverse))[0]
        self.indexed_edges = indexed
        x, y = projection.to_xy(arrays.geom_lat, arrays.geom_lng)
        coords = np.column_stack([x, y])
        sizes = np.diff(arrays.geom_offsets)[indexed]
        starts = arrays.geom_offsets[indexed]
        flat = np.concatenate([np.arange(s, s + k) for s, k in zip(starts, sizes, strict=True)])
        self.lines = shapely.linestrings(
            coords[flat], indices=np.repeat(np.arange(len(indexed)), sizes)
        )
        self.tree = shapely.STRtree(self.lines)

    def nearest(self, points: NDArray[np.object_]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Index (into ``lines``) of each projected point's nearest edge and its distance (m)."""
        (which, line_idx), dist = self.tree.query_nearest(
            points, return_distance=True, all_matches=False
        )
        nearest = np.empty(len(points), dtype=np.int64)
        distance = np.empty(len(points), dtype=np.float64)
        nearest[which] = line_idx
        distance[which] = dist
        return nearest, distance

    def snap(self, lat: ArrayLike, lng: ArrayLike) -> SnappedPoints:
        """Snap points to their nearest edge; raise :class:`PointOffNetworkError` for the first
        point farther than ``max_distance_m``."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lng = np.atleast_1d(np.asarray(lng, dtype=np.float64))
        x, y = self.projection.to_xy(lat, lng)
        points = shapely.points(x, y)
        nearest, distance = self.nearest(points)
        too_far = np.nonzero(distance > self.max_distance_m)[0]
        if too_far.size:
            i = int(too_far[0])
            raise PointOffNetworkError(
                float(lat[i]),
                float(lng[i]),
                float(distance[i]),
                self.max_distance_m,
                index=None if lat.shape[0] == 1 else i,
            )
        return self.project(lat, lng, points, nearest, distance)

    def project(
        self,
        lat: NDArray[np.float64],
        lng: NDArray[np.float64],
        points: NDArray[np.object_],
        nearest: NDArray[np.int64],
        distance: NDArray[np.float64],
    ) -> SnappedPoints:
        """The points (``points``: projected) snapped onto their ``nearest`` edges."""
        lines = self.lines[nearest]
        fraction = shapely.line_locate_point(lines, points, normalized=True)
        projected = shapely.line_interpolate_point(lines, fraction, normalized=True)
        plat, plng = self.projection.to_latlng(shapely.get_x(projected), shapely.get_y(projected))
        edge = self.indexed_edges[nearest]
        return SnappedPoints(
            lat=lat,
            lng=lng,
            edge=edge,
            reverse=self.reverse[edge],
            fraction=np.clip(fraction, 0.0, 1.0),
            access_m=distance,
            access_s=distance / self.access_speed_mps,
            snap_lat=plat,
            snap_lng=plng,
        )
