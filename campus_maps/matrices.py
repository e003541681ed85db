"""Travel matrices built where they are used: a picklable source that carries a request's snapped
points and its campus's identity (not its tables), and finds the campus in whatever process it
lands in (loaded once per process, tables memory-mapped from the cache)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from campus_maps.campus import Campus
from campus_maps.config import CampusConfig, file_digest
from campus_maps.snap import SnappedPoints

_LOADED: OrderedDict[tuple[str, str, str, str], Campus] = OrderedDict()
_LOCK = threading.Lock()
#: Most campuses :func:`campus_in_process` keeps (least recently used dropped first); ``None``:
#: no cap (set in solver workers by :func:`set_max_loaded`).
_MAX_LOADED: list[int | None] = [None]


def _key(config: CampusConfig, cache_root: Path, osm_digest: str) -> tuple[str, str, str, str]:
    """A campus's identity: its id, cache folder, settings (overrides included) and map content
    (a campus onboarded again with another map is another campus)."""
    return (config.id, str(cache_root), repr(config), osm_digest)


def set_max_loaded(count: int | None) -> None:
    """Keep at most ``count`` campuses in this process (``None``: no cap); the least recently
    used are dropped first (a solver worker's start-up sets the server's
    ``max_loaded_campuses``)."""
    with _LOCK:
        _MAX_LOADED[0] = count
        _trim()


def _trim() -> None:
    cap = _MAX_LOADED[0]
    while cap is not None and len(_LOADED) > max(cap, 1):
        _LOADED.popitem(last=False)


def register_campus(campus: Campus) -> None:
    """Make ``campus`` the one this process uses for sources of its id, cache and settings."""
    with _LOCK:
        key = _key(campus.config, campus.cache_dir.parent, campus.osm_digest)
        _LOADED[key] = campus
        _LOADED.move_to_end(key)
        _trim()


def unregister_campus(campus: Campus) -> None:
    """Forget ``campus`` in this process (its tables are unmapped once nothing uses it)."""
    with _LOCK:
        key = _key(campus.config, campus.cache_dir.parent, campus.osm_digest)
        if _LOADED.get(key) is campus:
            del _LOADED[key]


def loaded_campuses() -> list[str]:
    """Ids of the campuses this process holds, least recently used first."""
    with _LOCK:
        return [key[0] for key in _LOADED]


def campus_in_process(
    config: CampusConfig, cache_root: Path, osm_digest: str | None = None
) -> Campus:
    """This process's copy of a campus: loaded on first use (its tables memory-mapped from
    ``cache_root``), then kept (up to :func:`set_max_loaded` campuses). ``osm_digest``: the
    map's SHA-256 (default: read from the file)."""
    key = _key(config, cache_root, osm_digest or file_digest(config.osm_path))
    with _LOCK:
        campus = _LOADED.get(key)
        if campus is None:
            campus = Campus(config, cache_dir=cache_root, osm_digest=key[3])
            _LOADED[key] = campus
        _LOADED.move_to_end(key)
        _trim()
    return campus


def preload_campuses(campuses: Sequence[tuple[CampusConfig, Path]]) -> None:
    """Load campuses and page in every mode's tables (a solver worker's start-up)."""
    for config, cache_root in campuses:
        campus_in_process(config, cache_root).load_tables(page_in=True)


class CampusMatrices:
    """A :class:`solver.spec.MatrixSource` over points snapped on a campus.

    Parameters
    ----------
    campus
        The campus the points were snapped on.
    modes
        The travel mode of each profile (an empty tuple: one profile of zeros; a request
        without riders travels nowhere).
    snapped
        The points snapped for each mode of ``modes`` (same points, same order).
    speed_factor
        Travel times are divided by it (0.8: a rainy day).
    """

    def __init__(
        self,
        campus: Campus,
        modes: Sequence[str],
        snapped: Mapping[str, SnappedPoints],
        *,
        points: NDArray[np.float64],
        speed_factor: float = 1.0,
    ) -> None:
        self._campus: Campus | None = campus
        self.config = campus.config
        self.cache_root = campus.cache_dir.parent
        self.osm_digest = campus.osm_digest
        self.modes = tuple(modes)
        self.snapped = {m: snapped[m] for m in self.modes}
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.speed_factor = speed_factor
        x, y = campus.projection.to_xy(self.points[:, 0], self.points[:, 1])
        self._xy = np.column_stack([x, y])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_campus"] = None  # the receiving process uses its own copy of the campus
        return state

    @property
    def campus(self) -> Campus:
        """The campus, this process's copy."""
        if self._campus is None:
            self._campus = campus_in_process(self.config, self.cache_root, self.osm_digest)
        return self._campus

    @property
    def num_points(self) -> int:
        """Number of points."""
        return int(self.points.shape[0])

    @property
    def num_profiles(self) -> int:
        """One profile per mode (at least one)."""
        return max(1, len(self.modes))

    @property
    def xy(self) -> NDArray[np.float64]:
        """``(n, 2)`` metres east and north of the campus centre."""
        return self._xy

    def matrices(self, points: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """``(profiles, k, k)`` whole-second times and metre distances between ``points``."""
        idx = np.asarray(points, dtype=np.int64)
        k = len(idx)
        if not self.modes:
            return np.zeros((1, k, k), np.int64), np.zeros((1, k, k))
        times, dists = [], []
        for mode in self.modes:
            m = self.campus.network(mode).matrix(self.snapped[mode].take(idx))
            times.append(np.rint(m.time_s / self.speed_factor))
            dists.append(m.distance_m)
        return np.stack(times).astype(np.int64), np.stack(dists)
