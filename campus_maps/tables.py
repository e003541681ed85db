"""All-pairs travel tables of a rider network (scipy csgraph) and their on-disk cache."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from campus_maps.network import NetworkArrays

#: Bump when the cached arrays change meaning; old cache entries are then rebuilt.
CACHE_FORMAT = 3


@dataclass(frozen=True)
class TravelTables:
    """Shortest travel times between all node pairs of one network.

    Attributes
    ----------
    time_s
        ``(N, N)`` fastest travel time (s) from node i to node j.
    distance_m
        ``(N, N)`` length (m) of that fastest path.
    predecessor
        ``(N, N)`` predecessor of j on the fastest path from i (-1 on the diagonal).
    best_edge_keys, best_edge
        Sorted ``u * N + v`` keys and, aligned, the fastest edge index from u to v.
    """

    time_s: NDArray[np.float64]
    distance_m: NDArray[np.float64]
    predecessor: NDArray[np.int32]
    best_edge_keys: NDArray[np.int64]
    best_edge: NDArray[np.int64]

    def edge_between(self, u: NDArray[np.int64], v: NDArray[np.int64]) -> NDArray[np.int64]:
        """Index of the fastest edge from ``u`` to ``v`` (arrays of node indices)."""
        n = self.time_s.shape[0]
        pos = np.searchsorted(self.best_edge_keys, np.asarray(u, np.int64) * n + v)
        return self.best_edge[pos]

    def node_path(self, source: int, target: int) -> list[int]:
        """Node indices of the fastest path from ``source`` to ``target`` (both included)."""
        path = [target]
        row = self.predecessor[source]
        while path[-1] != source:
            prev = int(row[path[-1]])
            if prev < 0:
                raise ValueError(f"node {target} is not reachable from node {source}")
            path.append(prev)
        return path[::-1]


def fastest_edges(arrays: NetworkArrays) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each connected (u, v) pair, the index of its fastest parallel edge (sorted keys)."""
    n = arrays.num_nodes
    keys = arrays.edge_u.astype(np.int64) * n + arrays.edge_v
    order = np.lexsort((arrays.edge_time_s, keys))
    keys_sorted = keys[order]
    first = np.ones(keys_sorted.shape[0], dtype=bool)
    first[1:] = keys_sorted[1:] != keys_sorted[:-1]
    return keys_sorted[first], order[first].astype(np.int64)


def compute_travel_tables(arrays: NetworkArrays) -> TravelTables:
    """All-pairs fastest paths with ``scipy.sparse.csgraph.dijkstra``; distances along them."""
    n = arrays.num_nodes
    keys, best = fastest_edges(arrays)
    graph = sp.csr_matrix(
        (arrays.edge_time_s[best], (keys // n, keys % n)), shape=(n, n), dtype=np.float64
    )
    time_s, pred = dijkstra(graph, directed=True, return_predecessors=True)
    pred = pred.astype(np.int32)
    pred[pred < 0] = -1
    # Length of the fastest path by pointer doubling over the predecessor matrix:
    # acc[s, t] = length from anc[s, t] to t; each round doubles the hops covered.
    has_pred = pred >= 0
    rows, cols = np.nonzero(has_pred)
    acc = np.zeros((n, n), dtype=np.float64)
    edge = best[np.searchsorted(keys, pred[rows, cols].astype(np.int64) * n + cols)]
    acc[rows, cols] = arrays.edge_length_m[edge]
    anc = pred.copy()
    while True:
        live = anc >= 0
        if not live.any():
            break
        anc_safe = np.where(live, anc, 0)
        acc = acc + np.where(live, np.take_along_axis(acc, anc_safe, axis=1), 0.0)
        anc = np.where(live, np.take_along_axis(anc, anc_safe, axis=1), -1)
    return TravelTables(time_s, acc, pred, keys, best)


def default_cache_dir() -> Path:
    """``$CAMPUS_DISPATCH_CACHE`` or ``~/.cache/campus-dispatch``."""
    env = os.environ.get("CAMPUS_DISPATCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "campus-dispatch"


def save_arrays(folder: Path, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]) -> None:
    """Write ``arrays`` as ``.npy`` files and ``meta.json`` into ``folder`` atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({**meta, "format": CACHE_FORMAT}, indent=1))
        try:
            tmp.rename(folder)
        except OSError:  # another process won the race: theirs is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_arrays(folder: Path) -> tuple[dict[str, NDArray[Any]], dict[str, Any]] | None:
    """Arrays and meta saved by :func:`save_arrays`, memory-mapped; ``None`` if absent/stale."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        arrays = {
            p.stem: np.load(p, mmap_mode="r", allow_pickle=False) for p in folder.glob("*.npy")
        }
    except (OSError, ValueError):
        return None
    return arrays, meta


def network_to_arrays(arrays: NetworkArrays, tables: TravelTables) -> dict[str, NDArray[Any]]:
    """Network and tables as named arrays for :func:`save_arrays`."""
    out = {f"net_{f.name}": getattr(arrays, f.name) for f in fields(NetworkArrays)}
    out.update({f"tab_{f.name}": getattr(tables, f.name) for f in fields(TravelTables)})
    return out


def network_from_arrays(stored: dict[str, NDArray[Any]]) -> tuple[NetworkArrays, TravelTables]:
    """Inverse of :func:`network_to_arrays`."""
    net = NetworkArrays(**{f.name: stored[f"net_{f.name}"] for f in fields(NetworkArrays)})
    tab = TravelTables(**{f.name: stored[f"tab_{f.name}"] for f in fields(TravelTables)})
    return net, tab
