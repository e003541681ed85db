"""Each detector on hand-made streams: it fires, and it does not fire on the legitimate twin."""

from __future__ import annotations

from storm import Action, Detector, StormLevel
from tests.storm.conftest import DAY, NEW, OLD, T0, guard, order


def flagged(review: object) -> dict[str, Detector]:
    return {v.order_id: v.detector for v in review.verdicts}  # type: ignore[attr-defined]


def test_customer_burst_fires_on_the_fifth_order_in_half_an_hour_and_flags_all_five() -> None:
    g, s = guard()
    batch = [order(f"o{k}", "acct-x", T0 + 60 * k) for k in range(5)]
    review = g.review(batch[:4], T0 + 240, s)
    assert review.verdicts == ()  # four orders: within the limit
    review = g.review(batch, T0 + 300, s)
    assert flagged(review) == {f"o{k}": Detector.CUSTOMER_BURST for k in range(5)}
    evidence = review.verdicts[0].evidence
    assert "acct-x placed 5 orders within 30 min (limit 4" in evidence
    assert review.newly_flagged == {Detector.CUSTOMER_BURST: 5}


def test_customer_burst_twin_spread_over_three_hours_is_not_flagged() -> None:
    g, s = guard()
    for k in range(6):
        review = g.review([order(f"o{k}", "acct-x", T0 + 1800 * k)], T0 + 1800 * k, s)
        assert review.verdicts == ()


def test_fresh_destination_fires_on_six_new_accounts_to_one_building() -> None:
    g, s = guard()
    batch = [order(f"s{k}", f"new{k}", T0 + 60 * k, since=NEW, jitter_m=k * 5) for k in range(6)]
    batch += [order(f"o{k}", f"old{k}", T0 + 60 * k, place=1) for k in range(10)]
    review = g.review(batch, T0 + 400, s)
    assert flagged(review) == {f"s{k}": Detector.FRESH_DESTINATION for k in range(6)}
    assert "6 orders to Willard Hall within 30 min from 6 accounts with no history" in (
        review.verdicts[0].evidence
    )


def test_fresh_destination_twins_are_not_flagged() -> None:
    # the same six orders from accounts with history: an event, not a storm
    g, s = guard()
    batch = [order(f"s{k}", f"acct{k}", T0 + 60 * k, since=OLD) for k in range(6)]
    assert g.review(batch, T0 + 400, s).verdicts == ()
    # six new accounts among thirty orders to the same building: a crowd with a few newcomers
    g, s = guard()
    batch = [order(f"s{k}", f"new{k}", T0 + 60 * k, since=NEW) for k in range(6)]
    batch += [order(f"o{k}", f"old{k}", T0 + 20 * k) for k in range(24)]
    assert g.review(batch, T0 + 600, s).verdicts == ()
    # six new accounts to six different cells
    g, s = guard()
    batch = [
        order(f"s{k}", f"new{k}", T0 + 60 * k, since=NEW, jitter_m=200 + 100 * k) for k in range(6)
    ]
    assert g.review(batch, T0 + 400, s).verdicts == ()


def test_without_customer_since_only_a_guard_that_watched_long_enough_calls_accounts_new() -> None:
    g, s = guard(fresh_account_s=int(2 * DAY))
    batch = [order(f"s{k}", f"new{k}", T0 + 60 * k, since=None) for k in range(6)]
    assert g.review(batch, T0 + 400, s).verdicts == ()  # day one: no account is known new
    g.review([order("o1", "regular", T0 + 3 * DAY, since=None)], T0 + 3 * DAY, s)
    later = T0 + 3 * DAY + 600
    batch = [order(f"t{k}", f"newer{k}", later + 60 * k, since=None) for k in range(6)]
    review = g.review(batch, later + 400, s)
    assert set(flagged(review)) == {f"t{k}" for k in range(6)}


def _day(g: object, s: object, day: int, per_slot: int, prefix: str) -> object:
    """``per_slot`` orders in each 15-minute slot from 11:00 to 13:00 of ``day``, sent in batches
    every 5 minutes; returns the last review."""
    start = T0 - 3600 + day * DAY
    review = None
    for batch in range(24):
        now = start + 300 * (batch + 1)
        orders = [
            order(f"{prefix}{day}-{batch}-{k}", f"c{day}-{batch}-{k}", now - 300 + k, place=k % 2)
            for k in range(per_slot // 3)
        ]
        review = g.review(orders, now, s)  # type: ignore[attr-defined]
    return review


def test_campus_volume_raises_the_level_against_this_time_of_day_and_flags_nothing() -> None:
    g, s = guard(volume_min_orders=10)
    for day in range(3):
        review = _day(g, s, day, 30, "n")
        assert review.level is StormLevel.NORMAL  # type: ignore[attr-defined]
    review = _day(g, s, 3, 90, "x")  # three times the normal volume
    assert review.level >= StormLevel.STORM  # type: ignore[attr-defined]
    assert "the normal 30 for this time of day" in review.level_reason  # type: ignore[attr-defined]
    assert review.verdicts == ()  # type: ignore[attr-defined]
    assert 2.5 <= review.volume.ratio <= 3.5  # type: ignore[attr-defined]


def test_campus_volume_twin_at_the_usual_volume_stays_normal() -> None:
    g, s = guard(volume_min_orders=10)
    for day in range(4):
        review = _day(g, s, day, 30, "n")
    assert review.level is StormLevel.NORMAL  # type: ignore[attr-defined]
    assert 0.7 <= review.volume.ratio <= 1.3  # type: ignore[attr-defined]


def test_an_order_resent_in_ten_batches_counts_once() -> None:
    g, s = guard()
    batch = [order(f"o{k}", "acct-x", T0 + k) for k in range(4)]
    for n in range(10):
        review = g.review(batch, T0 + 30 * n + 10, s)
        assert review.verdicts == ()  # four orders, however often they are sent
    assert g.review(batch + [order("o4", "acct-x", T0 + 400)], T0 + 400, s).verdicts
    assert Action.QUARANTINE not in {v.action for v in review.verdicts}
