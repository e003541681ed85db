"""Bounded headless load runs on loopback: start one or two service replicas, run the locustfile
against them (client-side round-robin over both), optionally kill a replica mid-run, then print
the SLO verdict and a failover timeline; ``make load`` and ``make load-cluster`` run this.

Run: ``python -m load.run [--replicas 2 --kill-after 40] [--shape lunch] [--shape-users 8]
[--budget-ms 200] [--out load-out/run]``. Exit code: locust's, i.e. the SLO verdict.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from load.grpc_client import cluster_target
from load.recorded import RECORDED, read_requests
from load.servers import Replica, running_replicas
from load.shapes import PROFILES, make_profile
from load.slo import REJECTED, SHED, SOLVE

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def locust_command(
    target: str, out: Path, args: argparse.Namespace, *, retry_unavailable: int
) -> list[str]:
    """The headless locust command line of a run writing its CSV, HTML and SLO JSON to out."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        target,
        "--shape",
        args.shape,
        "--shape-users",
        str(args.shape_users),
        "--shape-seconds",
        str(args.shape_seconds),
        "--budget-ms",
        str(args.budget_ms),
        "--pacing-s",
        str(args.pacing_s),
        "--requests-dir",
        str(args.requests_dir),
        "--retry-unavailable",
        str(retry_unavailable),
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        "--slo-json",
        str(out / "slo.json"),
    ]


def timeline(history_csv: Path, kill_at: float, window_s: float = 20.0) -> list[str]:
    """Answers and failures per second before and after ``kill_at`` (unix time), from locust's
    full-history CSV (cumulative counts per call name, one row per name per second)."""
    answered: dict[int, int] = {}
    failed: dict[int, int] = {}
    with history_csv.open() as handle:
        for row in csv.DictReader(handle):
            name, t = row["Name"], int(row["Timestamp"])
            count = int(row["Total Request Count"])
            if name in (SOLVE, SHED):
                answered[t] = answered.get(t, 0) + count - int(row["Total Failure Count"])
            elif name != "Aggregated" and name != REJECTED:
                failed[t] = failed.get(t, 0) + count
    times = sorted(set(answered) | set(failed))
    if not times:
        return ["no calls were recorded"]

    def total(series: dict[int, int], t: float) -> int:
        before = [s for s in times if s <= t and s in series]
        return series[before[-1]] if before else 0

    lines = []
    for label, start, end in (
        (f"{window_s:.0f} s before the kill", kill_at - window_s, kill_at),
        (f"{window_s:.0f} s after the kill", kill_at, kill_at + window_s),
        ("rest of the run", kill_at + window_s, times[-1]),
    ):
        if end <= start:
            continue
        done = total(answered, end) - total(answered, start)
        lost = total(failed, end) - total(failed, start)
        lines.append(f"  {label:<24} {done / (end - start):6.2f} answers/s, {lost} failed calls")
    return lines


def report_replicas(replicas: Sequence[Replica]) -> list[str]:
    """Solve calls each replica logged, by status."""
    lines = []
    for replica in replicas:
        calls = replica.solve_calls()
        state = "running" if replica.alive else f"killed (exit {replica.process.returncode})"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "none"
        lines.append(f"  {replica.name} {replica.address} [{state}]: Solve calls {counts}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Start the replicas, run locust, report."""
    parser = argparse.ArgumentParser(prog="python -m load.run", description=__doc__)
    parser.add_argument("--replicas", type=int, default=1, help="server processes (1 or 2+)")
    parser.add_argument("--kill-after", type=float, default=0.0, help="SIGKILL the last replica")
    parser.add_argument("--shape", choices=sorted(PROFILES), default="lunch")
    parser.add_argument("--shape-users", type=int, default=8)
    parser.add_argument("--shape-seconds", type=float, default=0.0, help="0: the shape's own")
    parser.add_argument("--budget-ms", type=float, default=200.0)
    parser.add_argument("--pacing-s", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=0, help="solver workers (0: config)")
    parser.add_argument("--shedding", choices=("on", "off"), default="on")
    parser.add_argument("--requests-dir", type=Path, default=RECORDED)
    parser.add_argument("--out", type=Path, default=Path("load-out/run"))
    args = parser.parse_args(argv)
    profile = make_profile(args.shape, args.shape_users, args.shape_seconds or None)
    if args.replicas < 1:
        parser.error(f"--replicas={args.replicas}: must be >= 1")
    if args.kill_after and not (args.replicas > 1 and 0 < args.kill_after < profile.duration_s):
        parser.error(
            f"--kill-after={args.kill_after:g}: needs --replicas >= 2 and a time inside the "
            f"{profile.duration_s:g} s run"
        )
    campuses = sorted({r.campus_id or "northwestern" for r in read_requests(args.requests_dir)})
    args.out.mkdir(parents=True, exist_ok=True)
    server: dict[str, object] = {"shedding": args.shedding == "on"}
    if args.workers:
        server["workers"] = args.workers
    with running_replicas(args.replicas, args.out, campuses=campuses, **server) as replicas:
        target = cluster_target([r.address for r in replicas])
        print(
            f"load: {len(replicas)} replica(s) at {target} "
            f"({', '.join(r.address for r in replicas)}), shedding {args.shedding}; "
            f"report in {args.out}/",
            flush=True,
        )
        retry = 2 if args.replicas > 1 else 0
        command = locust_command(target, args.out, args, retry_unavailable=retry)
        locust = subprocess.Popen(command)
        kill_at = 0.0
        if args.kill_after:
            try:
                locust.wait(args.kill_after)
            except subprocess.TimeoutExpired:
                replicas[-1].kill()
                kill_at = time.time()
                print(
                    f"load: killed {replicas[-1].name} ({replicas[-1].address}) with SIGKILL "
                    f"{args.kill_after:g} s into the run",
                    flush=True,
                )
        code = locust.wait()
        lines = ["replicas:", *report_replicas(replicas)]
        if kill_at:
            lines += [
                f"failover ({replicas[-1].name} killed):",
                *timeline(args.out / "locust_stats_history.csv", kill_at),
            ]
    verdict = json.loads((args.out / "slo.json").read_text()) if code in (0, 1) else {}
    lines.append(
        f"SLO {'PASS' if verdict.get('ok') else 'FAIL'} (exit {code}); "
        f"report: {args.out}/report.html, {args.out}/locust_stats.csv, {args.out}/slo.json"
    )
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
