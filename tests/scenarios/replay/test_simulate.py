"""The replay simulator: orders are conserved, riders respect capacity and speed, KPIs add up on
a hand-checked scenario, and plans pass the checker. (Replays through the service and the
recorded requests are in test_remote.py; the scenario file format in tests/scenarios.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from campus_maps import Campus, load_campus
from scenarios.model import (
    Geometry,
    Point,
    Scenario,
    ScenarioOrder,
    ScenarioRider,
    load_scenario,
)
from scenarios.replay.kpis import compute_kpis, format_table, write_kpis
from scenarios.replay.policies import POLICIES, make_policy
from scenarios.replay.simulate import ReplayConfig, ReplayResult, replay
from scenarios.replay.travel import CampusTravel, EuclideanTravel
from solver.params import SolverParams

DATA = Path(__file__).resolve().parents[3] / "scenarios" / "data"
PARAMS = SolverParams()


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


def short_tiny(orders: int = 10) -> Scenario:
    """The first orders of the shipped tiny lunch scenario."""
    full = load_scenario(DATA / "tiny-lunch.json")
    return dataclasses.replace(full, orders=full.orders[:orders])


def assert_conserved(scenario: Scenario, result: ReplayResult) -> None:
    """Every order appears once, picked up before delivered, by one rider, after it was
    placed and ready."""
    ids = [o.id for o in result.orders]
    assert sorted(ids) == sorted(o.id for o in scenario.orders)
    by_id = {o.id: o for o in scenario.orders}
    for rec in result.orders:
        order = by_id[rec.id]
        if rec.delivered_s is not None:
            assert rec.picked_up_s is not None and rec.rider_id is not None
            assert order.ready_s <= rec.picked_up_s < rec.delivered_s
            assert rec.placed_s <= rec.first_planned_s <= rec.picked_up_s  # type: ignore[operator]
    delivered = sum(r.deliveries for r in result.riders)
    assert delivered == sum(1 for o in result.orders if o.delivered)


def assert_no_teleport(scenario: Scenario, result: ReplayResult, travel: object) -> None:
    """Consecutive positions of a rider are no farther apart than its top speed allows."""
    modes = {r.id: r.mode for r in scenario.riders}
    for rider in result.riders:
        vmax = travel.max_speed_mps(modes[rider.id])  # type: ignore[attr-defined]
        for (t1, p1), (t2, p2) in zip(rider.track, rider.track[1:], strict=False):
            assert t2 >= t1, f"{rider.id}: track goes back in time"
            gap = travel.straight_m(p1, p2)  # type: ignore[attr-defined]
            assert gap <= vmax * (t2 - t1) * 1.05 + 5.0, (
                f"{rider.id} moved {gap:.0f} m in {t2 - t1} s (top speed {vmax:.1f} m/s)"
            )


@pytest.mark.parametrize("policy", ["nearest", "greedy", "search", "ortools"])
def test_replay_conserves_orders_and_respects_capacity_and_speed(tiny: Campus, policy: str) -> None:
    scenario = short_tiny(10)
    travel = CampusTravel(tiny, scenario.speed_factor)
    config = ReplayConfig(batch_interval_s=60, check_plans=True)
    result = replay(scenario, travel, make_policy(policy, PARAMS, 0.05), PARAMS, config)
    assert_conserved(scenario, result)
    caps = {r.id: r.capacity for r in scenario.riders}
    for rider in result.riders:
        assert rider.max_load <= caps[rider.id]
    assert_no_teleport(scenario, result, travel)
    assert sum(1 for o in result.orders if o.delivered) >= 8  # riders are plentiful here
    assert result.batches and all(b.latency_s >= b.matrix_s >= 0 for b in result.batches)


def hand_checked() -> Scenario:
    """One rider on a line, 1 m/s (60 m/min): order A from 600 m to 1200 m placed at 0; order
    B from 1200 m to 1800 m placed at 900 s while the rider is busy with A."""
    return Scenario(
        name="hand",
        geometry=Geometry("euclidean", metres_per_minute=60.0),
        riders=(ScenarioRider("r1", 0, 3600, Point(0, 0), "bike", 2),),
        orders=(
            ScenarioOrder("A", 0, Point(0, 600), Point(0, 1200), 0, 1500, 1, 0, 0),
            ScenarioOrder("B", 900, Point(0, 1200), Point(0, 1800), 900, 1500, 1, 0, 0),
        ),
    )


@pytest.mark.parametrize("policy", ["nearest", "greedy"])
def test_kpis_on_a_hand_checked_scenario(policy: str) -> None:
    scenario = hand_checked()
    travel = EuclideanTravel(60.0)
    result = replay(
        scenario, travel, make_policy(policy, PARAMS, 0.05), PARAMS, ReplayConfig(check_plans=True)
    )
    times = {o.id: (o.picked_up_s, o.delivered_s) for o in result.orders}
    # A: 600 s to the merchant, 600 s to the customer; B: picked up where A was delivered.
    assert times == {"A": (600, 1200), "B": (1200, 1800)}
    k = compute_kpis(result)
    assert k["delivered"] == 2 and k["undelivered"] == 0
    assert k["on_time_rate"] == pytest.approx(0.5)  # B is 300 s late
    assert k["click_to_door_mean_min"] == pytest.approx((20 + 15) / 2)
    assert k["click_to_door_p90_min"] == pytest.approx(15 + 0.9 * 5)
    assert k["ready_to_pickup_mean_min"] == pytest.approx((10 + 5) / 2)
    assert k["late_orders"] == 1 and k["late_minutes_total"] == pytest.approx(5)
    assert k["orders_per_rider_hour"] == pytest.approx(2.0)
    assert k["orders_per_trip"] == pytest.approx(1.0)
    assert k["rider_utilisation"] == pytest.approx(1800 / 3600)
    assert result.riders[0].track[-1] == (1800, Point(0, 1800))


def test_an_order_no_rider_can_serve_is_reported_undelivered() -> None:
    scenario = Scenario(
        name="late",
        geometry=Geometry("euclidean", metres_per_minute=60.0),
        riders=(ScenarioRider("r1", 0, 600, Point(0, 0), "bike", 2),),
        orders=(ScenarioOrder("far", 0, Point(0, 6000), Point(0, 12000), 0, 900),),
    )
    result = replay(scenario, EuclideanTravel(60.0), make_policy("greedy", PARAMS, 0.05), PARAMS)
    assert [o.delivered for o in result.orders] == [False]
    assert compute_kpis(result)["undelivered"] == 1


def test_rain_slows_riders() -> None:
    fast = EuclideanTravel(60.0).matrices(np.array([[0.0, 0.0], [0.0, 600.0]]), ["bike"])[0]
    slow = EuclideanTravel(60.0, 0.75).matrices(np.array([[0.0, 0.0], [0.0, 600.0]]), ["bike"])[0]
    assert fast[0, 0, 1] == 600 and slow[0, 0, 1] == 800


def test_kpi_files_and_table(tmp_path: Path) -> None:
    scenario = hand_checked()
    results = [
        replay(scenario, EuclideanTravel(60.0), make_policy(p, PARAMS, 0.05), PARAMS)
        for p in ("nearest", "greedy")
    ]
    kpis = {r.policy: compute_kpis(r) for r in results}
    table = format_table(kpis)
    assert "on-time rate" in table and "nearest" in table and "greedy" in table
    json_path, csv_path = write_kpis(kpis, tmp_path, "hand")
    assert '"nearest"' in json_path.read_text()
    assert csv_path.read_text().count("\n") == 3  # header + two policies


def test_policies_are_named_and_unknown_ones_refused() -> None:
    assert POLICIES == ("nearest", "greedy", "search", "search-free", "ortools")
    with pytest.raises(ValueError, match="policy"):
        make_policy("fastest", PARAMS, 0.1)


def test_rest_of_path_starts_where_the_rider_is_and_ends_at_the_stop() -> None:
    from scenarios.replay.travel import point_along, rest_of_path

    travel = EuclideanTravel(60.0)
    path = np.array([[0.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    rest = rest_of_path(path, 0.25, travel)
    assert point_along(path, 0.25, travel) == Point(0.0, 50.0)
    assert rest.tolist() == [[0.0, 50.0], [0.0, 100.0], [100.0, 100.0]]
    assert rest_of_path(path, 1.0, travel).tolist()[-1] == [100.0, 100.0]
    assert rest_of_path(path, 0.0, travel).tolist() == path.tolist()


def on_osm_nodes(campus: Campus, scenario: Scenario) -> Scenario:
    """``scenario`` with every merchant, customer and rider start moved onto an end node of a
    one-way bike edge or another network node: the raw coordinates a backend sends."""
    bike = campus.network("bike")
    oneway = np.nonzero(bike.snapper.reverse < 0)[0]
    ends = np.concatenate([bike.arrays.edge_u[oneway], bike.arrays.edge_v[oneway]])
    nodes = [Point(float(bike.arrays.node_lat[i]), float(bike.arrays.node_lng[i])) for i in ends]
    nodes += [
        Point(float(la), float(ln))
        for la, ln in zip(bike.arrays.node_lat, bike.arrays.node_lng, strict=True)
    ]
    pick = iter(nodes * (2 * len(scenario.orders) + len(scenario.riders)))
    return dataclasses.replace(
        scenario,
        riders=tuple(dataclasses.replace(r, position=next(pick)) for r in scenario.riders),
        orders=tuple(
            dataclasses.replace(o, merchant=next(pick), customer=next(pick))
            for o in scenario.orders
        ),
    )


@pytest.mark.parametrize("policy", ["greedy", "search"])
def test_replay_with_points_on_osm_nodes(tiny: Campus, policy: str) -> None:
    """A point exactly at the end node of a one-way edge once put NaN in the travel matrix
    and stopped the replay with a ProblemError."""
    scenario = on_osm_nodes(tiny, short_tiny(8))
    travel = CampusTravel(tiny, scenario.speed_factor)
    config = ReplayConfig(batch_interval_s=60, check_plans=True)
    result = replay(scenario, travel, make_policy(policy, PARAMS, 0.05), PARAMS, config)
    assert_conserved(scenario, result)
    assert sum(1 for o in result.orders if o.delivered) >= 6
