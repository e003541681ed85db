"""Proto ⇄ solver model: a request becomes a spec whose matrices are built on demand; a plan
becomes an answer with its typed shed reason, zones and ETAs, and back."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from api.codec import epoch_of
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import Campus, CampusMatrices
from server.convert import plan_from_response, problem_from_request, response_from_plan
from server.validate import InvalidRequestError
from solver.check import check_plan
from solver.plan import Shed, ShedReason
from solver.runtime.dispatch import solve
from tests.server.conftest import NOW, make_config, make_request


def test_a_request_becomes_a_spec_whose_matrices_wait(tiny_campus: Campus) -> None:
    request = make_request(tiny_campus, orders=5, riders=2)
    request.riders[1].mode = pb.WALK
    conversion = problem_from_request(request, tiny_campus, make_config())
    spec = conversion.spec
    assert isinstance(spec.source, CampusMatrices)
    assert conversion.modes == ("walk", "bike")
    assert spec.source.num_points == len(conversion.points)
    assert [r.profile for r in spec.riders] == [1, 0]
    whole = conversion.problem  # built on first use, the same as the spec's
    assert np.array_equal(whole.time_s, spec.problem().time_s)
    assert whole.time_s.shape == (2, len(conversion.points), len(conversion.points))


def test_a_plan_becomes_an_answer_and_back(tiny_campus: Campus) -> None:
    config = make_config()
    request = make_request(tiny_campus, orders=6, riders=3)
    conversion = problem_from_request(request, tiny_campus, config)
    plan = solve(conversion.spec, config.solver, budget_s=0.2)
    shed = Shed(ShedReason.WORKERS_BUSY, "no idle solver worker in time")
    plan = dataclasses.replace(plan, stats=dataclasses.replace(plan.stats, shed=shed, zones=3))
    response = response_from_plan(plan, conversion, request, solve_s=0.2, total_s=0.25)
    assert response.stats.shed == pb.SHED_WORKERS_BUSY
    assert response.stats.shed_reason == "workers_busy: no idle solver worker in time"
    assert response.stats.zones == 3
    first = next(r for r in plan.routes if r.stops)
    out = next(r for r in response.routes if r.rider_id == first.rider_id)
    assert out.stops[0].arrival_time.ToSeconds() == NOW + first.stops[0].arrival_s
    lat, lng = conversion.points[first.stops[0].location]
    assert (out.stops[0].location.lat, out.stops[0].location.lng) == (lat, lng)
    again = plan_from_response(conversion.problem, config.solver, response)
    assert [r.stops for r in again.routes] == [r.stops for r in plan.routes]
    assert again.stats.objective == plan.stats.objective


def test_max_time_in_bag_reaches_the_solver_and_binds_the_plan(tiny_campus: Campus) -> None:
    config = make_config()
    request = make_request(tiny_campus, orders=6, riders=2)
    for k, order in enumerate(request.orders):
        if not order.onboard_rider_id and not order.committed_rider_id:
            order.max_time_in_bag.FromSeconds(120 + 30 * k)
    conversion = problem_from_request(request, tiny_campus, config)
    limits = {o.id: o.max_in_bag_s for o in conversion.spec.orders}
    for order in request.orders:
        expected = order.max_time_in_bag.seconds if order.HasField("max_time_in_bag") else None
        assert limits[order.id] == expected
    from solver.check import check_plan

    plan = solve(conversion.problem, config.solver, budget_s=0.1)
    assert check_plan(conversion.problem, plan, config.solver).ok


def test_a_point_off_campus_names_the_limit_and_the_area(tiny_campus: Campus) -> None:
    request = make_request(tiny_campus, orders=2, riders=1)
    request.orders[1].dropoff.lat, request.orders[1].dropoff.lng = 42.05, -87.68
    with pytest.raises(InvalidRequestError) as err:
        problem_from_request(request, tiny_campus, make_config())
    [violation] = err.value.violations
    assert violation.field == "orders[1].dropoff"
    west, south, east, north = tiny_campus.service_area.bounds
    assert re.fullmatch(
        r"\(42\.050000, -87\.680000\) is outside the campus service area by \d+ m "
        r"\(limit 0 m: every point must lie inside the service area of campus 'tiny', "
        rf"within lat {south:.5f} to {north:.5f}, lng {west:.5f} to {east:.5f}\)",
        violation.description,
    ), violation.description


def test_soft_assignments_reach_the_solver_and_the_moves_the_answer(tiny_campus: Campus) -> None:
    config = make_config()
    request = make_request(tiny_campus, orders=5, riders=2)
    request.orders[0].assigned_rider_id = "r1"
    request.orders[0].assigned_pickup_time.FromSeconds(NOW + 900)
    request.orders[1].assigned_rider_id = "gone"  # logged off: not in the request
    request.orders[2].committed_rider_id = "r0"
    request.orders[2].assigned_rider_id = "r0"
    request.orders[3].onboard_rider_id = "r1"
    request.orders[3].quoted_dropoff_time.FromSeconds(NOW + 1200)  # any state may have one
    conversion = problem_from_request(request, tiny_campus, config)
    orders = {o.id: o for o in conversion.spec.orders}
    assert orders["o3"].quoted_dropoff_s == 1200 and orders["o0"].quoted_dropoff_s is None
    assert (orders["o0"].assigned_rider_id, orders["o0"].assigned_pickup_s) == ("r1", 900)
    assert (orders["o1"].assigned_rider_id, orders["o1"].assigned_pickup_s) == ("gone", None)
    assert (orders["o2"].assigned_rider_id, orders["o2"].rider_id) == ("r0", "r0")
    for k in (3, 4):  # onboard and open orders assigned to no one
        assert (orders[f"o{k}"].assigned_rider_id, orders[f"o{k}"].assigned_pickup_s) == (
            None,
            None,
        )
    plan = solve(conversion.spec, config.solver, budget_s=0.2)
    assert plan.stats.reassigned >= 1  # o1's rider is not there to keep it
    response = response_from_plan(plan, conversion, request, solve_s=0.2, total_s=0.25)
    assert response.stats.reassigned_orders == plan.stats.reassigned
    again = plan_from_response(conversion.problem, config.solver, response)
    assert again.stats.reassigned == plan.stats.reassigned
    assert again.stats.objective == pytest.approx(plan.stats.objective)


def test_tentative_stops_reach_the_answer(tiny_campus: Campus) -> None:
    """An order no one was given whose pickup its rider reaches past the dispatch horizon
    comes back tentative on both stops (not to be pushed yet); an assigned one never does."""
    config = make_config()
    request = make_request(tiny_campus, orders=3, riders=2)
    for o in request.orders:  # the food is ready in 40 minutes: no rider goes there soon
        o.ready_time.FromSeconds(NOW + 2400)
        o.due_time.FromSeconds(NOW + 3600)
    request.orders[0].assigned_rider_id = "r0"
    conversion = problem_from_request(request, tiny_campus, config)
    plan = solve(conversion.spec, config.solver, budget_s=0.2)
    response = response_from_plan(plan, conversion, request, solve_s=0.2, total_s=0.25)
    marks = {(s.order_id, s.tentative) for r in response.routes for s in r.stops}
    horizon = config.solver.dispatch_horizon_s
    for route in response.routes:
        for s in route.stops:
            if s.kind == pb.PICKUP and s.order_id != "o0":
                late = epoch_of(s.arrival_time) - NOW > horizon
                assert s.tentative == late, s.order_id
    assert ("o0", True) not in marks and ("o1", True) in marks
    assert check_plan(conversion.problem, plan, config.solver).ok
