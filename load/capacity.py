"""Capacity steps with locust as a library: the offered load at which p99 crosses budget + 50 ms,
with shedding on and off, at each budget; shed rates at 2x and 4x that load; and the same
search for two replicas behind client-side round-robin next to one, all in one run.

Run: ``python -m load.capacity [--budgets 0.2,1] [--step-s 15] [--out load-out/capacity]``
(``make load-capacity``). Importing this module monkey-patches with gevent (locust).

Each step holds ``users`` DispatchUsers, each sending one recorded request every ``pacing``
seconds (pacing > the deadline, so the offered rate holds even when answers are slow):
offered = users / pacing. After ``--warmup-s`` the statistics are reset and measured for the
rest of the step; ``client`` is locust's own CPU, ``load`` the machine's 1-minute load
average (other work on a shared machine shows there). The users grow by ``--factor`` until
``--breaks`` steps in a row break the SLO (p99 over budget + margin, or errors over 1 %); the
capacity is the throughput of the last step that kept it before them (one noisy step on a shared
machine does not end the search).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gevent
import locust  # noqa: F401  (monkey-patches the standard library first)
from locust.env import Environment

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from load.grpc_client import cluster_target
from load.recorded import RECORDED, read_requests
from load.servers import running_replicas
from load.slo import CallRecorder, RunStats, Slo, check_slo
from load.users import DispatchUser, close_channels


@dataclass(frozen=True)
class Step:
    """One load level and what it measured."""

    offered_per_s: float
    users: int
    stats: RunStats
    ok: bool
    client_cpu: float
    load_average: float

    def row(self) -> str:
        """A table row."""
        s = self.stats
        return (
            f"{self.offered_per_s:>8.2f} {s.throughput:>8.2f} {s.p(50):>7.0f} {s.p(99):>7.0f}"
            f" {s.shed_ratio:>6.1%} {s.rejected_ratio:>6.1%} {s.error_ratio:>6.1%}"
            f" {s.requests:>6} {self.client_cpu:>5.0f}% {self.load_average:>5.1f}"
            f"  {'ok' if self.ok else 'BREAKS SLO'}"
        )


HEADER = (
    f"{'offered':>8} {'answers':>8} {'p50 ms':>7} {'p99 ms':>7} {'shed':>6} {'reject':>6}"
    f" {'errors':>6} {'calls':>6} {'client':>6} {'load':>5}"
)


class Stepper:
    """Runs load steps against one target with a locust environment in this process."""

    def __init__(
        self,
        target: str,
        requests: Sequence[pb.SolveRequest],
        budget_s: float,
        *,
        step_s: float,
        warmup_s: float,
        retry_unavailable: int = 0,
    ) -> None:
        self.deadline_margin_s = 0.5
        self.pacing_s = max(2.0, 2 * (budget_s + self.deadline_margin_s))
        DispatchUser.configure(
            requests,
            budget_s=budget_s,
            pacing_s=self.pacing_s,
            deadline_margin_s=self.deadline_margin_s,
            retry_unavailable=retry_unavailable,
        )
        self.slo = Slo(budget_ms=budget_s * 1000)
        self.step_s, self.warmup_s = step_s, warmup_s
        self.env = Environment(user_classes=[DispatchUser], host=target)
        self.runner = self.env.create_local_runner()
        self.calls = CallRecorder()
        self.env.events.request.add_listener(self.calls.on_request)

    def users_for(self, offered_per_s: float) -> int:
        """Users that offer ``offered_per_s`` calls per second (at least one)."""
        return max(1, round(offered_per_s * self.pacing_s))

    def step(self, users: int) -> Step:
        """Hold ``users`` (``users / pacing`` calls per second) for one step and measure it."""
        self.runner.start(users, spawn_rate=min(100.0, float(users)))
        gevent.sleep(self.warmup_s)
        self.calls.reset()
        started = time.perf_counter()
        gevent.sleep(self.step_s - self.warmup_s)
        stats = self.calls.stats(time.perf_counter() - started)
        verdict = check_slo(stats, self.slo)
        return Step(
            users / self.pacing_s,
            users,
            stats,
            verdict.ok,
            self.runner.current_cpu_usage,
            os.getloadavg()[0],
        )

    def close(self) -> None:
        """Stop every user and close the channels."""
        self.runner.quit()
        close_channels()


@dataclass(frozen=True)
class Search:
    """The steps of one capacity search and the overload steps after it."""

    label: str
    steps: tuple[Step, ...]
    overload: tuple[Step, ...]

    @property
    def crossing(self) -> Step | None:
        """The first step of the trailing run of steps that broke the SLO (None: the last step
        kept it); a single noisy step followed by one that kept the SLO does not count."""
        k = len(self.steps)
        while k and not self.steps[k - 1].ok:
            k -= 1
        return self.steps[k] if k < len(self.steps) else None

    @property
    def capacity(self) -> Step | None:
        """The last step that kept the SLO before :attr:`crossing` (None: none did)."""
        cross = self.crossing
        before = self.steps[: self.steps.index(cross)] if cross else self.steps
        kept = [s for s in before if s.ok]
        return kept[-1] if kept else None

    def summary(self) -> str:
        """One line for the report."""
        cap, cross = self.capacity, self.crossing
        kept = (
            f"kept at {cap.stats.throughput:.2f} answers/s (offered {cap.offered_per_s:.2f},"
            f" p99 {cap.stats.p(99):.0f} ms)"
            if cap
            else "broken at the lowest step"
        )
        broke = (
            f"broken at offered {cross.offered_per_s:.2f}/s (p99 {cross.stats.p(99):.0f} ms,"
            f" errors {cross.stats.error_ratio:.1%})"
            if cross
            else "not broken within the steps"
        )
        over = "; ".join(
            f"{k}x: shed {s.stats.shed_ratio:.0%} + rejected {s.stats.rejected_ratio:.0%},"
            f" errors {s.stats.error_ratio:.0%}, p99 {s.stats.p(99):.0f} ms,"
            f" {s.stats.throughput:.1f} answers/s"
            for k, s in zip((2, 4), self.overload, strict=False)
        )
        return f"{self.label}: SLO {kept}; {broke}" + (f"; at {over}" if over else "")


def search_capacity(
    stepper: Stepper,
    label: str,
    *,
    start: float,
    factor: float,
    max_steps: int,
    breaks: int,
    overload: bool,
) -> Search:
    """Grow the users (by ``factor``, at least one more each step) until ``breaks`` steps in a
    row break the SLO, then (``overload``) run 2x and 4x the users of the last step that kept
    it before them."""
    print(f"\n{label} (pacing {stepper.pacing_s:g} s per user)\n{HEADER}", flush=True)
    steps: list[Step] = []
    users = stepper.users_for(start)
    for _ in range(max_steps):
        step = stepper.step(users)
        print(step.row(), flush=True)
        steps.append(step)
        if len(steps) >= breaks and not any(s.ok for s in steps[-breaks:]):
            break
        users = max(users + 1, math.ceil(users * factor))
    extra: list[Step] = []
    if overload:
        kept = Search(label, tuple(steps), ()).capacity
        base = kept.users if kept else steps[0].users
        for k in (2, 4):
            step = stepper.step(base * k)
            print(step.row() + f"  <- {k}x", flush=True)
            extra.append(step)
    return Search(label, tuple(steps), tuple(extra))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the capacity searches and write capacity.json and capacity.txt."""
    parser = argparse.ArgumentParser(prog="python -m load.capacity", description=__doc__)
    parser.add_argument("--budgets", default="0.2,1", help="budgets (s), comma-separated")
    parser.add_argument("--shedding", default="on,off", help="on, off or on,off")
    parser.add_argument("--replicas", type=int, default=2, help="compare 1 and this many (0: no)")
    parser.add_argument("--start", type=float, default=1.0, help="first offered rate (calls/s)")
    parser.add_argument("--factor", type=float, default=1.25, help="user growth per step")
    parser.add_argument("--max-steps", type=int, default=9)
    parser.add_argument("--breaks", type=int, default=2, help="stop after this many breaking steps")
    parser.add_argument("--step-s", type=float, default=40.0, help="seconds per step")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="not measured, per step")
    parser.add_argument("--workers", type=int, default=0, help="solver workers (0: config)")
    parser.add_argument("--requests-dir", type=Path, default=RECORDED)
    parser.add_argument("--out", type=Path, default=Path("load-out/capacity"))
    args = parser.parse_args(argv)
    if not (args.factor > 1 and args.start > 0 and 0 <= args.warmup_s < args.step_s):
        parser.error("need --factor > 1, --start > 0 and 0 <= --warmup-s < --step-s")
    requests = read_requests(args.requests_dir)
    campuses = sorted({r.campus_id or "northwestern" for r in requests})
    budgets = [float(b) for b in args.budgets.split(",")]
    sheddings = [s.strip() for s in args.shedding.split(",")]
    base: dict[str, object] = {"workers": args.workers} if args.workers else {}
    searches: list[Search] = []
    notes: list[str] = []
    began = time.perf_counter()

    def run(label: str, replicas: int, budget: float, shedding: bool, overload: bool) -> None:
        folder = args.out / label.replace(" ", "-").replace(",", "")
        server = {**base, "shedding": shedding}
        with running_replicas(replicas, folder, campuses=campuses, **server) as running:
            target = cluster_target([r.address for r in running])
            stepper = Stepper(
                target,
                requests,
                budget,
                step_s=args.step_s,
                warmup_s=args.warmup_s,
                retry_unavailable=2 if replicas > 1 else 0,
            )
            try:
                searches.append(
                    search_capacity(
                        stepper,
                        label,
                        start=args.start,
                        factor=args.factor,
                        max_steps=args.max_steps,
                        breaks=args.breaks,
                        overload=overload,
                    )
                )
            finally:
                stepper.close()
            for replica in running:
                calls = ", ".join(f"{k} {v}" for k, v in sorted(replica.solve_calls().items()))
                print(f"  {replica.name} Solve calls over the search: {calls}", flush=True)
                notes.append(f"  {label}, {replica.name}: {calls}")

    for budget in budgets:
        for shedding in sheddings:
            run(f"budget {budget * 1000:.0f} ms, shedding {shedding}, 1 replica", 1, budget,
                shedding == "on", True)  # fmt: skip
    if args.replicas > 1:  # next to the 1-replica search of the first budget, shedding on
        budget = budgets[0]
        if "on" not in sheddings:
            run(f"budget {budget * 1000:.0f} ms, shedding on, 1 replica", 1, budget, True, False)
        run(f"budget {budget * 1000:.0f} ms, shedding on, {args.replicas} replicas",
            args.replicas, budget, True, False)  # fmt: skip
    lines = [s.summary() for s in searches]
    lines += ["Solve calls each replica logged (status; OK answers shed, by reason):", *notes]
    lines.append(f"wall time {time.perf_counter() - began:.0f} s")
    print("\n" + "\n".join(lines), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity.txt").write_text("\n".join(lines) + "\n")
    payload = [
        {
            "label": s.label,
            "steps": [
                {"offered_per_s": x.offered_per_s, "ok": x.ok, **x.stats.to_dict()} for x in s.steps
            ],
            "overload": [
                {"factor": k, "offered_per_s": x.offered_per_s, **x.stats.to_dict()}
                for k, x in zip((2, 4), s.overload, strict=False)
            ],
        }
        for s in searches
    ]
    (args.out / "capacity.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
