"""The storm guard through the service: a storm's orders come back QUARANTINED with the
evidence, every order still appears exactly once, people release or confirm them and set the
mode over the admin API (with a token), the metrics count it, and deprioritised orders only get
riders left over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from api.client import AdminClient, DispatchClient, format_held, format_response
from api.pb.campus_dispatch.v1 import admin_pb2 as apb
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_dispatch.cli import main
from campus_maps import Campus
from server.app import Service, create_server
from server.auth import AdminAuth, AdminToken
from tests.server.conftest import NOW, make_config, make_request, violations

TOKEN = "guard-token-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded(tiny_campus: Campus) -> Iterator[Service]:
    auth = AdminAuth([AdminToken("oncall", TOKEN.encode())])
    svc = create_server(make_config(), campuses={"tiny": tiny_campus}, auth=auth, env={})
    yield svc
    svc.stop(0.5)


@pytest.fixture()
def admin(guarded: Service) -> Iterator[AdminClient]:
    with AdminClient(guarded.address, TOKEN, client_id="pytest") as client:
        yield client


@pytest.fixture()
def dispatch(guarded: Service) -> Iterator[DispatchClient]:
    with DispatchClient(guarded.address) as client:
        yield client


def storm_request(
    campus: Campus, *, prefix: str, account: str, n: int = 12, legit: int = 6, now: int = NOW
) -> pb.SolveRequest:
    """``legit`` ordinary orders (each its own old account) and ``n`` orders from ``account``
    placed within two minutes."""
    request = make_request(campus, orders=legit + n, riders=3, seed=7)
    request.request_id = prefix
    request.now.FromSeconds(now)
    for k, order in enumerate(request.orders):
        order.ready_time.FromSeconds(order.ready_time.seconds + now - NOW)
        order.due_time.FromSeconds(order.due_time.seconds + now - NOW)
        order.placed_time.FromSeconds(now - 300 + 10 * k)
        order.customer_since.FromSeconds(now - 400 * 86400)
        if k < legit:
            order.id, order.customer_id = f"{prefix}-l{k}", f"{prefix}-acct{k}"
        else:
            order.id, order.customer_id = f"{prefix}-s{k}", account
    return request


def every_order_once(request: pb.SolveRequest, response: pb.SolveResponse) -> None:
    seen = [s.order_id for r in response.routes for s in r.stops if s.kind == pb.DROPOFF]
    seen += [u.order_id for u in response.unassigned]
    assert sorted(seen) == sorted(o.id for o in request.orders)


def test_a_storm_is_quarantined_with_the_evidence_and_every_order_answered_once(
    tiny_campus: Campus, guarded: Service, dispatch: DispatchClient
) -> None:
    request = storm_request(tiny_campus, prefix="q", account="bot-1")
    response = dispatch.solve(request)
    every_order_once(request, response)
    held = {u.order_id: u for u in response.unassigned if u.reason == pb.QUARANTINED}
    assert set(held) == {f"q-s{k}" for k in range(6, 18)}
    assert "customer_burst: account bot-1 placed 12 orders within 30 min" in held["q-s6"].detail
    assert response.stats.storm_level == pb.STORM_LEVEL_STORM
    flags = {f.order_id: f for f in response.flagged}
    assert set(flags) == set(held)
    assert flags["q-s6"].action == pb.GUARD_ACTION_QUARANTINE
    assert flags["q-s6"].detector == pb.DETECTOR_CUSTOMER_BURST
    assert "flagged q-s6: quarantine (account bot-1" in format_response(response)
    # the reason and the flags survive the wire
    again = pb.SolveResponse.FromString(response.SerializeToString())
    assert {u.order_id for u in again.unassigned if u.reason == pb.QUARANTINED} == set(held)
    # sent again in the next batch (ten times): held, counted once
    for k in range(10):
        request.now.FromSeconds(NOW + 30 * (k + 1))
        response = dispatch.solve(request)
        every_order_once(request, response)
        assert {u.order_id for u in response.unassigned if u.reason == pb.QUARANTINED} == set(held)
    scrape = guarded.metrics.registry.get_sample_value
    flagged = scrape(
        "dispatch_guard_flagged_orders_total", {"campus": "tiny", "detector": "customer_burst"}
    )
    assert flagged == 12
    held_now = {"campus": "tiny", "state": "awaiting_review"}
    assert scrape("dispatch_guard_held_orders", held_now) == 12
    assert scrape("dispatch_storm_level", {"campus": "tiny"}) == 2
    assert scrape("dispatch_unassigned_orders_total", {"reason": "quarantined"}) == 12 * 11


def test_held_orders_are_listed_released_and_confirmed_over_the_admin_api(
    tiny_campus: Campus,
    guarded: Service,
    dispatch: DispatchClient,
    admin: AdminClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = storm_request(tiny_campus, prefix="r", account="bot-2", now=NOW + 4000)
    dispatch.solve(request)
    listed = admin.list_held()
    mine = {h.order_id: h for h in listed.held if h.order_id.startswith("r-")}
    assert len(mine) == 12 and listed.campus_id == "tiny"
    assert listed.mode == apb.GUARD_MODE_AUTO and listed.storm_level >= 2
    one = mine["r-s6"]
    assert one.customer_id == "bot-2" and one.detector == "customer_burst"
    assert "placed 12 orders" in one.evidence and one.destination
    assert "r-s6  account bot-2" in format_held(listed)
    with caplog.at_level("INFO", logger="campus_dispatch.admin"):
        released = admin.review_orders(
            apb.VERDICT_RELEASE, ["r-s6", "r-s7", "unknown-1"], reason="a party, called them"
        )
    assert list(released.order_ids) == ["r-s6", "r-s7"]
    assert list(released.unknown_order_ids) == ["unknown-1"]
    assert "token oncall" in released.reviewed_by and "a party" in released.reviewed_by
    assert '"event": "guard_review"' in caplog.text and "token oncall" in caplog.text
    request.now.FromSeconds(NOW + 4030)
    response = dispatch.solve(request)
    reasons = {u.order_id: u.reason for u in response.unassigned}
    assert reasons.get("r-s6") != pb.QUARANTINED and reasons.get("r-s7") != pb.QUARANTINED
    assert reasons["r-s8"] == pb.QUARANTINED
    confirmed = admin.review_orders(apb.VERDICT_CONFIRM, customer_ids=["bot-2"], reason="fraud")
    assert len(confirmed.order_ids) == 10
    response = dispatch.solve(request)
    held = [u for u in response.unassigned if u.reason == pb.QUARANTINED]
    assert len(held) == 10 and "confirmed malicious by token oncall" in held[0].detail
    scrape = guarded.metrics.registry.get_sample_value
    assert scrape("dispatch_guard_held_orders", {"campus": "tiny", "state": "confirmed"}) == 10
    assert scrape("dispatch_guard_reviews_total", {"campus": "tiny", "verdict": "release"}) == 2
    assert scrape("dispatch_guard_reviews_total", {"campus": "tiny", "verdict": "confirm"}) == 10


def test_guard_mode_is_set_per_campus_and_refusals_name_the_field(
    tiny_campus: Campus, guarded: Service, dispatch: DispatchClient, admin: AdminClient
) -> None:
    changed = admin.set_guard_mode(apb.GUARD_MODE_FLAG, reason="drill")
    assert changed.old_mode == apb.GUARD_MODE_AUTO and changed.mode == apb.GUARD_MODE_FLAG
    try:
        request = storm_request(tiny_campus, prefix="f", account="bot-3", n=5, now=NOW + 9000)
        response = dispatch.solve(request)
        every_order_once(request, response)
        assert not [u for u in response.unassigned if u.reason == pb.QUARANTINED]
        flags = [f for f in response.flagged if f.order_id.startswith("f-")]
        assert len(flags) == 5 and {f.action for f in flags} == {pb.GUARD_ACTION_FLAG}
        scrape = guarded.metrics.registry.get_sample_value
        assert scrape("dispatch_guard_mode", {"campus": "tiny", "mode": "flag"}) == 1
        assert scrape("dispatch_guard_mode", {"campus": "tiny", "mode": "auto"}) == 0
    finally:
        admin.set_guard_mode(apb.GUARD_MODE_AUTO, reason="drill over")
    with pytest.raises(grpc.RpcError) as err:
        admin.set_guard_mode(apb.GUARD_MODE_UNSPECIFIED)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "mode" in violations(err.value)
    with pytest.raises(grpc.RpcError) as err:
        admin.review_orders(apb.VERDICT_UNSPECIFIED)
    assert set(violations(err.value)) == {"verdict", "order_ids"}
    with pytest.raises(grpc.RpcError) as err:
        admin.list_held("harvard")
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_guard_calls_need_the_admin_token(guarded: Service) -> None:
    with AdminClient(guarded.address, "wrong-token-0123456789") as client:
        for call in (
            lambda: client.list_held(),
            lambda: client.review_orders(apb.VERDICT_RELEASE, ["x"]),
            lambda: client.set_guard_mode(apb.GUARD_MODE_OFF),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_deprioritised_orders_get_only_riders_left_over(
    tiny_campus: Campus, guarded: Service, dispatch: DispatchClient, admin: AdminClient
) -> None:
    admin.set_guard_mode(apb.GUARD_MODE_DEPRIORITISE)
    try:
        request = storm_request(
            tiny_campus, prefix="d", account="bot-4", n=6, legit=3, now=NOW + 20000
        )
        del request.riders[1:]  # one rider: the legitimate orders come first
        request.riders[0].capacity = 4
        response = dispatch.solve(request)
        every_order_once(request, response)
        routed = {s.order_id for r in response.routes for s in r.stops}
        assert {f"d-l{k}" for k in range(3)} <= routed
        assert not routed & {f"d-s{k}" for k in range(3, 9)}
        later = {u.order_id: u for u in response.unassigned if u.reason == pb.DEPRIORITISED}
        assert set(later) == {f"d-s{k}" for k in range(3, 9)}
        assert "only riders left over" in later["d-s3"].detail
    finally:
        admin.set_guard_mode(apb.GUARD_MODE_AUTO)


def test_admin_guard_commands(
    tiny_campus: Campus,
    guarded: Service,
    dispatch: DispatchClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"oncall {TOKEN}\n")
    common = ["--server", guarded.address, "--token-file", str(token_file)]
    dispatch.solve(storm_request(tiny_campus, prefix="c", account="bot-5", now=NOW + 30000))
    assert main(["admin", "held", *common]) == 0
    out = capsys.readouterr().out
    assert out.startswith("campus tiny: guard mode auto, storm level 2")
    assert "c-s6  account bot-5" in out and "customer_burst: account bot-5 placed 12" in out
    assert main(["admin", "release", *common, "c-s6", "--reason", "known"]) == 0
    assert capsys.readouterr().out.startswith("released: c-s6 (by token oncall, client cli")
    assert main(["admin", "confirm", *common, "--customer", "bot-5"]) == 0
    assert "confirmed: c-s7, c-s8" in capsys.readouterr().out
    assert main(["admin", "release", *common]) == 2
    assert "name held orders" in capsys.readouterr().err
    assert main(["admin", "guard-mode", *common, "quarantine", "--reason", "drill"]) == 0
    assert capsys.readouterr().out == "campus tiny: guard mode auto -> quarantine\n"
    assert main(["admin", "guard-mode", *common, "auto"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["admin", "guard-mode", *common, "panic"])
    assert "invalid choice: 'panic'" in capsys.readouterr().err
    assert main(["admin", "held", *common, "--campus", "harvard"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_a_restarted_guard_evaluates_the_re_sent_orders_again(
    tiny_campus: Campus, dispatch: DispatchClient
) -> None:
    request = storm_request(tiny_campus, prefix="x", account="bot-6", now=NOW + 40000)
    auth = AdminAuth([AdminToken("oncall", TOKEN.encode())])
    restarted = create_server(make_config(), campuses={"tiny": tiny_campus}, auth=auth, env={})
    try:
        with DispatchClient(restarted.address) as fresh:
            answer = fresh.solve(request)
        held = {u.order_id for u in answer.unassigned if u.reason == pb.QUARANTINED}
        assert held == {f"x-s{k}" for k in range(6, 18)}
    finally:
        restarted.stop(0.5)


def test_held_orders_assigned_to_a_rider_count_as_reassigned(tiny_campus: Campus) -> None:
    """A quarantined order leaves its rider's phone: the answer counts it as reassigned."""
    request = storm_request(tiny_campus, prefix="h", account="bot-7", now=NOW + 50000)
    for order in request.orders[6:9]:  # three of the storm's orders were already pushed out
        order.assigned_rider_id = "r0"
    svc = create_server(make_config(), campuses={"tiny": tiny_campus}, env={})
    try:
        with DispatchClient(svc.address) as client:
            answer = client.solve(request)
        every_order_once(request, answer)
        held = {u.order_id for u in answer.unassigned if u.reason == pb.QUARANTINED}
        assert held == {f"h-s{k}" for k in range(6, 18)}
        assert answer.stats.reassigned_orders == 3
        scrape = svc.metrics.registry.get_sample_value
        assert scrape("dispatch_reassigned_orders_total", {"campus": "tiny"}) == 3
    finally:
        svc.stop(0.5)
