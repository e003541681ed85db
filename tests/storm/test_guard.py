"""The storm guard of a campus: levels, actions by mode and level, held orders and people's
verdicts, memory bounds."""

from __future__ import annotations

import threading

import pytest

from storm import Action, Detector, GuardMode, Guards, StormLevel
from tests.storm.conftest import NEW, PLACES, T0, guard, order


def burst(prefix: str, account: str, n: int, start: float, *, gap_s: float = 10) -> list:
    return [order(f"{prefix}{k}", account, start + gap_s * k) for k in range(n)]


def actions(review: object) -> dict[str, Action]:
    return {v.order_id: v.action for v in review.verdicts}  # type: ignore[attr-defined]


def test_levels_follow_the_suspicious_orders_of_the_window_and_hold_after() -> None:
    g, s = guard(storm_orders=10, severe_orders=20, level_hold_s=1200)
    review = g.review(burst("a", "x", 5, T0), T0 + 60, s)
    assert review.level is StormLevel.ELEVATED
    assert "5 suspicious orders placed in the last 15 min (>= 1)" in review.level_reason
    review = g.review(burst("b", "y", 6, T0 + 60), T0 + 120, s)
    assert review.level is StormLevel.STORM
    review = g.review(burst("c", "z", 10, T0 + 120), T0 + 180, s)
    assert review.level is StormLevel.SEVERE
    # 15 min later the window is empty: the level holds 20 min from when it was last met
    held = g.review([], T0 + 180 + 920, s)
    assert held.level is StormLevel.SEVERE and held.level_reason.endswith(", 920 s ago")
    quiet = g.review([], T0 + 180 + 1201, s)
    assert quiet.level is StormLevel.NORMAL
    assert quiet.level_reason.startswith("no suspicious orders")


@pytest.mark.parametrize(
    ("mode", "level", "expected"),
    [
        (GuardMode.AUTO, StormLevel.ELEVATED, Action.DEPRIORITISE),
        (GuardMode.AUTO, StormLevel.STORM, Action.QUARANTINE),
        (GuardMode.FLAG, StormLevel.ELEVATED, Action.FLAG),
        (GuardMode.FLAG, StormLevel.STORM, Action.DEPRIORITISE),  # never before legit orders
        (GuardMode.DEPRIORITISE, StormLevel.STORM, Action.DEPRIORITISE),
        (GuardMode.QUARANTINE, StormLevel.ELEVATED, Action.QUARANTINE),
    ],
)
def test_actions_by_mode_and_level(mode: GuardMode, level: StormLevel, expected: Action) -> None:
    g, s = guard(storm_orders=10)
    g.mode = mode
    n = 5 if level is StormLevel.ELEVATED else 12
    review = g.review(burst("o", "x", n, T0), T0 + 200, s)
    assert review.level is level
    assert set(actions(review).values()) == {expected}


def test_off_flags_nothing_and_accepted_orders_are_only_flagged() -> None:
    g, s = guard(mode="off")
    review = g.review(burst("o", "x", 12, T0), T0 + 200, s)
    assert review.verdicts == () and review.level is StormLevel.NORMAL
    g, s = guard()
    batch = burst("o", "x", 12, T0)
    batch[0] = order("o0", "x", T0, is_open=False)  # already accepted by a rider
    review = g.review(batch, T0 + 200, s)
    assert actions(review)["o0"] is Action.FLAG
    assert actions(review)["o1"] is Action.QUARANTINE


def test_a_quarantined_order_stays_held_until_released_then_is_never_flagged_again() -> None:
    g, s = guard()
    batch = burst("o", "x", 12, T0)
    assert set(actions(g.review(batch, T0 + 200, s)).values()) == {Action.QUARANTINE}
    # an hour later the level is back to normal: held orders stay held
    later = g.review(batch, T0 + 3600, s)
    assert later.level is StormLevel.NORMAL
    assert set(actions(later).values()) == {Action.QUARANTINE}
    held = g.held_orders()
    assert {h.order_id for h in held} == {f"o{k}" for k in range(12)}
    assert held[0].detector is Detector.CUSTOMER_BURST and held[0].destination == "Willard Hall"
    outcome = g.release(["o0", "o1", "nope"], [], who="token ops")
    assert outcome.order_ids == ("o0", "o1") and outcome.unknown_order_ids == ("nope",)
    after = actions(g.review(batch, T0 + 3660, s))
    assert "o0" not in after and "o1" not in after and after["o2"] is Action.QUARANTINE
    # releasing the account releases the rest and trusts it
    assert len(g.release([], ["x"], who="token ops").order_ids) == 10
    more = burst("p", "x", 8, T0 + 3700)
    assert g.review(batch + more, T0 + 3800, s).verdicts == ()


def test_a_confirmed_account_has_its_later_orders_held_at_once() -> None:
    g, s = guard()
    g.review(burst("o", "x", 12, T0), T0 + 200, s)
    outcome = g.confirm([], ["x"], who="token ops, reason 'fraud ring'")
    assert len(outcome.order_ids) == 12
    assert all(h.confirmed for h in g.held_orders())
    review = g.review([order("late", "x", T0 + 7200)], T0 + 7200, s)
    (verdict,) = review.verdicts
    assert verdict.action is Action.QUARANTINE
    assert verdict.detector is Detector.CONFIRMED_ACCOUNT
    assert "confirmed malicious by token ops" in verdict.evidence


def test_held_orders_not_sent_any_more_are_forgotten_after_the_expiry() -> None:
    g, s = guard(hold_expiry_s=3600)
    g.review(burst("o", "x", 12, T0), T0 + 200, s)
    assert g.held_count() == 12
    g.review([], T0 + 200 + 3601, s)
    assert g.held_count() == 0


def test_accounts_remembered_are_bounded() -> None:
    g, s = guard(max_accounts=100)
    for k in range(10):
        batch = [order(f"o{k}-{j}", f"c{k}-{j}", T0 + k * 60 + j) for j in range(50)]
        g.review(batch, T0 + k * 60 + 59, s)
    assert len(g._accounts) == 100


def test_guards_keep_one_state_per_campus_and_modes_set_before_the_first_batch() -> None:
    guards = Guards(lambda campus: PLACES)
    _, s = guard()
    assert guards.set_mode("b", GuardMode.OFF, s) is GuardMode.AUTO
    batch = burst("o", "x", 12, T0)
    assert guards.review("a", batch, T0 + 200, s).verdicts
    off = guards.review("b", batch, T0 + 200, s)
    assert off.verdicts == () and off.mode is GuardMode.OFF
    assert guards.campuses() == ["a", "b"]
    assert guards.mode_of("a", s) is GuardMode.AUTO


def test_concurrent_batches_count_each_order_once() -> None:
    g, s = guard(customer_max_orders=1000, storm_orders=1000, severe_orders=1000)
    batch = [order(f"o{k}", f"c{k}", T0 + k) for k in range(300)]
    threads = [threading.Thread(target=g.review, args=(batch, T0 + 400 + k, s)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(g._records) == 300
    assert g.review([], T0 + 500, s).volume.orders == 300


def test_fresh_orders_to_a_building_are_quarantined_in_a_storm_and_others_dispatched() -> None:
    g, s = guard()
    storm = [order(f"s{k}", f"new{k}", T0 + 10 * k, since=NEW) for k in range(12)]
    legit = [order(f"l{k}", f"old{k}", T0 + 10 * k, place=1) for k in range(12)]
    review = g.review(storm + legit, T0 + 200, s)
    assert review.level is StormLevel.STORM
    assert review.ids(Action.QUARANTINE) == {f"s{k}" for k in range(12)}


def test_confirming_twice_counts_each_order_once() -> None:
    g, s = guard()
    g.review(burst("o", "x", 6, T0), T0 + 200, s)
    assert len(g.confirm(["o0"], [], who="a").order_ids) == 1
    again = g.confirm(["o0"], ["x"], who="b")
    assert "o0" not in again.order_ids and len(again.order_ids) == 5
    assert again.unknown_order_ids == ()
    assert g.held_by_state() == {"awaiting_review": 0, "confirmed": 6}
