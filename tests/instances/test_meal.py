"""Tests of the meal batch generators: deterministic per seed, sizes, shares, travel tables."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from campus_maps import Campus, PlaceKind, load_campus
from instances.meal import RIDER_MIX, MealInstance, campus_meal_instance, meal_instance
from solver.model import OrderState, Problem


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


def _same(a: Problem, b: Problem) -> bool:
    return (
        a.now_s == b.now_s
        and a.orders == b.orders
        and a.riders == b.riders
        and np.array_equal(a.time_s, b.time_s)
        and np.array_equal(a.distance_m, b.distance_m)
    )


# --- synthetic square -------------------------------------------------------------------------


def test_synthetic_is_deterministic_per_seed() -> None:
    assert _same(meal_instance(20, 60, seed=4), meal_instance(20, 60, seed=4))
    assert not _same(meal_instance(20, 60, seed=4), meal_instance(20, 60, seed=5))


def test_synthetic_draws_what_it_drew_in_the_benchmark() -> None:
    # values drawn by the generator when it lived in bench/bench_meal.py: the benchmark's
    # instances (and so its figures) must not change with the move
    problem = meal_instance(20, 60, seed=0)
    assert int(problem.time_s.sum()) == 2_710_302
    assert [
        (o.pickup, o.dropoff, o.ready_s, o.due_s, o.state, o.rider_id) for o in problem.orders[:3]
    ] == [
        (28, 40, 36_816, 38_071, OrderState.COMMITTED, "r17"),
        (25, 41, 36_931, 37_856, OrderState.OPEN, None),
        (33, 42, 37_160, 38_557, OrderState.OPEN, None),
    ]
    assert [(r.available_s, r.shift_end_s, r.capacity) for r in problem.riders[:3]] == [
        (36_289, 41_901, 4),
        (36_000, 46_227, 4),
        (36_000, 40_120, 4),
    ]
    assert Counter(o.state for o in problem.orders) == {
        OrderState.OPEN: 48,
        OrderState.COMMITTED: 8,
        OrderState.ONBOARD: 4,
    }


@pytest.mark.parametrize(
    ("riders", "orders", "merchants"), [(20, 60, None), (5, 6, None), (7, 30, 4)]
)
def test_synthetic_sizes_and_layout(riders: int, orders: int, merchants: int | None) -> None:
    problem = meal_instance(riders, orders, seed=1, num_merchants=merchants, profiles=2)
    count = merchants or max(3, orders // 3)
    n = riders + count + orders
    assert (len(problem.riders), len(problem.orders), problem.num_locations) == (riders, orders, n)
    assert problem.time_s.shape == problem.distance_m.shape == (2, n, n)
    assert [r.location for r in problem.riders] == list(range(riders))
    assert [r.profile for r in problem.riders] == [k % 2 for k in range(riders)]
    assert [o.dropoff for o in problem.orders] == list(range(riders + count, n))
    assert all(riders <= o.pickup < riders + count for o in problem.orders if o.pickup is not None)
    assert all(o.size == 1 and o.id == f"o{k}" for k, o in enumerate(problem.orders))
    # straight-line travel: profile p rides 1 + 0.5 p times faster than 4 m/s
    for p in range(2):
        expected = np.rint(problem.distance_m[p] / (4.0 * (1 + 0.5 * p)))
        assert np.array_equal(problem.time_s[p], expected)
    assert problem.distance_m.max() <= 2000.0 * np.sqrt(2)


def test_synthetic_shares() -> None:
    problem = meal_instance(
        60, 600, seed=2, onboard_share=0.2, committed_share=0.1,
        closed_share=0.5, start_loaded_share=0.4,
    )  # fmt: skip
    states = Counter(o.state for o in problem.orders)
    # an onboard roll on a full rider becomes a commitment: onboard a little under 20 %
    assert 0.14 < states[OrderState.ONBOARD] / 600 <= 0.22
    assert 0.25 < (states[OrderState.ONBOARD] + states[OrderState.COMMITTED]) / 600 < 0.35
    load = Counter(o.rider_id for o in problem.orders if o.state is OrderState.ONBOARD)
    capacity = {r.id: r.capacity for r in problem.riders}
    assert all(rider is not None and n <= capacity[rider] for rider, n in load.items())
    assert all(
        o.picked_up_s == o.ready_s < problem.now_s
        for o in problem.orders
        if o.state is OrderState.ONBOARD
    )
    open_orders = [o for o in problem.orders if o.state is OrderState.OPEN]
    loaded = sum(o.pickup is None for o in open_orders) / len(open_orders)
    assert 0.33 < loaded < 0.47
    assert all(o.pickup is not None for o in problem.orders if o.state is not OrderState.OPEN)
    closed = sum(r.end_location == r.location for r in problem.riders) / 60
    assert 0.35 < closed < 0.65
    assert {r.capacity for r in problem.riders} == {3, 4, 5}
    in_bag = sum(o.max_in_bag_s == 2400 for o in problem.orders) / 600
    assert 0.44 < in_bag < 0.56


def test_synthetic_without_riders_has_only_open_orders() -> None:
    problem = meal_instance(0, 10, seed=1)
    assert not problem.riders
    assert all(o.state is OrderState.OPEN and o.rider_id is None for o in problem.orders)


# --- campus -----------------------------------------------------------------------------------


def test_campus_is_deterministic_per_seed(tiny: Campus) -> None:
    one = campus_meal_instance(tiny, orders=30, riders=10, seed=7)
    two = campus_meal_instance(tiny, orders=30, riders=10, seed=7)
    assert isinstance(one, MealInstance)
    assert _same(one.problem, two.problem)
    assert np.array_equal(one.points, two.points) and one.modes == two.modes
    other = campus_meal_instance(tiny, orders=30, riders=10, seed=8)
    assert not _same(one.problem, other.problem)


def test_campus_draws_what_it_drew_before(tiny: Campus) -> None:
    instance = campus_meal_instance(tiny, orders=40, riders=12, seed=3)
    problem = instance.problem
    assert instance.modes == ("bike", "ebike")
    assert int(problem.time_s.sum()) == 2_481_604
    assert [(o.pickup, o.dropoff, o.ready_s, o.due_s) for o in problem.orders[:3]] == [
        (12, 52, 870, 2157),
        (13, 53, 425, 1931),
        (14, 54, 868, 1771),
    ]
    assert [(r.available_s, r.shift_end_s, r.capacity, r.profile) for r in problem.riders[:3]] == [
        (15, 8709, 6, 1),
        (111, 6461, 4, 0),
        (95, 6373, 6, 1),
    ]


def test_campus_sizes_places_and_promises(tiny: Campus) -> None:
    riders, orders = 12, 40
    instance = campus_meal_instance(tiny, orders=orders, riders=riders, seed=3, service_s=45)
    problem = instance.problem
    n = riders + 2 * orders
    assert (len(problem.riders), len(problem.orders), problem.num_locations) == (riders, orders, n)
    assert instance.points.shape == (n, 2)
    assert problem.time_s.shape == (len(instance.modes), n, n)
    food = {(p.lat, p.lng) for p in tiny.places(PlaceKind.FOOD)}
    homes = {(p.lat, p.lng) for p in tiny.places(PlaceKind.DORM) + tiny.places(PlaceKind.BUILDING)}
    bike = instance.modes.index("bike")
    for k, order in enumerate(problem.orders):
        assert (order.pickup, order.dropoff) == (riders + k, riders + orders + k)
        assert tuple(instance.points[order.pickup]) in food
        assert tuple(instance.points[order.dropoff]) in homes
        assert order.pickup_service_s == order.dropoff_service_s == 45
        assert order.max_in_bag_s == 2700
        if order.state is not OrderState.ONBOARD:  # an onboard order's ready time moves back
            direct = int(problem.time_s[bike, order.pickup, order.dropoff])
            assert 600 <= order.due_s - order.ready_s - direct < 1500
            assert -300 <= order.ready_s < 900
    capacity = {mode: bag for mode, _, bag in RIDER_MIX}
    for rider in problem.riders:
        assert rider.capacity == capacity[instance.modes[rider.profile]]


def test_campus_shares(tiny: Campus) -> None:
    instance = campus_meal_instance(
        tiny, orders=500, riders=200, seed=1, onboard_share=0.15, committed_share=0.1
    )
    problem = instance.problem
    states = Counter(o.state for o in problem.orders)
    assert 0.11 < states[OrderState.ONBOARD] / 500 < 0.19
    assert 0.06 < states[OrderState.COMMITTED] / 500 < 0.14
    load = Counter(o.rider_id for o in problem.orders if o.state is OrderState.ONBOARD)
    capacity = {r.id: r.capacity for r in problem.riders}
    assert all(rider is not None and n <= capacity[rider] for rider, n in load.items())
    assert all(
        o.picked_up_s is not None and o.ready_s <= o.picked_up_s < 0
        for o in problem.orders
        if o.state is OrderState.ONBOARD
    )
    modes = Counter(instance.modes[r.profile] for r in problem.riders)
    for mode, share, _ in RIDER_MIX:
        assert abs(modes[mode] / 200 - share) < 0.08, (mode, modes)
