"""Delivery KPIs of a replay (as the MDRP evaluator defines them, plus the service's own and its
storm guard's), and their table, JSON and CSV forms."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scenarios.replay.simulate import OrderRecord, ReplayResult

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
    "held_orders": ("orders held by the storm guard (quarantined)", "", 0),
    "flagged_orders": ("orders flagged by the storm guard", "", 0),
    "max_storm_level": ("highest storm level (0 normal, 3 severe)", "", 0),
    "reassigned_share": ("orders reassigned (moved to another rider before pickup)", "%", -1),
    "moves_per_order": ("rider moves per order", "", -1),
    "max_moves": ("rider moves of the most moved order", "", -1),
    "tentative_moves_per_order": ("re-plans per order before any rider saw it", "", 0),
    "eta_churn_mean_min": ("ETA churn per order (sum of ETA changes), mean", "min", -1),
    "eta_churn_p90_min": ("ETA churn per order, p90", "min", -1),
    "first_eta_error_mean_min": ("first ETA error (|first ETA - delivery|), mean", "min", -1),
    "first_eta_error_p90_min": ("first ETA error, p90", "min", -1),
    "batches": ("dispatch calls", "", 0),
    "replay_wall_s": ("replay wall time", "s", -1),
}

#: KPIs of scenarios with malicious orders (ids starting with ``storm-``), in the same form;
#: :func:`compute_kpis` gives them only for such scenarios.
STORM_KPI_INFO: dict[str, tuple[str, str, int]] = {
    "malicious_orders": ("malicious orders (storm-*)", "", 0),
    "legit_on_time_rate": ("legit on-time rate (legit by promise / legit orders)", "%", 1),
    "legit_click_to_door_min": ("legit click-to-door mean", "min", -1),
    "legit_undelivered": ("legit orders not delivered", "", -1),
    "storm_precision": ("storm precision (malicious / flagged or held)", "%", 1),
    "storm_recall": ("storm recall (flagged or held / malicious)", "%", 1),
}

#: Every KPI a replay can have, in table order.
ALL_KPI_INFO: dict[str, tuple[str, str, int]] = {**KPI_INFO, **STORM_KPI_INFO}

#: KPIs that count things (shown without decimals).
_COUNTS = frozenset(
    {
        "orders",
        "delivered",
        "undelivered",
        "late_orders",
        "batches",
        "held_orders",
        "flagged_orders",
        "max_storm_level",
        "max_moves",
        "malicious_orders",
        "legit_undelivered",
    }
)


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def _on_time_rate(orders: Sequence[OrderRecord]) -> float:
    """Orders delivered no later than promised over all ``orders`` (0 without orders)."""
    if not orders:
        return 0.0
    on_time = sum(1 for o in orders if o.delivered_s is not None and o.late_s == 0)
    return on_time / len(orders)


def storm_kpis(orders: Sequence[OrderRecord]) -> dict[str, float]:
    """The KPIs of :data:`STORM_KPI_INFO` over ``orders`` (empty when none is malicious).

    Malicious orders are those whose id starts with ``storm-``, the others are legit.
    ``legit_on_time_rate`` and ``legit_click_to_door_min`` are ``on_time_rate`` and
    ``click_to_door_mean_min`` over the legit orders only; ``legit_undelivered`` counts the
    legit orders never delivered. The guard's suspects are the orders it flagged (any action,
    any batch) or held: ``storm_precision`` is the share of suspects that are malicious (0 with
    no suspect), ``storm_recall`` the share of malicious orders that are suspects.
    """
    malicious = [o for o in orders if o.malicious]
    if not malicious:
        return {}
    legit = [o for o in orders if not o.malicious]
    c2d = [(o.delivered_s - o.placed_s) / 60 for o in legit if o.delivered_s is not None]
    suspects = [o for o in orders if o.flagged or o.held]
    caught = sum(1 for o in suspects if o.malicious)
    return {
        "malicious_orders": float(len(malicious)),
        "legit_on_time_rate": _on_time_rate(legit),
        "legit_click_to_door_min": float(np.mean(c2d)) if c2d else 0.0,
        "legit_undelivered": float(sum(1 for o in legit if o.delivered_s is None)),
        "storm_precision": caught / len(suspects) if suspects else 0.0,
        "storm_recall": caught / len(malicious),
    }


def churn_kpis(orders: Sequence[OrderRecord]) -> dict[str, float]:
    """How stable the plans were for ``orders`` (the ``OrderRecord.note_plan`` records).

    A move is an answer planning an order, before its pickup, on a rider other than the one
    whose phone it was pushed to (an order left out of some answers and planned again on
    another rider counts). ``reassigned_share`` is the share of all orders moved at least
    once, ``moves_per_order`` the mean moves over all orders, ``max_moves`` the most;
    ``tentative_moves_per_order`` the mean re-plans of orders no rider saw yet (tentative).
    An order's ETA churn sums ``|ETA_k - ETA_(k-1)|`` over the consecutive drop-off ETAs it
    was quoted (every answer routing it, until delivery): mean and p90 over orders quoted at
    least one ETA. The first ETA error is ``|first ETA - delivery|`` over delivered orders
    quoted an ETA. All 0 without such orders.
    """
    n = len(orders)
    quoted = [o.eta_churn_s / 60 for o in orders if o.etas]
    errors = [e / 60 for o in orders if (e := o.first_eta_error_s) is not None]
    return {
        "reassigned_share": sum(1 for o in orders if o.moves) / n if n else 0.0,
        "moves_per_order": sum(o.moves for o in orders) / n if n else 0.0,
        "max_moves": float(max((o.moves for o in orders), default=0)),
        "tentative_moves_per_order": sum(o.tentative_moves for o in orders) / n if n else 0.0,
        "eta_churn_mean_min": float(np.mean(quoted)) if quoted else 0.0,
        "eta_churn_p90_min": _percentile(quoted, 90),
        "first_eta_error_mean_min": float(np.mean(errors)) if errors else 0.0,
        "first_eta_error_p90_min": _percentile(errors, 90),
    }


def compute_kpis(result: ReplayResult) -> dict[str, float]:
    """The KPIs of one replay (see :data:`KPI_INFO`; times in minutes, rates in [0, 1]), and
    those of :data:`STORM_KPI_INFO` when the scenario has malicious orders
    (:func:`storm_kpis`).

    Click-to-door is delivery minus placement, ready-to-pickup pickup minus food-ready time,
    on time means delivered no later than the promised time; undelivered orders count as not
    on time. Orders per rider-hour count shift hours; busy rider-hours and utilisation count
    the time riders spent travelling to, waiting at and serving stops (utilisation over their
    shift time). A trip runs from a pickup into an empty
    bag until the bag is empty again.

    The storm guard's: ``held_orders`` counts the distinct orders any answer held
    (unassigned QUARANTINED; a held order never released is also ``undelivered``),
    ``flagged_orders`` the distinct orders any answer flagged, ``max_storm_level`` the
    highest storm level of any batch; all 0 for a policy without a guard.

    Plan stability (reassignments, ETA churn, first ETA error): :func:`churn_kpis`.
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
        "held_orders": float(sum(1 for o in orders if o.held)),
        "flagged_orders": float(sum(1 for o in orders if o.flagged)),
        "max_storm_level": float(max((b.storm_level for b in result.batches), default=0)),
        **churn_kpis(orders),
        "batches": float(batches),
        "replay_wall_s": result.wall_s,
        **storm_kpis(orders),
    }


def _show(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    unit = ALL_KPI_INFO[name][1]
    if unit == "%":
        return f"{100 * value:.1f}"
    if name in _COUNTS:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _storm_names(kpis: dict[str, dict[str, float]]) -> list[str]:
    """The :data:`STORM_KPI_INFO` names some policy of ``kpis`` has (a storm scenario)."""
    return [k for k in STORM_KPI_INFO if any(k in values for values in kpis.values())]


def format_table(kpis: dict[str, dict[str, float]]) -> str:
    """A text table: one row per KPI, one column per policy. The rows of
    :data:`STORM_KPI_INFO` follow when some policy has them (a scenario with malicious
    orders), ``-`` for a policy without; a missing KPI of :data:`KPI_INFO` shows as 0."""
    policies = list(kpis)
    names = [*KPI_INFO, *_storm_names(kpis)]
    heads = {
        name: f"{label} ({unit})" if unit else label
        for name, (label, unit, _) in ALL_KPI_INFO.items()
    }
    label_w = max(len(heads[name]) for name in names)
    col_w = max(10, *(len(p) for p in policies))
    lines = [f"{'KPI':<{label_w}}  " + "  ".join(f"{p:>{col_w}}" for p in policies)]
    lines.append("-" * len(lines[0]))
    for name in names:
        missing = 0.0 if name in KPI_INFO else None
        cells = "  ".join(f"{_show(name, kpis[p].get(name, missing)):>{col_w}}" for p in policies)
        lines.append(f"{heads[name]:<{label_w}}  {cells}")
    return "\n".join(lines)


def write_kpis(kpis: dict[str, dict[str, float]], out_dir: str | Path, scenario: str) -> list[Path]:
    """Write ``kpis.json`` and ``kpis.csv`` (one row per policy) into ``out_dir``; the CSV has
    the columns of :data:`STORM_KPI_INFO` after the others when some policy has them (empty
    for a policy without)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "kpis.json"
    json_path.write_text(json.dumps({"scenario": scenario, "policies": kpis}, indent=2) + "\n")
    csv_path = out / "kpis.csv"
    storm = _storm_names(kpis)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scenario", "policy", *KPI_INFO, *storm])
        for policy, values in kpis.items():
            writer.writerow(
                [
                    scenario,
                    policy,
                    *(values.get(k, 0.0) for k in KPI_INFO),
                    *(values.get(k, "") for k in storm),
                ]
            )
    return [json_path, csv_path]


def write_orders_csv(result: ReplayResult, path: str | Path) -> Path:
    """Every order's life in one CSV (times in s from the period start; empty: never), with
    the storm guard's first flag and first hold, and its plan stability: rider moves before
    pickup, ETAs quoted, first ETA, ETA churn (s) and first ETA error (s)."""
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
                "flagged_s",
                "flag_action",
                "flag_detector",
                "held_s",
                "moves",
                "tentative_moves",
                "etas",
                "first_eta_s",
                "eta_churn_s",
                "first_eta_error_s",
                "flag_evidence",
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
                    "" if o.flagged_s is None else o.flagged_s,
                    o.flag_action,
                    o.flag_detector,
                    "" if o.held_s is None else o.held_s,
                    o.moves,
                    o.tentative_moves,
                    o.etas,
                    "" if o.first_eta_s is None else o.first_eta_s,
                    o.eta_churn_s,
                    "" if (e := o.first_eta_error_s) is None else e,
                    o.flag_evidence,
                ]
            )
    return path
