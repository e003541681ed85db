"""Benchmark of dispatch policies by delivery KPIs: replays of the Northwestern lunch scenario and
of Grubhub MDRP instances with every policy in one run.

Usage::

    python bench/bench_replay.py --data ../shared/data            # NW lunch + 3 MDRP instances
    python bench/bench_replay.py --quick                          # the tiny campus only

For each scenario it replays the nearest-idle-rider baseline, our greedy insertion, our search
(the service's dispatch) and greedy + OR-Tools, prints the KPI table and each replay's wall
time, and says whether the search beats the baseline on on-time rate and click-to-door with
greedy in between. MDRP instances are read from the data folder (research use: never copied
into the repo); they span ~13 hours, so they are replayed with 60 s batches and 0.1 s budgets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios.mdrp import scenario_from_mdrp
from scenarios.model import save_scenario
from scenarios.replay.runner import replay_scenario
from scenarios.replay.simulate import ReplayConfig
from solver.engines.kernel import warm_up
from solver.params import DEFAULT_CONFIG, load_params

HERE = Path(__file__).resolve().parent
MDRP = ("0o50t75s1p100", "0o50t100s1p100", "0o100t100s1p100")


def verdict(kpis: dict[str, dict[str, float]]) -> str:
    """Whether search beats nearest on on-time rate and click-to-door, greedy in between."""
    n, g, s = kpis["nearest"], kpis["greedy"], kpis["search"]
    on_time = s["on_time_rate"] >= n["on_time_rate"]
    c2d = s["click_to_door_mean_min"] <= n["click_to_door_mean_min"]
    between = n["on_time_rate"] <= g["on_time_rate"] <= s["on_time_rate"] + 1e-9
    return (
        f"search vs nearest: on-time {'better' if on_time else 'WORSE'} "
        f"({100 * s['on_time_rate']:.1f} % vs {100 * n['on_time_rate']:.1f} %), click-to-door "
        f"{'better' if c2d else 'WORSE'} ({s['click_to_door_mean_min']:.1f} vs "
        f"{n['click_to_door_mean_min']:.1f} min); greedy in between on on-time: {between}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--quick", action="store_true", help="tiny campus only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "replay")
    parser.add_argument("--policies", default="nearest,greedy,search,ortools")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    warm_up()  # the compiled kernel: loaded before anything is timed
    params = load_params(DEFAULT_CONFIG)
    policies = args.policies.split(",")
    scenarios_dir = HERE.parent / "scenarios" / "data"
    runs: list[tuple[Path, float, int]] = []
    if args.quick:
        runs.append((scenarios_dir / "tiny-lunch.json", 0.1, 30))
    else:
        runs.append((scenarios_dir / "northwestern-lunch.json", 0.2, 30))
        tmp = Path(tempfile.mkdtemp(prefix="mdrp-"))
        for name in MDRP:
            folder = args.data / "mdrplib" / "public_instances" / name
            if not folder.is_dir():
                print(f"skip {name}: {folder} not found", file=sys.stderr)
                continue
            runs.append((save_scenario(scenario_from_mdrp(folder), tmp / f"{name}.json"), 0.1, 60))
    for path, budget, interval in runs:
        results, report = replay_scenario(
            path,
            policies,
            params=params,
            budget_s=budget,
            config=ReplayConfig(batch_interval_s=interval),
            out_dir=args.out / path.stem,
            processes=args.jobs,
            progress=False,
        )
        print(f"\n=== {path.name}: budget {budget} s, batches every {interval} s")
        print(report)
        kpis = {r.policy: r for r in results}
        if {"nearest", "greedy", "search"} <= set(kpis):
            from scenarios.replay.kpis import compute_kpis

            print(verdict({k: compute_kpis(v) for k, v in kpis.items()}))
        print("replay wall time: " + ", ".join(f"{r.policy} {r.wall_s:.0f} s" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
