"""The replay simulator: a virtual clock over a scenario; every batch it builds the dispatcher's
view (riders where they are, orders open, committed or onboard), asks a policy for a plan, and
lets the riders execute it until the next batch, recording every order's life."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from campus_maps import MODES
from scenarios.model import Point, Scenario, ScenarioOrder, ScenarioRider
from scenarios.replay.policies import Decision, OrderSource, Policy, Snapshot
from scenarios.replay.travel import TravelModel, point_along, rest_of_path
from solver.check import check_plan
from solver.model import OrderState, Problem
from solver.params import SolverParams
from solver.plan import Engine, StopKind
from solver.routes import Visit, build_plan
from solver.spec import ProblemBuilder


class PlanExecutionError(RuntimeError):
    """A policy's plan broke a rule of the problem it was given (caught by the checker)."""


@dataclass(frozen=True, slots=True)
class Leg:
    """A timed stop of a rider's itinerary, on the scenario clock (s from the period start).

    ``leg_start_s`` is when the rider leaves for it (departure from the previous stop).
    """

    order_id: str
    kind: StopKind
    point: Point
    leg_start_s: int
    arrival_s: int
    start_s: int
    departure_s: int


#: Order ids of malicious orders start with this (the ground truth of storm scenarios).
MALICIOUS_PREFIX = "storm-"


@dataclass
class OrderRecord:
    """The life of one order in a replay (times in s from the period start).

    Attributes
    ----------
    flagged_s
        The first batch whose answer flagged the order as suspicious (storm guard), or ``None``.
    flag_action, flag_detector, flag_evidence
        What that first flag said (:class:`~scenarios.replay.policies.Flag`; ``""``: never
        flagged).
    held_s
        The first batch whose answer held the order (unassigned QUARANTINED), or ``None``.
    planned_rider
        The rider the last answer that routed the order planned it on (``None``: never).
    shown_rider
        The rider whose phone the order was last pushed to (``None``: never pushed). An answer
        marking it tentative (planned, not pushed yet) does not push it.
    moves
        Answers that planned the order, before its pickup, on a rider other than
        ``shown_rider``: it leaves a phone it was on (an answer leaving it out does not
        count, nor reset the rider).
    tentative_moves
        Answers that planned it, before its pickup and before it reached any phone, on a rider
        other than ``planned_rider``: re-planning no rider sees.
    first_eta_s, last_eta_s
        The first and the latest drop-off ETA quoted for it (planned arrival at the customer,
        s from the period start), or ``None``.
    etas
        Answers that quoted it an ETA (every answer routing it until delivery).
    eta_churn_s
        Sum of ``|ETA_k - ETA_(k-1)|`` over consecutive quoted ETAs.
    """

    id: str
    placed_s: int
    ready_s: int
    promised_s: int
    rider_id: str | None = None
    first_planned_s: int | None = None
    picked_up_s: int | None = None
    delivered_s: int | None = None
    flagged_s: int | None = None
    flag_action: str = ""
    flag_detector: str = ""
    flag_evidence: str = ""
    held_s: int | None = None
    planned_rider: str | None = None
    shown_rider: str | None = None
    moves: int = 0
    tentative_moves: int = 0
    first_eta_s: int | None = None
    last_eta_s: int | None = None
    etas: int = 0
    eta_churn_s: int = 0

    def note_plan(self, rider_id: str, eta_s: int | None, *, pushed: bool = True) -> None:
        """Record one answer that routes the order on ``rider_id`` with drop-off ETA
        ``eta_s`` (``None``: no drop-off in the route); ``pushed``: the backend pushes it to
        that rider's phone (``False``: tentative)."""
        if self.picked_up_s is None:
            if self.shown_rider is not None:
                if rider_id != self.shown_rider:
                    self.moves += 1
            elif self.planned_rider is not None and rider_id != self.planned_rider:
                self.tentative_moves += 1
            self.planned_rider = rider_id
            if pushed:
                self.shown_rider = rider_id
        elif self.planned_rider is None:
            self.planned_rider = rider_id
        if eta_s is None:
            return
        if self.last_eta_s is None:
            self.first_eta_s = eta_s
        else:
            self.eta_churn_s += abs(eta_s - self.last_eta_s)
        self.last_eta_s = eta_s
        self.etas += 1

    @property
    def first_eta_error_s(self) -> int | None:
        """``|first ETA - delivery|`` of a delivered order quoted an ETA, else ``None``."""
        if self.delivered_s is None or self.first_eta_s is None:
            return None
        return abs(self.first_eta_s - self.delivered_s)

    @property
    def delivered(self) -> bool:
        """Whether the order reached its customer."""
        return self.delivered_s is not None

    @property
    def malicious(self) -> bool:
        """Whether the order is part of a malicious storm (its id starts with ``storm-``)."""
        return self.id.startswith(MALICIOUS_PREFIX)

    @property
    def flagged(self) -> bool:
        """Whether the storm guard ever flagged the order."""
        return self.flagged_s is not None

    @property
    def held(self) -> bool:
        """Whether the storm guard ever held the order (unassigned QUARANTINED)."""
        return self.held_s is not None

    @property
    def late_s(self) -> int:
        """Seconds after the promised time at delivery (0 when on time or not delivered)."""
        return 0 if self.delivered_s is None else max(0, self.delivered_s - self.promised_s)


@dataclass
class RiderRecord:
    """What one rider did: busy time, trips, deliveries, and its position track."""

    id: str
    mode: str
    shift_start_s: int
    shift_end_s: int
    busy_s: int = 0
    trips: int = 0
    deliveries: int = 0
    max_load: int = 0
    track: list[tuple[int, Point]] = field(default_factory=list)


@dataclass
class BatchRecord:
    """One dispatch call of a replay.

    Attributes
    ----------
    t_s
        Batch time (s from the period start).
    open_orders
        Placed, not yet picked up (open or committed).
    onboard
        Orders in bags.
    riders
        Riders in the problem.
    latency_s
        Wall time of the whole dispatch call (view building and travel matrices included).
    matrix_s
        Of which: building the view and the travel matrices.
    engine, shed_reason, rejected
        As in :class:`~scenarios.replay.policies.Decision`.
    unplanned
        Visible orders the plan left out (held orders among them).
    storm_level
        The campus's storm level after this batch (0 normal … 3 severe) as the answer said; a
        rejected batch keeps the level of the last answer. Always 0 without a storm guard.
    held
        Orders the answer held (unassigned QUARANTINED); 0 for a rejected batch.
    flagged
        Orders the answer flagged as suspicious (any action); 0 for a rejected batch.
    """

    t_s: int
    open_orders: int
    onboard: int
    riders: int
    latency_s: float
    matrix_s: float
    engine: str
    shed_reason: str = ""
    rejected: str = ""
    unplanned: int = 0
    storm_level: int = 0
    held: int = 0
    flagged: int = 0


@dataclass
class RouteSnapshot:
    """Where things were at one moment, for the route map picture.

    Attributes
    ----------
    t_s
        The moment (s from the period start).
    riders
        Rider id to (position, polyline of its remaining route).
    merchants, customers
        Points of the orders open or onboard then.
    """

    t_s: int
    riders: dict[str, tuple[Point, NDArray[np.float64]]]
    merchants: list[Point]
    customers: list[Point]


@dataclass
class ReplayResult:
    """Everything a replay recorded (the KPIs are computed from it)."""

    scenario: str
    policy: str
    geometry: str
    batch_interval_s: int
    orders: list[OrderRecord]
    riders: list[RiderRecord]
    batches: list[BatchRecord]
    wall_s: float
    end_s: int
    snapshot: RouteSnapshot | None = None


@dataclass(frozen=True)
class ReplayConfig:
    """How a replay runs.

    Attributes
    ----------
    batch_interval_s
        Virtual seconds between dispatch calls (default 30).
    lookahead_s
        Riders whose shift starts within this many seconds are offered to the dispatcher.
    drain_s
        After the last shift end, riders keep delivering what is in their bags for at most
        this long.
    realtime_speed
        ``0``: as fast as possible (offline). ``k > 0``: the virtual clock runs ``k`` times
        faster than the wall clock (``1``: real time).
    check_plans
        Check every plan with :func:`solver.check.check_plan` and raise
        :class:`PlanExecutionError` on a violation (tests; costs time).
    snapshot_at_s
        Record a :class:`RouteSnapshot` at the first batch at or after this time; ``None``:
        at the batch with the most open orders.
    accept_delay_s
        How long a rider takes to accept an order pushed to its phone (s). A real backend
        pushes every planned order to its rider at once (*assigned*: sent back as
        ``assigned_rider_id``, soft) and holds it there once the rider accepts (*committed*:
        hard). Every assignment to a new rider restarts the delay. Policies that re-plan
        freely (:attr:`~scenarios.replay.policies.Policy.replans_freely`) get neither.
    """

    batch_interval_s: int = 30
    lookahead_s: int = 1800
    drain_s: int = 7200
    realtime_speed: float = 0.0
    check_plans: bool = False
    snapshot_at_s: int | None = None
    accept_delay_s: int = 60

    def __post_init__(self) -> None:
        if self.batch_interval_s <= 0:
            raise ValueError(f"batch_interval_s={self.batch_interval_s}: must be > 0")
        if self.accept_delay_s < 0:
            raise ValueError(f"accept_delay_s={self.accept_delay_s}: must be >= 0")


@dataclass(frozen=True, slots=True)
class _Assignment:
    """An order pushed to a rider's phone at ``since_s``, not accepted yet; ``pickup_s`` is the
    pickup the last plan planned for it (what the backend echoes back)."""

    rider_id: str
    since_s: int
    pickup_s: int


class _RiderState:
    """A rider during a replay: where it is, its timed itinerary and its bag."""

    def __init__(self, rider: ScenarioRider) -> None:
        self.rider = rider
        self.position = rider.position
        self.free_at = rider.shift_start_s
        self.itinerary: list[Leg] = []
        self.bag: set[str] = set()
        self.load = 0
        self.record = RiderRecord(rider.id, rider.mode, rider.shift_start_s, rider.shift_end_s)
        self.record.track.append((rider.shift_start_s, rider.position))
        self._path_key: tuple[Point, Point] | None = None
        self._path: NDArray[np.float64] | None = None

    def leg_path(self, travel: TravelModel, leg: Leg) -> NDArray[np.float64]:
        key = (self.position, leg.point)
        if self._path_key != key or self._path is None:
            self._path = travel.path(self.position, leg.point, self.rider.mode)
            self._path_key = key
        return self._path

    def under_way(self, t: int) -> bool:
        """Whether the rider has left for its next stop by time ``t``."""
        return bool(self.itinerary) and t >= self.itinerary[0].leg_start_s

    def where(self, t: int, travel: TravelModel) -> tuple[Point, Point, int, bool]:
        """The rider at time ``t``: where it is, where it can be planned from and when, and
        whether it is on its way to its next stop.

        A rider on its way finishes that leg (no U-turns mid-street): it is planned from the
        stop it is heading to, available when it arrives there.
        """
        if not self.itinerary:
            return (
                self.position,
                self.position,
                max(t, self.free_at, self.rider.shift_start_s),
                False,
            )
        nxt = self.itinerary[0]
        if t < nxt.leg_start_s:  # still serving its last stop
            return self.position, self.position, nxt.leg_start_s, False
        if t >= nxt.arrival_s:  # at the next stop, waiting for the food
            return nxt.point, nxt.point, t, True
        span = nxt.arrival_s - nxt.leg_start_s
        fraction = (t - nxt.leg_start_s) / span if span > 0 else 1.0
        here = point_along(self.leg_path(travel, nxt), fraction, travel)
        return here, nxt.point, nxt.arrival_s, True


class Simulator:
    """Replays a scenario against a dispatch policy on a virtual clock.

    The simulator is the order backend: each planned order is pushed to its rider at once
    (sent back in the next batches as ``assigned_rider_id`` with the planned pickup arrival:
    soft), unless the answer marks it tentative (:attr:`Decision.tentative`: planned, not to be
    pushed yet, see ``SolverParams.dispatch_horizon_s``); it is committed to that rider once the
    rider has had it for ``config.accept_delay_s`` (then hard), as is the order a rider is on
    its way to pick up; an order the plan leaves out is taken off its rider's phone. The
    first drop-off ETA quoted to the student is sent back with the order
    (``quoted_dropoff_s``), the promise later plans are priced against. A policy that re-plans
    freely (``policy.replans_freely``: the search before issue 18) gets none of these: only
    the pickup a rider is heading to stays.

    An order a plan leaves out (unassigned for any reason, held by a storm guard included)
    stays open: it is in every later snapshot until delivered, with no expiry. The replay ends
    when every order is delivered, or once every order is placed, every shift is over and the
    bags are empty (or ``drain_s`` after that); what is left then counts as undelivered.

    Every answer that routes an order is recorded on it (:meth:`OrderRecord.note_plan`): the
    rider it is planned on (moves count before pickup) and the drop-off ETA quoted to the
    student: the policy's own (:attr:`Decision.eta_s`: the solver plan's, or the service's
    ``arrival_time``), else the planned arrival of this simulator's timing of the visits (the
    same :func:`solver.routes.build_plan` timing on the same problem, used for ``nearest``).

    Parameters
    ----------
    scenario
        The peak period.
    travel
        Its travel model (:func:`scenarios.replay.travel.travel_for_scenario`).
    policy
        Who dispatches.
    params
        Solver parameters: the objective the plans are timed and checked with.
    config
        Batch interval, real-time speed, checks.
    progress
        Called after every batch with (virtual time, expected end): the end is the last
        shift end or order, or the next batch once the replay runs past it (riders still
        delivering); and once when the replay ends, with (end, end).
    record
        Called with every snapshot before it is dispatched (e.g. to write the requests).
    """

    def __init__(
        self,
        scenario: Scenario,
        travel: TravelModel,
        policy: Policy,
        params: SolverParams,
        config: ReplayConfig | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        record: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.travel = travel
        self.policy = policy
        self.params = params
        self.config = config or ReplayConfig()
        self.progress = progress
        self.record = record
        self.orders: dict[str, ScenarioOrder] = {o.id: o for o in scenario.orders}
        self.log: dict[str, OrderRecord] = {
            o.id: OrderRecord(o.id, o.placed_s, o.ready_s, o.promised_s) for o in scenario.orders
        }
        self.riders = {r.id: _RiderState(r) for r in scenario.riders}
        self.committed: dict[str, str] = {}  # order id -> the rider that accepted it
        self.assigned: dict[str, _Assignment] = {}  # pushed to a rider, not accepted yet
        self.batches: list[BatchRecord] = []
        self.snapshot: RouteSnapshot | None = None
        self._snapshot_open = -1
        self.epoch_s = datetime.fromisoformat(scenario.start_time).timestamp()

    # ------------------------------------------------------------------ the loop
    def run(self) -> ReplayResult:
        """Run the replay to the end and return what it recorded."""
        began = time.perf_counter()
        interval = self.config.batch_interval_s
        first = min([o.placed_s for o in self.scenario.orders], default=0)
        t = (first // interval) * interval
        last_shift = max(r.shift_end_s for r in self.scenario.riders)
        last_order = max([o.placed_s for o in self.scenario.orders], default=0)
        expected_end = max(last_shift, last_order)
        stop_at = expected_end + self.config.drain_s
        while True:
            self.advance(t)
            if self._finished(t, last_shift, last_order) or t >= stop_at:
                break
            self.dispatch(t)
            if self.progress is not None:
                self.progress(t, max(expected_end, t + interval))
            if self.config.realtime_speed > 0:
                due = began + (t + interval - first) / self.config.realtime_speed
                time.sleep(max(0.0, due - time.perf_counter()))
            t += interval
        if self.progress is not None:
            self.progress(t, t)  # the end: the period actually replayed
        return ReplayResult(
            scenario=self.scenario.name,
            policy=self.policy.name,
            geometry=self.scenario.geometry.kind,
            batch_interval_s=interval,
            orders=list(self.log.values()),
            riders=[s.record for s in self.riders.values()],
            batches=self.batches,
            wall_s=time.perf_counter() - began,
            end_s=t,
            snapshot=self.snapshot,
        )

    def _finished(self, t: int, last_shift: int, last_order: int) -> bool:
        """Every order delivered, or nothing more can happen (placed all, shifts over, bags
        empty)."""
        if all(r.delivered for r in self.log.values()):
            return True
        busy = any(s.itinerary or s.bag for s in self.riders.values())
        return t > last_order and t > last_shift and not busy

    # ------------------------------------------------------------------ execution
    def advance(self, t: int) -> None:
        """Let every rider carry out its itinerary up to time ``t``."""
        for state in self.riders.values():
            while state.itinerary and state.itinerary[0].start_s <= t:
                self._execute(state, state.itinerary.pop(0))

    def _execute(self, state: _RiderState, leg: Leg) -> None:
        record, log = state.record, self.log[leg.order_id]
        # (it may have been seen waiting there already, at a batch after its arrival)
        record.track.append((max(leg.arrival_s, record.track[-1][0]), leg.point))
        record.busy_s += leg.departure_s - leg.leg_start_s
        state.position, state.free_at = leg.point, leg.departure_s
        size = self.orders[leg.order_id].size
        if leg.kind is StopKind.PICKUP:
            if not state.bag:
                record.trips += 1
            state.bag.add(leg.order_id)
            state.load += size
            record.max_load = max(record.max_load, state.load)
            log.picked_up_s, log.rider_id = leg.start_s, state.rider.id
        else:
            state.bag.discard(leg.order_id)
            state.load -= size
            log.delivered_s, log.rider_id = leg.start_s, state.rider.id
            record.deliveries += 1
            self.committed.pop(leg.order_id, None)
            self.assigned.pop(leg.order_id, None)

    # ------------------------------------------------------------------ dispatching
    def view(self, t: int) -> Snapshot | None:
        """The dispatcher's view at ``t`` (``None`` when there is nothing to dispatch)."""
        visible = [
            self.orders[k]
            for k, rec in self.log.items()
            if rec.placed_s <= t and rec.delivered_s is None
        ]
        if not visible:
            return None
        heading: dict[str, str] = {}  # order id -> rider heading to its pickup
        rider_modes: dict[str, str] = {}
        current: dict[str, list[Visit]] = {}
        active = [
            state
            for state in self.riders.values()
            if state.itinerary
            or state.bag
            or (
                state.rider.shift_start_s <= t + self.config.lookahead_s
                and t < state.rider.shift_end_s
            )
        ]
        build: ProblemBuilder[Point] = ProblemBuilder(MODES)
        for state in active:
            r = state.rider
            position, location, available, moving = state.where(t, self.travel)
            if moving:
                state.record.track.append((t, position))
                nxt = state.itinerary[0]
                if nxt.kind is StopKind.PICKUP:
                    heading[nxt.order_id] = r.id
            build.add_rider(
                r.id,
                location,
                r.mode,
                available_s=available,
                shift_end_s=r.shift_end_s,
                capacity=r.capacity,
            )
            rider_modes[r.id] = r.mode
            current[r.id] = [(leg.order_id, leg.kind) for leg in state.itinerary]
        present = set(rider_modes)
        for o in visible:
            rec = self.log[o.id]
            owner = rec.rider_id if rec.picked_up_s is not None else None
            if owner is not None:
                kind, rider_id = OrderState.ONBOARD, owner
            elif o.id in heading:
                kind, rider_id = OrderState.COMMITTED, heading[o.id]
            elif self._accepted(o.id, t) in present:
                kind, rider_id = OrderState.COMMITTED, self.committed[o.id]
            else:
                kind, rider_id = OrderState.OPEN, None
            pushed = self.assigned.get(o.id) if kind is OrderState.OPEN else None
            build.add_order(
                o.id,
                None if kind is OrderState.ONBOARD else o.merchant,
                o.customer,
                ready_s=o.ready_s,
                due_s=o.promised_s,
                size=o.size,
                pickup_service_s=o.pickup_service_s,
                dropoff_service_s=o.dropoff_service_s,
                max_in_bag_s=o.max_in_bag_s,
                state=kind,
                rider_id=rider_id,
                picked_up_s=rec.picked_up_s,
                assigned_rider_id=None if pushed is None else pushed.rider_id,
                assigned_pickup_s=None if pushed is None else pushed.pickup_s,
                quoted_dropoff_s=None if self.policy.replans_freely else rec.first_eta_s,
            )
        # The plan being executed, less what no longer fits (orders pinned elsewhere, pickups
        # of orders already in a bag).
        by_id = {o.id: o for o in build.orders}

        def keeps(rider_id: str, visit: Visit) -> bool:
            order = by_id.get(visit[0])
            if order is None or order.rider_id not in (None, rider_id):
                return False
            return not (visit[1] is StopKind.PICKUP and order.state is OrderState.ONBOARD)

        for rider_id, seq in current.items():
            current[rider_id] = [v for v in seq if keeps(rider_id, v)]
        coords = np.array([(p.a, p.b) for p in build.keys], dtype=np.float64).reshape(-1, 2)
        modes = build.modes
        if not modes:
            return None
        time_s, dist_m = self.travel.matrices(coords, modes)
        problem = build.problem(t, time_s, dist_m)
        xy = self.travel.planar(coords)
        customers = {
            o.id: OrderSource(o.account, o.placed_s, o.merchant_id, o.account_since_s)
            for o in visible
        }
        return Snapshot(
            problem, coords, modes, rider_modes, current, self.epoch_s, xy, customers=customers
        )

    def dispatch(self, t: int) -> None:
        """One batch at ``t``: build the view, ask the policy, hand out the itineraries."""
        began = time.perf_counter()
        snapshot = self.view(t)
        if snapshot is None:
            return
        built = time.perf_counter()
        if self.record is not None:
            self.record(snapshot)
        decision = self.policy.dispatch(snapshot)
        latency = time.perf_counter() - began
        problem = snapshot.problem
        level = decision.storm_level
        if decision.rejected:  # no answer: the campus is as the last answer said
            level = self.batches[-1].storm_level if self.batches else 0
        batch = BatchRecord(
            t_s=t,
            open_orders=sum(1 for o in problem.orders if o.state is not OrderState.ONBOARD),
            onboard=sum(1 for o in problem.orders if o.state is OrderState.ONBOARD),
            riders=len(problem.riders),
            latency_s=latency,
            matrix_s=built - began,
            engine=decision.engine,
            shed_reason=decision.shed_reason,
            rejected=decision.rejected,
            storm_level=level,
        )
        self.batches.append(batch)
        if decision.rejected:
            return
        self._record_guard(t, decision, batch)
        batch.unplanned = self._apply(t, snapshot, decision)
        self._maybe_snapshot(t, snapshot, batch)

    def _record_guard(self, t: int, decision: Decision, batch: BatchRecord) -> None:
        """Record what the storm guard said in this answer: counts on the batch, the first
        flag and the first hold on each order. A held order stays open: it is in the next
        snapshots (and sent again) until delivered, like any order the plan leaves out."""
        batch.flagged = sum(1 for k in decision.flagged if k in self.log)
        batch.held = sum(1 for k in decision.held if k in self.log)
        for order_id, flag in decision.flagged.items():
            log = self.log.get(order_id)
            if log is not None and log.flagged_s is None:
                log.flagged_s = t
                log.flag_action, log.flag_detector = flag.action, flag.detector
                log.flag_evidence = flag.evidence
        for order_id in decision.held:
            log = self.log.get(order_id)
            if log is not None and log.held_s is None:
                log.held_s = t

    def _apply(self, t: int, snapshot: Snapshot, decision: Decision) -> int:
        """Hand each rider its timed itinerary; returns how many visible orders it left out."""
        problem = snapshot.problem
        visits = {r.id: list(decision.visits.get(r.id, ())) for r in problem.riders}
        routed = {order_id for seq in visits.values() for order_id, _ in seq}
        if self.config.check_plans:
            unassigned = [o.id for o in problem.orders if o.id not in routed]
            self._check(problem, visits, unassigned)
        on_the_way: dict[str, Leg] = {}
        for rider_id, seq in visits.items():
            state = self.riders[rider_id]
            if state.under_way(t):
                nxt = on_the_way[rider_id] = state.itinerary[0]
                heading = (nxt.order_id, nxt.kind)
                if heading in seq:  # the leg under way is finished first
                    seq.remove(heading)
                    seq.insert(0, heading)
        plan = build_plan(problem, self.params, visits, [], engine=Engine.GREEDY)
        for route in plan.routes:
            state = self.riders[route.rider_id]
            rider = problem.riders[problem.rider_index[route.rider_id]]
            lat, lng = snapshot.points[rider.location]
            location = Point(float(lat), float(lng))
            leave = problem.start_time(rider)
            if route.rider_id in on_the_way and route.stops:
                leave = on_the_way[route.rider_id].leg_start_s  # the leg under way goes on
            elif route.rider_id in on_the_way:
                # given nothing to do (its heading stop dropped): it finishes the leg anyway
                state.free_at = on_the_way[route.rider_id].arrival_s
            under_way = on_the_way.get(route.rider_id) if route.stops else None
            legs: list[Leg] = []
            for stop in route.stops:
                lat, lng = snapshot.points[stop.location]
                legs.append(
                    Leg(
                        stop.order_id,
                        stop.kind,
                        Point(float(lat), float(lng)),
                        leave,
                        min(stop.arrival_s, under_way.arrival_s)
                        if under_way is not None and not legs
                        else stop.arrival_s,
                        stop.start_s,
                        stop.departure_s,
                    )
                )
                leave = stop.departure_s
            if route.rider_id not in on_the_way or not route.stops:
                state.position = location  # a new itinerary starts from where it is planned
            state.itinerary = legs
            for stop in route.stops:
                log = self.log[stop.order_id]
                if log.first_planned_s is None:
                    log.first_planned_s = t
                pushed = self.policy.replans_freely or stop.order_id not in decision.tentative
                if stop.kind is StopKind.DROPOFF:  # ETA: the policy's, else this timing
                    eta = decision.eta_s.get(stop.order_id, stop.arrival_s)
                    log.note_plan(route.rider_id, eta, pushed=pushed)
                elif pushed and not self.policy.replans_freely:
                    self._push(stop.order_id, route.rider_id, t, stop.arrival_s)
        for order_id in [k for k in self.assigned if k not in routed]:
            del self.assigned[order_id]  # left out: the backend takes it off the rider's phone
        return sum(1 for o in problem.orders if o.id not in routed)

    def _push(self, order_id: str, rider_id: str, t: int, pickup_s: int) -> None:
        """The backend pushes a planned order to its rider's phone: a new rider restarts the
        accept delay; the same rider keeps its start (the planned pickup is updated)."""
        if self.committed.get(order_id) == rider_id:
            return
        self.committed.pop(order_id, None)  # its rider left: a new one takes it
        was = self.assigned.get(order_id)
        since = t if was is None or was.rider_id != rider_id else was.since_s
        self.assigned[order_id] = _Assignment(rider_id, since, pickup_s)

    def _accepted(self, order_id: str, t: int) -> str | None:
        """The rider that has accepted ``order_id`` by ``t`` (``None``: none yet): an assigned
        order is committed once its rider has had it for the accept delay."""
        pushed = self.assigned.get(order_id)
        if pushed is not None and t - pushed.since_s >= self.config.accept_delay_s:
            self.committed[order_id] = pushed.rider_id
            del self.assigned[order_id]
        return self.committed.get(order_id)

    def _check(
        self, problem: Problem, visits: Mapping[str, Sequence[Visit]], unassigned: list[str]
    ) -> None:
        from solver.plan import Unassigned, UnassignedReason

        plan = build_plan(
            problem,
            self.params,
            visits,
            [Unassigned(k, UnassignedReason.NO_FEASIBLE_INSERTION) for k in unassigned],
            engine=Engine.GREEDY,
        )
        result = check_plan(problem, plan, self.params)
        bad = [
            v
            for v in result.violations
            if self.policy.enforces_lateness_cap or "exceeds max_lateness_s" not in v
        ]
        if bad:
            raise PlanExecutionError(
                f"{self.policy.name} at t={problem.now_s}: {'; '.join(bad[:5])}"
            )

    def _maybe_snapshot(self, t: int, snapshot: Snapshot, batch: BatchRecord) -> None:
        at = self.config.snapshot_at_s
        if at is None:
            if batch.open_orders <= self._snapshot_open:
                return
            self._snapshot_open = batch.open_orders
        elif self.snapshot is not None or t < at:
            return
        riders: dict[str, tuple[Point, NDArray[np.float64]]] = {}
        for state in self.riders.values():
            if not state.itinerary:
                continue
            here, _, _, moving = state.where(t, self.travel)
            lines = [np.array([[here.a, here.b]])]
            prev = here
            legs = state.itinerary
            if moving:  # the leg under way: what is left of its path (``here`` is on it)
                nxt = legs[0]
                span = max(1, nxt.arrival_s - nxt.leg_start_s)
                fraction = min(1.0, (t - nxt.leg_start_s) / span)
                lines = [rest_of_path(state.leg_path(self.travel, nxt), fraction, self.travel)]
                prev, legs = nxt.point, legs[1:]
            for leg in legs:
                lines.append(self.travel.path(prev, leg.point, state.rider.mode)[1:])
                prev = leg.point
            riders[state.rider.id] = (here, np.vstack(lines))
        visible = [self.orders[o.id] for o in snapshot.problem.orders]
        self.snapshot = RouteSnapshot(
            t,
            riders,
            [o.merchant for o in visible if self.log[o.id].picked_up_s is None],
            [o.customer for o in visible],
        )


def busiest_moment(scenario: Scenario, batch_interval_s: int) -> int | None:
    """The batch time with the most orders placed and not yet promised (``placed_s <= t <
    promised_s``): the peak of the demand, the same whichever policy dispatches (so route maps
    of several policies show the same moment); the first such batch on a tie, ``None`` without
    orders."""
    if not scenario.orders or batch_interval_s <= 0:
        return None
    placed = np.array([o.placed_s for o in scenario.orders], dtype=np.int64)
    promised = np.array([o.promised_s for o in scenario.orders], dtype=np.int64)
    first = int(placed.min()) // batch_interval_s * batch_interval_s
    times = np.arange(first, int(placed.max()) + batch_interval_s, batch_interval_s)
    counts = np.searchsorted(np.sort(placed), times, side="right") - np.searchsorted(
        np.sort(promised), times, side="right"
    )
    return int(times[int(np.argmax(counts))])


def replay(
    scenario: Scenario,
    travel: TravelModel,
    policy: Policy,
    params: SolverParams,
    config: ReplayConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    record: Callable[[Snapshot], None] | None = None,
) -> ReplayResult:
    """Replay ``scenario`` against ``policy`` (see :class:`Simulator`)."""
    simulator = Simulator(
        scenario, travel, policy, params, config, progress=progress, record=record
    )
    return simulator.run()
