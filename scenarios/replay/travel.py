"""How riders travel in a scenario: travel matrices, leg paths and speed bounds, on a campus road
graph or on the Euclidean plane of the MDRP instances."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from campus_maps import Campus, default_maps_dir, load_campus
from scenarios.model import Point, Scenario

#: Mean Earth radius (m), for straight-line distances between latitude/longitude points.
EARTH_RADIUS_M = 6_371_008.8


class TravelModel(Protocol):
    """Travel times and paths between scenario points (the simulator's only view of geography)."""

    geometry: str

    def matrices(
        self, points: NDArray[np.float64], modes: Sequence[str]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """``(len(modes), k, k)`` travel times (whole s) and distances (m) between points."""
        ...

    def path(self, a: Point, b: Point, mode: str) -> NDArray[np.float64]:
        """``(m, 2)`` polyline of the route from ``a`` to ``b`` (``a`` first, ``b`` last)."""
        ...

    def straight_m(self, a: Point, b: Point) -> float:
        """Straight-line distance (m) between two points."""
        ...

    def planar(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(k, 2)`` metres on a plane (what a storm-sized batch is split into zones by)."""
        ...

    def max_speed_mps(self, mode: str) -> float:
        """No rider of ``mode`` covers more straight-line metres per second than this."""
        ...


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance (m) between two latitude/longitude points."""
    lat1, lat2 = math.radians(a.a), math.radians(b.a)
    dlat, dlng = lat2 - lat1, math.radians(b.b - a.b)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class CampusTravel:
    """Travel on a campus's rider networks (one per mode), speeds scaled by ``speed_factor``.

    Parameters
    ----------
    campus
        The loaded campus.
    speed_factor
        Multiplies every speed (0.75: a rain day); travel times are divided by it.
    """

    geometry = "campus"

    def __init__(self, campus: Campus, speed_factor: float = 1.0) -> None:
        self.campus = campus
        self.speed_factor = speed_factor

    def matrices(
        self, points: NDArray[np.float64], modes: Sequence[str]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        return self.campus.matrices(points, modes, speed_factor=self.speed_factor)

    def path(self, a: Point, b: Point, mode: str) -> NDArray[np.float64]:
        line = self.campus.path((a.a, a.b), (b.a, b.b), mode)
        body = np.asarray(line, dtype=np.float64).reshape(-1, 2)
        return np.vstack([[a.a, a.b], body, [b.a, b.b]])

    def straight_m(self, a: Point, b: Point) -> float:
        return haversine_m(a, b)

    def planar(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x, y = self.campus.projection.to_xy(pts[:, 0], pts[:, 1])
        return np.column_stack([x, y])

    def max_speed_mps(self, mode: str) -> float:
        config = self.campus.config
        fastest = max([*config.mode(mode).speeds_mps.values(), config.access_speed_mps])
        return fastest * self.speed_factor


class EuclideanTravel:
    """Straight lines at ``metres_per_minute``; a leg takes ``ceil(d / metres_per_minute)``
    whole minutes, as the MDRP instances define it (divided by ``speed_factor``)."""

    geometry = "euclidean"

    def __init__(self, metres_per_minute: float, speed_factor: float = 1.0) -> None:
        self.metres_per_minute = metres_per_minute
        self.speed_factor = speed_factor

    def matrices(
        self, points: NDArray[np.float64], modes: Sequence[str]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dist = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        minutes = np.ceil(dist / self.metres_per_minute - 1e-9)
        time = np.rint(minutes * 60.0 / self.speed_factor).astype(np.int64)
        count = max(1, len(modes))
        return np.repeat(time[None], count, axis=0), np.repeat(dist[None], count, axis=0)

    def path(self, a: Point, b: Point, mode: str) -> NDArray[np.float64]:
        return np.array([[a.a, a.b], [b.a, b.b]], dtype=np.float64)

    def straight_m(self, a: Point, b: Point) -> float:
        return math.hypot(a.a - b.a, a.b - b.b)

    def planar(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(points, dtype=np.float64).reshape(-1, 2)

    def max_speed_mps(self, mode: str) -> float:
        return self.metres_per_minute / 60.0 * self.speed_factor


def travel_for_scenario(scenario: Scenario, campus: Campus | None = None) -> TravelModel:
    """The travel model a scenario asks for (loading its campus unless one is given)."""
    g = scenario.geometry
    if g.kind == "euclidean":
        return EuclideanTravel(g.metres_per_minute, scenario.speed_factor)
    if campus is None or campus.id != g.campus_id:
        campus = load_campus(g.campus_id, maps_dir=default_maps_dir())
    return CampusTravel(campus, scenario.speed_factor)


def rest_of_path(
    path: NDArray[np.float64], fraction: float, travel: TravelModel
) -> NDArray[np.float64]:
    """The part of a polyline after ``fraction`` (0..1) of its length, starting at that point."""
    here = point_along(path, fraction, travel)
    if len(path) < 2 or fraction <= 0.0:
        return path
    pts = [Point(float(p[0]), float(p[1])) for p in path]
    lengths = np.array([travel.straight_m(p, q) for p, q in itertools.pairwise(pts)])
    done = np.concatenate([[0.0], np.cumsum(lengths)])
    ahead = path[done > fraction * done[-1]]
    return np.vstack([[here.a, here.b], ahead]) if len(ahead) else np.array([[here.a, here.b]])


def point_along(path: NDArray[np.float64], fraction: float, travel: TravelModel) -> Point:
    """The point ``fraction`` (0..1) of the way along a polyline, by length."""
    if len(path) == 1 or fraction <= 0.0:
        return Point(float(path[0, 0]), float(path[0, 1]))
    if fraction >= 1.0:
        return Point(float(path[-1, 0]), float(path[-1, 1]))
    pts = [Point(float(p[0]), float(p[1])) for p in path]
    lengths = [travel.straight_m(p, q) for p, q in itertools.pairwise(pts)]
    total = sum(lengths)
    if total <= 0.0:
        return pts[-1]
    target = fraction * total
    for k, seg in enumerate(lengths):
        if target <= seg and seg > 0:
            f = target / seg
            p, q = pts[k], pts[k + 1]
            return Point(p.a + f * (q.a - p.a), p.b + f * (q.b - p.b))
        target -= seg
    return pts[-1]
