"""Where a drop-off goes, for counting orders per destination: the nearest named building
within a radius, else a square cell of the campus."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from campus_maps import Campus, PlaceKind

#: Metres per degree of latitude.
_M_PER_DEG = 111_320.0


@dataclass(frozen=True, slots=True)
class NamedPlace:
    """A building orders can go to."""

    id: str
    name: str
    lat: float
    lng: float


class Destinations:
    """Destination keys of drop-off points (``place:<id>`` or ``cell:<i>,<j>``) with a name for
    people."""

    def __init__(self, places: Sequence[NamedPlace], radius_m: float) -> None:
        self.places = tuple(places)
        self.radius_m = radius_m
        lat0 = float(np.mean([p.lat for p in places])) if places else 0.0
        self._x_per_deg = _M_PER_DEG * math.cos(math.radians(lat0))
        xy = self._xy([p.lat for p in places], [p.lng for p in places])
        self._tree = cKDTree(xy) if places else None

    def _xy(self, lat: Sequence[float], lng: Sequence[float]) -> np.ndarray:
        return np.column_stack(
            [np.asarray(lng, dtype=np.float64) * self._x_per_deg, np.asarray(lat) * _M_PER_DEG]
        ).reshape(-1, 2)

    def of(self, lats: Sequence[float], lngs: Sequence[float]) -> list[tuple[str, str]]:
        """``(key, name)`` of each point."""
        xy = self._xy(lats, lngs)
        if len(xy) == 0:
            return []
        found: list[tuple[str, str]] = []
        if self._tree is not None:
            dist, which = self._tree.query(xy, k=1)
        else:
            dist, which = np.full(len(xy), np.inf), np.zeros(len(xy), dtype=np.int64)
        for k in range(len(xy)):
            if dist[k] <= self.radius_m:
                place = self.places[int(which[k])]
                found.append((f"place:{place.id}", place.name))
                continue
            i, j = (math.floor(float(v) / self.radius_m) for v in xy[k])
            lng = (i + 0.5) * self.radius_m / self._x_per_deg
            lat = (j + 0.5) * self.radius_m / _M_PER_DEG
            name = f"the {self.radius_m:.0f} m cell around ({lat:.5f}, {lng:.5f})"
            found.append((f"cell:{i},{j}", name))
        return found


def named_places(campus: Campus) -> list[NamedPlace]:
    """The campus's buildings orders go to (dorms and other named buildings)."""
    return [
        NamedPlace(p.id, p.name, p.lat, p.lng)
        for p in campus.places()
        if p.kind is not PlaceKind.FOOD
    ]
