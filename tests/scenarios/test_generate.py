"""Tests of the peak-period scenario generator (on the tiny campus) and the shipped scenarios."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from campus_maps import Campus, PlaceKind, load_campus
from instances.meal import RIDER_MIX
from scenarios.generate import (
    DATA_DIR,
    PERIODS,
    SHIPPED,
    VARIANTS,
    arrival_rate,
    generate_scenario,
)
from scenarios.model import Scenario, ScenarioOrder, dumps_scenario, load_scenario, loads_scenario


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


def _base(s: Scenario) -> list[ScenarioOrder]:
    return [o for o in s.orders if o.id.startswith("o")]


def test_same_seed_same_scenario_other_seed_other(tiny: Campus) -> None:
    for variant in VARIANTS:
        a = generate_scenario(tiny, orders=60, riders=6, seed=3, variant=variant)
        b = generate_scenario(tiny, orders=60, riders=6, seed=3, variant=variant)
        assert a == b
        c = generate_scenario(tiny, orders=60, riders=6, seed=4, variant=variant)
        assert [o.placed_s for o in c.orders] != [o.placed_s for o in a.orders]


def test_normal_has_exactly_n_orders_and_riders(tiny: Campus) -> None:
    for n in (0, 1, 37):
        s = generate_scenario(tiny, orders=n, riders=5, seed=1)
        assert len(s.orders) == n
        assert len(s.riders) == 5
        assert s.speed_factor == 1.0
        assert s.extra["orders_requested"] == n and s.extra["variant"] == "normal"


def test_arrival_curve_shape() -> None:
    lunch = PERIODS["lunch"]
    assert lunch.start.hour == 11 and lunch.length_s == 10800
    assert arrival_rate("lunch", 0) == pytest.approx(0.2)
    assert arrival_rate("lunch", 1800) < arrival_rate("lunch", 3600) == pytest.approx(1.0)
    assert arrival_rate("lunch", 4500) == pytest.approx(1.0)
    assert arrival_rate("lunch", 5400) > arrival_rate("lunch", 7200) > 0
    assert arrival_rate("lunch", 9000) == 0 and arrival_rate("lunch", 10000) == 0
    curve = arrival_rate("lunch", np.arange(0, 10800, 60))
    assert curve.shape == (180,) and curve.max() == pytest.approx(1.0)
    assert "dinner" in PERIODS and arrival_rate("dinner", 4000) == pytest.approx(1.0)


def test_orders_follow_the_curve(tiny: Campus) -> None:
    s = generate_scenario(tiny, orders=400, riders=6, seed=2)
    placed = np.array([o.placed_s for o in s.orders])
    first = np.count_nonzero(placed < 1800)
    peak = np.count_nonzero((placed >= 3600) & (placed < 5400))
    assert peak > 2 * first
    assert placed.max() < PERIODS["lunch"].last_order_s
    assert np.count_nonzero(placed >= 7200) < peak


def test_orders_are_sane_and_places_are_real(tiny: Campus) -> None:
    food = {p.id: p for p in tiny.places(PlaceKind.FOOD)}
    homes = {p.id: p for p in tiny.places(PlaceKind.DORM) + tiny.places(PlaceKind.BUILDING)}
    for variant in VARIANTS:
        s = generate_scenario(tiny, orders=80, riders=6, seed=5, variant=variant)
        assert [o.placed_s for o in s.orders] == sorted(o.placed_s for o in s.orders)
        assert len({o.id for o in s.orders}) == len(s.orders)
        for o in s.orders:
            assert o.ready_s >= o.placed_s + 300
            assert o.promised_s - o.placed_s >= 25 * 60
            assert o.promised_s > o.ready_s
            assert o.size in (1, 2) and o.account
            assert o.pickup_service_s == 60 and o.dropoff_service_s == 60
            m, c = food[o.merchant_id], homes[o.customer_id]
            assert (o.merchant.a, o.merchant.b) == pytest.approx((m.lat, m.lng), abs=1e-6)
            assert (o.customer.a, o.customer.b) == pytest.approx((c.lat, c.lng), abs=1e-6)
        assert loads_scenario(dumps_scenario(s)) == s


def test_quote_grows_with_the_ride(tiny: Campus) -> None:
    s = generate_scenario(tiny, orders=200, riders=6, seed=1, quoted_min=(30, 60))
    pairs = sorted({(o.merchant_id, o.customer_id) for o in s.orders})
    assert len(pairs) > 2
    quotes: dict[tuple[str, str], set[int]] = {}
    for o in s.orders:
        # the quote is a function of the pair unless the prep-time floor lifts it
        if o.promised_s - o.placed_s >= o.ready_s - o.placed_s + 600:
            quotes.setdefault((o.merchant_id, o.customer_id), set()).add(o.promised_s - o.placed_s)
    assert all(len(q) == 1 for q in quotes.values())
    assert all(30 * 60 <= min(q) <= 60 * 60 for q in quotes.values())
    assert max(max(q) for q in quotes.values()) > min(min(q) for q in quotes.values())


def test_riders_mix_and_shifts(tiny: Campus) -> None:
    s = generate_scenario(tiny, orders=10, riders=20, seed=1)
    caps = {mode: cap for mode, _, cap in RIDER_MIX}
    modes = Counter(r.mode for r in s.riders)
    assert modes == {"bike": 12, "ebike": 6, "walk": 2}
    assert all(r.capacity == caps[r.mode] for r in s.riders)
    full = [r for r in s.riders if (r.shift_start_s, r.shift_end_s) == (0, 10800)]
    late = [r for r in s.riders if r.shift_start_s > 0]
    early = [r for r in s.riders if r.shift_end_s < 10800]
    assert len(full) == 14 and len(late) == 3 and len(early) == 3
    assert all(r.shift_start_s < 3600 for r in late)
    assert all(r.shift_end_s > 5400 for r in early)
    points = {(round(p.lat, 7), round(p.lng, 7)) for p in tiny.places()}
    assert all((r.position.a, r.position.b) in points for r in s.riders)


def test_surge_adds_orders_in_a_peak_window(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=120, riders=6, seed=1)
    surge = generate_scenario(tiny, orders=120, riders=6, seed=1, variant="surge")
    assert _base(surge) == list(normal.orders)
    assert surge.riders == normal.riders
    info = surge.extra["surge"]
    assert info["end_s"] - info["start_s"] == 1200
    assert info["start_s"] >= 3600 and info["end_s"] <= 5400
    extra = [o for o in surge.orders if o.id.startswith("surge-")]
    assert len(extra) == info["extra_orders"] == len(surge.orders) - 120 > 0
    assert all(info["start_s"] <= o.placed_s < info["end_s"] for o in extra)
    # 3x the rate: the window holds about 3x the normal count
    in_window = sum(info["start_s"] <= o.placed_s < info["end_s"] for o in surge.orders)
    assert in_window > 2 * sum(info["start_s"] <= o.placed_s < info["end_s"] for o in normal.orders)


def test_storm_is_a_burst_to_one_building_from_few_accounts(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=100, riders=6, seed=1)
    s = generate_scenario(tiny, orders=100, riders=6, seed=1, variant="storm")
    assert _base(s) == list(normal.orders)
    info = s.extra["storm"]
    storm = [o for o in s.orders if o.id.startswith("storm-")]
    assert len(storm) == info["orders"] >= 8
    assert {o.customer_id for o in storm} == {info["building_id"]}
    assert {p.id: p.kind for p in tiny.places()}[info["building_id"]] is PlaceKind.BUILDING
    assert 2 <= len({o.account for o in storm}) <= 3
    assert {o.account for o in storm} <= set(info["accounts"])
    assert not {o.account for o in _base(s)} & set(info["accounts"])
    assert info["end_s"] - info["start_s"] <= 300
    assert all(info["start_s"] <= o.placed_s < info["end_s"] for o in storm)
    # fresh accounts (a 7-day rule), unlike the base stream's but for a few
    assert all(o.placed_s - o.account_since_s < 7 * 86400 for o in storm)  # type: ignore[operator]


def test_rain_is_slower_with_more_orders(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=100, riders=6, seed=1)
    rain = generate_scenario(tiny, orders=100, riders=6, seed=1, variant="rain")
    assert rain.speed_factor < 1 and rain.speed_factor == pytest.approx(0.75)
    assert len(rain.orders) == 120
    assert _base(rain) == list(normal.orders)
    assert rain.extra["variant"] == "rain" and rain.extra["seed"] == 1


def test_bad_arguments(tiny: Campus) -> None:
    with pytest.raises(ValueError, match="variant"):
        generate_scenario(tiny, variant="hail")
    with pytest.raises(ValueError, match="period"):
        generate_scenario(tiny, period="brunch")
    with pytest.raises(ValueError, match="quoted_min"):
        generate_scenario(tiny, quoted_min=(40, 25))


SHIPPED_FILES = sorted(DATA_DIR.glob("*.json"))


def test_every_shipped_scenario_is_listed_and_present() -> None:
    assert {p.name for p in SHIPPED_FILES} == {name for name, _, _ in SHIPPED}
    assert sum(p.stat().st_size for p in SHIPPED_FILES) < 2_500_000


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.name)
def test_shipped_scenario_loads_and_matches_its_arguments(path: Path) -> None:
    s = load_scenario(path)
    campus_id, kwargs = next((c, k) for name, c, k in SHIPPED if name == path.name)
    assert s.geometry.campus_id == campus_id == s.extra["campus"]
    assert s.extra["seed"] == kwargs["seed"]
    assert s.extra["variant"] == kwargs.get("variant", "normal")
    assert len(s.riders) == kwargs["riders"]
    base = [o for o in s.orders if o.id.startswith("o")]
    assert len(base) == kwargs["orders"]
    assert len(s.orders) == s.extra["orders_total"]


def test_shipped_northwestern_lunch_counts() -> None:
    s = load_scenario(DATA_DIR / "northwestern-lunch.json")
    assert (len(s.orders), len(s.riders)) == (600, 40)
    assert s.start_time.startswith("2026-10-14T11:00:00")


def test_shipped_tiny_file_is_up_to_date(tiny: Campus) -> None:
    _, campus_id, kwargs = next(item for item in SHIPPED if item[0] == "tiny-lunch.json")
    assert campus_id == "tiny"
    assert load_scenario(DATA_DIR / "tiny-lunch.json") == generate_scenario(tiny, **kwargs)


@functools.cache
def _campus(campus_id: str) -> Campus:
    return load_campus(campus_id)


@pytest.mark.parametrize("item", SHIPPED, ids=lambda item: item[0])
def test_every_shipped_file_is_what_the_generator_writes(
    item: tuple[str, str, dict[str, Any]],
) -> None:
    name, campus_id, kwargs = item
    path = DATA_DIR / name
    generated = generate_scenario(_campus(campus_id), **kwargs)
    assert path.read_text(encoding="utf-8") == dumps_scenario(generated), (
        f"{name} is stale: regenerate with .venv/bin/python -m scenarios.generate"
    )


def test_every_variant_is_shipped_for_northwestern() -> None:
    shipped = {k.get("variant", "normal") for _, c, k in SHIPPED if c == "northwestern"}
    assert shipped == set(VARIANTS)
    sizes = {(k["orders"], k["riders"], k["seed"]) for _, c, k in SHIPPED if c == "northwestern"}
    assert sizes == {(600, 40, 1)}
