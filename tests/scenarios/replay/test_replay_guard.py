"""Replays against a storm guard (issue 16): the account's age goes out as ``customer_since``,
what the guard answers (storm level, flagged and held orders) is recorded per batch and per
order, held orders stay open and are sent again every batch, the guard KPIs add up on a
hand-made result, and the KPI picture gains its guard panel only when there is something to
show. No server: fake policies and hand-built responses stand in for the service."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from api.codec import epoch_of
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import Campus, load_campus
from scenarios.model import Scenario
from scenarios.replay.kpis import (
    KPI_INFO,
    STORM_KPI_INFO,
    compute_kpis,
    format_table,
    write_kpis,
    write_orders_csv,
)
from scenarios.replay.plots import plot_kpis_over_time
from scenarios.replay.policies import Decision, Flag, Snapshot, make_policy
from scenarios.replay.remote import GrpcService, guard_of_response, request_from_snapshot
from scenarios.replay.simulate import (
    BatchRecord,
    OrderRecord,
    ReplayConfig,
    ReplayResult,
    replay,
)
from scenarios.replay.travel import CampusTravel
from solver.model import OrderState
from solver.plan import StopKind
from solver.routes import Visit
from tests.scenarios.replay.test_simulate import PARAMS, short_tiny

DAY = 86_400
#: The storm in the test scenario: these orders of the tiny lunch become malicious.
STORM = {"o4": "storm-1", "o8": "storm-2", "o9": "storm-3"}
#: The batch from which the fake guard holds the storm orders (before: it flags them only).
HOLD_FROM_S = 2400


@pytest.fixture(scope="module")
def tiny() -> Campus:
    return load_campus("tiny")


def storm_tiny() -> Scenario:
    """The first ten tiny-lunch orders, three of them malicious (``storm-*``, one fresh
    account), the others from accounts a month old but one of unknown age; shifts end at
    100 min so that the replay, which cannot deliver the held orders, ends soon."""
    base = short_tiny(10)
    orders = []
    for o in base.orders:
        if o.id in STORM:
            orders.append(
                dataclasses.replace(
                    o, id=STORM[o.id], account="fresh", account_since_s=o.placed_s - 120
                )
            )
        elif o.id == "o2":
            orders.append(dataclasses.replace(o, account_since_s=None))
        else:
            orders.append(dataclasses.replace(o, account_since_s=-30 * DAY))
    riders = [dataclasses.replace(r, shift_end_s=min(r.shift_end_s, 6000)) for r in base.riders]
    return dataclasses.replace(base, orders=tuple(orders), riders=tuple(riders))


def without(visits: Mapping[str, Sequence[Visit]], ids: frozenset[str]) -> dict[str, list[Visit]]:
    """``visits`` less the stops of the orders ``ids``."""
    return {r: [v for v in seq if v[0] not in ids] for r, seq in visits.items()}


class FakeGuard:
    """The greedy with a storm guard in front, as the service answers: ``storm-*`` orders are
    flagged (detector ``customer_burst``) from the first batch they are seen, level 1; from
    :data:`HOLD_FROM_S` the level is 2 and open ``storm-*`` orders are quarantined (held:
    left out of the plan). ``o1`` is a false positive (``FLAG`` only, ``fresh_destination``).
    The batches in ``reject_at`` get no answer."""

    name = "guarded"
    replans_freely = False
    enforces_lateness_cap = True

    def __init__(self, reject_at: frozenset[int] = frozenset()) -> None:
        self.greedy = make_policy("greedy", PARAMS, 0.05)
        self.reject_at = reject_at
        self.seen: list[Snapshot] = []

    def dispatch(self, snapshot: Snapshot) -> Decision:
        self.seen.append(snapshot)
        now = snapshot.problem.now_s
        if now in self.reject_at:
            return Decision({}, "none", rejected="UNAVAILABLE")
        orders = snapshot.problem.orders
        storm = [o for o in orders if o.id.startswith("storm-")]
        holding = now >= HOLD_FROM_S
        held = frozenset(o.id for o in storm if holding and o.state is OrderState.OPEN)
        flagged = {
            o.id: Flag(
                "quarantine" if o.id in held else "deprioritise",
                "customer_burst",
                f"account fresh ordered {len(storm)} times",
            )
            for o in storm
        }
        if any(o.id == "o1" for o in orders):
            flagged["o1"] = Flag("flag", "fresh_destination", "new destination")
        level = 2 if holding else (1 if storm else 0)
        plan = self.greedy.dispatch(snapshot)
        visits = without(plan.visits, held)
        return Decision(visits, "greedy", storm_level=level, flagged=flagged, held=held)

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def guarded(tiny: Campus) -> tuple[FakeGuard, ReplayResult]:
    policy = FakeGuard(reject_at=frozenset({HOLD_FROM_S + 120}))
    config = ReplayConfig(batch_interval_s=60)
    result = replay(storm_tiny(), CampusTravel(tiny), policy, PARAMS, config)
    return policy, result


# ----------------------------------------------------------------- what the backend knows
def test_the_simulator_tells_the_policy_since_when_each_account_orders(
    guarded: tuple[FakeGuard, ReplayResult],
) -> None:
    policy, _ = guarded
    scenario = {o.id: o for o in storm_tiny().orders}
    checked = 0
    for snapshot in policy.seen:
        assert set(snapshot.customers) == {o.id for o in snapshot.problem.orders}
        for order_id, source in snapshot.customers.items():
            assert source.account_since_s == scenario[order_id].account_since_s
            assert source.account == scenario[order_id].account
            checked += 1
    assert checked


def test_a_request_carries_customer_since_when_the_account_age_is_known(
    guarded: tuple[FakeGuard, ReplayResult],
) -> None:
    policy, _ = guarded
    scenario = {o.id: o for o in storm_tiny().orders}
    known = unknown = 0
    for snapshot in policy.seen:
        request = request_from_snapshot(snapshot, "tiny", budget_s=0.1)
        for order in request.orders:
            since = scenario[order.id].account_since_s
            if since is None:
                assert not order.HasField("customer_since")
                unknown += 1
            else:
                assert epoch_of(order.customer_since) == snapshot.epoch_s + since
                assert epoch_of(order.customer_since) <= epoch_of(request.now)
                known += 1
            assert order.customer_id == scenario[order.id].account
    assert known and unknown


# ------------------------------------------------------------------ what the guard answers
def test_levels_flags_and_holds_are_recorded_per_batch(
    guarded: tuple[FakeGuard, ReplayResult],
) -> None:
    policy, result = guarded
    assert len(policy.seen) == len(result.batches)
    previous = 0
    for snapshot, batch in zip(policy.seen, result.batches, strict=True):
        ids = {o.id for o in snapshot.problem.orders}
        storm = {k for k in ids if k.startswith("storm-")}
        assert batch.t_s == snapshot.problem.now_s
        if batch.rejected:  # no answer: the level of the last answer, nothing flagged or held
            assert (batch.storm_level, batch.flagged, batch.held) == (previous, 0, 0)
            continue
        holding = batch.t_s >= HOLD_FROM_S
        open_storm = {
            o.id for o in snapshot.problem.orders if o.id in storm and o.state is OrderState.OPEN
        }
        assert batch.storm_level == (2 if holding else (1 if storm else 0))
        assert batch.held == (len(open_storm) if holding else 0)
        assert batch.flagged == len(storm) + ("o1" in ids)
        previous = batch.storm_level
    assert any(b.rejected for b in result.batches)
    assert max(b.storm_level for b in result.batches) == 2


def test_each_order_records_its_first_flag_and_whether_it_was_held(
    guarded: tuple[FakeGuard, ReplayResult],
) -> None:
    policy, result = guarded
    first_seen: dict[str, int] = {}
    for snapshot in policy.seen:
        if snapshot.problem.now_s in policy.reject_at:  # no answer, no flag
            continue
        for o in snapshot.problem.orders:
            first_seen.setdefault(o.id, snapshot.problem.now_s)
    records = {o.id: o for o in result.orders}
    for order_id in STORM.values():
        rec = records[order_id]
        assert rec.malicious and rec.flagged
        assert rec.flagged_s == first_seen[order_id]
        assert rec.flag_detector == "customer_burst"
        assert rec.flag_evidence.startswith("account fresh ordered")
        # flagged first at a batch before the guard held anything, or held from the start
        expected = "quarantine" if rec.flagged_s >= HOLD_FROM_S else "deprioritise"
        assert rec.flag_action == expected
    o1 = records["o1"]
    assert (o1.flag_action, o1.flag_detector, o1.held) == ("flag", "fresh_destination", False)
    assert not o1.malicious and o1.delivered
    held = [o for o in result.orders if o.held]
    assert held and all(o.malicious for o in held)
    for rec in held:
        assert rec.held_s is not None and rec.held_s >= HOLD_FROM_S
    others = [o for o in result.orders if o.id not in STORM.values() and o.id != "o1"]
    assert all(not o.flagged and not o.held and o.flag_action == "" for o in others)


def test_a_held_order_stays_open_and_is_sent_again_every_batch(
    guarded: tuple[FakeGuard, ReplayResult],
) -> None:
    policy, result = guarded
    records = {o.id: o for o in result.orders}
    never_served = [o for o in result.orders if o.held and o.first_planned_s is None]
    assert never_served, "some storm order was held from its first batch"
    for rec in never_served:
        assert not rec.delivered and rec.picked_up_s is None
        batches = [s for s in policy.seen if s.problem.now_s >= rec.placed_s]
        assert batches
        for snapshot in batches:  # in every snapshot after it was placed, still open
            order = snapshot.problem.orders[snapshot.problem.order_index[rec.id]]
            assert order.state is OrderState.OPEN
    # the replay still ends: once the shifts are over, nothing more can happen
    assert result.end_s <= 6000 + 2 * 60
    assert all(records[k].delivered for k in ("o3", "o5", "o6", "o7"))


def test_policies_without_a_guard_report_level_zero_and_nothing_flagged(tiny: Campus) -> None:
    config = ReplayConfig(batch_interval_s=120)
    for name in ("nearest", "greedy"):
        result = replay(
            storm_tiny(), CampusTravel(tiny), make_policy(name, PARAMS, 0.05), PARAMS, config
        )
        assert result.batches
        assert all((b.storm_level, b.held, b.flagged) == (0, 0, 0) for b in result.batches)
        assert not any(o.flagged or o.held for o in result.orders)
        k = compute_kpis(result)
        assert (k["held_orders"], k["flagged_orders"], k["max_storm_level"]) == (0, 0, 0)
        assert (k["storm_precision"], k["storm_recall"]) == (0.0, 0.0)
        assert k["malicious_orders"] == len(STORM)


# --------------------------------------------------------------- the service's response
def response_with_guard() -> pb.SolveResponse:
    response = pb.SolveResponse(request_id="x")
    response.stats.engine = pb.GREEDY
    response.stats.storm_level = pb.STORM_LEVEL_SEVERE
    route = response.routes.add(rider_id="r1")
    route.stops.add(order_id="a", kind=pb.PICKUP)
    route.stops.add(order_id="a", kind=pb.DROPOFF)
    response.unassigned.add(order_id="storm-1", reason=pb.QUARANTINED, detail="burst")
    response.unassigned.add(order_id="storm-2", reason=pb.DEPRIORITISED)
    response.unassigned.add(order_id="b", reason=pb.NO_FEASIBLE_INSERTION)
    response.flagged.add(
        order_id="storm-1",
        action=pb.GUARD_ACTION_QUARANTINE,
        detector=pb.DETECTOR_CUSTOMER_BURST,
        evidence="account x: 9 orders in 5 min",
    )
    response.flagged.add(
        order_id="storm-2",
        action=pb.GUARD_ACTION_DEPRIORITISE,
        detector=pb.DETECTOR_FRESH_DESTINATION,
    )
    response.flagged.add(order_id="a", action=pb.GUARD_ACTION_FLAG, detector=99)
    response.flagged.add(order_id="a", action=pb.GUARD_ACTION_QUARANTINE)  # first one counts
    return response


def test_the_guard_part_of_a_response() -> None:
    level, flagged, held = guard_of_response(response_with_guard())
    assert level == 3
    assert held == frozenset({"storm-1"})
    assert flagged == {
        "storm-1": Flag("quarantine", "customer_burst", "account x: 9 orders in 5 min"),
        "storm-2": Flag("deprioritise", "fresh_destination", ""),
        "a": Flag("flag", "99", ""),  # a detector this code does not know: its number
    }
    assert guard_of_response(pb.SolveResponse()) == (0, {}, frozenset())


class FakeClient:
    def __init__(self, response: pb.SolveResponse) -> None:
        self.response = response
        self.requests: list[pb.SolveRequest] = []

    def solve(self, request: pb.SolveRequest, *, timeout_s: float | None = None) -> object:
        self.requests.append(request)
        return self.response

    def close(self) -> None:
        return None


@pytest.fixture
def service_policy() -> Iterator[GrpcService]:
    policy = GrpcService("127.0.0.1:1", "tiny", 0.1)  # never called: its client is replaced
    policy.client.close()
    yield policy


def test_the_service_decision_carries_the_guard(
    service_policy: GrpcService, guarded: tuple[FakeGuard, ReplayResult]
) -> None:
    policy, _ = guarded
    fake = FakeClient(response_with_guard())
    service_policy.client = fake  # type: ignore[assignment]
    snapshot = policy.seen[-1]
    decision = service_policy.dispatch(snapshot)
    assert len(fake.requests) == 1
    assert decision.engine == "greedy" and decision.rejected == ""
    assert decision.storm_level == 3
    assert decision.held == frozenset({"storm-1"})
    assert set(decision.flagged) == {"storm-1", "storm-2", "a"}
    assert decision.visits == {"r1": [("a", StopKind.PICKUP), ("a", StopKind.DROPOFF)]}


# ---------------------------------------------------------------------------------- KPIs
def rec(
    oid: str,
    placed: int,
    promised: int,
    delivered: int | None,
    *,
    flagged: int | None = None,
    held: int | None = None,
) -> OrderRecord:
    return OrderRecord(
        oid,
        placed,
        placed,
        promised,
        "r1" if delivered is not None else None,
        placed if delivered is not None else None,
        None if delivered is None else delivered - 300,
        delivered,
        flagged_s=flagged,
        flag_action="" if flagged is None else ("quarantine" if held is not None else "flag"),
        held_s=held,
    )


def storm_result() -> ReplayResult:
    """Seven orders, times in s:

    ========  ======  ========  =========  =======  ====  ===========================
    id        placed  promised  delivered  flagged  held
    ========  ======  ========  =========  =======  ====  ===========================
    a         0       1800      1200       —        —     legit, on time, 20 min
    b         0       1800      2400       —        —     legit, late, 40 min
    c         600     2400      1800       600      —     legit, on time, 20 min (FP)
    d         600     2400      —          —        —     legit, never delivered
    storm-1   300     2100      —          300      300   held, never delivered
    storm-2   300     2100      —          330      600   flagged, later held
    storm-3   900     2700      2400       —        —     missed, delivered on time
    ========  ======  ========  =========  =======  ====  ===========================

    Batches: levels 0, 1, 3, (rejected, keeps 3), 2.
    """
    orders = [
        rec("a", 0, 1800, 1200),
        rec("b", 0, 1800, 2400),
        rec("c", 600, 2400, 1800, flagged=600),
        rec("d", 600, 2400, None),
        rec("storm-1", 300, 2100, None, flagged=300, held=300),
        rec("storm-2", 300, 2100, None, flagged=330, held=600),
        rec("storm-3", 900, 2700, 2400),
    ]
    batches = [
        BatchRecord(t, 3, 0, 2, 0.01, 0.0, "greedy", storm_level=level, held=h, flagged=f)
        for t, level, h, f in ((0, 0, 0, 0), (300, 1, 1, 2), (600, 3, 2, 3), (900, 2, 2, 2))
    ]
    batches.insert(3, BatchRecord(870, 3, 0, 2, 1.0, 0.0, "none", rejected="busy", storm_level=3))
    return ReplayResult(
        scenario="storm",
        policy="service",
        geometry="campus",
        batch_interval_s=30,
        orders=orders,
        riders=[],
        batches=batches,
        wall_s=1.0,
        end_s=3600,
    )


def test_guard_kpis_of_a_hand_made_storm() -> None:
    k = compute_kpis(storm_result())
    assert set(k) == set(KPI_INFO) | set(STORM_KPI_INFO)
    # the old KPIs keep their meaning: over every order, malicious ones included
    assert (k["orders"], k["delivered"], k["undelivered"]) == (7, 4, 3)
    assert k["on_time_rate"] == pytest.approx(3 / 7)  # a, c, storm-3
    assert k["click_to_door_mean_min"] == pytest.approx((20 + 40 + 20 + 25) / 4)
    assert (k["held_orders"], k["flagged_orders"], k["max_storm_level"]) == (2, 3, 3)
    assert k["malicious_orders"] == 3
    assert k["legit_on_time_rate"] == pytest.approx(2 / 4)  # a and c of a, b, c, d
    assert k["legit_click_to_door_min"] == pytest.approx((20 + 40 + 20) / 3)
    assert k["legit_undelivered"] == 1  # d
    # suspects (flagged or held): c, storm-1, storm-2; malicious caught: storm-1, storm-2
    assert k["storm_precision"] == pytest.approx(2 / 3)
    assert k["storm_recall"] == pytest.approx(2 / 3)


def test_a_held_order_not_flagged_is_still_a_suspect() -> None:
    orders = [rec("storm-1", 0, 900, None, held=30), rec("x", 0, 900, 600)]
    result = dataclasses.replace(storm_result(), orders=orders, batches=[])
    k = compute_kpis(result)
    assert (k["held_orders"], k["flagged_orders"], k["max_storm_level"]) == (1, 0, 0)
    assert (k["storm_precision"], k["storm_recall"]) == (1.0, 1.0)
    assert k["legit_on_time_rate"] == 1.0


def test_without_malicious_orders_only_the_guard_counts_are_given() -> None:
    orders = [rec("a", 0, 1800, 1200, flagged=60), rec("b", 0, 1800, None, flagged=60, held=60)]
    result = dataclasses.replace(storm_result(), orders=orders)
    k = compute_kpis(result)
    assert set(k) == set(KPI_INFO)
    assert (k["held_orders"], k["flagged_orders"], k["max_storm_level"]) == (1, 2, 3)


def test_the_table_and_csv_show_the_storm_kpis_only_for_a_storm() -> None:
    storm = compute_kpis(storm_result())
    normal = compute_kpis(dataclasses.replace(storm_result(), orders=[rec("a", 0, 1800, 1200)]))
    lines = format_table({"service": storm, "greedy": storm}).splitlines()
    assert len(lines) == 2 + len(KPI_INFO) + len(STORM_KPI_INFO)
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in lines[2:]}
    assert rows["orders held by the storm guard (quarantined)"] == ["2", "2"]
    assert rows["highest storm level (0 normal, 3 severe)"] == ["3", "3"]
    assert rows["storm precision (malicious / flagged or held) (%)"] == ["66.7", "66.7"]
    assert rows["legit on-time rate (legit by promise / legit orders) (%)"] == ["50.0", "50.0"]
    assert rows["legit orders not delivered"] == ["1", "1"]
    mixed = format_table({"storm": storm, "normal": normal}).splitlines()
    recall = next(line for line in mixed if line.startswith("storm recall"))
    assert recall.split()[-2:] == ["66.7", "-"]
    plain = format_table({"normal": normal}).splitlines()
    assert len(plain) == 2 + len(KPI_INFO)
    assert not any(line.startswith(("storm ", "legit ")) for line in plain)


def test_kpi_csv_has_storm_columns_for_a_storm(tmp_path: Path) -> None:
    storm = compute_kpis(storm_result())
    normal = compute_kpis(dataclasses.replace(storm_result(), orders=[rec("a", 0, 1800, 1200)]))
    _, csv_path = write_kpis({"service": storm, "other": normal}, tmp_path / "storm", "s")
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["storm_recall"]) == pytest.approx(2 / 3)
    assert rows[1]["storm_recall"] == "" and float(rows[1]["held_orders"]) == 0
    _, csv_path = write_kpis({"other": normal}, tmp_path / "normal", "s")
    with csv_path.open() as handle:
        header = next(csv.reader(handle))
    assert header == ["scenario", "policy", *KPI_INFO]


def test_the_orders_csv_says_when_an_order_was_flagged_and_held(tmp_path: Path) -> None:
    result = storm_result()
    path = write_orders_csv(result, tmp_path / "orders.csv")
    with path.open() as handle:
        rows = {r["order"]: r for r in csv.DictReader(handle)}
    assert rows["storm-2"]["flagged_s"] == "330" and rows["storm-2"]["held_s"] == "600"
    assert rows["storm-2"]["flag_action"] == "quarantine"
    assert rows["c"]["flag_action"] == "flag" and rows["c"]["held_s"] == ""
    assert rows["a"]["flagged_s"] == "" and rows["a"]["flag_detector"] == ""


# ------------------------------------------------------------------------------- picture
def _height_px(path: Path) -> int:
    return int(mpimg.imread(path).shape[0])


def test_the_kpi_picture_gains_a_guard_panel_only_with_a_storm(
    guarded: tuple[FakeGuard, ReplayResult], tmp_path: Path
) -> None:
    _, result = guarded
    calm = dataclasses.replace(
        result,
        policy="calm",
        batches=[dataclasses.replace(b, storm_level=0, held=0) for b in result.batches],
    )
    with_guard = plot_kpis_over_time([result, calm], tmp_path / "guard.png")
    plain = plot_kpis_over_time([calm], tmp_path / "plain.png")
    hand = plot_kpis_over_time([storm_result()], tmp_path / "hand.png", title="hand")
    assert with_guard.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 10 x 10 in with the guard panel, 10 x 8 in (the picture as before) without
    assert _height_px(with_guard) == _height_px(hand) == 1100
    assert _height_px(plain) == 880


def test_held_orders_alone_show_the_guard_panel(tmp_path: Path) -> None:
    result = storm_result()
    only_held = dataclasses.replace(
        result, batches=[dataclasses.replace(b, storm_level=0) for b in result.batches]
    )
    assert _height_px(plot_kpis_over_time([only_held], tmp_path / "held.png")) == 1100
