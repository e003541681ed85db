"""Account ages and the storm-guard variants of the scenario generator (storm-accounts,
storm-slow, storm-surge, event), on the tiny campus and on the shipped Northwestern files; the
orders of the variants made before account ages are unchanged by them."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np
import pytest

from campus_maps import Campus, PlaceKind, load_campus
from scenarios.generate import (
    DATA_DIR,
    MALICIOUS_PREFIX,
    MIN_REORDER_GAP_S,
    MINTED_PREFIX,
    NEW_ACCOUNT_SHARE,
    VARIANTS,
    _legit_since,
    generate_scenario,
)
from scenarios.model import Scenario, ScenarioOrder, load_scenario, scenario_to_dict

DAY = 86_400
FRESH_S = 7 * DAY  # the storm guard's rule: an account is fresh for 7 days after its first order
STORMS = ("storm", "storm-accounts", "storm-slow", "storm-surge")


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


@pytest.fixture(scope="module")
def uce() -> Campus:
    return load_campus("uce_quito")


def _kind(o: ScenarioOrder) -> str:
    return o.id.rsplit("-", 1)[0] if "-" in o.id else "o"


def _of(s: Scenario, kind: str) -> list[ScenarioOrder]:
    return [o for o in s.orders if _kind(o) == kind]


def _fresh(o: ScenarioOrder) -> bool:
    assert o.account_since_s is not None
    return o.placed_s - o.account_since_s < FRESH_S


def _most_in_30_min(times: Iterable[int]) -> int:
    ts = sorted(times)
    return max((sum(1 for u in ts if t <= u < t + 1800) for t in ts), default=0)


def _legit_age(since: int) -> bool:
    """A legitimate account's first order: 14-1000 days before the period, or new (0-3 days)."""
    return -1000 * DAY <= since <= -14 * DAY or -3 * DAY <= since <= 0


def _shipped(variant: str) -> Scenario:
    name = "northwestern-lunch" + ("" if variant == "normal" else f"-{variant}")
    return load_scenario(DATA_DIR / f"{name}.json")


# ------------------------------------------------------------------------- account ages
def test_legit_ages_are_old_but_for_a_small_share_of_new_accounts() -> None:
    since = _legit_since(np.random.default_rng(7), 1000)
    new = [s for s in since if s > -FRESH_S]
    assert len(new) == round(NEW_ACCOUNT_SHARE * 1000) == 20
    assert all(-3 * DAY <= s <= 0 for s in new)
    old = [s for s in since if s <= -FRESH_S]
    assert all(-1000 * DAY <= s <= -14 * DAY for s in old)
    assert min(old) < -900 * DAY and max(old) > -30 * DAY  # spread over the range
    assert _legit_since(np.random.default_rng(7), 0) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_order_has_its_account_age(tiny: Campus, variant: str) -> None:
    s = generate_scenario(tiny, orders=300, riders=6, seed=2, variant=variant)
    ages: dict[str, set[int]] = defaultdict(set)
    for o in s.orders:
        assert o.account_since_s is not None and o.account_since_s <= o.placed_s
        ages[o.account].add(o.account_since_s)
    assert all(len(a) == 1 for a in ages.values())  # one age an account
    for o in s.orders:
        if o.id.startswith(MALICIOUS_PREFIX):
            assert o.placed_s - o.account_since_s >= 300  # a storm account: 5 min at least
        else:
            assert _legit_age(o.account_since_s), o


def test_about_two_percent_of_legit_accounts_are_fresh(tiny: Campus) -> None:
    s = generate_scenario(tiny, orders=2000, riders=6, seed=3)
    accounts = {o.account: _fresh(o) for o in s.orders}
    share = sum(accounts.values()) / len(accounts)
    assert 0.01 <= share <= 0.035, share


@pytest.mark.parametrize("variant", STORMS)
def test_storm_accounts_are_fresh_from_minutes_to_hours_before_their_first_order(
    tiny: Campus, variant: str
) -> None:
    s = generate_scenario(tiny, orders=200, riders=6, seed=4, variant=variant)
    storm = _of(s, "storm")
    assert storm and all(_fresh(o) for o in storm)
    first = {
        a: min(o.placed_s for o in storm if o.account == a) for a in {o.account for o in storm}
    }
    for o in storm:
        assert o.account_since_s is not None
        assert 300 <= first[o.account] - o.account_since_s <= 3 * 3600
    legit_accounts = {o.account for o in s.orders if not o.id.startswith(MALICIOUS_PREFIX)}
    assert not legit_accounts & set(first)


def _digest(orders: Iterable[ScenarioOrder], s: Scenario) -> str:
    doc = scenario_to_dict(dataclasses.replace(s, orders=tuple(orders)))["orders"]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _fingerprint(s: Scenario) -> str:
    """The orders of ``s`` without their accounts (labels and ages): ids, times, places,
    merchants, promises and sizes, what the generator drew before account ages and the reorder
    gap (which relabel legitimate orders only)."""
    return _digest((dataclasses.replace(o, account="-", account_since_s=None) for o in s.orders), s)


#: The orders the generator drew before accounts had ages and before the reorder gap relabelled
#: legitimate orders (fingerprints of the files shipped then, the same without their accounts
#: for the files shipped before account ages and after them; of the storm-guard variants' files
#: as first shipped; and of tiny scenarios generated then): neither changed any of them.
BEFORE_ACCOUNTS = {
    "northwestern-lunch.json": "ee0bb08f74e1f624",
    "northwestern-lunch-surge.json": "506b4fceffbeae3d",
    "northwestern-lunch-storm.json": "6515de23527c7ba3",
    "northwestern-lunch-rain.json": "eaad9a167c2341e0",
    "northwestern-lunch-storm-accounts.json": "afff3645ddb7e195",
    "northwestern-lunch-storm-slow.json": "3bbfe48da0ccba2c",
    "northwestern-lunch-storm-surge.json": "3a43ef60fd4d9069",
    "northwestern-lunch-event.json": "e05c4427cff07749",
    "uce_quito-lunch.json": "56c64ec59ac86f95",
    "tiny-lunch.json": "17a184c076f7c58c",
}
BEFORE_ACCOUNTS_TINY = {
    ("normal", "lunch"): "4d8fde0987cb0d08",
    ("surge", "lunch"): "6081d232caa4203d",
    ("storm", "lunch"): "aaec2351eceaeb9c",
    ("rain", "lunch"): "3de1b6d27d4fcea5",
    ("storm-accounts", "lunch"): "73b353ee0bf0f308",
    ("storm-slow", "lunch"): "1abcb9d8f23c2044",
    ("storm-surge", "lunch"): "609181876edfa392",
    ("event", "lunch"): "4dbbcdc1a95461ef",
    ("normal", "dinner"): "b03836631ec5ec73",
    ("surge", "dinner"): "f89bd41e4fd2ac58",
    ("storm", "dinner"): "c2077c3d5398111e",
    ("rain", "dinner"): "187523a9d86872ac",
    ("storm-accounts", "dinner"): "4206321b7b635e8b",
    ("storm-slow", "dinner"): "e25edccd63062f04",
    ("storm-surge", "dinner"): "6e0e5cf61e0a2572",
    ("event", "dinner"): "5b471e99f28f59e1",
}
#: The storm orders of the shipped storm files, accounts and ages included (as first shipped):
#: the reorder gap leaves the malicious orders alone.
STORM_ORDERS = {
    "northwestern-lunch-storm.json": "f14340e1b9a8e2b3",
    "northwestern-lunch-storm-accounts.json": "43efdfbfa272f24e",
    "northwestern-lunch-storm-slow.json": "bbfc49b4977e48b8",
    "northwestern-lunch-storm-surge.json": "0a6aa814324a4772",
}


@pytest.mark.parametrize("name", sorted(BEFORE_ACCOUNTS))
def test_shipped_files_keep_their_orders_but_for_legitimate_accounts(name: str) -> None:
    s = load_scenario(DATA_DIR / name)
    assert _fingerprint(s) == BEFORE_ACCOUNTS[name]
    if name in STORM_ORDERS:
        assert _digest(_of(s, "storm"), s) == STORM_ORDERS[name]


@pytest.mark.parametrize(("variant", "period"), sorted(BEFORE_ACCOUNTS_TINY))
def test_the_variants_keep_their_orders(tiny: Campus, variant: str, period: str) -> None:
    if period == "lunch":
        kwargs = {"orders": 80, "riders": 6, "seed": 5}
    else:
        kwargs = {"orders": 7, "riders": 3, "seed": 11}
    s = generate_scenario(tiny, period=period, variant=variant, **kwargs)
    assert _fingerprint(s) == BEFORE_ACCOUNTS_TINY[variant, period]


# ------------------------------------------------------------------------------ variants
def _one_building(tiny: Campus, orders: list[ScenarioOrder], info: dict[str, object]) -> None:
    assert {o.customer_id for o in orders} == {info["building_id"]}
    place = {p.id: p for p in tiny.places()}[str(info["building_id"])]
    assert place.kind is PlaceKind.BUILDING and place.name == info["building_name"]


def test_storm_accounts_is_a_storm_over_many_fresh_accounts(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=150, riders=6, seed=1)
    s = generate_scenario(tiny, orders=150, riders=6, seed=1, variant="storm-accounts")
    assert _of(s, "o") == list(normal.orders) and s.riders == normal.riders
    info = s.extra["storm"]
    storm = _of(s, "storm")
    assert [o.id for o in sorted(storm, key=lambda o: int(o.id[6:]))] == [
        f"storm-{k}" for k in range(1, 16)
    ]
    assert len(storm) == info["orders"] == 15 == len(s.orders) - 150
    _one_building(tiny, storm, info)
    per_account = Counter(o.account for o in storm)
    assert len(per_account) == len(info["accounts"]) == math.ceil(15 / 2)
    assert set(per_account.values()) <= {1, 2, 3}
    assert info["end_s"] - info["start_s"] == 600
    assert info["start_s"] >= 3600 and info["end_s"] <= 5400
    assert all(info["start_s"] <= o.placed_s < info["end_s"] for o in storm)


def test_small_storms_have_eight_orders(tiny: Campus) -> None:
    for variant in STORMS:
        s = generate_scenario(tiny, orders=20, riders=3, seed=6, variant=variant)
        assert len(_of(s, "storm")) == s.extra["storm"]["orders"] == 8
    s = generate_scenario(tiny, orders=20, riders=3, seed=6, variant="storm-accounts")
    assert len({o.account for o in _of(s, "storm")}) == 4
    event = generate_scenario(tiny, orders=20, riders=3, seed=6, variant="event")
    assert len(_of(event, "event")) == 8


def test_storm_slow_spreads_an_hour_evenly_from_few_accounts(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=200, riders=6, seed=1)
    s = generate_scenario(tiny, orders=200, riders=6, seed=1, variant="storm-slow")
    assert _of(s, "o") == list(normal.orders)
    info = s.extra["storm"]
    storm = _of(s, "storm")
    assert len(storm) == info["orders"] == 20
    _one_building(tiny, storm, info)
    assert 2 <= len({o.account for o in storm}) <= 3
    assert {o.account for o in storm} <= set(info["accounts"])
    start, end = info["start_s"], info["end_s"]
    assert end - start == 3600 and 3600 <= (start + end) / 2 <= 5400
    # one order in each of 20 three-minute slots of the hour
    slots = Counter((o.placed_s - start) // 180 for o in storm)
    assert slots == {k: 1 for k in range(20)}


def test_storm_surge_hides_the_storm_in_the_surge_variants_surge(tiny: Campus) -> None:
    surge = generate_scenario(tiny, orders=150, riders=6, seed=2, variant="surge")
    s = generate_scenario(tiny, orders=150, riders=6, seed=2, variant="storm-surge")
    assert _of(s, "o") == _of(surge, "o") and _of(s, "surge") == _of(surge, "surge")
    assert s.extra["surge"] == surge.extra["surge"] and s.riders == surge.riders
    window, info = s.extra["surge"], s.extra["storm"]
    storm = _of(s, "storm")
    assert len(s.orders) == len(surge.orders) + len(storm)
    assert len(storm) == info["orders"] == 15
    _one_building(tiny, storm, info)
    assert 2 <= len({o.account for o in storm}) <= 3
    assert info["end_s"] - info["start_s"] == 240
    assert window["start_s"] <= info["start_s"] and info["end_s"] <= window["end_s"]
    assert all(info["start_s"] <= o.placed_s < info["end_s"] for o in storm)
    assert not {o.account for o in storm} & {o.account for o in _of(s, "surge")}


def test_an_event_is_a_legitimate_surge_to_one_building(tiny: Campus) -> None:
    normal = generate_scenario(tiny, orders=200, riders=6, seed=1)
    s = generate_scenario(tiny, orders=200, riders=6, seed=1, variant="event")
    assert _of(s, "o") == list(normal.orders) and s.riders == normal.riders
    assert not [o for o in s.orders if o.id.startswith(MALICIOUS_PREFIX)]
    info = s.extra["event"]
    event = _of(s, "event")
    assert len(event) == info["orders"] == 30 == len(s.orders) - 200
    _one_building(tiny, event, info)
    assert info["end_s"] - info["start_s"] == 1200
    assert info["start_s"] >= 3600 and info["end_s"] <= 5400
    assert all(info["start_s"] <= o.placed_s < info["end_s"] for o in event)
    per_account = Counter(o.account for o in event)
    assert max(per_account.values()) <= 2 and len(per_account) == 30  # one each, in fact
    # 15 accounts of the base stream drawn, but on a campus of 3 homes most of the 140 ordered
    # within an hour of the event: they gave their places to new ones (aged as the others)
    base_accounts = {f"a{k}" for k in range(1, round(0.7 * 200) + 1)}
    assert info["known_accounts"] == 3 == len(set(per_account) & base_accounts)
    assert info["new_accounts"] == 27
    assert all(_legit_age(o.account_since_s) for o in event)  # type: ignore[arg-type]
    # an account of the base stream keeps its age at the event
    ages = {o.account: o.account_since_s for o in normal.orders}
    assert all(o.account_since_s == ages[o.account] for o in event if o.account in ages)


# ---------------------------------------------------------------- the shipped Northwestern
def test_shipped_storm_variants_have_their_shape() -> None:
    facts = {
        # variant: (window s, accounts, storm orders)
        "storm": (240, 2, 60),
        "storm-accounts": (600, 30, 60),
        "storm-slow": (3600, 3, 60),
        "storm-surge": (240, 3, 60),
    }
    buildings = set()
    for variant, (window, accounts, orders) in facts.items():
        s = _shipped(variant)
        info = s.extra["storm"]
        storm = _of(s, "storm")
        assert len(storm) == info["orders"] == orders
        assert info["end_s"] - info["start_s"] == window
        assert len({o.account for o in storm}) == len(info["accounts"]) == accounts
        assert {o.customer_id for o in storm} == {info["building_id"]}
        assert all(_fresh(o) for o in storm)
        buildings.add(info["building_id"])
    assert len(buildings) == 4  # each storm hits its own building
    assert len(_shipped("storm-surge").orders) == 910
    assert _of(_shipped("storm-surge"), "surge") == _of(_shipped("surge"), "surge")


def test_shipped_event_has_no_storm_shape() -> None:
    s = _shipped("event")
    info = s.extra["event"]
    event = _of(s, "event")
    assert len(event) == 90 and len(s.orders) == 690
    assert (info["known_accounts"], info["new_accounts"]) == (45, 45)
    assert max(Counter(o.account for o in event).values()) == 1
    assert sum(_fresh(o) for o in event) <= 2
    assert {o.customer_id for o in event} == {info["building_id"]}


@pytest.mark.parametrize(
    "variant",
    ["normal", "surge", "rain", "event", "storm", "storm-accounts", "storm-slow", "storm-surge"],
)
def test_shipped_legitimate_orders_never_look_like_a_storm(variant: str) -> None:
    """No legitimate account places two orders within an hour (so never more than 4 within 30
    minutes), and never do 6 orders of fresh legitimate accounts go to one building within 30
    minutes; every storm does the second (and the first but for storm-accounts')."""
    s = _shipped(variant)
    by_account: dict[str, list[int]] = defaultdict(list)
    fresh_to: dict[str, list[int]] = defaultdict(list)
    for o in s.orders:
        if not o.id.startswith(MALICIOUS_PREFIX):
            by_account[o.account].append(o.placed_s)
            if _fresh(o):
                fresh_to[o.customer_id].append(o.placed_s)
    assert max(_most_in_30_min(t) for t in by_account.values()) == 1
    assert max(_most_in_30_min(t) for t in fresh_to.values()) < 6
    storm = _of(s, "storm")
    if storm:
        assert _most_in_30_min(o.placed_s for o in storm) >= 6


# --------------------------------------------------------------------- the reorder gap
def _check_accounts(s: Scenario) -> None:
    """No legitimate account orders twice within ``MIN_REORDER_GAP_S``; the orders of one
    account go to one home (but an event order: to the event's building); legitimate and storm
    accounts never share a label; one event order an account."""
    times: dict[str, list[int]] = defaultdict(list)
    homes: dict[str, set[str]] = defaultdict(set)
    for o in s.orders:
        if not o.id.startswith(MALICIOUS_PREFIX):
            times[o.account].append(o.placed_s)
        if _kind(o) != "event":
            homes[o.account].add(o.customer_id)
    for account, placed in times.items():
        placed.sort()
        assert all(b - a >= MIN_REORDER_GAP_S for a, b in itertools.pairwise(placed)), account
    assert all(len(h) == 1 for h in homes.values())
    storm = {o.account for o in _of(s, "storm")}
    assert not storm & set(times)
    if "storm" in s.extra:
        assert storm <= set(s.extra["storm"]["accounts"])
        assert not {a for a in times if a.startswith(MINTED_PREFIX)} & set(
            s.extra["storm"]["accounts"]
        )
    event = _of(s, "event")
    assert len({o.account for o in event}) == len(event)
    if event:
        known = {o.account for o in event} & {o.account for o in _of(s, "o")}
        assert len(known) <= s.extra["event"]["known_accounts"]


@pytest.mark.parametrize("name", sorted(BEFORE_ACCOUNTS))
def test_no_shipped_legitimate_account_orders_twice_within_an_hour(name: str) -> None:
    _check_accounts(load_scenario(DATA_DIR / name))


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_generated_legitimate_account_orders_twice_within_an_hour(
    tiny: Campus, variant: str
) -> None:
    for period, orders, seed in (("lunch", 300, 2), ("lunch", 40, 1), ("dinner", 150, 7)):
        normal = generate_scenario(tiny, period=period, orders=orders, riders=3, seed=seed)
        s = generate_scenario(
            tiny, period=period, orders=orders, riders=3, seed=seed, variant=variant
        )
        _check_accounts(s)
        assert _of(s, "o") == list(normal.orders)  # the base stream's accounts: every variant's


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_generated_uce_account_orders_twice_within_an_hour(uce: Campus, variant: str) -> None:
    _check_accounts(generate_scenario(uce, orders=300, riders=4, seed=1, variant=variant))


def test_a_crowded_home_mints_new_legitimate_accounts(tiny: Campus) -> None:
    """When every account of a home ordered within the hour (a surge of 3x the orders for 20
    minutes, 3 homes), new ones (``b1 ..``) order, aged as the others, each living at one home;
    storm accounts keep their ``a<k>`` labels."""
    surge = generate_scenario(tiny, orders=100, riders=3, seed=3, variant="surge")
    for variant in ("surge", "storm-surge", "rain", "event"):
        s = generate_scenario(tiny, orders=100, riders=3, seed=3, variant=variant)
        _check_accounts(s)
        minted = [o for o in s.orders if o.account.startswith(MINTED_PREFIX)]
        assert minted and not any(o.id.startswith(MALICIOUS_PREFIX) for o in minted)
        assert all(_legit_age(o.account_since_s) for o in minted)  # type: ignore[arg-type]
        assert all(o.account.startswith("a") for o in _of(s, "storm"))
        if variant == "storm-surge":  # the same accounts as the surge variant's, storm or not
            assert _of(s, "surge") == _of(surge, "surge")
    assert len({o.account for o in _of(surge, "surge") if o.account.startswith(MINTED_PREFIX)}) > 30


#: Shipped legitimate accounts, the most orders of one, legitimate orders from fresh accounts
#: (first order within 7 days), and the most of those to one building within 30 minutes.
SHIPPED_ACCOUNTS = {
    "northwestern-lunch.json": (505, 2, 14, 1),
    "northwestern-lunch-surge.json": (748, 2, 19, 2),
    "northwestern-lunch-storm.json": (505, 2, 14, 1),
    "northwestern-lunch-rain.json": (591, 2, 15, 1),
    "northwestern-lunch-storm-accounts.json": (505, 2, 14, 1),
    "northwestern-lunch-storm-slow.json": (505, 2, 14, 1),
    "northwestern-lunch-storm-surge.json": (748, 2, 19, 2),
    "northwestern-lunch-event.json": (588, 2, 15, 1),
    "uce_quito-lunch.json": (238, 2, 4, 2),
    "tiny-lunch.json": (31, 2, 2, 1),
}


@pytest.mark.parametrize("name", sorted(SHIPPED_ACCOUNTS))
def test_shipped_legitimate_accounts_mostly_order_once(name: str) -> None:
    s = load_scenario(DATA_DIR / name)
    legit = [o for o in s.orders if not o.id.startswith(MALICIOUS_PREFIX)]
    per_account = Counter(o.account for o in legit)
    fresh_to: dict[str, list[int]] = defaultdict(list)
    for o in legit:
        if _fresh(o):
            fresh_to[o.customer_id].append(o.placed_s)
    facts = (
        len(per_account),
        max(per_account.values()),
        sum(len(t) for t in fresh_to.values()),
        max(_most_in_30_min(t) for t in fresh_to.values()),
    )
    assert facts == SHIPPED_ACCOUNTS[name]
    once = sum(n == 1 for n in per_account.values())
    assert once > 0.7 * len(per_account)  # most accounts order once
