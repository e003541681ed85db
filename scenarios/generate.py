"""Peak-period scenario generator on real campuses: arrival curves, order streams, rider shifts."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
VARIANTS = ("normal", "surge", "storm", "rain")

#: The day the scenario clocks are set on (a Wednesday in term).
SCENARIO_DATE = date(2026, 10, 14)

#: Share of customers that live in dorms (the rest order to other named buildings).
DORM_SHARE = 0.75
#: Zipf exponent of merchant popularity (rank 1 gets ``1 / 1``, rank k ``1 / k**s``).
MERCHANT_ZIPF = 1.0
#: Customer accounts per requested order (most accounts order once, a few twice or more).
ACCOUNTS_PER_ORDER = 0.7
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
    ``seed``: one stream for the base orders, one for the riders, one for the variant), so
    every variant shares the ``normal`` scenario's riders and base orders ``o1 .. oN`` and only
    adds its own.

    Base stream (every variant): exactly ``orders`` orders, placed at whole seconds drawn from
    :func:`arrival_rate` of ``period``. Merchants are the campus's food places with Zipf-like
    popularity (exponent :data:`MERCHANT_ZIPF` over a seeded ranking); customers are accounts
    (about 0.7 per order, so some order twice) living at a dorm (:data:`DORM_SHARE`) or another
    named building. Preparation is 5 min plus a gamma draw (mean 10 min, capped at 15 min):
    ``ready_s = placed_s + prep``. The quote grows linearly with the direct bike ride from
    merchant to customer, from ``quoted_min[0]`` minutes (a zero ride) to ``quoted_min[1]``
    (the campus's longest food-to-home ride), whole minutes, but never less than prep + ride +
    5 min: ``promised_s = placed_s + quote``. Size 1 (2 for 15 %), 60 s pickup and drop-off.

    Riders: bike/e-bike/walk (capacity 4/6/2) in the shares of
    :data:`instances.meal.RIDER_MIX`; 70 % work the whole period, 15 % start during
    the ramp (between a third of the ramp and 10 min before the peak) and 15 % leave 15-45 min
    after the peak. 60 % start at a food place, the others at any place.

    Variants (extra orders come on top of the base stream; their ids name the variant):

    * ``"normal"``: the base stream only.
    * ``"surge"``: 3x the arrival rate for 20 minutes inside the peak (a promotion): the
      ``2x`` extra orders are added, so the total exceeds ``orders`` (by about 40 % for lunch).
      ``extra["surge"]`` holds the window and the count; ids ``surge-1 ..``.
    * ``"storm"``: a malicious ordering burst: 10 % of ``orders`` (at least 8) extra orders
      within 4 minutes of the peak, from 2-3 fresh accounts, all to ONE named non-dorm building
      (a dorm if the campus has none). ``extra["storm"]`` holds the window, the accounts and the
      building; ids ``storm-1 ..``.
    * ``"rain"``: riders are slower (``speed_factor`` 0.75) and 20 % more orders come (drawn
      from the same curve; quotes are not adjusted); ids ``rain-1 ..``.

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
    order_seq, rider_seq, variant_seq = np.random.SeedSequence(seed).spawn(3)
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

    # ---------------------------------------------------------------- variant extras
    vr = np.random.default_rng(variant_seq)
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
    if variant == "surge":
        start = peak_lo + 60 * int(vr.integers(0, (peak_hi - peak_lo - SURGE_WINDOW_S) // 60 + 1))
        end = start + SURGE_WINDOW_S
        share = _second_weights(p, start, end).sum() / _second_weights(p).sum()
        n_extra = round((SURGE_FACTOR - 1) * orders * share)
        drafts += draft(vr, "surge-", _draw_times(vr, p, n_extra, start, end))
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
    elif variant == "storm":
        start = peak_lo + 60 * int(vr.integers(0, (peak_hi - peak_lo - STORM_WINDOW_S) // 60 + 1))
        end = start + STORM_WINDOW_S
        n_storm = max(STORM_MIN_ORDERS, round(STORM_SHARE * orders))
        targets = buildings or dorms
        target = targets[int(vr.integers(len(targets)))]
        n_acc = int(vr.integers(2, 4))
        storm_accounts = [f"a{n_accounts + k + 1}" for k in range(n_acc)]
        placed = np.sort(vr.integers(start, end, size=n_storm))
        storm = draft(vr, "storm-", placed)
        who = vr.integers(n_acc, size=n_storm)
        for d, k in zip(storm, who, strict=True):
            d.customer, d.account = target, storm_accounts[int(k)]
        drafts += storm
        extra["storm"] = {
            "start_s": start,
            "end_s": end,
            "orders": n_storm,
            "accounts": storm_accounts,
            "building_id": target.id,
            "building_name": target.name,
            "building": {"lat": _point(target).a, "lng": _point(target).b},
        }
        note = (
            f" Storm: {n_storm} orders {start // 60}-{end // 60} min from accounts "
            f"{', '.join(storm_accounts)} all to {target.name} (ids storm-k)."
        )
    elif variant == "rain":
        speed_factor = RAIN_SPEED_FACTOR
        n_extra = round(RAIN_EXTRA_SHARE * orders)
        drafts += draft(vr, "rain-", _draw_times(vr, p, n_extra))
        extra["rain"] = {"speed_factor": speed_factor, "extra_orders": n_extra}
        note = f" Rain: riders {speed_factor:g}x as fast, {n_extra} extra orders (ids rain-k)."

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
