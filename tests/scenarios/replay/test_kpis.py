"""Replay KPIs on hand-built results (every number worked out by hand from the records), their
invariants on any records, and their table, JSON and CSV forms."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.replay.kpis import (
    KPI_INFO,
    compute_kpis,
    format_table,
    write_kpis,
    write_orders_csv,
)
from scenarios.replay.simulate import BatchRecord, OrderRecord, ReplayResult, RiderRecord


def result(
    orders: list[OrderRecord],
    riders: list[RiderRecord] | None = None,
    batches: list[BatchRecord] | None = None,
) -> ReplayResult:
    return ReplayResult(
        scenario="hand",
        policy="test",
        geometry="euclidean",
        batch_interval_s=30,
        orders=orders,
        riders=riders or [],
        batches=batches or [],
        wall_s=1.25,
        end_s=7200,
    )


def delivered(
    oid: str, placed: int, ready: int, promised: int, picked: int, dropped: int
) -> OrderRecord:
    return OrderRecord(oid, placed, ready, promised, "r1", placed, picked, dropped)


def batch(latency_s: float, shed: str = "", rejected: str = "") -> BatchRecord:
    return BatchRecord(0, 1, 0, 1, latency_s, 0.0, "greedy", shed_reason=shed, rejected=rejected)


def hand_result() -> ReplayResult:
    """Five orders, times in s:

    ====  ======  =====  ========  ======  =========  =============================
    id    placed  ready  promised  picked  delivered
    ====  ======  =====  ========  ======  =========  =============================
    a     0       300    1800      600     1200       on time, 20 min click-to-door
    b     0       300    1800      300     1800       on time at the promise, 30 min
    c     600     900    1500      1200    2400       15 min late, 30 min
    d     600     900    2400      1500    —          picked up, never delivered
    e     1200    1500   3000      —       —          never picked up
    ====  ======  =====  ========  ======  =========  =============================

    Two riders on 2 h shifts (4 h of shift), busy 1 h and 0.5 h, 2 and 1 trips. Four batches,
    one shed (0.3 s), one rejected (5 s: ignored by the latencies), two plain (0.1, 0.2 s).
    """
    orders = [
        delivered("a", 0, 300, 1800, 600, 1200),
        delivered("b", 0, 300, 1800, 300, 1800),
        delivered("c", 600, 900, 1500, 1200, 2400),
        OrderRecord("d", 600, 900, 2400, "r2", 600, 1500, None),
        OrderRecord("e", 1200, 1500, 3000),
    ]
    riders = [
        RiderRecord("r1", "bike", 0, 7200, busy_s=3600, trips=2, deliveries=3),
        RiderRecord("r2", "walk", 0, 7200, busy_s=1800, trips=1, deliveries=0),
    ]
    batches = [batch(0.1), batch(0.3, shed="workers_busy"), batch(5.0, rejected="busy"), batch(0.2)]
    return result(orders, riders, batches)


def test_kpis_of_a_hand_built_replay() -> None:
    k = compute_kpis(hand_result())
    assert (k["orders"], k["delivered"], k["undelivered"]) == (5, 3, 2)
    assert k["on_time_rate"] == pytest.approx(2 / 5)  # a and b; late c, undelivered d and e
    assert k["click_to_door_mean_min"] == pytest.approx((20 + 30 + 30) / 3)
    # p90 of (20, 30, 30) by linear interpolation: rank 0.9 * 2 = 1.8, between 30 and 30
    assert k["click_to_door_p90_min"] == pytest.approx(30)
    # ready-to-pickup of every picked-up order (d too), early pickups count as 0: 5, 0, 5, 10
    assert k["ready_to_pickup_mean_min"] == pytest.approx((5 + 0 + 5 + 10) / 4)
    assert k["late_orders"] == 1 and k["late_minutes_total"] == pytest.approx(15)
    assert k["late_minutes_mean"] == pytest.approx(15)
    assert k["orders_per_rider_hour"] == pytest.approx(3 / 4)
    assert k["rider_hours_busy"] == pytest.approx(1.5)
    assert k["orders_per_trip"] == pytest.approx(3 / 3)
    assert k["rider_utilisation"] == pytest.approx(5400 / 14400)
    # latencies of the three answered batches: 100, 300, 200 ms
    assert k["solver_latency_p50_ms"] == pytest.approx(200)
    assert k["solver_latency_p99_ms"] == pytest.approx(200 + 0.98 * 100)
    assert k["shed_rate"] == pytest.approx(1 / 3)  # of the answered batches
    assert k["rejected_rate"] == pytest.approx(1 / 4)
    assert k["batches"] == 4 and k["replay_wall_s"] == 1.25
    assert set(k) == set(KPI_INFO)


def test_an_early_pickup_counts_as_no_wait_not_a_negative_one() -> None:
    k = compute_kpis(result([delivered("x", 0, 600, 1800, 300, 900)]))
    assert k["ready_to_pickup_mean_min"] == 0.0


def test_a_delivery_exactly_at_the_promise_is_on_time() -> None:
    k = compute_kpis(
        result([delivered("x", 0, 0, 900, 300, 900), delivered("y", 0, 0, 900, 300, 901)])
    )
    assert k["on_time_rate"] == pytest.approx(0.5) and k["late_orders"] == 1
    assert k["late_minutes_total"] == pytest.approx(1 / 60)


def test_an_empty_replay_has_zero_kpis_not_errors() -> None:
    k = compute_kpis(result([]))
    assert set(k) == set(KPI_INFO)
    assert all(v == 0.0 for name, v in k.items() if name != "replay_wall_s")


times = st.integers(0, 10_000)


@st.composite
def order_records(draw: st.DrawFn) -> OrderRecord:
    placed = draw(times)
    ready = placed + draw(st.integers(0, 1_200))
    promised = placed + draw(st.integers(1, 3_600))
    stage = draw(st.sampled_from(["open", "picked", "delivered"]))
    picked = None if stage == "open" else placed + draw(st.integers(0, 3_000))
    dropped = None if stage != "delivered" or picked is None else picked + draw(times)
    return OrderRecord("o", placed, ready, promised, None, None, picked, dropped)


@settings(max_examples=60, deadline=None)
@given(st.lists(order_records(), max_size=20))
def test_order_kpis_add_up(orders: list[OrderRecord]) -> None:
    k = compute_kpis(result(orders))
    n = len(orders)
    assert k["delivered"] + k["undelivered"] == n
    assert 0.0 <= k["on_time_rate"] <= 1.0
    on_time = sum(1 for o in orders if o.delivered_s is not None and o.delivered_s <= o.promised_s)
    assert k["on_time_rate"] * n == pytest.approx(on_time)
    assert on_time + k["late_orders"] + k["undelivered"] == n
    assert k["late_minutes_total"] == pytest.approx(k["late_minutes_mean"] * k["late_orders"])
    assert k["ready_to_pickup_mean_min"] >= 0.0
    c2d = [(o.delivered_s - o.placed_s) / 60 for o in orders if o.delivered_s is not None]
    if c2d:
        # a mean or percentile of equal values may differ from them in the last bit
        assert min(c2d) - 1e-9 <= k["click_to_door_p90_min"] <= max(c2d) + 1e-9
        assert min(c2d) - 1e-9 <= k["click_to_door_mean_min"] <= max(c2d) + 1e-9
        ranked, rank = sorted(c2d), 0.9 * (len(c2d) - 1)  # interpolated between neighbours
        lo, hi = ranked[math.floor(rank)], ranked[math.ceil(rank)]
        assert lo - 1e-9 <= k["click_to_door_p90_min"] <= hi + 1e-9


# ------------------------------------------------------------------------------ the forms
def test_the_table_has_a_row_per_kpi_and_a_column_per_policy() -> None:
    kpis = {"nearest": compute_kpis(hand_result()), "greedy": compute_kpis(result([]))}
    lines = format_table(kpis).splitlines()
    assert len(lines) == 2 + len(KPI_INFO)
    assert lines[0].split()[-2:] == ["nearest", "greedy"]
    assert set(lines[1]) == {"-"}
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in lines[2:]}
    assert rows["on-time rate (delivered by promise / all orders) (%)"] == ["40.0", "0.0"]
    assert rows["orders delivered"] == ["3", "0"]
    assert rows["click-to-door mean (min)"] == ["26.67", "0.00"]


def test_a_missing_kpi_shows_as_zero() -> None:
    table = format_table({"partial": {"delivered": 7.0}})
    assert "orders delivered" in table
    row = next(line for line in table.splitlines() if line.startswith("orders delivered"))
    assert row.split()[-1] == "7"


def test_kpi_files_round_trip(tmp_path: Path) -> None:
    kpis = {"nearest": compute_kpis(hand_result()), "search": compute_kpis(result([]))}
    json_path, csv_path = write_kpis(kpis, tmp_path / "out", "hand")
    assert json.loads(json_path.read_text()) == {"scenario": "hand", "policies": kpis}
    with csv_path.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["scenario", "policy", *KPI_INFO]
    assert [r[:2] for r in rows[1:]] == [["hand", "nearest"], ["hand", "search"]]
    for row, policy in zip(rows[1:], kpis, strict=True):
        assert [float(v) for v in row[2:]] == [kpis[policy][name] for name in KPI_INFO]


def test_every_orders_life_in_one_csv(tmp_path: Path) -> None:
    res = hand_result()
    path = write_orders_csv(res, tmp_path / "deep" / "orders.csv")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["order"] for r in rows] == [o.id for o in res.orders]
    for row, rec in zip(rows, res.orders, strict=True):
        for name in ("placed_s", "ready_s", "promised_s", "late_s"):
            assert int(row[name]) == getattr(rec, name)
        for name in ("first_planned_s", "picked_up_s", "delivered_s"):
            value = getattr(rec, name)
            assert row[name] == ("" if value is None else str(value))
        assert row["rider"] == (rec.rider_id or "")
    assert rows[2]["late_s"] == "900" and rows[4]["picked_up_s"] == ""
