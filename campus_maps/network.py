"""Rider networks per travel mode: OSM ways → osmnx/networkx graph → compact arrays.

The pipeline reads like this::

    ways = filter_ways_for_mode(osm, mode)        # campus_maps.osm
    G = graph_from_ways(osm, ways, mode)           # osmnx.graph_from_xml, unsimplified
    G = add_edge_travel_times(G, mode)             # seconds per edge from the speed table
    G = simplify_network(G)                        # merge chains of equal speed; largest SCC
    arrays = arrays_from_graph(G)                  # what the travel tables and snapping use
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
from numpy.typing import NDArray

from campus_maps.config import ModeConfig
from campus_maps.osm import OsmData, OsmWay, write_osm_xml


class EmptyNetworkError(ValueError):
    """A mode has no traversable way on this map."""


@contextlib.contextmanager
def _osmnx_way_tags(extra: tuple[str, ...]) -> Iterator[None]:
    """Make osmnx keep ``extra`` way tags as edge attributes, restoring its settings after."""
    saved = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = list(dict.fromkeys([*saved, *extra]))
    try:
        yield
    finally:
        ox.settings.useful_tags_way = saved


def graph_from_ways(osm: OsmData, ways: list[OsmWay], mode: ModeConfig) -> nx.MultiDiGraph:
    """Load the filtered ways with ``osmnx.graph_from_xml`` (unsimplified, all components)."""
    if not ways:
        raise EmptyNetworkError(f"mode {mode.name!r}: no way on this map is traversable")
    with tempfile.TemporaryDirectory(prefix="campus_maps_") as tmp:
        path = Path(tmp) / f"{mode.name}.osm"
        write_osm_xml(osm, ways, path)
        with _osmnx_way_tags(("access", "foot", "bicycle", "area")):
            graph = ox.graph_from_xml(
                path, bidirectional=not mode.respect_oneway, simplify=False, retain_all=True
            )
    return graph


def edge_speed_mps(data: dict[str, object], mode: ModeConfig) -> float:
    """Speed of ``mode`` on an (unsimplified) edge, from its ``highway`` and mode tags."""
    highway = data["highway"]
    if isinstance(highway, list):
        speed = min(mode.speeds_mps[h] for h in highway)
    else:
        speed = mode.speeds_mps[str(highway)]
    if mode.dismount_speed_mps is not None and data.get(mode.tag) == "dismount":
        speed = min(speed, mode.dismount_speed_mps)
    return speed


def add_edge_travel_times(graph: nx.MultiDiGraph, mode: ModeConfig) -> nx.MultiDiGraph:
    """Set ``speed_mps`` and ``travel_time`` (s) on every edge from the mode's speed table."""
    for _, _, data in graph.edges(data=True):
        speed = edge_speed_mps(data, mode)
        data["speed_mps"] = speed
        data["travel_time"] = float(data["length"]) / speed
    return graph


def simplify_network(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Merge chains of same-speed edges (summing length and time); keep the largest SCC."""
    simple = ox.simplify_graph(
        graph,
        edge_attrs_differ=["speed_mps"],
        edge_attr_aggs={"length": sum, "travel_time": sum},
    )
    return ox.truncate.largest_component(simple, strongly=True)


def build_mode_graph(osm: OsmData, ways: list[OsmWay], mode: ModeConfig) -> nx.MultiDiGraph:
    """The whole pipeline for one mode: graph, travel times, simplification, largest SCC."""
    graph = add_edge_travel_times(graph_from_ways(osm, ways, mode), mode)
    return simplify_network(graph)


@dataclass(frozen=True)
class NetworkArrays:
    """A rider network as flat arrays (cacheable, fast to load).

    Attributes
    ----------
    node_osmid, node_lat, node_lng
        Nodes in index order.
    edge_u, edge_v
        Edge endpoints as node indices (directed).
    edge_length_m, edge_time_s
        Edge length (m) and travel time (s).
    edge_highway
        Highway type(s) of the edge, ``;``-joined when it merges several.
    geom_offsets, geom_lat, geom_lng
        Edge ``e``'s polyline is ``geom_lat/lng[geom_offsets[e]:geom_offsets[e + 1]]``, from
        ``u`` to ``v``.
    """

    node_osmid: NDArray[np.int64]
    node_lat: NDArray[np.float64]
    node_lng: NDArray[np.float64]
    edge_u: NDArray[np.int32]
    edge_v: NDArray[np.int32]
    edge_length_m: NDArray[np.float64]
    edge_time_s: NDArray[np.float64]
    edge_highway: NDArray[np.str_]
    geom_offsets: NDArray[np.int64]
    geom_lat: NDArray[np.float64]
    geom_lng: NDArray[np.float64]

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_osmid.shape[0])

    @property
    def num_edges(self) -> int:
        """Number of directed edges."""
        return int(self.edge_u.shape[0])

    def edge_coords(self, edge: int) -> NDArray[np.float64]:
        """``(k, 2)`` array of (lat, lng) along ``edge`` from u to v."""
        a, b = self.geom_offsets[edge], self.geom_offsets[edge + 1]
        return np.column_stack([self.geom_lat[a:b], self.geom_lng[a:b]])

    def to_graph(self) -> nx.MultiDiGraph:
        """The network as a networkx MultiDiGraph (OSM node ids; ``travel_time``, ``length``)."""
        graph = nx.MultiDiGraph()
        for i, osmid in enumerate(self.node_osmid.tolist()):
            graph.add_node(osmid, y=float(self.node_lat[i]), x=float(self.node_lng[i]))
        ids = self.node_osmid
        for e in range(self.num_edges):
            graph.add_edge(
                int(ids[self.edge_u[e]]),
                int(ids[self.edge_v[e]]),
                length=float(self.edge_length_m[e]),
                travel_time=float(self.edge_time_s[e]),
                highway=str(self.edge_highway[e]),
            )
        return graph


def arrays_from_graph(graph: nx.MultiDiGraph) -> NetworkArrays:
    """Flatten a simplified osmnx graph into :class:`NetworkArrays`."""
    osmids = sorted(graph.nodes)
    index = {osmid: i for i, osmid in enumerate(osmids)}
    lat = np.array([graph.nodes[n]["y"] for n in osmids], dtype=np.float64)
    lng = np.array([graph.nodes[n]["x"] for n in osmids], dtype=np.float64)
    us, vs, lengths, times, highways = [], [], [], [], []
    offsets = [0]
    glat: list[float] = []
    glng: list[float] = []
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: (index[e[0]], index[e[1]])):
        us.append(index[u])
        vs.append(index[v])
        lengths.append(float(data["length"]))
        times.append(float(data["travel_time"]))
        hw = data.get("highway", "")
        highways.append(";".join(sorted(set(hw))) if isinstance(hw, list) else str(hw))
        geometry = data.get("geometry")
        if geometry is not None:
            xs, ys = geometry.xy
            glat.extend(ys)
            glng.extend(xs)
        else:
            glat.extend([lat[index[u]], lat[index[v]]])
            glng.extend([lng[index[u]], lng[index[v]]])
        offsets.append(len(glat))
    return NetworkArrays(
        node_osmid=np.array(osmids, dtype=np.int64),
        node_lat=lat,
        node_lng=lng,
        edge_u=np.array(us, dtype=np.int32),
        edge_v=np.array(vs, dtype=np.int32),
        edge_length_m=np.array(lengths, dtype=np.float64),
        edge_time_s=np.array(times, dtype=np.float64),
        edge_highway=np.array(highways, dtype=np.str_),
        geom_offsets=np.array(offsets, dtype=np.int64),
        geom_lat=np.array(glat, dtype=np.float64),
        geom_lng=np.array(glng, dtype=np.float64),
    )
