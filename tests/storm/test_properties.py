"""The storm guard on generated streams: re-sent orders, repeated ids, accounts with and
without an age, orders placed in the past or the future of the backend's clock, every mode:
each batch's verdicts name its own orders once, only open orders are held back, a held order
stays held while it is re-sent, and each order is counted once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storm import Action, GuardMode
from tests.storm.conftest import DAY, T0, guard, order

orders = st.builds(
    lambda k, c, dt, place, since, is_open, jitter: order(
        f"o{k}",
        "" if c == 0 else f"c{c}",
        T0 + dt,
        place=place,
        since=since,
        is_open=is_open,
        jitter_m=jitter,
    ),
    st.integers(0, 60),
    st.integers(0, 6),
    st.floats(-3600, 7200, allow_nan=False),
    st.integers(0, 1),
    st.one_of(st.none(), st.sampled_from([T0 - 400 * DAY, T0 - DAY, T0, T0 + 30])),
    st.booleans(),
    st.sampled_from([0.0, 30.0, 120.0, 5000.0]),
)
streams = st.lists(
    # ids are unique within a batch (the server refuses a request that repeats one)
    st.tuples(
        st.floats(0, 7200, allow_nan=False),
        st.lists(orders, max_size=25, unique_by=lambda o: o.id),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(streams, st.sampled_from(list(GuardMode)))
def test_verdicts_on_any_stream(stream: list, mode: GuardMode) -> None:
    g, s = guard(customer_max_orders=2, destination_min_orders=3, storm_orders=3)
    g.mode = mode
    held: set[str] = set()
    seen: dict[str, float] = {}  # id -> last batch it was in
    for dt, batch in sorted(stream, key=lambda b: b[0]):
        review = g.review(batch, T0 + dt, s)
        ids = [v.order_id for v in review.verdicts]
        in_batch = {o.id for o in batch}
        assert set(ids) <= in_batch
        assert len(ids) == len(set(ids))  # one verdict per suspicious order
        is_open = {o.id: o.open for o in batch}
        for v in review.verdicts:
            if v.action is not Action.FLAG:
                assert is_open[v.order_id], v
            if v.order_id in held and is_open[v.order_id]:
                assert v.action is Action.QUARANTINE
        for order_id in in_batch & held:
            if is_open[order_id]:
                assert order_id in ids  # stays held while it is sent
        held |= {v.order_id for v in review.verdicts if v.action is Action.QUARANTINE}
        seen.update(dict.fromkeys(in_batch, T0 + dt))
        # each order counted once while the backend keeps sending it (an order not sent for
        # an hour past the longest window is forgotten)
        recent = {k for k, t in seen.items() if t >= T0 + dt - 3600 - 1800}
        assert recent <= set(g._records) <= set(seen)
        if mode is GuardMode.OFF:
            assert not review.newly_flagged
        assert sum(review.newly_flagged.values()) <= len(seen)
