"""Benchmark of the travel tables: cold build, warm load, and 300x300 matrices against networkx.

Run: ``python bench/bench_maps.py [--campus northwestern] [--points 300] [--repeats 20]``
(``make bench-maps``). Prints times and the ratio to a per-request networkx Dijkstra computing
the same matrix in the same run (the reference a naive service would use).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np

from campus_maps import MODES, load_campus


def networkx_matrix(graph: nx.MultiDiGraph, net, snapped) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The same point-to-point matrix computed per request with networkx Dijkstra."""
    xn, xt, _, yn, yt, _ = net._legs(snapped)
    ids = net.arrays.node_osmid
    k = len(snapped)
    out = np.full((k, k), np.inf)
    for i in range(k):
        best = np.full(k, np.inf)
        for side in (0, 1):
            if not np.isfinite(xt[i, side]):
                continue
            dist = nx.single_source_dijkstra_path_length(
                graph, int(ids[xn[i, side]]), weight="travel_time"
            )
            d = np.array([[dist.get(int(ids[yn[j, s]]), np.inf) for s in (0, 1)] for j in range(k)])
            best = np.minimum(best, (xt[i, side] + d + yt).min(axis=1))
        out[i] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--campus", default="northwestern")
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--mode", default="bike", choices=MODES)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        t0 = time.perf_counter()
        campus = load_campus(args.campus, cache_dir=cache)
        for mode in MODES:
            campus.network(mode)
        cold = time.perf_counter() - t0
        warm_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            warm = load_campus(args.campus, cache_dir=cache)
            for mode in MODES:
                warm.network(mode)
            warm_times.append(time.perf_counter() - t0)

        net = warm.network(args.mode)
        b = warm.bounds
        rng = np.random.default_rng(1)
        places = warm.places()
        # random points: half at real places, half uniform in the service area near the network
        pts = [(p.lat, p.lng) for p in rng.choice(np.array(places, dtype=object), args.points // 2)]
        while len(pts) < args.points:
            cand = (rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3]))
            try:
                warm.snap([cand], args.mode)
            except ValueError:
                continue
            pts.append(cand)
        t0 = time.perf_counter()
        snapped = warm.snap(pts, args.mode)
        snap_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            m = net.matrix(snapped)
            times.append(time.perf_counter() - t0)
        ours = statistics.median(times)

        graph = net.graph
        t0 = time.perf_counter()
        ref = networkx_matrix(graph, net, snapped)
        nx_s = time.perf_counter() - t0
        network_only = m.time_s - snapped.access_s[:, None] - snapped.access_s[None, :]
        off = ~np.eye(len(pts), dtype=bool)
        ok = np.allclose(np.minimum(network_only, ref)[off], network_only[off], atol=1e-6)

    print(
        f"campus {args.campus}: "
        + ", ".join(f"{m} {warm.network(m).stats.nodes} nodes" for m in MODES)
    )
    print(f"cold build (3 modes, empty cache)      {cold:8.3f} s")
    print(
        f"warm load  (3 modes, cached, median 5)  {statistics.median(warm_times):8.3f} s"
        "   target <= 1 s"
    )
    print(f"snap {args.points} points ({args.mode})             {snap_s * 1000:8.2f} ms")
    print(
        f"{args.points}x{args.points} matrix, median of {args.repeats}     {ours * 1000:8.2f} ms"
        "   target <= 5 ms"
    )
    print(f"networkx per-request Dijkstra, same    {nx_s * 1000:8.1f} ms")
    print(f"ratio networkx / ours                  {nx_s / ours:8.0f}x   target >= 100x")
    print(f"matrices agree (ours <= networkx path) {ok}")


if __name__ == "__main__":
    main()
