"""The storm guard of a campus (:class:`StormGuard`) and of every campus (:class:`Guards`): the
order stream's state (each order counted once, by id), the detectors fed with each new order,
the storm level, the action per suspicious order, and the orders held for review."""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from storm.destinations import Destinations, NamedPlace
from storm.detectors import (
    CampusVolume,
    CustomerBurst,
    Detector,
    Finding,
    FreshDestination,
    VolumeReading,
)
from storm.settings import GuardMode, GuardSettings

#: Seconds between two clean-ups of a campus's state (on the backend's clock).
_PRUNE_EVERY_S = 60.0
#: Orders not re-sent for this long past the longest window are forgotten (s).
_FORGET_AFTER_S = 3600.0


class StormLevel(enum.IntEnum):
    """A campus's storm level."""

    NORMAL = 0
    ELEVATED = 1
    STORM = 2
    SEVERE = 3


class Action(enum.Enum):
    """What is done with a suspicious order (the value is the log and metric text)."""

    #: Reported only: dispatched like any order.
    FLAG = "flag"
    #: Dispatched only with riders left over after the legitimate orders.
    DEPRIORITISE = "deprioritise"
    #: Held (answered unassigned QUARANTINED) until a person releases it.
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class IncomingOrder:
    """What the guard reads of an order in a batch.

    Attributes
    ----------
    id, customer
        The order's id and its account ("" when the backend sent none: no account detector
        counts it).
    placed_s
        When it was placed (epoch s); ``None``: when the guard first saw it.
    lat, lng
        Its drop-off.
    customer_since_s
        When the account first ordered on the platform (epoch s), per the backend; ``None``:
        the guard's own memory decides whether the account has history.
    open
        Neither accepted by a rider nor in a bag (only open orders can be held back).
    """

    id: str
    customer: str
    placed_s: float | None
    lat: float
    lng: float
    customer_since_s: float | None = None
    open: bool = True


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    """A suspicious order of the batch and what to do with it."""

    order_id: str
    action: Action
    detector: Detector
    evidence: str


@dataclass(frozen=True)
class GuardReview:
    """The guard's reading of one batch.

    Attributes
    ----------
    level, level_reason
        The campus's storm level after the batch, and why, in one sentence.
    verdicts
        Every suspicious order of the batch, in batch order.
    newly_flagged
        Orders flagged for the first time by this batch, by detector (orders of earlier
        batches included: a burst flags its first orders too).
    volume
        Orders of the last window against the normal of this time of day.
    mode
        The mode in force for the campus.
    """

    level: StormLevel
    level_reason: str
    verdicts: tuple[OrderVerdict, ...]
    newly_flagged: dict[Detector, int]
    volume: VolumeReading
    mode: GuardMode

    def ids(self, action: Action) -> frozenset[str]:
        """The batch's orders given ``action``."""
        return frozenset(v.order_id for v in self.verdicts if v.action is action)


@dataclass(slots=True)
class HeldOrder:
    """An order the guard holds for a person to review."""

    order_id: str
    customer: str
    detector: Detector
    evidence: str
    placed_s: float
    held_s: float
    destination: str
    last_seen_s: float
    confirmed: bool = False
    reviewed_by: str = ""


@dataclass(frozen=True)
class ReviewOutcome:
    """What a person's verdict applied to."""

    order_ids: tuple[str, ...]
    unknown_order_ids: tuple[str, ...]


@dataclass(slots=True)
class _Record:
    id: str
    customer: str
    placed_s: float
    destination: str
    destination_name: str
    fresh: bool
    last_seen_s: float


@dataclass(slots=True)
class _Level:
    seen_s: dict[StormLevel, tuple[float, str]] = field(default_factory=dict)


class StormGuard:
    """One campus's order stream, detectors, level and held orders. Thread-safe."""

    def __init__(self, places: Sequence[NamedPlace], settings: GuardSettings) -> None:
        self._places = tuple(places)
        self._lock = threading.Lock()
        self._destinations = Destinations(self._places, settings.destination_radius_m)
        self._records: dict[str, _Record] = {}
        self._flags: dict[str, Finding] = {}
        self._flagged_at: deque[tuple[float, str]] = deque()
        self._held: dict[str, HeldOrder] = {}
        self._released: set[str] = set()
        self._trusted: set[str] = set()
        self._confirmed_accounts: dict[str, str] = {}
        self._accounts: OrderedDict[str, float] = OrderedDict()
        self._burst = CustomerBurst()
        self._destination = FreshDestination()
        self._volume = CampusVolume(settings.volume_window_s)
        self._levels = _Level()
        self._now: float | None = None
        self._watch_start: float | None = None
        self._pruned_s = float("-inf")
        self.mode: GuardMode | None = None  # None: the configured default

    # ------------------------------------------------------------------------ batches
    def review(
        self, orders: Sequence[IncomingOrder], now_s: float, settings: GuardSettings
    ) -> GuardReview:
        """Read one batch: count its new orders (once each), run the detectors, update the
        level, and say what to do with each suspicious order of the batch."""
        with self._lock:
            now = now_s if self._now is None else max(now_s, self._now)
            self._now = now
            if self._watch_start is None:
                self._watch_start = now
            mode = self.mode or settings.guard_mode
            self._follow(settings)
            self._volume.tick(now)
            newly: dict[Detector, int] = {}
            new = self._count_new(orders, now, settings)
            for record in new:
                self._detect(record, settings, newly, flagging=mode is not GuardMode.OFF)
            volume = self._volume.reading(now, settings)
            level, reason = self._level(now, settings, volume)
            verdicts = self._verdicts(orders, now, mode, level, settings)
            if now - self._pruned_s >= _PRUNE_EVERY_S:
                self._prune(now, settings)
            return GuardReview(level, reason, verdicts, newly, volume, mode)

    def _follow(self, settings: GuardSettings) -> None:
        """Take live changes of the settings the state depends on."""
        if settings.destination_radius_m != self._destinations.radius_m:
            self._destinations = Destinations(self._places, settings.destination_radius_m)
        if settings.volume_window_s != self._volume.window_s:
            self._volume = CampusVolume(settings.volume_window_s)

    def _count_new(
        self, orders: Sequence[IncomingOrder], now: float, settings: GuardSettings
    ) -> list[_Record]:
        fresh_orders = []
        for o in orders:
            record = self._records.get(o.id)
            if record is None:
                fresh_orders.append(o)
            else:
                record.last_seen_s = now
        if not fresh_orders:
            return []
        where = self._destinations.of([o.lat for o in fresh_orders], [o.lng for o in fresh_orders])
        new = []
        for o, (key, name) in zip(fresh_orders, where, strict=True):
            if o.id in self._records:  # an id twice in one batch counts once
                continue
            placed = now if o.placed_s is None else min(o.placed_s, now)
            record = _Record(
                o.id,
                o.customer,
                placed,
                key,
                name,
                self._fresh(o.customer, o.customer_since_s, now, settings),
                now,
            )
            self._records[o.id] = record
            new.append(record)
        new.sort(key=lambda r: r.placed_s)
        self._volume.add(r.placed_s for r in new)
        return new

    def _fresh(
        self, customer: str, since_s: float | None, now: float, settings: GuardSettings
    ) -> bool:
        """Whether ``customer`` has no history: its first order (per the backend, or first
        seen here when this guard has watched the campus long enough to know) is younger than
        ``fresh_account_s``."""
        if not customer:
            return False
        seen = self._accounts.get(customer)
        first = now if seen is None else seen
        if since_s is not None:
            first = min(first, since_s)
        self._accounts[customer] = first
        self._accounts.move_to_end(customer)
        while len(self._accounts) > settings.max_accounts:
            self._accounts.popitem(last=False)
        if now - first >= settings.fresh_account_s:
            return False
        if since_s is not None:
            return True
        assert self._watch_start is not None
        return first - self._watch_start >= settings.fresh_account_s

    def _detect(
        self,
        record: _Record,
        settings: GuardSettings,
        newly: dict[Detector, int],
        *,
        flagging: bool,
    ) -> None:
        """Feed the detectors with a new order; flag what they find (unless ``flagging`` is
        off: the detectors still learn)."""
        c = record.customer
        findings: list[Finding] = []
        if c in self._confirmed_accounts:
            findings.append(
                Finding(
                    Detector.CONFIRMED_ACCOUNT,
                    (record.id,),
                    f"account {c} was confirmed malicious by {self._confirmed_accounts[c]}",
                )
            )
        elif c and c not in self._trusted:
            burst = self._burst.add(c, record.id, record.placed_s, settings, learn=True)
            if burst is not None:
                findings.append(burst)
            crowd = self._destination.add(
                record.destination,
                record.destination_name,
                record.id,
                c,
                record.placed_s,
                record.fresh,
                settings,
            )
            if crowd is not None:
                findings.append(crowd)
        if flagging:
            for finding in findings:
                self._flag(finding, newly)

    def _flag(self, finding: Finding, newly: dict[Detector, int]) -> None:
        for order_id in finding.order_ids:
            if order_id in self._released:
                continue
            record = self._records.get(order_id)
            if record is None or record.customer in self._trusted:
                continue
            known = self._flags.get(order_id)
            if known is None:
                newly[finding.detector] = newly.get(finding.detector, 0) + 1
                self._flagged_at.append((record.placed_s, order_id))
            if known is None or known.detector is finding.detector:  # newest evidence
                self._flags[order_id] = finding

    # --------------------------------------------------------------------------- level
    def _suspicious(self, now: float, settings: GuardSettings) -> int:
        """Flagged orders placed within ``level_window_s`` of ``now``."""
        since = now - settings.level_window_s
        return sum(1 for placed, o in self._flagged_at if placed > since and o in self._flags)

    def _level(
        self, now: float, settings: GuardSettings, volume: VolumeReading
    ) -> tuple[StormLevel, str]:
        """The level of the conditions now (the suspicious orders of the level window, the
        ``volume`` reading), held ``level_hold_s`` after they ease."""
        suspicious = self._suspicious(now, settings)
        ratio = volume.counted_ratio(settings)
        window = f"{settings.level_window_s / 60:.0f} min"
        steps = (
            (StormLevel.SEVERE, settings.severe_orders, settings.volume_severe_ratio),
            (StormLevel.STORM, settings.storm_orders, settings.volume_storm_ratio),
            (StormLevel.ELEVATED, settings.elevated_orders, settings.volume_elevated_ratio),
        )
        for level, orders, times in steps:
            if suspicious >= orders:
                why = f"{suspicious} suspicious orders placed in the last {window} (>= {orders})"
            elif ratio >= times:
                why = (
                    f"{volume.orders} orders in the last {volume_minutes(settings)}, "
                    f"{ratio:.1f}x the normal {volume.normal:.0f} for this time of day "
                    f"(>= {times:g}x)"
                )
            else:
                continue
            self._levels.seen_s[level] = (now, why)
            break
        for level in sorted(self._levels.seen_s, reverse=True):
            seen, why = self._levels.seen_s[level]
            if now - seen <= settings.level_hold_s:
                return level, why if seen == now else f"{why}, {now - seen:.0f} s ago"
        return StormLevel.NORMAL, "no suspicious orders and volume normal for this time of day"

    # ------------------------------------------------------------------------ verdicts
    def _verdicts(
        self,
        orders: Sequence[IncomingOrder],
        now: float,
        mode: GuardMode,
        level: StormLevel,
        settings: GuardSettings,
    ) -> tuple[OrderVerdict, ...]:
        verdicts = []
        for o in orders:
            held = self._held.get(o.id)
            if held is not None:
                held.last_seen_s = now
                evidence = held.evidence
                if held.confirmed:
                    evidence = f"confirmed malicious by {held.reviewed_by}: {evidence}"
                action = Action.QUARANTINE if o.open else Action.FLAG
                verdicts.append(OrderVerdict(o.id, action, held.detector, evidence))
                continue
            finding = self._flags.get(o.id)
            if mode is GuardMode.OFF or finding is None:
                continue
            action = self._action(finding, mode, level, o.open, settings)
            if action is Action.QUARANTINE:
                self._hold(o.id, now)
            verdicts.append(OrderVerdict(o.id, action, finding.detector, finding.evidence))
        return tuple(verdicts)

    def _hold(self, order_id: str, now: float) -> HeldOrder:
        """Hold a flagged order from ``now`` on (with its finding's evidence)."""
        record, finding = self._records[order_id], self._flags[order_id]
        held = HeldOrder(
            order_id,
            record.customer,
            finding.detector,
            finding.evidence,
            record.placed_s,
            now,
            record.destination_name,
            record.last_seen_s,
        )
        self._held[order_id] = held
        return held

    @staticmethod
    def _action(
        finding: Finding, mode: GuardMode, level: StormLevel, is_open: bool, s: GuardSettings
    ) -> Action:
        """What to do with a suspicious order: by mode and level; under a storm (level 2)
        at least deprioritised; an order accepted by a rider or in a bag is only flagged."""
        if not is_open:
            return Action.FLAG
        if finding.detector is Detector.CONFIRMED_ACCOUNT or mode is GuardMode.QUARANTINE:
            return Action.QUARANTINE
        if mode is GuardMode.DEPRIORITISE:
            return Action.DEPRIORITISE
        if mode is GuardMode.FLAG:
            return Action.DEPRIORITISE if level >= StormLevel.STORM else Action.FLAG
        if level >= s.quarantine_level:
            return Action.QUARANTINE
        if level >= s.deprioritise_level:
            return Action.DEPRIORITISE
        return Action.FLAG

    def _prune(self, now: float, settings: GuardSettings) -> None:
        """Forget orders the backend stopped sending, held orders past ``hold_expiry_s``, and
        the detectors' orders older than their windows."""
        self._pruned_s = now
        longest = max(
            settings.customer_window_s,
            settings.destination_window_s,
            settings.level_window_s,
            settings.volume_window_s,
        )
        cutoff = now - longest - _FORGET_AFTER_S
        for order_id in [k for k, r in self._records.items() if r.last_seen_s < cutoff]:
            if order_id not in self._held:
                del self._records[order_id]
                self._flags.pop(order_id, None)
                self._released.discard(order_id)
        for order_id in [
            k for k, h in self._held.items() if h.last_seen_s < now - settings.hold_expiry_s
        ]:
            del self._held[order_id]
            self._records.pop(order_id, None)
            self._flags.pop(order_id, None)
        while self._flagged_at and self._flagged_at[0][0] < now - longest:
            self._flagged_at.popleft()
        self._burst.forget_before(now - settings.customer_window_s)
        self._destination.forget_before(now - settings.destination_window_s)

    # ---------------------------------------------------------------------- operators
    def held_orders(self) -> list[HeldOrder]:
        """The orders held now, oldest first (copies)."""
        with self._lock:
            return sorted(
                (HeldOrder(**{k: getattr(h, k) for k in h.__slots__}) for h in self._held.values()),
                key=lambda h: (h.held_s, h.order_id),
            )

    def held_count(self) -> int:
        """Orders held now."""
        return len(self._held)

    def held_by_state(self) -> dict[str, int]:
        """Orders held now: ``awaiting_review`` and ``confirmed``."""
        with self._lock:
            confirmed = sum(1 for h in self._held.values() if h.confirmed)
            return {"awaiting_review": len(self._held) - confirmed, "confirmed": confirmed}

    def status(self, settings: GuardSettings) -> tuple[StormLevel, str, int]:
        """The level and its reason at the last batch's clock, and the orders flagged within
        ``level_window_s``."""
        with self._lock:
            if self._now is None:
                return StormLevel.NORMAL, "no batch seen yet", 0
            volume = self._volume.reading(self._now, settings)
            level, why = self._level(self._now, settings, volume)
            return level, why, self._suspicious(self._now, settings)

    def _judged(self, named: Sequence[str], accounts: set[str]) -> dict[str, None]:
        """The held or flagged orders a verdict applies to: those named, then every held or
        flagged order of ``accounts`` (in order, each once)."""
        judged = dict.fromkeys(o for o in named if o in self._held or o in self._flags)
        for order_id in [*self._held, *self._flags]:
            record = self._records.get(order_id)
            customer = record.customer if record else self._held[order_id].customer
            if customer in accounts:
                judged.setdefault(order_id)
        return judged

    def release(
        self, order_ids: Iterable[str], customers: Iterable[str], who: str
    ) -> ReviewOutcome:
        """Legitimate: the orders (and every held order of ``customers``) are dispatched from
        the next batch on and never flagged again; the accounts are trusted."""
        del who  # the caller logs who decided
        with self._lock:
            accounts = set(customers)
            named = list(dict.fromkeys(order_ids))
            targets = list(self._judged(named, accounts))
            for order_id in targets:
                self._held.pop(order_id, None)
                self._flags.pop(order_id, None)
                self._released.add(order_id)
            self._trusted |= accounts
            for account in accounts:
                self._confirmed_accounts.pop(account, None)
            unknown = tuple(o for o in named if o not in targets)
            return ReviewOutcome(tuple(targets), unknown)

    def confirm(
        self, order_ids: Iterable[str], customers: Iterable[str], who: str
    ) -> ReviewOutcome:
        """Malicious: the orders (and every held or flagged order of ``customers``) stay held
        as confirmed; later orders of those accounts are held at once. Orders confirmed before
        are not counted again."""
        with self._lock:
            accounts = set(customers)
            named = list(dict.fromkeys(order_ids))
            now = self._now or 0.0
            judged = self._judged(named, accounts)
            targets = [  # those already confirmed stay as they are
                o for o in judged if not (o in self._held and self._held[o].confirmed)
            ]
            for order_id in targets:
                held = self._held.get(order_id) or self._hold(order_id, now)
                held.confirmed, held.reviewed_by = True, who
            for account in accounts:
                self._confirmed_accounts[account] = who
                self._trusted.discard(account)
            unknown = tuple(o for o in named if o not in judged)
            return ReviewOutcome(tuple(targets), unknown)


def volume_minutes(settings: GuardSettings) -> str:
    """The volume window as text."""
    return f"{settings.volume_window_s / 60:.0f} min"


class Guards:
    """The storm guard of every campus, created on the campus's first batch; the mode an
    operator set per campus (in memory: a restart forgets it)."""

    def __init__(self, places_of: Callable[[str], Sequence[NamedPlace]]) -> None:
        self._places_of = places_of
        self._guards: dict[str, StormGuard] = {}
        self._modes: dict[str, GuardMode] = {}
        self._lock = threading.Lock()

    def guard(self, campus_id: str, settings: GuardSettings) -> StormGuard:
        """The campus's guard (created now if it has none)."""
        with self._lock:
            guard = self._guards.get(campus_id)
        if guard is None:
            places = self._places_of(campus_id)  # outside the lock: may load the campus
            with self._lock:
                guard = self._guards.setdefault(campus_id, StormGuard(places, settings))
                guard.mode = self._modes.get(campus_id)
        return guard

    def review(
        self,
        campus_id: str,
        orders: Sequence[IncomingOrder],
        now_s: float,
        settings: GuardSettings,
    ) -> GuardReview:
        """One batch of a campus through its guard."""
        return self.guard(campus_id, settings).review(orders, now_s, settings)

    def set_mode(self, campus_id: str, mode: GuardMode, settings: GuardSettings) -> GuardMode:
        """Set a campus's mode; returns the mode it had."""
        with self._lock:
            old = self._modes.get(campus_id, settings.guard_mode)
            self._modes[campus_id] = mode
            guard = self._guards.get(campus_id)
            if guard is not None:
                guard.mode = mode
            return old

    def mode_of(self, campus_id: str, settings: GuardSettings) -> GuardMode:
        """The mode in force for a campus."""
        with self._lock:
            return self._modes.get(campus_id, settings.guard_mode)

    def existing(self, campus_id: str) -> StormGuard | None:
        """The campus's guard if it has seen a batch."""
        with self._lock:
            return self._guards.get(campus_id)

    def campuses(self) -> list[str]:
        """Campuses whose guard has seen a batch or whose mode was set."""
        with self._lock:
            return sorted(set(self._guards) | set(self._modes))
