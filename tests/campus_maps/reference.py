"""An independent reference for travel matrices: networkx Dijkstra on the rider network with every
snapped point spliced into its edge (and into the reverse edge), plus the access legs."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from campus_maps import SnappedPoints
from campus_maps.campus import RiderNetwork


def reference_graph(net: RiderNetwork, pts: SnappedPoints) -> nx.MultiDiGraph:
    """The network with a node ``("x", i)`` per point, joined both ways by its access leg to a
    node ``("p", edge, fraction)`` spliced into its edge (and the reverse edge when there is
    one). Points snapped to the same place of an edge share that node."""
    a = net.arrays
    graph = nx.MultiDiGraph()
    for e in range(a.num_edges):
        graph.add_edge(int(a.edge_u[e]), int(a.edge_v[e]), key=e, w=float(a.edge_time_s[e]))
    by_edge: dict[int, set[float]] = {}
    for i in range(len(pts)):
        e, f = int(pts.edge[i]), float(pts.fraction[i])
        by_edge.setdefault(e, set()).add(f)
        graph.add_edge(("x", i), ("p", e, f), w=float(pts.access_s[i]))
        graph.add_edge(("p", e, f), ("x", i), w=float(pts.access_s[i]))
    for e, fractions in by_edge.items():
        u, v, t = int(a.edge_u[e]), int(a.edge_v[e]), float(a.edge_time_s[e])
        graph.remove_edge(u, v, key=e)
        chain = [(u, 0.0), *((("p", e, f), f) for f in sorted(fractions)), (v, 1.0)]
        for (n1, f1), (n2, f2) in itertools.pairwise(chain):
            graph.add_edge(n1, n2, w=(f2 - f1) * t)
        r = int(net.snapper.reverse[e])
        if r >= 0:
            tr = float(a.edge_time_s[r])
            graph.remove_edge(v, u, key=r)
            for (n1, f1), (n2, f2) in itertools.pairwise(chain):
                graph.add_edge(n2, n1, w=(f2 - f1) * tr)
    return graph


def reference_times(
    net: RiderNetwork, pts: SnappedPoints, sources: list[int]
) -> NDArray[np.float64]:
    """``(len(sources), k)`` fastest times (s) from each source point to every point; 0 between
    points with the same coordinates (nothing to travel)."""
    graph = reference_graph(net, pts)
    out = np.empty((len(sources), len(pts)))
    for row, i in enumerate(sources):
        lengths = nx.single_source_dijkstra_path_length(graph, ("x", i), weight="w")
        for j in range(len(pts)):
            same = pts.lat[i] == pts.lat[j] and pts.lng[i] == pts.lng[j]
            out[row, j] = 0.0 if same else lengths[("x", j)]
    return out
