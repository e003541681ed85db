"""The storm detectors, each explainable in one sentence: a customer ordering far above normal
(:class:`CustomerBurst`), many orders to one destination from accounts with no history
(:class:`FreshDestination`), and campus volume far above what is normal for this time of day
(:class:`CampusVolume`, which raises the level but flags no order).

The learned parts use river's streaming statistics: they learn one observation at a time in
constant memory, with no refit and no stored history, which is what a detector that sees every
order of every campus as it arrives needs (scikit-learn's estimators fit on whole arrays)."""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from river import stats

from storm.settings import GuardSettings


class Detector(enum.Enum):
    """Which detector found an order suspicious (the value is the metric label)."""

    CUSTOMER_BURST = "customer_burst"
    FRESH_DESTINATION = "fresh_destination"
    CONFIRMED_ACCOUNT = "confirmed_account"


@dataclass(frozen=True, slots=True)
class Finding:
    """Why some orders are suspicious: the detector and its explanation."""

    detector: Detector
    order_ids: tuple[str, ...]
    evidence: str


def _forget_before(windows: dict[str, deque[Any]], cutoff_s: float) -> None:
    """Drop the entries (placed time first) older than ``cutoff_s``, and the empty windows."""
    for key in list(windows):
        window = windows[key]
        while window and window[0][0] < cutoff_s:
            window.popleft()
        if not window:
            del windows[key]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


class CustomerBurst:
    """One account placing more orders within ``customer_window_s`` than
    ``customer_max_orders``, or than twice the 99th percentile of what accounts here place
    (learned from the orders not flagged), whichever is higher."""

    #: Observations before the learned percentile may raise the limit.
    MIN_LEARNED = 200

    def __init__(self) -> None:
        self._orders: dict[str, deque[tuple[float, str]]] = {}
        self._normal = stats.Quantile(0.99)
        self._learned = 0

    def limit(self, settings: GuardSettings) -> tuple[int, float | None]:
        """The count above which an account is flagged, and the learned percentile."""
        if self._learned < self.MIN_LEARNED:
            return settings.customer_max_orders, None
        p99 = float(self._normal.get() or 0.0)
        return max(settings.customer_max_orders, math.ceil(2 * p99)), p99

    def add(
        self, customer: str, order_id: str, placed_s: float, settings: GuardSettings, *, learn: bool
    ) -> Finding | None:
        """Count an order of ``customer``; a finding when the account is past its limit (every
        order of the account in the window)."""
        window = self._orders.setdefault(customer, deque())
        window.append((placed_s, order_id))
        newest = max(t for t, _ in window)
        while window and window[0][0] <= newest - settings.customer_window_s:
            window.popleft()
        count = len(window)
        limit, p99 = self.limit(settings)
        if count > limit:
            normal = "" if p99 is None else f"; normal here is at most {p99:.0f}"
            return Finding(
                Detector.CUSTOMER_BURST,
                tuple(o for _, o in window),
                f"account {customer} placed {count} orders within "
                f"{_minutes(settings.customer_window_s)} (limit {limit}{normal})",
            )
        if learn:
            self._normal.update(count)
            self._learned += 1
        return None

    def forget_before(self, cutoff_s: float) -> None:
        """Drop orders placed before ``cutoff_s`` (and accounts left with none)."""
        _forget_before(self._orders, cutoff_s)


class FreshDestination:
    """At least ``destination_min_orders`` orders to one destination within
    ``destination_window_s`` from accounts with no history, making at least
    ``destination_fresh_share`` of the orders to it."""

    def __init__(self) -> None:
        self._orders: dict[str, deque[tuple[float, str, str, bool]]] = {}

    def add(
        self,
        destination: str,
        name: str,
        order_id: str,
        customer: str,
        placed_s: float,
        fresh: bool,
        settings: GuardSettings,
    ) -> Finding | None:
        """Count an order to ``destination``; a finding when the fresh accounts' orders there
        pass the thresholds (those orders)."""
        window = self._orders.setdefault(destination, deque())
        window.append((placed_s, order_id, customer, fresh))
        newest = max(t for t, *_ in window)
        while window and window[0][0] <= newest - settings.destination_window_s:
            window.popleft()
        if not fresh:
            return None
        fresh_orders = [(o, c) for _, o, c, f in window if f]
        share = len(fresh_orders) / len(window)
        if (
            len(fresh_orders) < settings.destination_min_orders
            or share < settings.destination_fresh_share
        ):
            return None
        accounts = len({c for _, c in fresh_orders})
        return Finding(
            Detector.FRESH_DESTINATION,
            tuple(o for o, _ in fresh_orders),
            f"{len(fresh_orders)} orders to {name} within "
            f"{_minutes(settings.destination_window_s)} from {accounts} accounts with no "
            f"history (first order under {settings.fresh_account_s / 86400:g} days ago), "
            f"{share:.0%} of the orders there (limit {settings.destination_min_orders})",
        )

    def forget_before(self, cutoff_s: float) -> None:
        """Drop orders placed before ``cutoff_s`` (and destinations left with none)."""
        _forget_before(self._orders, cutoff_s)


@dataclass(frozen=True, slots=True)
class VolumeReading:
    """Orders in the last window against the normal of this time of day."""

    orders: int
    normal: float | None  # None: this time of day is not learned yet
    spread: float
    days: int

    @property
    def ratio(self) -> float:
        """Orders over normal (0 when not learned)."""
        return 0.0 if self.normal is None else self.orders / max(self.normal, 1.0)

    def counted_ratio(self, settings: GuardSettings) -> float:
        """:attr:`ratio`, or 0 with fewer than ``volume_min_orders`` orders in the window (a
        few orders in a quiet slot say nothing): what raises the level."""
        return self.ratio if self.orders >= settings.volume_min_orders else 0.0


class CampusVolume:
    """Orders placed on the campus in the last ``volume_window_s`` against the normal for this
    time of day: an exponentially weighted mean (and variance) per window-sized slot of the
    day, learned from every slot during which the backend called (a slot with no call, such as
    a restart or an outage, teaches nothing). Weekdays and weekends share one baseline."""

    #: Weight of the newest day in a slot's mean and variance.
    FADING = 0.3

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self._recent: deque[float] = deque()
        self._by_slot: dict[int, int] = {}
        self._watched: set[int] = set()
        self._final: int | None = None
        self._baseline: dict[int, tuple[stats.EWMean, stats.EWVar, int]] = {}

    def add(self, placed_s: Iterable[float]) -> None:
        """Count orders placed at these instants (each order once)."""
        for t in placed_s:
            self._recent.append(t)
            slot = self._slot(t)
            self._by_slot[slot] = self._by_slot.get(slot, 0) + 1

    def _slot(self, t: float) -> int:
        return int(t // self.window_s)

    def tick(self, now_s: float) -> None:
        """The backend called at ``now_s``: learn the slots that ended a whole window ago (an
        order placed near a slot's end may be sent in the next slot's first batch)."""
        slot = self._slot(now_s)
        self._watched.add(slot)
        final = slot - 1  # slots before this one take no more orders
        per_day = 86400 // self.window_s
        if self._final is not None and final > self._final:
            for ended in range(max(self._final, final - per_day), final):
                if ended in self._watched:
                    self._learn(ended % per_day, self._by_slot.get(ended, 0))
            for old in [s for s in self._by_slot if s < final]:
                del self._by_slot[old]
            self._watched = {s for s in self._watched if s >= final}
        if self._final is None or final > self._final:
            self._final = final
        while self._recent and self._recent[0] <= now_s - self.window_s:
            self._recent.popleft()

    def _learn(self, slot_of_day: int, count: int) -> None:
        mean, var, days = self._baseline.get(
            slot_of_day, (stats.EWMean(self.FADING), stats.EWVar(self.FADING), 0)
        )
        mean.update(count)
        var.update(count)
        self._baseline[slot_of_day] = (mean, var, days + 1)

    def reading(self, now_s: float, settings: GuardSettings) -> VolumeReading:
        """The orders of the last window and the normal for that window of the day (the two
        slots it overlaps, weighted by how much of it each holds)."""
        orders = sum(1 for t in self._recent if now_s - self.window_s < t <= now_s)
        per_day = 86400 // self.window_s
        start = now_s - self.window_s
        first = self._slot(start)
        share = ((first + 1) * self.window_s - start) / self.window_s  # of the window in `first`
        parts = [(first, share), (first + 1, 1.0 - share)]
        mean = spread = 0.0
        days = None
        for slot, weight in parts:
            if weight <= 1e-9:
                continue
            learned = self._baseline.get(slot % per_day)
            seen = 0 if learned is None else learned[2]
            days = seen if days is None else min(days, seen)
            if learned is None or seen < settings.baseline_days:
                continue
            mean += weight * float(learned[0].get())
            spread += weight * math.sqrt(max(float(learned[1].get()), 0.0))
        if days is None or days < settings.baseline_days:
            return VolumeReading(orders, None, 0.0, days or 0)
        return VolumeReading(orders, mean, spread, days)
