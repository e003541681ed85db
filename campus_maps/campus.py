"""A loaded campus: its rider networks per mode (cached on disk), snapping, travel matrices between
arbitrary points, route paths for drawing, and places."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely import ops

from campus_maps.config import DATA_DIR, MODES, CampusConfig, file_digest, load_campus_config
from campus_maps.network import NetworkArrays, arrays_from_graph, build_mode_graph
from campus_maps.osm import OsmData, filter_ways_for_mode, osm_from_xml
from campus_maps.places import Place, PlaceKind, places_from_osm
from campus_maps.snap import (
    EdgeSnapper,
    LocalProjection,
    OffCampusError,
    OutsideServiceAreaError,
    PointOffNetworkError,
    SnappedPoints,
    pair_reverse_edges,
)
from campus_maps.tables import (
    TravelTables,
    compute_travel_tables,
    default_cache_dir,
    load_arrays,
    network_from_arrays,
    network_to_arrays,
    save_arrays,
)

LatLng = tuple[float, float]


@dataclass(frozen=True)
class TravelMatrix:
    """Travel between k points for one mode.

    Attributes
    ----------
    time_s
        ``(k, k)`` fastest travel time in seconds, access legs included.
    distance_m
        ``(k, k)`` length in metres of that fastest route.
    """

    time_s: NDArray[np.float64]
    distance_m: NDArray[np.float64]


@dataclass(frozen=True)
class NetworkStats:
    """Size and build facts of one mode's network."""

    mode: str
    nodes: int
    edges: int
    build_s: float
    cache_key: str
    from_cache: bool


class RiderNetwork:
    """The network of one travel mode with its all-pairs tables and edge snapper."""

    def __init__(
        self,
        mode: str,
        arrays: NetworkArrays,
        tables: TravelTables,
        snapper: EdgeSnapper,
        stats: NetworkStats,
    ) -> None:
        self.mode = mode
        self.arrays = arrays
        self.tables = tables
        self.snapper = snapper
        self.stats = stats

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        """The network as a networkx MultiDiGraph (OSM node ids as nodes)."""
        return self.arrays.to_graph()

    def snap(self, lat: ArrayLike, lng: ArrayLike) -> SnappedPoints:
        """Snap points to the nearest edge (see :class:`~campus_maps.snap.EdgeSnapper`)."""
        return self.snapper.snap(lat, lng)

    def _legs(self, pts: SnappedPoints) -> tuple[NDArray[Any], ...]:
        """Exit and entry nodes with their partial-edge time and length (k, 2) each.

        Side 0 rides the point's own edge (leave towards v, arrive from u); side 1 rides its
        reverse edge (leave towards u, arrive from v). A one-way edge has no side 1: its time
        and length are ``inf``, set directly and never multiplied (a point exactly at an end
        node has fraction 0 or 1, and ``0 * inf`` is NaN).
        """
        a = self.arrays
        u, v = a.edge_u[pts.edge].astype(np.int64), a.edge_v[pts.edge].astype(np.int64)
        f = pts.fraction
        t, length = a.edge_time_s[pts.edge], a.edge_length_m[pts.edge]
        has_rev = pts.reverse >= 0
        rev = np.where(has_rev, pts.reverse, pts.edge)  # any valid index; masked below
        tr, lr = a.edge_time_s[rev], a.edge_length_m[rev]

        def back(share: NDArray[np.float64], along: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.where(has_rev, share * along, np.inf)

        exit_node = np.column_stack([v, u])
        exit_t = np.column_stack([(1 - f) * t, back(f, tr)])
        exit_m = np.column_stack([(1 - f) * length, back(f, lr)])
        entry_node = np.column_stack([u, v])
        entry_t = np.column_stack([f * t, back(1 - f, tr)])
        entry_m = np.column_stack([f * length, back(1 - f, lr)])
        return exit_node, exit_t, exit_m, entry_node, entry_t, entry_m

    def _best_legs(
        self, pts: SnappedPoints
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int8]]:
        """Time and length between all pairs via the network (access legs included), and the
        (exit, entry) choice ``2 * exit_side + entry_side`` that gives the time."""
        xn, xt, xm, yn, yt, ym = self._legs(pts)
        # the access legs belong to every route from/to the point: fold them in here
        xt, yt = xt + pts.access_s[:, None], yt + pts.access_s[:, None]
        xm, ym = xm + pts.access_m[:, None], ym + pts.access_m[:, None]
        k = len(pts)
        n = self.tables.time_s.shape[1]
        # times of the four (exit side, entry side) combinations as one (2, k, 2, k) gather;
        # the stored float32 entries are widened to float64 before the legs are added
        flat = (xn.T.reshape(2 * k, 1) * n + yn.T.reshape(1, 2 * k)).ravel()
        gathered = self.tables.time_s.ravel().take(flat).reshape(2, k, 2, k)
        sub = np.add(gathered, xt.T.reshape(2, k, 1, 1), dtype=np.float64)
        sub += yt.T.reshape(1, 1, 2, k)
        # best entry side per exit side, then best exit side
        entry_1 = sub[:, :, 1, :] < sub[:, :, 0, :]  # (2, k, k)
        per_exit = np.minimum(sub[:, :, 0, :], sub[:, :, 1, :])
        exit_1 = per_exit[1] < per_exit[0]  # (k, k)
        best_t = np.minimum(per_exit[0], per_exit[1])
        entry = np.where(exit_1, entry_1[1], entry_1[0])
        # the distance of the chosen combination only: one (k, k) gather, not four
        out_node = np.where(exit_1, xn[:, 1:2], xn[:, 0:1])
        in_node = np.where(entry, yn[:, 1], yn[:, 0])
        best_d = np.add(
            self.tables.distance_m.ravel().take(out_node * n + in_node),
            np.where(exit_1, xm[:, 1:2], xm[:, 0:1]),
            dtype=np.float64,
        )
        best_d += np.where(entry, ym[:, 1], ym[:, 0])
        choice = exit_1.view(np.int8) * 2 + entry.view(np.int8)
        return best_t, best_d, choice

    def matrix(self, points: SnappedPoints) -> TravelMatrix:
        """Fastest travel time (s) and its distance (m) between all pairs of snapped points.

        The route from point i to j walks the access leg to i's edge, rides the rest of that
        edge to one of its ends, the fastest network path, and the start of j's edge, then the
        access leg to j. Two points on the same edge may ride it directly. Identical points
        are 0 apart.
        """
        time_s, dist, _ = self._best_legs(points)
        # pairs on the same edge (few): riding along the edge directly may be faster
        ii, jj = np.nonzero(points.edge[:, None] == points.edge[None, :])
        shared = ii.size > len(points)  # more than the diagonal
        if shared:
            a = self.arrays
            e = points.edge[ii]
            df = points.fraction[jj] - points.fraction[ii]
            has_rev = points.reverse[ii] >= 0
            rev = np.where(has_rev, points.reverse[ii], e)  # any valid index; masked below
            fwd_t = np.where(df >= 0, df * a.edge_time_s[e], np.inf)
            back_t = np.where((df <= 0) & has_rev, -df * a.edge_time_s[rev], np.inf)
            fwd_m, back_m = df * a.edge_length_m[e], -df * a.edge_length_m[rev]
            access_t = points.access_s[ii] + points.access_s[jj]
            direct_t = np.minimum(fwd_t, back_t) + access_t
            direct_m = (
                np.where(fwd_t <= back_t, fwd_m, back_m) + points.access_m[ii] + points.access_m[jj]
            )
            use = direct_t < time_s[ii, jj]
            time_s[ii[use], jj[use]] = direct_t[use]
            dist[ii[use], jj[use]] = direct_m[use]
        np.fill_diagonal(time_s, 0.0)
        np.fill_diagonal(dist, 0.0)
        if shared:  # distinct entries for the same coordinates: nothing to travel
            same = (points.lat[ii] == points.lat[jj]) & (points.lng[ii] == points.lng[jj])
            time_s[ii[same], jj[same]] = 0.0
            dist[ii[same], jj[same]] = 0.0
        return TravelMatrix(time_s, dist)

    def node_path(self, source: int, target: int) -> list[int]:
        """OSM node ids of the fastest path between two network nodes (given by index)."""
        return [int(self.arrays.node_osmid[i]) for i in self.tables.node_path(source, target)]

    def path(self, a: SnappedPoints, b: SnappedPoints) -> list[LatLng]:
        """Polyline (lat, lng) of the fastest route from the first point of ``a`` to that of
        ``b``, for drawing: access leg, partial edges and the network path between."""
        pts = SnappedPoints(
            **{k: np.concatenate([getattr(a, k)[:1], getattr(b, k)[:1]]) for k in a.__dict__}
        )
        start = [
            (float(pts.lat[0]), float(pts.lng[0])),
            (float(pts.snap_lat[0]), float(pts.snap_lng[0])),
        ]
        end = [
            (float(pts.snap_lat[1]), float(pts.snap_lng[1])),
            (float(pts.lat[1]), float(pts.lng[1])),
        ]
        if pts.lat[0] == pts.lat[1] and pts.lng[0] == pts.lng[1]:
            return start[:1]
        direct = self.matrix(pts).time_s[0, 1]
        time_s, _, choice = self._best_legs(pts)
        if direct < time_s[0, 1] - 1e-9:
            return start + end
        xn, _, _, yn, _, _ = self._legs(pts)
        ea, eb = int(choice[0, 1] // 2), int(choice[0, 1] % 2)
        coords: list[LatLng] = list(start)
        coords += self._partial(
            int(pts.edge[0]), int(pts.reverse[0]), float(pts.fraction[0]), ea, leaving=True
        )
        nodes = self.tables.node_path(int(xn[0, ea]), int(yn[1, eb]))
        for n1, n2 in itertools.pairwise(nodes):
            edge = int(self.tables.edge_between(np.array([n1]), np.array([n2]))[0])
            coords += [(lat, lng) for lat, lng in self.arrays.edge_coords(edge).tolist()]
        coords += self._partial(
            int(pts.edge[1]), int(pts.reverse[1]), float(pts.fraction[1]), eb, leaving=False
        )
        return coords + end

    def _partial(
        self, edge: int, reverse: int, f: float, side: int, *, leaving: bool
    ) -> list[LatLng]:
        """The piece of ``edge`` between the snapped point (fraction f) and one of its ends."""
        line = shapely.LineString(self.arrays.edge_coords(edge)[:, ::-1])
        if leaving:  # side 0: towards v along the edge; side 1: back towards u
            piece = (
                ops.substring(line, f, 1.0, normalized=True)
                if side == 0
                else ops.substring(line, f, 0.0, normalized=True)
            )
        else:  # side 0: from u up to the point; side 1: from v back to the point
            piece = (
                ops.substring(line, 0.0, f, normalized=True)
                if side == 0
                else ops.substring(line, 1.0, f, normalized=True)
            )
        return [(y, x) for x, y in piece.coords]


class MapChangedError(ValueError):
    """A campus's map file changed on disk after the campus was loaded for the old one (e.g.
    ``campus add --force``), and the old map's tables are not in the cache."""

    def __init__(self, campus_id: str, path: Path) -> None:
        super().__init__(
            f"campus {campus_id!r}: the map {path} changed since the campus was loaded and the "
            "old map's tables are not cached; load the campus again (admin load-campus --reload)"
        )


def map_meta_path(campus_cache: Path, osm_digest: str) -> Path:
    """Where a map's bounds and raw places are cached (in the campus's cache folder)."""
    return campus_cache / f"map-{osm_digest[:20]}.json"


def network_cache_folder(
    campus_cache: Path, config: CampusConfig, mode: str, osm_digest: str
) -> Path:
    """Where a mode's network and travel tables are cached (in the campus's cache folder)."""
    return campus_cache / f"{mode}-{config.network_key(mode, osm_digest)}"


def tables_cached(config: CampusConfig, cache_root: Path | None = None) -> bool:
    """Whether the map's bounds and places and every mode's tables are in the on-disk cache,
    so that loading the campus only memory-maps files."""
    folder = (cache_root or default_cache_dir()) / config.id
    digest = file_digest(config.osm_path)
    return map_meta_path(folder, digest).is_file() and all(
        (network_cache_folder(folder, config, mode, digest) / "meta.json").is_file()
        for mode in MODES
    )


class Campus:
    """One campus (bundled or onboarded): config, service area, rider networks per mode, places.

    Networks are built on first use and cached on disk (``cache_dir``), keyed by the map
    content, the mode's access rules and its speed table, so a warm start only memory-maps
    arrays.
    """

    def __init__(
        self, config: CampusConfig, *, cache_dir: Path | None = None, osm_digest: str = ""
    ) -> None:
        self.config = config
        self.cache_dir = (cache_dir or default_cache_dir()) / config.id
        #: A campus opened for a known map (``osm_digest`` given: a solver worker serving the
        #: server's campus) reads that map's cached tables and refuses to build from a file
        #: that has changed since (:class:`MapChangedError`) rather than plan on another map.
        self._pinned = bool(osm_digest)
        self.osm_digest = osm_digest or file_digest(config.osm_path)
        self._networks: dict[str, RiderNetwork] = {}
        self._osm: OsmData | None = None
        meta = self._load_meta()
        lo_lat, lo_lng, hi_lat, hi_lng = (float(v) for v in meta["bounds"])
        self.bounds = (lo_lat, lo_lng, hi_lat, hi_lng)
        lat0 = (self.bounds[0] + self.bounds[2]) / 2
        lng0 = (self.bounds[1] + self.bounds[3]) / 2
        self.projection = LocalProjection(lat0, lng0)
        corners = config.service_area or (
            (self.bounds[0], self.bounds[1]),
            (self.bounds[0], self.bounds[3]),
            (self.bounds[2], self.bounds[3]),
            (self.bounds[2], self.bounds[1]),
        )
        x, y = self.projection.to_xy([c[0] for c in corners], [c[1] for c in corners])
        self.service_area_xy = shapely.Polygon(np.column_stack([x, y]))
        self.service_area = shapely.Polygon([(c[1], c[0]) for c in corners])  # (lng, lat)
        self._raw_places = [
            Place(p["id"], p["name"], PlaceKind(p["kind"]), p["category"], p["lat"], p["lng"])
            for p in meta["places"]
        ]

    @property
    def id(self) -> str:
        """Campus id."""
        return self.config.id

    @property
    def name(self) -> str:
        """Display name."""
        return self.config.name

    def _osm_data(self) -> OsmData:
        if self._osm is None:
            if self._pinned and file_digest(self.config.osm_path) != self.osm_digest:
                raise MapChangedError(self.id, self.config.osm_path)
            self._osm = osm_from_xml(self.config.osm_path)
        return self._osm

    def _load_meta(self) -> dict[str, Any]:
        """Bounds and raw places of the map (parsed once, cached as JSON)."""
        path = map_meta_path(self.cache_dir, self.osm_digest)
        if path.is_file():
            try:
                return dict(json.loads(path.read_text()))
            except (OSError, ValueError):
                pass
        osm = self._osm_data()
        meta = {
            "bounds": list(osm.bounds),
            "places": [{**asdict(p), "kind": p.kind.value} for p in places_from_osm(osm)],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{time.time_ns()}.tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(path)
        return meta

    def network(self, mode: str) -> RiderNetwork:
        """The rider network of ``mode`` (built or loaded from the cache on first use)."""
        if mode not in self._networks:
            self._networks[mode] = self._load_network(mode)
        return self._networks[mode]

    def _load_network(self, mode: str) -> RiderNetwork:
        cfg = self.config.mode(mode)
        key = self.config.network_key(mode, self.osm_digest)
        folder = network_cache_folder(self.cache_dir, self.config, mode, self.osm_digest)
        started = time.perf_counter()
        cached = load_arrays(folder)
        if cached is None:
            osm = self._osm_data()
            ways = filter_ways_for_mode(osm, cfg, allow_private=self.config.allow_private)
            arrays = arrays_from_graph(build_mode_graph(osm, ways, cfg))
            tables = compute_travel_tables(arrays)
            reverse = pair_reverse_edges(arrays)
            build_s = time.perf_counter() - started
            save_arrays(
                folder,
                {**network_to_arrays(arrays, tables), "reverse": reverse},
                {"campus": self.id, "mode": mode, "key": key, "build_s": build_s},
            )
            from_cache = False
        else:
            stored, _ = cached
            arrays, tables = network_from_arrays(stored)
            reverse = stored["reverse"]
            from_cache = True
        snapper = EdgeSnapper(
            arrays,
            reverse,
            self.projection,
            max_distance_m=self.config.snap_max_distance_m,
            access_speed_mps=self.config.access_speed_mps,
        )
        stats = NetworkStats(
            mode, arrays.num_nodes, arrays.num_edges, time.perf_counter() - started, key, from_cache
        )
        return RiderNetwork(mode, arrays, tables, snapper, stats)

    def check_in_service_area(self, lat: ArrayLike, lng: ArrayLike) -> None:
        """Raise :class:`OutsideServiceAreaError` for the first point outside the service area."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lng = np.atleast_1d(np.asarray(lng, dtype=np.float64))
        x, y = self.projection.to_xy(lat, lng)
        pts = shapely.points(x, y)
        inside = shapely.covers(self.service_area_xy, pts)
        bad = np.nonzero(~inside)[0]
        if bad.size:
            i = int(bad[0])
            raise OutsideServiceAreaError(
                float(lat[i]),
                float(lng[i]),
                float(shapely.distance(self.service_area_xy, pts[i])),
                0.0,
                index=None if lat.shape[0] == 1 else i,
            )

    def point_errors(
        self, points: Sequence[LatLng] | NDArray[np.float64], mode: str
    ) -> list[OffCampusError]:
        """Every point that :meth:`snap` would reject for ``mode``, each with its error
        (``index`` set to its position in ``points``); empty when all are usable."""
        return self.snap_or_errors(points, mode)[1]

    def snap_or_errors(
        self, points: Sequence[LatLng] | NDArray[np.float64], mode: str
    ) -> tuple[SnappedPoints | None, list[OffCampusError]]:
        """Snap ``points`` for ``mode`` with one nearest-edge query: the snapped points and no
        errors, or ``None`` and every point :meth:`snap` would reject (``index`` set)."""
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x, y = self.projection.to_xy(arr[:, 0], arr[:, 1])
        pts = shapely.points(x, y)
        errors: list[OffCampusError] = []
        outside = ~shapely.covers(self.service_area_xy, pts)
        snapper = self.network(mode).snapper
        edges, nearest = snapper.nearest(pts)
        for i in range(arr.shape[0]):
            lat, lng = float(arr[i, 0]), float(arr[i, 1])
            if outside[i]:
                away = float(shapely.distance(self.service_area_xy, pts[i]))
                errors.append(OutsideServiceAreaError(lat, lng, away, 0.0, index=i))
            elif nearest[i] > snapper.max_distance_m:
                limit = snapper.max_distance_m
                errors.append(PointOffNetworkError(lat, lng, float(nearest[i]), limit, index=i))
        if errors:
            return None, errors
        return snapper.project(arr[:, 0], arr[:, 1], pts, edges, nearest), []

    def snap(self, points: Sequence[LatLng] | NDArray[np.float64], mode: str) -> SnappedPoints:
        """Check that points are on campus and snap them to ``mode``'s network.

        Raises
        ------
        OutsideServiceAreaError
            A point lies outside the campus service area.
        PointOffNetworkError
            A point is farther than ``snap.max_distance_m`` from the network.
        """
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.check_in_service_area(arr[:, 0], arr[:, 1])
        return self.network(mode).snap(arr[:, 0], arr[:, 1])

    def matrix(
        self, points: Sequence[LatLng] | NDArray[np.float64] | SnappedPoints, mode: str
    ) -> TravelMatrix:
        """Travel time (s) and distance (m) between all pairs of ``points`` for ``mode``."""
        snapped = points if isinstance(points, SnappedPoints) else self.snap(points, mode)
        return self.network(mode).matrix(snapped)

    def matrices(
        self,
        points: Sequence[LatLng] | NDArray[np.float64],
        modes: Sequence[str],
        *,
        speed_factor: float = 1.0,
        snapped: Mapping[str, SnappedPoints] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Solver-ready travel tables between ``points``, one per mode in ``modes``.

        Returns ``(len(modes), k, k)`` travel times in whole seconds (divided by
        ``speed_factor``: 0.8 is a rainy day) and distances in metres. ``snapped``: the points
        already snapped for some modes (e.g. by :meth:`snap_or_errors`), not snapped again.
        """
        from campus_maps.matrices import CampusMatrices

        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        given = dict(snapped or {})
        for mode in modes:
            if mode not in given:
                given[mode] = self.snap(arr, mode)
        source = CampusMatrices(self, modes, given, points=arr, speed_factor=speed_factor)
        return source.matrices(np.arange(len(arr), dtype=np.int64))

    def path(self, a: LatLng, b: LatLng, mode: str) -> list[LatLng]:
        """Polyline of the fastest route from ``a`` to ``b`` for ``mode`` (for drawing)."""
        snapped = self.snap([a, b], mode)
        return self.network(mode).path(snapped.take([0]), snapped.take([1]))

    def load_tables(self, *, page_in: bool = False) -> int:
        """Load every mode's network and travel tables (memory-mapped from the cache, built
        when not cached) and return their bytes; ``page_in``: also read every table once, so
        the first request does not fault its pages in."""
        total = 0
        for mode in MODES:
            tables = self.network(mode).tables
            if page_in:
                float(tables.time_s.sum() + tables.distance_m.sum())
            total += tables.nbytes
        return total

    def places(self, kind: PlaceKind | None = None) -> list[Place]:
        """Places inside the service area that every mode's network can reach."""
        if not hasattr(self, "_places"):
            lat = np.array([p.lat for p in self._raw_places], dtype=np.float64)
            lng = np.array([p.lng for p in self._raw_places], dtype=np.float64)
            x, y = self.projection.to_xy(lat, lng)
            ok = shapely.covers(self.service_area_xy, shapely.points(x, y))
            for mode in MODES:
                snapper = self.network(mode).snapper
                (which, _), dist = snapper.tree.query_nearest(
                    shapely.points(x, y), return_distance=True, all_matches=False
                )
                near = np.zeros(len(self._raw_places), dtype=bool)
                near[which] = dist <= snapper.max_distance_m
                ok &= near
            self._places = [p for p, keep in zip(self._raw_places, ok, strict=True) if keep]
        return [p for p in self._places if kind is None or p.kind is kind]


def load_campus(
    campus_id: str | None = None,
    *,
    cache_dir: Path | None = None,
    data_dir: Path = DATA_DIR,
    maps_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Campus:
    """Load a bundled campus, or one onboarded into ``maps_dir`` (default: the bundled campus
    marked default, Northwestern)."""
    from campus_maps.config import default_campus_id

    config = load_campus_config(
        campus_id or default_campus_id(data_dir),
        data_dir=data_dir,
        maps_dir=maps_dir,
        overrides=overrides,
    )
    return Campus(config, cache_dir=cache_dir)


__all__ = [
    "Campus",
    "MapChangedError",
    "NetworkStats",
    "RiderNetwork",
    "TravelMatrix",
    "load_campus",
    "map_meta_path",
    "network_cache_folder",
    "tables_cached",
]
