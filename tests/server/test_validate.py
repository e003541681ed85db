"""Field checks of a SolveRequest without a server: every bad field named with its value, the
limits at their edges, nothing that could raise later."""

from __future__ import annotations

import pytest

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from server.config import ServerConfig
from server.validate import (
    MAX_HORIZON_S,
    MAX_SERVICE_S,
    MAX_TEXT_BYTES,
    TIMESTAMP_SECONDS,
    request_now,
    validate_request,
)

NOW = 1_700_000_000
CONFIG = ServerConfig()


def request(orders: int = 2, riders: int = 1) -> pb.SolveRequest:
    req = pb.SolveRequest(request_id="r", campus_id="tiny")
    req.now.FromSeconds(NOW)
    for k in range(riders):
        req.riders.add(id=f"r{k}", position=pb.LatLng(lat=10.0, lng=10.0), capacity=2)
    for k in range(orders):
        o = req.orders.add(
            id=f"o{k}", pickup=pb.LatLng(lat=10.0, lng=10.0), dropoff=pb.LatLng(lat=10, lng=10)
        )
        o.ready_time.FromSeconds(NOW)
        o.due_time.FromSeconds(NOW + 1800)
    return req


def fields(req: pb.SolveRequest) -> dict[str, str]:
    return {v.field: v.description for v in validate_request(req, CONFIG, now=NOW)}


def test_a_valid_request_has_no_violation() -> None:
    assert fields(request()) == {}


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * MAX_TEXT_BYTES, True),
        ("a" * (MAX_TEXT_BYTES + 1), False),
        ("é" * (MAX_TEXT_BYTES // 2), True),  # 2 bytes each: exactly 128
        ("é" * (MAX_TEXT_BYTES // 2) + "a", False),
    ],
)
def test_text_is_measured_in_bytes_of_utf8(text: str, ok: bool) -> None:
    req = request()
    req.orders[0].id = text
    req.riders[0].id = text
    req.request_id = text
    bad = fields(req)
    assert ("orders[0].id" not in bad) is ok
    assert ("riders[0].id" not in bad) is ok
    assert ("request_id" not in bad) is ok
    if not ok:
        assert f"is {len(text.encode())} bytes of UTF-8" in bad["orders[0].id"]


def test_the_horizon_and_the_timestamp_range() -> None:
    req = request()
    req.orders[0].due_time.FromSeconds(NOW + MAX_HORIZON_S)  # exactly at the edge: fine
    req.orders[1].due_time.FromSeconds(NOW + MAX_HORIZON_S + 1)
    req.riders[0].shift_end.seconds = TIMESTAMP_SECONDS[1] + 1  # not a Timestamp at all
    bad = fields(req)
    assert "orders[0].due_time" not in bad
    assert "+7.0 days from now" in bad["orders[1].due_time"]
    assert "not a valid Timestamp" in bad["riders[0].shift_end"]


def test_due_before_ready_shows_both_times() -> None:
    req = request()
    req.orders[0].due_time.FromSeconds(NOW - 60)
    assert fields(req)["orders[0].due_time"] == (
        "2023-11-14T22:12:20+00:00 is before ready_time 2023-11-14T22:13:20+00:00"
    )


@pytest.mark.parametrize(
    ("seconds", "nanos", "words"),
    [
        (-1, 0, "is negative"),
        (MAX_SERVICE_S + 1, 0, f"more than {MAX_SERVICE_S} s"),
        (1, -1, "not a valid Duration"),
        (0, 1_000_000_000, "not a valid Duration"),
    ],
)
def test_service_durations(seconds: int, nanos: int, words: str) -> None:
    req = request()
    req.orders[0].pickup_service.seconds = seconds
    req.orders[0].pickup_service.nanos = nanos
    assert words in fields(req)["orders[0].pickup_service"]


def test_budget_must_be_positive_and_under_the_cap() -> None:
    req = request()
    req.time_budget.FromSeconds(0)
    assert "must be > 0" in fields(req)["time_budget"]
    req.time_budget.FromSeconds(int(CONFIG.max_budget_s) + 1)
    assert f"more than {CONFIG.max_budget_s:g} s" in fields(req)["time_budget"]


def test_a_negative_capacity_is_named_once_not_again_as_order_sizes() -> None:
    req = request()
    req.riders[0].capacity = -1
    req.orders[0].committed_rider_id = "r0"
    assert fields(req) == {"riders[0].capacity": "-1 is negative"}


def test_request_now_falls_back_and_refuses_invalid() -> None:
    req = request()
    assert request_now(req, 5.0) == NOW
    req.ClearField("now")
    assert request_now(req, 5.0) == 5.0
    req.now.seconds = TIMESTAMP_SECONDS[0] - 1
    assert request_now(req, 5.0) is None
    assert "not a valid Timestamp" in fields(req)["now"]


def test_who_ordered_when_and_the_freshness_limit_are_checked() -> None:
    req = request()
    first, second = req.orders[0], req.orders[1]
    first.customer_id, first.merchant_id = "acct-1", "m-7"
    first.placed_time.FromSeconds(NOW - 60)
    first.max_time_in_bag.FromSeconds(900)
    assert fields(req) == {}
    second.customer_id = "x" * (MAX_TEXT_BYTES + 1)
    second.merchant_id = "y" * (MAX_TEXT_BYTES + 1)
    second.placed_time.FromSeconds(NOW + 1801)  # after its due time
    got = fields(req)
    assert set(got) == {"orders[1].customer_id", "orders[1].merchant_id", "orders[1].placed_time"}
    assert "after due_time" in got["orders[1].placed_time"]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "must be > 0"), (-5, "negative"), (MAX_SERVICE_S + 1, "more than")],
)
def test_max_time_in_bag_is_positive_and_at_most_a_day(seconds: int, words: str) -> None:
    req = request()
    req.orders[0].max_time_in_bag.FromSeconds(seconds)
    assert words in fields(req)["orders[0].max_time_in_bag"]


def test_a_negative_capacity_is_reported_alone() -> None:
    """The root cause only: no order is said to exceed every rider's capacity because one
    rider's capacity is unusable."""
    req = request(orders=2, riders=2)
    req.riders[0].capacity = -1
    req.riders[1].capacity = 1
    req.orders[0].size = 2
    assert fields(req) == {"riders[0].capacity": "-1 is negative"}
    req.riders[0].capacity = 1
    assert fields(req) == {"orders[0].size": "2 exceeds every rider's capacity (largest 1)"}


def test_time_order_messages_name_both_values() -> None:
    req = request()
    req.orders[0].due_time.FromSeconds(NOW - 60)
    req.orders[1].placed_time.FromSeconds(NOW + 3600)
    req.riders[0].available_time.FromSeconds(NOW + 600)
    req.riders[0].shift_end.FromSeconds(NOW)
    bad = fields(req)
    assert bad["orders[0].due_time"] == (
        "2023-11-14T22:12:20+00:00 is before ready_time 2023-11-14T22:13:20+00:00"
    )
    assert bad["orders[1].placed_time"] == (
        "2023-11-14T23:13:20+00:00 is after due_time 2023-11-14T22:43:20+00:00"
    )
    assert bad["riders[0].shift_end"] == (
        "2023-11-14T22:13:20+00:00 is before available_time 2023-11-14T22:23:20+00:00"
    )
    req = request()
    req.riders[0].mode = 9
    assert fields(req)["riders[0].mode"].startswith("9 is not a TravelMode (")


# ---------------------------------------------------------------- soft assignments
def test_an_assigned_order_may_name_any_rider_even_one_not_in_the_request() -> None:
    req = request(orders=4, riders=2)
    req.orders[0].assigned_rider_id = "r1"  # a rider of the request
    req.orders[0].assigned_pickup_time.FromSeconds(NOW + 600)
    req.orders[1].assigned_rider_id = "logged-off"  # not in the request: it moves, no error
    req.orders[1].assigned_pickup_time.FromSeconds(NOW - 120)  # overdue: still an instant
    req.orders[2].committed_rider_id = "r0"
    req.orders[2].assigned_rider_id = "r0"  # its own rider again
    req.orders[3].onboard_rider_id = "r1"
    req.orders[3].assigned_rider_id = "r1"
    req.orders[3].assigned_pickup_time.FromSeconds(NOW - 60)
    assert fields(req) == {}


@pytest.mark.parametrize("pin", ["committed_rider_id", "onboard_rider_id"])
def test_an_assigned_rider_other_than_the_pinned_one_names_both(pin: str) -> None:
    req = request(orders=1, riders=2)
    setattr(req.orders[0], pin, "r0")
    req.orders[0].assigned_rider_id = "r1"
    assert fields(req) == {
        "orders[0].assigned_rider_id": f"'r1' differs from {pin} 'r0': an order accepted by "
        "a rider stays on that rider"
    }


def test_an_assigned_rider_id_follows_the_text_rules() -> None:
    req = request()
    req.orders[0].assigned_rider_id = "é" * (MAX_TEXT_BYTES // 2)  # exactly 128 bytes: fine
    assert fields(req) == {}
    req.orders[0].assigned_rider_id = "x" * 100_000
    req.orders[1].committed_rider_id = "r0"
    req.orders[1].assigned_rider_id = "y" * (MAX_TEXT_BYTES + 1)
    bad = fields(req)
    assert set(bad) == {"orders[0].assigned_rider_id", "orders[1].assigned_rider_id"}
    assert bad["orders[0].assigned_rider_id"] == (
        "is 100000 bytes of UTF-8 (starts 'xxxxxxxxxxxxxxxx'); at most 128 bytes"
    )
    assert "at most 128 bytes" in bad["orders[1].assigned_rider_id"]  # not "differs"


def test_a_quoted_dropoff_time_is_a_valid_instant_near_now() -> None:
    req = request(orders=3)
    req.orders[0].quoted_dropoff_time.FromSeconds(NOW - 600)  # passed: the order is late
    req.orders[1].quoted_dropoff_time.FromSeconds(NOW + MAX_HORIZON_S + 1)
    req.orders[2].quoted_dropoff_time.nanos = -1
    bad = fields(req)
    assert set(bad) == {"orders[1].quoted_dropoff_time", "orders[2].quoted_dropoff_time"}
    assert "every time must be within 7 days of now" in bad["orders[1].quoted_dropoff_time"]
    assert "not a valid Timestamp" in bad["orders[2].quoted_dropoff_time"]


def test_a_planned_pickup_needs_an_assigned_rider_and_a_valid_instant() -> None:
    req = request(orders=2)
    req.orders[0].assigned_pickup_time.FromSeconds(NOW + 300)
    req.orders[1].assigned_rider_id = "r0"
    req.orders[1].assigned_pickup_time.FromSeconds(NOW + MAX_HORIZON_S + 1)
    bad = fields(req)
    assert bad == {
        "orders[0].assigned_pickup_time": "2023-11-14T22:18:20+00:00 is set without "
        "assigned_rider_id: only an assigned order has a planned pickup",
        "orders[1].assigned_pickup_time": "2023-11-21T22:13:21+00:00 is +7.0 days from now "
        "(2023-11-14T22:13:20+00:00); every time must be within 7 days of now",
    }
    req.orders[1].assigned_pickup_time.seconds = TIMESTAMP_SECONDS[1] + 1
    req.orders[0].assigned_pickup_time.nanos = -1
    assert "not a valid Timestamp" in fields(req)["orders[1].assigned_pickup_time"]
    first = [
        v.description
        for v in validate_request(req, CONFIG, now=NOW)
        if v.field == "orders[0].assigned_pickup_time"
    ]
    assert len(first) == 2  # not an instant, and without an assigned rider
    assert first[0].startswith("seconds=1700000300, nanos=-1 is not a valid Timestamp")
    assert first[1].startswith("is set without assigned_rider_id")
