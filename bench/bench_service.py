"""Closed-loop load on the gRPC service (bundled campus) next to in-process solves of the same
requests in the same run.

Run: ``python bench/bench_service.py [--campus northwestern] [--clients 1,2,4,8]
[--budgets 0.2,1] [--seconds 15] [--orders 60] [--riders 20]`` (``make bench-service``).

For each budget: the same 60-order requests solved in-process (convert + dispatch with a worker
pool, one at a time: the reference), then over a real channel by 1, 2, 4 and 8 clients that
each send the next request as soon as the last answer arrives (after a RESOURCE_EXHAUSTED, once
the retry hint has passed). Prints p50/p95/p99 latency of the answers, throughput, shed rate
(GREEDY answers) and every non-OK status code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter

import numpy as np

from api.client import DispatchClient, RpcError, retry_delay_s, status_name
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import Campus, PlaceKind, load_campus
from server.app import ServerConfig, create_server, problem_from_request
from solver.engines.kernel import warm_up
from solver.runtime.dispatch import solve
from solver.runtime.workers import SolverPool

NOW = 1_790_000_000
MODES = (pb.BIKE, pb.BIKE, pb.BIKE, pb.EBIKE, pb.EBIKE, pb.WALK)


def lunch_request(
    campus: Campus, *, orders: int, riders: int, seed: int, budget_s: float
) -> pb.SolveRequest:
    """A lunch batch: merchants at food places, customers at dorms/buildings, riders anywhere."""
    rng = np.random.default_rng(seed)
    food = campus.places(PlaceKind.FOOD)
    homes = campus.places(PlaceKind.DORM) + campus.places(PlaceKind.BUILDING)
    everywhere = campus.places()
    req = pb.SolveRequest(campus_id=campus.id, request_id=f"bench-{seed}")
    req.now.FromSeconds(NOW)
    req.time_budget.FromNanoseconds(int(budget_s * 1e9))
    for k in range(riders):
        p = everywhere[int(rng.integers(len(everywhere)))]
        req.riders.add(
            id=f"r{k}",
            position=pb.LatLng(lat=p.lat, lng=p.lng),
            mode=MODES[k % len(MODES)],
            capacity=4,
        )
    for k in range(orders):
        a = food[int(rng.integers(len(food)))]
        b = homes[int(rng.integers(len(homes)))]
        o = req.orders.add(
            id=f"o{k}",
            pickup=pb.LatLng(lat=a.lat, lng=a.lng),
            dropoff=pb.LatLng(lat=b.lat, lng=b.lng),
        )
        ready = NOW + int(rng.integers(-300, 900))
        o.ready_time.FromSeconds(ready)
        o.due_time.FromSeconds(ready + int(rng.integers(1200, 2400)))
        if k < riders // 2:
            o.committed_rider_id = f"r{k}"
    return req


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (ms) of seconds."""
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def closed_loop(
    address: str, requests: list[pb.SolveRequest], clients: int, seconds: float, budget_s: float
) -> dict[str, object]:
    """``clients`` threads, each sending back-to-back for ``seconds``."""
    latencies: list[float] = []
    greedy_latencies: list[float] = []
    engines: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        with DispatchClient(address, client_id=f"c{k}") as dispatch:
            i = k
            while time.perf_counter() < stop_at:
                req = requests[i % len(requests)]
                i += clients
                t0 = time.perf_counter()
                try:
                    resp = dispatch.solve(req, timeout_s=budget_s + 2.0)
                    dt = time.perf_counter() - t0
                    with lock:
                        latencies.append(dt)
                        if resp.stats.engine == pb.GREEDY:
                            greedy_latencies.append(dt)
                        engines[pb.Engine.Name(resp.stats.engine)] += 1
                        if resp.stats.shed:
                            reasons[pb.ShedReason.Name(resp.stats.shed).lower()] += 1
                        codes["OK"] += 1
                except RpcError as err:
                    with lock:
                        codes[status_name(err)] += 1
                    if status_name(err) == "RESOURCE_EXHAUSTED":
                        time.sleep(retry_delay_s(err))  # as a well-behaved client does

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    answered = sum(engines.values())
    return {
        "clients": clients,
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "p99": pct(latencies, 99),
        "p99_greedy": pct(greedy_latencies, 99),
        "rps": answered / wall,
        "shed": engines["GREEDY"] / answered if answered else float("nan"),
        "codes": dict(codes),
        "reasons": dict(reasons),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campus", default="northwestern")
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--budgets", default="0.2,1")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--riders", type=int, default=20)
    parser.add_argument(
        "--workers", type=int, default=ServerConfig().workers, help="server.workers (0: auto)"
    )
    parser.add_argument("--requests", type=int, default=12, help="distinct requests")
    parser.add_argument(
        "--worker-nice", type=int, default=ServerConfig().worker_nice, help="server.worker_nice"
    )
    parser.add_argument(
        "--greedy-cap",
        type=int,
        default=ServerConfig().max_greedy_inflight,
        help="server.max_greedy_inflight",
    )
    args = parser.parse_args()
    warm_up()  # the compiled kernel: loaded before anything is timed
    campus = load_campus(args.campus)
    config = ServerConfig(
        port=0,
        metrics_port=-1,
        workers=args.workers,
        worker_nice=args.worker_nice,
        max_greedy_inflight=args.greedy_cap,
        campuses=(campus.id,),
        default_campus=campus.id,
    )
    service = create_server(config, campuses={campus.id: campus})
    print(
        f"{campus.name}: {args.orders} orders / {args.riders} riders per request, "
        f"{config.solver_workers} solver workers (nice {args.worker_nice}), greedy cap"
        f" {args.greedy_cap},"
        f" {args.seconds:g} s per load level"
    )
    internal = 0
    try:
        with SolverPool(config.solver_workers) as pool:
            for budget in [float(b) for b in args.budgets.split(",")]:
                requests = [
                    lunch_request(
                        campus, orders=args.orders, riders=args.riders, seed=s, budget_s=budget
                    )
                    for s in range(args.requests)
                ]
                inproc = []
                for req in requests:
                    t0 = time.perf_counter()
                    conversion = problem_from_request(req, campus, config)
                    solve(
                        conversion.spec,
                        config.solver,
                        budget_s=budget - (time.perf_counter() - t0),
                        pool=pool,
                    )
                    inproc.append(time.perf_counter() - t0)
                ref_p50 = statistics.median(inproc) * 1000
                print(
                    f"\nbudget {budget * 1000:.0f} ms; in-process (same requests, one at a"
                    f" time): p50 {ref_p50:.1f} ms, p99 {pct(inproc, 99):.1f} ms"
                )
                print(
                    f"{'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}"
                    f" {'shed':>6}  overhead p50  p99 shed   status codes, shed reasons"
                )
                for clients in [int(c) for c in args.clients.split(",")]:
                    r = closed_loop(service.address, requests, clients, args.seconds, budget)
                    print(
                        f"{clients:>7} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['p99']:>8.1f}"
                        f" {r['rps']:>7.2f} "
                        f"{r['shed']:>6.0%}  {r['p50'] - ref_p50:>+9.1f} ms"  # type: ignore[operator]
                        f" {r['p99_greedy']:>6.1f} ms"
                        f"   {r['codes']} {r['reasons']}"
                    )
                    internal += r["codes"].get("INTERNAL", 0)  # type: ignore[attr-defined]
    finally:
        service.stop(1.0)
    if internal:
        print(f"\nFAIL: {internal} calls answered INTERNAL (a bug: see the server log above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
