"""Peak-period scenario generator on real campuses: arrival curves, order streams, rider shifts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import ArrayLike, NDArray

from campus_maps import Campus, Place, PlaceKind, load_campus
from instances.meal import RIDER_MIX
from scenarios.model import (
    Geometry,
    Point,
    Scenario,
    ScenarioOrder,
    ScenarioRider,
    save_scenario,
)

#: Scenario variants (see :func:`generate_scenario`).
VARIANTS = (
    "normal",
    "surge",
    "storm",
    "rain",
    "storm-accounts",
    "storm-slow",
    "storm-surge",
    "event",
)
#: Ground truth: the malicious orders of a scenario are exactly those whose id starts with this.
MALICIOUS_PREFIX = "storm-"

#: The day the scenario clocks are set on (a Wednesday in term).
SCENARIO_DATE = date(2026, 10, 14)

#: Share of customers that live in dorms (the rest order to other named buildings).
DORM_SHARE = 0.75
#: Zipf exponent of merchant popularity (rank 1 gets ``1 / 1``, rank k ``1 / k**s``).
MERCHANT_ZIPF = 1.0
#: Customer accounts per requested order: the base stream's accounts (``a1 ..``), from which
#: orders draw their accounts (most accounts order once, a few twice or three times).
ACCOUNTS_PER_ORDER = 0.7
#: No legitimate account places two orders less than this (s) apart: an order whose drawn
#: account ordered within the gap goes to another account living at the same home (or a new one,
#: ``MINTED_PREFIX``).
MIN_REORDER_GAP_S = 3600
#: Label prefix of the legitimate accounts minted when every account of a home ordered within
#: ``MIN_REORDER_GAP_S`` (``b1, b2 ..``: never a storm's or an event's ``a<k>``).
MINTED_PREFIX = "b"
#: Account age (when the account first ordered on the platform): legitimate accounts between
#: ``LEGIT_AGE_DAYS`` days before the period start, except ``NEW_ACCOUNT_SHARE`` of them, new
#: ones, ``NEW_AGE_DAYS`` days before it (fresh for a 7-day rule).
LEGIT_AGE_DAYS, NEW_ACCOUNT_SHARE, NEW_AGE_DAYS = (14.0, 1000.0), 0.02, (0.0, 3.0)
#: A storm account first ordered this long (s) before its first storm order.
STORM_ACCOUNT_AGE_S = (300, 10800)
#: Share of two-unit orders (the rest are one unit).
SIZE_TWO_SHARE = 0.15
#: Food preparation: ``PREP_MIN_S + gamma(PREP_SHAPE, PREP_SCALE_S)``, capped at ``PREP_MAX_S``.
PREP_MIN_S, PREP_SHAPE, PREP_SCALE_S, PREP_MAX_S = 300, 2.0, 150.0, 900
#: A promise is never tighter than preparation + direct bike ride + this slack.
PROMISE_SLACK_S = 300
SERVICE_S = 60
#: Rider shifts: share starting late (during the ramp) and share leaving after the peak.
LATE_START_SHARE, EARLY_END_SHARE = 0.15, 0.15
#: Share of riders starting at a food place (the rest at any place).
RIDER_AT_FOOD_SHARE = 0.6

SURGE_FACTOR, SURGE_WINDOW_S = 3.0, 1200
STORM_SHARE, STORM_MIN_ORDERS, STORM_WINDOW_S = 0.10, 8, 240
RAIN_SPEED_FACTOR, RAIN_EXTRA_SHARE = 0.75, 0.20
#: "storm-accounts": the storm's window, and storm orders per account (mean, and most).
STORM_ACCOUNTS_WINDOW_S, STORM_ORDERS_PER_ACCOUNT, STORM_ACCOUNT_MAX_ORDERS = 600, 2, 3
#: "storm-slow": the storm's window (its middle inside the peak).
STORM_SLOW_WINDOW_S = 3600
#: "event": extra orders (share of ``orders``, at least the minimum) within the window, and the
#: share of them from existing accounts of the base stream (the rest from new accounts).
EVENT_SHARE, EVENT_MIN_ORDERS, EVENT_WINDOW_S, EVENT_KNOWN_SHARE = 0.15, 8, 1200, 0.5


@dataclass(frozen=True)
class Period:
    """A peak period: its local start clock time, length and arrival-rate curve.

    Attributes
    ----------
    name
        ``"lunch"`` or ``"dinner"``.
    start
        Local clock time of second 0.
    length_s
        Period length (s), including the drain after the last order.
    knots
        ``(t_s, rate)`` corners of the piecewise-linear relative arrival rate (peak 1.0); the
        rate is 0 before the first and after the last knot.
    peak
        ``(start_s, end_s)`` of the peak plateau.
    """

    name: str
    start: time
    length_s: int
    knots: tuple[tuple[int, float], ...]
    peak: tuple[int, int]

    @property
    def last_order_s(self) -> int:
        """The end of the arrival curve: no order is placed after it (the drain follows)."""
        return self.knots[-1][0]


#: Lunch: 11:00 ramp (rate 0.2 → 1), 12:00-12:30 peak, tail to 13:30, drain to 14:00.
#: Dinner: the same shape from 17:30 (peak 18:30-19:00, tail to 20:00, drain to 20:30).
PERIODS: dict[str, Period] = {
    "lunch": Period(
        "lunch", time(11, 0), 10800, ((0, 0.2), (3600, 1.0), (5400, 1.0), (9000, 0.0)), (3600, 5400)
    ),
    "dinner": Period(
        "dinner",
        time(17, 30),
        10800,
        ((0, 0.2), (3600, 1.0), (5400, 1.0), (9000, 0.0)),
        (3600, 5400),
    ),
}


def _period(period: str | Period) -> Period:
    if isinstance(period, Period):
        return period
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; periods: {', '.join(PERIODS)}")
    return PERIODS[period]


def arrival_rate(period: str | Period, t_s: ArrayLike) -> Any:
    """The relative order arrival rate at ``t_s`` seconds from the period start.

    The curve is piecewise linear through ``period.knots`` and 0 outside them. For lunch it
    rises from 0.2 at 11:00 (0 s) to 1.0 at 12:00 (3600 s), stays at 1.0 through the peak to
    12:30 (5400 s), falls to 0 at 13:30 (9000 s) and is 0 during the drain to 14:00 (10800 s).

    Parameters
    ----------
    period
        A key of :data:`PERIODS` or a :class:`Period`.
    t_s
        Seconds from the period start (a number or an array).

    Returns
    -------
    float or numpy.ndarray
        The rate relative to the peak (1.0), shaped like ``t_s``.
    """
    p = _period(period)
    ts = np.array([k[0] for k in p.knots], dtype=np.float64)
    rates = np.array([k[1] for k in p.knots], dtype=np.float64)
    value = np.interp(np.asarray(t_s, dtype=np.float64), ts, rates, left=0.0, right=0.0)
    return float(value) if np.ndim(value) == 0 else value


def _second_weights(p: Period, lo: int = 0, hi: int | None = None) -> NDArray[np.float64]:
    """Arrival weights of each whole second ``lo .. hi - 1`` (rate at the second's middle)."""
    hi = p.last_order_s if hi is None else hi
    return np.asarray(arrival_rate(p, np.arange(lo, hi) + 0.5), dtype=np.float64)


def _draw_times(
    rng: np.random.Generator, p: Period, n: int, lo: int = 0, hi: int | None = None
) -> NDArray[np.int64]:
    """``n`` sorted placed times (whole seconds in ``[lo, hi)``) drawn from the arrival curve."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    w = _second_weights(p, lo, hi)
    if w.sum() <= 0:
        raise ValueError(f"the {p.name} arrival curve is 0 on [{lo}, {hi})")
    return np.sort(rng.choice(len(w), size=n, p=w / w.sum())).astype(np.int64) + lo


def _quota(shares: Sequence[float], n: int) -> list[int]:
    """Split ``n`` by ``shares`` (largest remainder): counts summing to ``n``."""
    total = sum(shares)
    raw = [s / total * n for s in shares]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _start_time(campus: Campus, p: Period) -> str:
    try:
        tz: Any = ZoneInfo(campus.config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return datetime.combine(SCENARIO_DATE, p.start, tzinfo=tz).isoformat()


def _point(place: Place) -> Point:
    return Point(round(place.lat, 7), round(place.lng, 7))


def _legit_since(rng: np.random.Generator, n: int) -> list[int]:
    """First-order times (s from the period start, <= 0) of ``n`` legitimate accounts:
    ``LEGIT_AGE_DAYS`` days before the period, but exactly ``round(NEW_ACCOUNT_SHARE * n)`` of
    them (drawn at random) new, ``NEW_AGE_DAYS`` days before it."""
    if n == 0:
        return []
    days = rng.uniform(*LEGIT_AGE_DAYS, size=n)
    new = rng.choice(n, size=round(NEW_ACCOUNT_SHARE * n), replace=False)
    days[new] = rng.uniform(*NEW_AGE_DAYS, size=len(new))
    return [-round(float(d) * 86400) for d in days]


def _free(times: Sequence[int], t: int) -> bool:
    """Whether an account that ordered at ``times`` may order at ``t`` (no order within
    :data:`MIN_REORDER_GAP_S` of it)."""
    return all(abs(t - u) >= MIN_REORDER_GAP_S for u in times)


@dataclass
class _Draft:
    """An order before its promise is set: its places and its random draws."""

    id: str
    placed_s: int
    merchant: int  # index into the food list
    customer: Place
    account: str
    prep_s: int
    size: int


def generate_scenario(
    campus: Campus,
    *,
    period: str | Period = "lunch",
    orders: int = 600,
    riders: int = 40,
    seed: int = 1,
    variant: str = "normal",
    quoted_min: tuple[int, int] = (25, 40),
    name: str | None = None,
) -> Scenario:
    """A peak period on ``campus``: riders and an order stream drawn from its real places.

    The same arguments always give the same scenario (numpy ``Generator``\\ s seeded from
    ``seed``: one stream for the base orders, one for the riders, one for the variant, one for
    the account ages, one for the accounts' relabelling), so every variant shares the
    ``normal`` scenario's riders and base orders ``o1 .. oN`` (accounts and their ages included)
    and only adds its own.

    Base stream (every variant): exactly ``orders`` orders, placed at whole seconds drawn from
    :func:`arrival_rate` of ``period``. Merchants are the campus's food places with Zipf-like
    popularity (exponent :data:`MERCHANT_ZIPF` over a seeded ranking); customers are accounts
    living at a dorm (:data:`DORM_SHARE`) or another named building, the drop-off place of
    their orders: most accounts order once, a few twice (or three times), and none twice within
    an hour (:data:`MIN_REORDER_GAP_S`). Each order draws one of ``0.7 * orders`` accounts
    ``a1 ..`` (:data:`ACCOUNTS_PER_ORDER`), which decides its drop-off place; then, in placed
    order, an order whose account already ordered within the hour goes to another account living
    at the same place that did not (drawn at random), or if there is none to a new account
    ``b1, b2 ..`` (:data:`MINTED_PREFIX`) living there. Only the accounts move: every order keeps
    its times, places, merchant and size. A variant's legitimate extra orders are relabelled the
    same way around the base stream's (which keeps its accounts: ``b<k>`` numbering continues
    after the base stream's); storm orders keep their accounts. Every account has an age,
    ``account_since_s`` on its orders (when it first ordered on the platform, s from the period
    start): 14-1000 days before the period, except :data:`NEW_ACCOUNT_SHARE` (2 %) of the
    accounts, new ones: 0-3 days before it (so fresh for a 7-day rule); the ``b<k>`` accounts
    are aged the same way. Preparation is 5 min plus a gamma draw (mean 10 min, capped at 15 min):
    ``ready_s = placed_s + prep``. The quote grows linearly with the direct bike ride from
    merchant to customer, from ``quoted_min[0]`` minutes (a zero ride) to ``quoted_min[1]``
    (the campus's longest food-to-home ride), whole minutes, but never less than prep + ride +
    5 min: ``promised_s = placed_s + quote``. Size 1 (2 for 15 %), 60 s pickup and drop-off.

    Riders: bike/e-bike/walk (capacity 4/6/2) in the shares of
    :data:`instances.meal.RIDER_MIX`; 70 % work the whole period, 15 % start during
    the ramp (between a third of the ramp and 10 min before the peak) and 15 % leave 15-45 min
    after the peak. 60 % start at a food place, the others at any place.

    Variants (extra orders come on top of the base stream; their ids name the variant). Ground
    truth: the malicious orders of a scenario are exactly those whose id starts with ``storm-``
    (:data:`MALICIOUS_PREFIX`); every other order (``o``, ``surge-``, ``rain-``, ``event-``) is
    legitimate. Storm accounts are fresh and new (``a<N+1> ..``, N the base stream's accounts):
    each first ordered 5 min to 3 h before its first storm order.

    * ``"normal"``: the base stream only.
    * ``"surge"``: 3x the arrival rate for 20 minutes inside the peak (a promotion): the
      ``2x`` extra orders are added, so the total exceeds ``orders`` (by about 40 % for lunch).
      ``extra["surge"]`` holds the window and the count; ids ``surge-1 ..``.
    * ``"storm"``: a malicious ordering burst: 10 % of ``orders`` (at least 8) extra orders
      within 4 minutes of the peak, from 2-3 fresh accounts, all to ONE named non-dorm building
      (a dorm if the campus has none). ``extra["storm"]`` holds the window, the order count, the
      accounts and the building; ids ``storm-1 ..``.
    * ``"rain"``: riders are slower (``speed_factor`` 0.75) and 20 % more orders come (drawn
      from the same curve; quotes are not adjusted); ids ``rain-1 ..``.
    * ``"storm-accounts"``: a storm spread over many fresh accounts: 10 % of ``orders`` (at
      least 8) within 10 minutes of the peak, from ``ceil(n / 2)`` fresh accounts (2 orders an
      account on average: each 1-3), all to ONE named non-dorm building. ``extra["storm"]`` as
      for ``"storm"``; ids ``storm-1 ..``.
    * ``"storm-slow"``: a slow storm: 10 % of ``orders`` (at least 8) over 60 minutes (one in
      each of ``n`` equal slots; the hour's middle inside the peak), from 2-3 fresh accounts,
      all to ONE named non-dorm building. ``extra["storm"]`` as for ``"storm"``; ids
      ``storm-1 ..``.
    * ``"storm-surge"``: a storm hidden in a legitimate surge: the ``"surge"`` variant's extra
      orders (the same ones, ``extra["surge"]``, ids ``surge-1 ..``) plus, inside the surge
      window, a storm shaped as the ``"storm"`` variant's (4 minutes, 2-3 fresh accounts, one
      building; ``extra["storm"]``, ids ``storm-1 ..``).
    * ``"event"``: a legitimate surge to one building (a talk, a game): 15 % of ``orders`` (at
      least 8) extra orders within 20 minutes of the peak, all to ONE named non-dorm building,
      one each from as many distinct legitimate accounts with a history: half of them (rounded
      down) accounts of the base stream, the others new accounts aged as the base stream's (so
      about 2 % fresh). No account places more than one event order. An event order goes to the
      event's building, not to its account's home; a base-stream account at the event may have
      ordered home in the base stream, but at least an hour away from its event order (else
      another base-stream account that did not stands in, drawn at random, or if none a new
      ``b<k>`` account: a crowded campus may keep fewer known accounts). ``extra["event"]``
      holds the window, the order count, the known (kept) and new account counts and the
      building; ids ``event-1 ..``.

    Parameters
    ----------
    campus
        A loaded campus (:func:`campus_maps.load_campus`) with food places and dorms or
        buildings.
    period
        A key of :data:`PERIODS` (or a :class:`Period`).
    orders, riders
        Base order count and rider count.
    seed
        Random seed.
    variant
        One of :data:`VARIANTS`.
    quoted_min
        ``(shortest, longest)`` quote in minutes.
    name
        Scenario name; default ``"<campus>-<period>[-<variant>]-s<seed>"``.

    Returns
    -------
    Scenario
        Validated; generation parameters and variant facts in ``extra``.

    Raises
    ------
    ValueError
        Unknown period or variant, bad counts or quotes, or a campus without food places or
        drop-off places.
    """
    p = _period(period)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
    if orders < 0 or riders < 1:
        raise ValueError(f"need orders >= 0 and riders >= 1 (got {orders}, {riders})")
    lo_q, hi_q = quoted_min
    if not 0 < lo_q <= hi_q:
        raise ValueError(f"quoted_min must be (lo, hi) with 0 < lo <= hi (got {quoted_min})")
    food = campus.places(PlaceKind.FOOD)
    dorms = campus.places(PlaceKind.DORM)
    buildings = campus.places(PlaceKind.BUILDING)
    homes = dorms + buildings
    if not food or not homes:
        raise ValueError(f"campus {campus.id!r} needs food places and dorms or buildings")
    everywhere = campus.places()
    # five streams (spawn(5)'s first four are spawn(4)'s, whose first three are spawn(3)'s: the
    # account ages, then the account relabelling came last, changing no earlier draw)
    order_seq, rider_seq, variant_seq, age_seq, account_seq = np.random.SeedSequence(seed).spawn(5)
    rng = np.random.default_rng(order_seq)

    # merchant popularity: Zipf over a seeded ranking of the food places
    ranking = rng.permutation(len(food))
    pop = np.empty(len(food))
    pop[ranking] = 1.0 / np.arange(1, len(food) + 1) ** MERCHANT_ZIPF
    pop /= pop.sum()
    # customer accounts, each living at one home (dorms for most)
    home_w = np.array(
        [DORM_SHARE / len(dorms) if dorms else 0.0] * len(dorms)
        + [(1 - DORM_SHARE if dorms else 1.0) / len(buildings) if buildings else 0.0]
        * len(buildings)
    )
    home_w /= home_w.sum()
    n_accounts = max(1, round(ACCOUNTS_PER_ORDER * orders))
    account_home = rng.choice(len(homes), size=n_accounts, p=home_w)

    def draft(r: np.random.Generator, ids: str, placed: NDArray[np.int64]) -> list[_Draft]:
        n = len(placed)
        merchants = r.choice(len(food), size=n, p=pop)
        accounts = r.integers(n_accounts, size=n)
        prep = np.minimum(PREP_MAX_S, PREP_MIN_S + r.gamma(PREP_SHAPE, PREP_SCALE_S, size=n))
        sizes = np.where(r.random(n) < SIZE_TWO_SHARE, 2, 1)
        return [
            _Draft(
                f"{ids}{k + 1}",
                int(placed[k]),
                int(merchants[k]),
                homes[int(account_home[accounts[k]])],
                f"a{int(accounts[k]) + 1}",
                round(float(prep[k])),
                int(sizes[k]),
            )
            for k in range(n)
        ]

    drafts = draft(rng, "o", _draw_times(rng, p, orders))

    # ---------------------------------------------------------------- account labels
    # No legitimate account orders twice within MIN_REORDER_GAP_S. The base stream is settled
    # first, in placed order (the same in every variant), then each variant's legitimate extras
    # around it; the picks and the minted accounts' ages come from their own streams (children of
    # the fifth), so no draw made before them shifts: only account labels and ages change.
    base_ar, extra_ar = (np.random.default_rng(s) for s in account_seq.spawn(2))
    ordered: dict[str, list[int]] = defaultdict(list)  # legitimate account -> its placed times
    residents: dict[str, list[str]] = defaultdict(list)  # home id -> accounts living there
    for k in range(n_accounts):
        residents[homes[int(account_home[k])].id].append(f"a{k + 1}")
    minted: list[str] = []  # accounts minted when no account of a home was free
    minted_since: list[int] = []

    def at_home(d: _Draft) -> list[str]:
        return residents[d.customer.id]

    def settle(
        r: np.random.Generator, legit: list[_Draft], pool: Callable[[_Draft], list[str]]
    ) -> None:
        """Relabel the orders ``legit`` in placed order so that no account orders twice within
        the gap: an order keeps its drawn account if free, else goes to a free account of
        ``pool(order)`` drawn at random, else to a new account (``b<k>``, living at the order's
        drop-off place, aged as the base stream's accounts)."""
        first = len(minted)
        for d in sorted(legit, key=lambda d: d.placed_s):  # (stable: ties in draft order)
            if not _free(ordered[d.account], d.placed_s):
                free = [a for a in pool(d) if _free(ordered[a], d.placed_s)]
                if free:
                    d.account = free[int(r.integers(len(free)))]
                else:
                    d.account = f"{MINTED_PREFIX}{len(minted) + 1}"
                    minted.append(d.account)
                    residents[d.customer.id].append(d.account)
            ordered[d.account].append(d.placed_s)
        minted_since.extend(_legit_since(r, len(minted) - first))

    settle(base_ar, drafts, at_home)

    # ---------------------------------------------------------------- variant extras
    # the variant stream of the first variants (surge, storm, rain), and each later variant's
    # own child of it (so no two variants draw their extras alike; storm-surge's surge is the
    # surge variant's, drawn from the variant stream, and its storm comes from its own); child
    # k is VARIANTS[k]'s, so a new variant goes at the end of VARIANTS
    vr = np.random.default_rng(variant_seq)
    own = np.random.default_rng(variant_seq.spawn(len(VARIANTS))[VARIANTS.index(variant)])
    extra: dict[str, Any] = {
        "generator": "scenarios.generate",
        "campus": campus.id,
        "period": p.name,
        "variant": variant,
        "seed": seed,
        "orders_requested": orders,
        "riders_requested": riders,
        "quoted_min": [lo_q, hi_q],
    }
    speed_factor = 1.0
    peak_lo, peak_hi = p.peak
    note = ""
    targets = buildings or dorms  # a storm's or an event's building: a non-dorm one if any
    storm_accounts: list[str] = []  # fresh: aged from their first storm order
    new_legit: list[str] = []  # legitimate accounts beyond the base stream's: aged as those

    def window(r: np.random.Generator, lo: int, hi: int, window_s: int) -> int:
        """A whole-minute start of a ``window_s`` window starting in ``[lo, hi - window_s]``."""
        return lo + 60 * int(r.integers(0, max(0, hi - lo - window_s) // 60 + 1))

    def building(target: Place) -> dict[str, Any]:
        return {
            "building_id": target.id,
            "building_name": target.name,
            "building": {"lat": _point(target).a, "lng": _point(target).b},
        }

    def storm(r: np.random.Generator, start: int, kind: str) -> str:
        """Add a storm from ``start`` to ``drafts``, record it in ``extra["storm"]`` and return
        its note. ``kind``: ``"burst"`` (the ``storm`` variant, its draws in their first order),
        ``"accounts"`` (many accounts) or ``"slow"`` (an hour, evenly)."""
        lengths = {"burst": STORM_WINDOW_S, "accounts": STORM_ACCOUNTS_WINDOW_S}
        end = start + lengths.get(kind, STORM_SLOW_WINDOW_S)
        n_storm = max(STORM_MIN_ORDERS, round(STORM_SHARE * orders))
        target = targets[int(r.integers(len(targets)))]
        if kind == "accounts":
            n_acc = -(-n_storm // STORM_ORDERS_PER_ACCOUNT)
        else:
            n_acc = int(r.integers(2, 4))
        accounts = [f"a{n_accounts + k + 1}" for k in range(n_acc)]
        if kind == "slow":  # one order in each of n_storm equal slots of the window
            slots = (np.arange(n_storm) + r.random(n_storm)) * ((end - start) / n_storm)
            placed = start + np.floor(slots).astype(np.int64)
        else:
            placed = np.sort(r.integers(start, end, size=n_storm))
        malicious = draft(r, "storm-", placed)
        if kind == "accounts":  # one order each, the rest at most MAX - 1 more on an account
            more = r.choice(
                np.repeat(np.arange(n_acc), STORM_ACCOUNT_MAX_ORDERS - 1),
                n_storm - n_acc,
                replace=False,
            )
            who = r.permutation(np.concatenate([np.arange(n_acc), more]))
        else:
            who = r.integers(n_acc, size=n_storm)
        for d, k in zip(malicious, who, strict=True):
            d.customer, d.account = target, accounts[int(k)]
        drafts.extend(malicious)
        storm_accounts.extend(accounts)
        extra["storm"] = {
            "start_s": start,
            "end_s": end,
            "orders": n_storm,
            "accounts": accounts,
            **building(target),
        }
        shown = ", ".join(accounts) if n_acc <= 3 else f"{n_acc} accounts"
        return (
            f" Storm: {n_storm} orders {start // 60}-{end // 60} min from fresh accounts "
            f"({shown}) all to {target.name} (ids storm-k)."
        )

    if variant in ("surge", "storm-surge"):
        start = window(vr, peak_lo, peak_hi, SURGE_WINDOW_S)
        end = start + SURGE_WINDOW_S
        share = _second_weights(p, start, end).sum() / _second_weights(p).sum()
        n_extra = round((SURGE_FACTOR - 1) * orders * share)
        surge = draft(vr, "surge-", _draw_times(vr, p, n_extra, start, end))
        settle(extra_ar, surge, at_home)
        drafts += surge
        extra["surge"] = {
            "start_s": start,
            "end_s": end,
            "factor": SURGE_FACTOR,
            "extra_orders": n_extra,
        }
        note = (
            f" Surge: {SURGE_FACTOR:g}x the arrival rate {start // 60}-{end // 60} min "
            f"({n_extra} extra orders, ids surge-k)."
        )
        if variant == "storm-surge":  # the storm variant's burst, hidden in the surge
            note += storm(own, window(own, start, end, STORM_WINDOW_S), "burst")
    elif variant == "storm":
        note = storm(vr, window(vr, peak_lo, peak_hi, STORM_WINDOW_S), "burst")
    elif variant == "storm-accounts":
        note = storm(own, window(own, peak_lo, peak_hi, STORM_ACCOUNTS_WINDOW_S), "accounts")
    elif variant == "storm-slow":  # the hour's middle in the peak (and the hour in the curve)
        lo = max(0, peak_lo - STORM_SLOW_WINDOW_S // 2)
        hi = min(p.last_order_s, peak_hi + STORM_SLOW_WINDOW_S // 2)
        note = storm(own, window(own, lo, hi, STORM_SLOW_WINDOW_S), "slow")
    elif variant == "event":
        start = window(own, peak_lo, peak_hi, EVENT_WINDOW_S)
        end = start + EVENT_WINDOW_S
        n_event = max(EVENT_MIN_ORDERS, round(EVENT_SHARE * orders))
        target = targets[int(own.integers(len(targets)))]
        n_known = min(n_accounts, math.floor(EVENT_KNOWN_SHARE * n_event))
        known = own.choice(n_accounts, size=n_known, replace=False)
        new_legit = [f"a{n_accounts + k + 1}" for k in range(n_event - n_known)]
        goers = [f"a{int(k) + 1}" for k in known] + new_legit  # one event order each
        event = draft(own, "event-", np.sort(own.integers(start, end, size=n_event)))
        for d, k in zip(event, own.permutation(n_event), strict=True):
            d.customer, d.account = target, goers[int(k)]
        # a base-stream goer that ordered within the gap of its event order gives its place to
        # another base-stream account that did not (and is no goer): one event order each
        base_labels = [f"a{k + 1}" for k in range(n_accounts)]
        drawn = set(goers)

        def stand_in(_: _Draft) -> list[str]:
            going = {d.account for d in event}
            return [a for a in base_labels if a not in drawn and a not in going]

        settle(extra_ar, event, stand_in)
        n_known = len({d.account for d in event} & set(base_labels))  # (fewer if any minted)
        drafts += event
        extra["event"] = {
            "start_s": start,
            "end_s": end,
            "orders": n_event,
            "known_accounts": n_known,
            "new_accounts": n_event - n_known,
            **building(target),
        }
        note = (
            f" Event: {n_event} orders {start // 60}-{end // 60} min all to {target.name}, one "
            f"each from legitimate accounts ({n_known} of the base stream, {n_event - n_known} "
            "new; ids event-k)."
        )
    elif variant == "rain":
        speed_factor = RAIN_SPEED_FACTOR
        n_extra = round(RAIN_EXTRA_SHARE * orders)
        rain = draft(vr, "rain-", _draw_times(vr, p, n_extra))
        settle(extra_ar, rain, at_home)
        drafts += rain
        extra["rain"] = {"speed_factor": speed_factor, "extra_orders": n_extra}
        note = f" Rain: riders {speed_factor:g}x as fast, {n_extra} extra orders (ids rain-k)."

    # ---------------------------------------------------------------- account ages
    # (their own stream: adding them changed no order of the variants made before them)
    ar = np.random.default_rng(age_seq)
    since = dict(
        zip(
            [f"a{k + 1}" for k in range(n_accounts)] + new_legit + minted,
            _legit_since(ar, n_accounts) + _legit_since(ar, len(new_legit)) + minted_since,
            strict=True,
        )
    )
    first_storm: dict[str, int] = {}
    for d in drafts:
        if d.id.startswith(MALICIOUS_PREFIX):
            first_storm[d.account] = min(d.placed_s, first_storm.get(d.account, d.placed_s))
    lo_s, hi_s = STORM_ACCOUNT_AGE_S
    for account in storm_accounts:
        if account in first_storm:  # (an account of a storm may have drawn no order)
            since[account] = first_storm[account] - int(ar.integers(lo_s, hi_s + 1))

    # ---------------------------------------------------------------- promises (one matrix)
    index = {pl.id: i for i, pl in enumerate(food + homes)}
    pts = np.array([(pl.lat, pl.lng) for pl in food + homes])
    ride = campus.matrix(pts, "bike").time_s
    longest = float(ride[: len(food), len(food) :].max()) or 1.0
    scenario_orders = []
    for d in drafts:
        merchant = food[d.merchant]
        t = float(ride[d.merchant, index[d.customer.id]])
        quote_s = 60 * round(lo_q + (hi_q - lo_q) * min(1.0, t / longest))
        promise_s = max(quote_s, d.prep_s + math.ceil(t) + PROMISE_SLACK_S)
        scenario_orders.append(
            ScenarioOrder(
                id=d.id,
                placed_s=d.placed_s,
                merchant=_point(merchant),
                customer=_point(d.customer),
                ready_s=d.placed_s + d.prep_s,
                promised_s=d.placed_s + promise_s,
                size=d.size,
                pickup_service_s=SERVICE_S,
                dropoff_service_s=SERVICE_S,
                account=d.account,
                merchant_id=merchant.id,
                customer_id=d.customer.id,
                account_since_s=since[d.account],
            )
        )
    scenario_orders.sort(key=lambda o: (o.placed_s, o.id))

    # ---------------------------------------------------------------- riders
    rr = np.random.default_rng(rider_seq)
    mode_counts = _quota([s for _, s, _ in RIDER_MIX], riders)
    kinds = rr.permutation([k for k, c in enumerate(mode_counts) for _ in range(c)])
    late, early = _quota(
        [LATE_START_SHARE, EARLY_END_SHARE, 1 - LATE_START_SHARE - EARLY_END_SHARE], riders
    )[:2]
    shifts = rr.permutation(
        ["late"] * late + ["early"] * early + ["full"] * (riders - late - early)
    )
    ramp_lo = peak_lo // 3
    rider_list = []
    for k in range(riders):
        start_s, end_s = 0, p.length_s
        if shifts[k] == "late":
            start_s = 60 * int(rr.integers(ramp_lo // 60, (peak_lo - 600) // 60 + 1))
        elif shifts[k] == "early":
            end_s = 60 * int(rr.integers((peak_hi + 900) // 60, (peak_hi + 2700) // 60 + 1))
        if rr.random() < RIDER_AT_FOOD_SHARE:
            where = food[int(rr.choice(len(food), p=pop))]
        else:
            where = everywhere[int(rr.integers(len(everywhere)))]
        mode, _, capacity = RIDER_MIX[int(kinds[k])]
        rider_list.append(ScenarioRider(f"r{k + 1}", start_s, end_s, _point(where), mode, capacity))

    extra["orders_total"] = len(scenario_orders)
    extra["riders_total"] = riders
    label = f"{campus.id}-{p.name}" + ("" if variant == "normal" else f"-{variant}")
    description = (
        f"{campus.name}: {p.name} peak from {p.start:%H:%M} local "
        f"(peak {p.peak[0] // 60}-{p.peak[1] // 60} min, last order by {p.last_order_s // 60} "
        f"min, period {p.length_s // 60} min), variant {variant}: {len(scenario_orders)} orders "
        f"({orders} base), {riders} riders, seed {seed}, quotes {lo_q}-{hi_q} min." + note
    )
    return Scenario(
        name=name or f"{label}-s{seed}",
        geometry=Geometry(kind="campus", campus_id=campus.id),
        riders=tuple(rider_list),
        orders=tuple(scenario_orders),
        start_time=_start_time(campus, p),
        speed_factor=speed_factor,
        description=description,
        extra=extra,
    )


#: The scenario files shipped in ``scenarios/data``: (file name, campus id, arguments).
SHIPPED: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("northwestern-lunch.json", "northwestern", {"orders": 600, "riders": 40, "seed": 1}),
    (
        "northwestern-lunch-surge.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "surge"},
    ),
    (
        "northwestern-lunch-storm.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "storm"},
    ),
    (
        "northwestern-lunch-rain.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "rain"},
    ),
    (
        "northwestern-lunch-storm-accounts.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "storm-accounts"},
    ),
    (
        "northwestern-lunch-storm-slow.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "storm-slow"},
    ),
    (
        "northwestern-lunch-storm-surge.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "storm-surge"},
    ),
    (
        "northwestern-lunch-event.json",
        "northwestern",
        {"orders": 600, "riders": 40, "seed": 1, "variant": "event"},
    ),
    ("uce_quito-lunch.json", "uce_quito", {"orders": 300, "riders": 20, "seed": 1}),
    ("tiny-lunch.json", "tiny", {"orders": 40, "riders": 6, "seed": 1}),
)
DATA_DIR = Path(__file__).resolve().parent / "data"


def write_shipped(folder: Path = DATA_DIR) -> list[Path]:
    """(Re)generate every scenario of :data:`SHIPPED` into ``folder``.

    Parameters
    ----------
    folder
        Output folder (created); default ``scenarios/data``.

    Returns
    -------
    list of Path
        The files written.
    """
    campuses: dict[str, Campus] = {}
    written = []
    for file_name, campus_id, kwargs in SHIPPED:
        if campus_id not in campuses:
            campuses[campus_id] = load_campus(campus_id)
        scenario = generate_scenario(campuses[campus_id], **kwargs)
        written.append(save_scenario(scenario, folder / file_name))
    return written


if __name__ == "__main__":
    for path in write_shipped():
        print(f"{path}: {path.stat().st_size} bytes")
