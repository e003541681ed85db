"""All-pairs travel tables of a rider network (scipy csgraph) and their on-disk cache.

The tables are computed in float64 and stored compact (cache format 4): times and distances as
float32, predecessors in the smallest signed integer type that holds the node indices and -1
(:func:`predecessor_dtype`: int16 below 32767 nodes, else int32), memory-mapped on a warm start:
10 bytes per node pair instead of 20. Northwestern's cache folder (three modes) is 68 MB instead
of 133 MB, UCE Quito's 1.4 MB instead of 2.5 MB.

Rounding each entry to the nearest float32 is the only error: half a unit in the last place at
most, a relative error <= 2**-24 (:data:`TABLE_REL_ERROR`, about 6e-8). The fastest paths and
predecessors are those of the float64 computation, and unreachable pairs stay ``inf``. Measured
against the float64 tables, all pairs, all modes (the largest entry in brackets):

============  =====  ================================  ================================
campus        mode   time: max abs, max rel            distance: max abs, max rel
============  =====  ================================  ================================
northwestern  walk   1.21e-4 s, 5.96e-8 (2337 s)       1.22e-4 m, 5.95e-8 (3038 m)
northwestern  bike   3.05e-5 s, 5.96e-8 (754 s)        1.22e-4 m, 5.95e-8 (3194 m)
northwestern  ebike  3.04e-5 s, 5.95e-8 (563 s)        1.22e-4 m, 5.96e-8 (3023 m)
uce_quito     walk   5.91e-5 s, 5.92e-8 (1190 s)       6.05e-5 m, 5.89e-8 (1519 m)
uce_quito     bike   1.52e-5 s, 5.91e-8 (354 s)        6.09e-5 m, 5.89e-8 (1312 m)
uce_quito     ebike  1.47e-5 s, 5.94e-8 (289 s)        6.05e-5 m, 5.89e-8 (1349 m)
============  =====  ================================  ================================

Readers widen a looked-up entry to float64 before adding anything to it (the access legs and
partial edges in :meth:`campus_maps.campus.RiderNetwork.matrix`), so matrices stay float64 and
carry one entry's rounding: relative error <= 2**-24 against the float64 tables. The triangle
inequality between points, ``d(i, k) <= d(i, j) + d(j, k)``, can fail by a hair where ``j`` lies
on the fastest path from ``i`` to ``k`` (three independently rounded entries): by at most
``2 * 2**-24 * (d(i, j) + d(j, k))``; measured over 400 network nodes and vertices per campus
and mode, 6.5e-5 s at most (Northwestern walk; 1.15e-7 relative). Never by whole seconds: the
solver's tables (``np.rint`` in :meth:`campus_maps.matrices.CampusMatrices.matrices`) keep
``t(i, k) <= t(i, j) + t(j, k) + 1`` for any float excess below 0.5 s, as with float64 tables.
"""

from __future__ import annotations

import contextlib
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

#: Bump when the cached arrays change meaning or dtype; old cache entries are then rebuilt (the
#: format is part of the cache key too: a new format gets its own folders). 4: compact dtypes.
CACHE_FORMAT = 4

#: Stored dtype of the time (s) and distance (m) tables.
TABLE_DTYPE = np.float32

#: Largest relative error of a stored time or distance against the float64 computation: the
#: rounding of a float32 to nearest (half a unit in the last place, 24-bit significand).
TABLE_REL_ERROR = 2.0**-24


def predecessor_dtype(num_nodes: int) -> np.dtype[np.signedinteger[Any]]:
    """The smallest signed integer type (int16 at least) holding node indices and the -1 of
    "no predecessor" for a network of ``num_nodes`` nodes."""
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    for dtype in (np.int16, np.int32):
        if num_nodes < np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass(frozen=True)
class TravelTables:
    """Shortest travel times between all node pairs of one network.

    Attributes
    ----------
    time_s
        ``(N, N)`` fastest travel time (s) from node i to node j, float32 (``inf``: no path).
    distance_m
        ``(N, N)`` length (m) of that fastest path, float32.
    predecessor
        ``(N, N)`` predecessor of j on the fastest path from i (-1 on the diagonal and where
        there is no path), of :func:`predecessor_dtype`.
    best_edge_keys, best_edge
        Sorted ``u * N + v`` keys and, aligned, the fastest edge index from u to v.
    """

    time_s: NDArray[np.float32]
    distance_m: NDArray[np.float32]
    predecessor: NDArray[np.signedinteger[Any]]
    best_edge_keys: NDArray[np.int64]
    best_edge: NDArray[np.int64]

    @property
    def nbytes(self) -> int:
        """Bytes of every array of the tables."""
        return sum(int(getattr(self, f.name).nbytes) for f in fields(self))

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


def compute_travel_tables(
    arrays: NetworkArrays, *, dtype: type[np.floating[Any]] = TABLE_DTYPE
) -> TravelTables:
    """All-pairs fastest paths with ``scipy.sparse.csgraph.dijkstra``; distances along them.

    Computed in float64; times and distances returned as ``dtype`` (the stored float32; float64
    gives the uncompacted tables, e.g. to measure the rounding), predecessors as
    :func:`predecessor_dtype`."""
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
    return TravelTables(
        time_s.astype(dtype),
        acc.astype(dtype),
        pred.astype(predecessor_dtype(n)),
        keys,
        best,
    )


def default_cache_dir() -> Path:
    """``$CAMPUS_DISPATCH_CACHE`` or ``~/.cache/campus-dispatch``."""
    env = os.environ.get("CAMPUS_DISPATCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "campus-dispatch"


def save_arrays(folder: Path, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]) -> None:
    """Write ``arrays`` as ``.npy`` files and ``meta.json`` into ``folder`` atomically.

    A ``folder`` that :func:`load_arrays` refuses (another format, unreadable) is replaced; a
    valid one written meanwhile by another process is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({**meta, "format": CACHE_FORMAT}, indent=1))
        try:
            tmp.rename(folder)
        except OSError:
            if load_arrays(folder) is None:  # stale: move it aside (readers keep their maps)
                aside = Path(tempfile.mkdtemp(prefix=folder.name + ".stale.", dir=folder.parent))
                with contextlib.suppress(OSError):  # another process moved it first
                    folder.rename(aside / "entry")
                shutil.rmtree(aside, ignore_errors=True)
                with contextlib.suppress(OSError):  # another process won the race
                    tmp.rename(folder)
            # another process won the race: theirs is as good as ours
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
