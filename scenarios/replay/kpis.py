"""Delivery KPIs of a replay (as the MDRP evaluator defines them, plus the service's own), and
their table, JSON and CSV forms."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scenarios.replay.simulate import ReplayResult

#: KPI name -> (label, unit, which direction is better: +1 higher, -1 lower, 0 neither).
KPI_INFO: dict[str, tuple[str, str, int]] = {
    "orders": ("orders in the scenario", "", 0),
    "delivered": ("orders delivered", "", 1),
    "undelivered": ("unassigned at end (not delivered)", "", -1),
    "on_time_rate": ("on-time rate (delivered by promise / all orders)", "%", 1),
    "click_to_door_mean_min": ("click-to-door mean", "min", -1),
    "click_to_door_p90_min": ("click-to-door p90", "min", -1),
    "ready_to_pickup_mean_min": ("ready-to-pickup mean", "min", -1),
    "late_orders": ("late deliveries", "", -1),
    "late_minutes_total": ("late minutes, total", "min", -1),
    "late_minutes_mean": ("late minutes per late delivery", "min", -1),
    "orders_per_rider_hour": ("orders per rider-hour (shift hours)", "", 1),
    "rider_hours_busy": ("rider-hours busy (riding, waiting, handing over)", "h", -1),
    "orders_per_trip": ("orders per trip (bundling)", "", 1),
    "rider_utilisation": ("rider utilisation (busy / shift)", "%", 1),
    "solver_latency_p50_ms": ("dispatch latency p50", "ms", -1),
    "solver_latency_p99_ms": ("dispatch latency p99", "ms", -1),
    "shed_rate": ("shed rate (batches answered greedy under load)", "%", -1),
    "rejected_rate": ("rejected batches (no answer)", "%", -1),
    "batches": ("dispatch calls", "", 0),
    "replay_wall_s": ("replay wall time", "s", -1),
}


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def compute_kpis(result: ReplayResult) -> dict[str, float]:
    """The KPIs of one replay (see :data:`KPI_INFO`; times in minutes, rates in [0, 1]).

    Click-to-door is delivery minus placement, ready-to-pickup pickup minus food-ready time,
    on time means delivered no later than the promised time; undelivered orders count as not
    on time. Orders per rider-hour count shift hours; busy rider-hours and utilisation count
    the time riders spent travelling to, waiting at and serving stops (utilisation over their
    shift time). A trip runs from a pickup into an empty
    bag until the bag is empty again.
    """
    orders = result.orders
    done = [o for o in orders if o.delivered_s is not None]
    c2d = [(o.delivered_s - o.placed_s) / 60 for o in done if o.delivered_s is not None]
    r2p = [max(0, o.picked_up_s - o.ready_s) / 60 for o in orders if o.picked_up_s is not None]
    late = [o.late_s / 60 for o in done if o.late_s > 0]
    shift_s = sum(r.shift_end_s - r.shift_start_s for r in result.riders)
    busy_s = sum(r.busy_s for r in result.riders)
    trips = sum(r.trips for r in result.riders)
    solved = [b for b in result.batches if not b.rejected]
    latencies = [b.latency_s * 1000 for b in solved]
    batches = len(result.batches)
    return {
        "orders": float(len(orders)),
        "delivered": float(len(done)),
        "undelivered": float(len(orders) - len(done)),
        "on_time_rate": (len(done) - len(late)) / len(orders) if orders else 0.0,
        "click_to_door_mean_min": float(np.mean(c2d)) if c2d else 0.0,
        "click_to_door_p90_min": _percentile(c2d, 90),
        "ready_to_pickup_mean_min": float(np.mean(r2p)) if r2p else 0.0,
        "late_orders": float(len(late)),
        "late_minutes_total": float(sum(late)),
        "late_minutes_mean": float(np.mean(late)) if late else 0.0,
        "orders_per_rider_hour": len(done) / (shift_s / 3600) if shift_s else 0.0,
        "rider_hours_busy": busy_s / 3600,
        "orders_per_trip": len(done) / trips if trips else 0.0,
        "rider_utilisation": busy_s / shift_s if shift_s else 0.0,
        "solver_latency_p50_ms": _percentile(latencies, 50),
        "solver_latency_p99_ms": _percentile(latencies, 99),
        "shed_rate": sum(1 for b in solved if b.shed_reason) / len(solved) if solved else 0.0,
        "rejected_rate": (batches - len(solved)) / batches if batches else 0.0,
        "batches": float(batches),
        "replay_wall_s": result.wall_s,
    }


def _show(name: str, value: float) -> str:
    unit = KPI_INFO[name][1]
    if unit == "%":
        return f"{100 * value:.1f}"
    if name in ("orders", "delivered", "undelivered", "late_orders", "batches"):
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def format_table(kpis: dict[str, dict[str, float]]) -> str:
    """A text table: one row per KPI, one column per policy."""
    policies = list(kpis)
    label_w = max(len(f"{label} ({unit})") for label, unit, _ in KPI_INFO.values())
    col_w = max(10, *(len(p) for p in policies))
    lines = [f"{'KPI':<{label_w}}  " + "  ".join(f"{p:>{col_w}}" for p in policies)]
    lines.append("-" * len(lines[0]))
    for name, (label, unit, _) in KPI_INFO.items():
        head = f"{label} ({unit})" if unit else label
        cells = "  ".join(f"{_show(name, kpis[p].get(name, 0.0)):>{col_w}}" for p in policies)
        lines.append(f"{head:<{label_w}}  {cells}")
    return "\n".join(lines)


def write_kpis(kpis: dict[str, dict[str, float]], out_dir: str | Path, scenario: str) -> list[Path]:
    """Write ``kpis.json`` and ``kpis.csv`` (one row per policy) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "kpis.json"
    json_path.write_text(json.dumps({"scenario": scenario, "policies": kpis}, indent=2) + "\n")
    csv_path = out / "kpis.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scenario", "policy", *KPI_INFO])
        for policy, values in kpis.items():
            writer.writerow([scenario, policy, *(values.get(k, 0.0) for k in KPI_INFO)])
    return [json_path, csv_path]


def write_orders_csv(result: ReplayResult, path: str | Path) -> Path:
    """Every order's life in one CSV (times in s from the period start; empty: never)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "order",
                "placed_s",
                "ready_s",
                "promised_s",
                "rider",
                "first_planned_s",
                "picked_up_s",
                "delivered_s",
                "late_s",
            ]
        )
        for o in result.orders:
            writer.writerow(
                [
                    o.id,
                    o.placed_s,
                    o.ready_s,
                    o.promised_s,
                    o.rider_id or "",
                    "" if o.first_planned_s is None else o.first_planned_s,
                    "" if o.picked_up_s is None else o.picked_up_s,
                    "" if o.delivered_s is None else o.delivered_s,
                    o.late_s,
                ]
            )
    return path
