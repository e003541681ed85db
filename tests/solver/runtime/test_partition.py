"""Zones of storm-sized requests (分流), problem specs whose matrices are built on demand, and the
runtime's partitioned path: every order once, pinned orders with their rider, valid merged
plans, the cross-zone repair, anytime answers when a worker fails."""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from solver.check import assert_valid_plan
from solver.engines.greedy import solve_greedy
from solver.model import Order, OrderState, Problem, Rider
from solver.params import SolverParams
from solver.plan import Engine, Shed, ShedReason, UnassignedReason
from solver.runtime.dispatch import ZonePlan, repair_zones, solve
from solver.runtime.partition import partition, zone_count
from solver.runtime.workers import SolverPool, WorkerTimeout
from solver.spec import ArrayMatrices, ProblemSpec

SPEED_M_S = 4.0


def storm(
    seed: int, n_orders: int, n_riders: int, *, side_m: float = 3_000.0, pinned: float = 0.1
) -> tuple[Problem, np.ndarray]:
    """A storm-like problem on a plane with its points' coordinates: orders from merchants to
    customers nearby (a few hundred metres), riders spread out, some orders committed or
    onboard."""
    rng = np.random.default_rng(seed)
    merchants = rng.uniform(0, side_m, size=(n_orders, 2))
    customers = merchants + rng.normal(0, 300, size=(n_orders, 2))
    riders_xy = rng.uniform(0, side_m, size=(n_riders, 2))
    xy = np.vstack([merchants, customers, riders_xy])
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    times = np.ceil(dist / SPEED_M_S).astype(np.int64)
    riders = [Rider(f"r{k}", 2 * n_orders + k, 0, 4 * 3600, 4) for k in range(n_riders)]
    load = [0] * n_riders
    orders = []
    for k in range(n_orders):
        ready = int(rng.integers(0, 900))
        order = Order(f"o{k}", k, n_orders + k, ready, ready + int(rng.integers(1200, 2400)))
        if rng.random() < pinned:
            r = int(rng.integers(n_riders))
            if rng.random() < 0.5 and load[r] < 4:
                load[r] += 1
                order = dataclasses.replace(
                    order, pickup=None, state=OrderState.ONBOARD, rider_id=f"r{r}"
                )
            else:
                order = dataclasses.replace(order, state=OrderState.COMMITTED, rider_id=f"r{r}")
        orders.append(order)
    problem = Problem.build(
        now_s=0, orders=orders, riders=riders, time_s=times, distance_m=dist.astype(np.float64)
    )
    return problem, xy


def test_spec_subproblem_renumbers_points_and_takes_their_matrices() -> None:
    problem, xy = storm(1, 20, 5)
    spec = ProblemSpec.of_problem(problem, xy)
    sub, points = spec.subproblem_with_points([3, 7], [2])
    assert [r.id for r in sub.riders] == ["r2"] and [o.id for o in sub.orders] == ["o3", "o7"]
    assert sub.riders[0].location == 0  # riders first, then orders, in order of first use
    assert points.tolist() == [42, 3, 23, 7, 27]
    assert np.array_equal(sub.time_s[0], problem.time_s[0][np.ix_(points, points)])
    whole = spec.problem()
    assert np.array_equal(whole.time_s, problem.time_s)
    with pytest.raises(ValueError, match="unknown rider"):  # checked like a Problem
        ProblemSpec(0, problem.orders, problem.riders[:1], spec.source)


def test_zone_count_follows_orders_and_workers() -> None:
    assert zone_count(1000, 300, 200, 1) == 5
    assert zone_count(1000, 300, 200, 8) == 8
    assert zone_count(1000, 3, 200, 1) == 3  # never more zones than riders
    assert zone_count(1, 10, 200, 4) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partition_puts_every_order_and_rider_in_one_zone(seed: int) -> None:
    problem, xy = storm(seed, 300, 60, pinned=0.2)
    spec = ProblemSpec.of_problem(problem, xy)
    zones = partition(spec, 5, seed=seed)
    assert 2 <= len(zones) <= 5
    orders = sorted(o for z in zones for o in z.orders)
    riders = sorted(r for z in zones for r in z.riders)
    assert orders == list(range(300)) and riders == list(range(60))
    zone_of_rider = {problem.riders[r].id: k for k, z in enumerate(zones) for r in z.riders}
    for k, z in enumerate(zones):
        assert z.riders, "a zone without riders"
        for o in z.orders:
            order = problem.orders[o]
            if order.is_pinned:
                assert zone_of_rider[order.rider_id] == k  # type: ignore[index]
    # riders are shared out in proportion to the zones' orders
    for z in zones:
        share = len(z.riders) / 60
        assert share == pytest.approx(len(z.orders) / 300, abs=0.12)
    assert partition(spec, 5, seed=seed) == zones  # deterministic


def test_partition_needs_geometry() -> None:
    problem, _ = storm(3, 10, 3)
    with pytest.raises(ValueError, match="no geometry"):
        partition(ProblemSpec.of_problem(problem), 2)


PARTITIONED = SolverParams(partition_min_orders=100, zone_orders=60)


def test_partitioned_solve_in_process_is_valid_and_tags_zones() -> None:
    problem, xy = storm(4, 240, 50)
    plan = solve(ProblemSpec.of_problem(problem, xy), PARTITIONED, budget_s=1.0)
    assert plan.stats.zones == 4
    assert_valid_plan(problem, plan, PARTITIONED)
    assert {r.zone for r in plan.routes if r.stops} == {0, 1, 2, 3}
    assert plan.stats.engine is Engine.RUIN_RECREATE and plan.stats.shed is None
    assert {"partition", "matrix", "greedy", "ruin_recreate", "total"} <= set(plan.stats.phase_s)
    # below the threshold, or without geometry, one zone
    assert solve(problem, PARTITIONED, budget_s=0.2).stats.zones == 1
    small = SolverParams(partition_min_orders=1000)
    assert solve(ProblemSpec.of_problem(problem, xy), small, budget_s=0.2).stats.zones == 1


def test_partitioned_plans_are_close_to_unpartitioned_ones() -> None:
    problem, xy = storm(5, 240, 50)
    spec = ProblemSpec.of_problem(problem, xy)
    whole = solve(spec, SolverParams(), budget_s=1.0)
    zoned = solve(spec, PARTITIONED, budget_s=1.0)
    assert whole.stats.zones == 1 and zoned.stats.zones == 4
    assert len(zoned.unassigned) <= len(whole.unassigned)
    assert zoned.stats.objective <= 1.15 * whole.stats.objective


def test_partitioned_solve_in_a_worker_pool() -> None:
    problem, xy = storm(6, 200, 40)
    with SolverPool(1) as pool:
        plan = solve(ProblemSpec.of_problem(problem, xy), PARTITIONED, budget_s=1.0, pool=pool)
    assert_valid_plan(problem, plan, PARTITIONED)
    assert plan.stats.zones == 4 and plan.stats.shed is None
    assert plan.stats.phase_s["total"] < 1.0 + 0.5


class DyingPool:
    """A pool whose worker sends the greedy plans of some zones, then is killed."""

    size = 1

    def expected_wait_s(self) -> float:
        return 0.0

    def __init__(self, keep_zones: int) -> None:
        self.keep_zones = keep_zones

    def run(self, job: Callable[..., Any], payload: Any, **_: Any) -> Any:
        sent: list[Any] = []
        no_search = payload.params.replace(min_search_s=100.0)  # greedy plans only
        early = dataclasses.replace(
            payload, zones=payload.zones[: self.keep_zones], params=no_search
        )
        job(early, 5.0, sent.append)
        error = WorkerTimeout("worker 1234 still busy after 1.250 s; killed")
        error.interims = tuple(z for z in sent if isinstance(z, ZonePlan))
        raise error


@pytest.mark.parametrize("keep", [0, 2, 4])
def test_a_killed_worker_s_zone_plans_are_the_answer_and_no_order_is_shed(keep: int) -> None:
    problem, xy = storm(7, 240, 50)
    spec = ProblemSpec.of_problem(problem, xy)
    plan = solve(spec, PARTITIONED, budget_s=0.5, pool=DyingPool(keep))  # type: ignore[arg-type]
    assert_valid_plan(problem, plan, PARTITIONED)
    assert plan.stats.shed is not None and plan.stats.shed.reason is ShedReason.WORKER_OVERRUN
    assert not [u for u in plan.unassigned if u.reason is UnassignedReason.SHED]
    assert plan.stats.zones == 4


def test_repair_moves_an_order_a_zone_could_not_place_to_a_neighbour() -> None:
    """Zone 0's only rider ends its shift before it could reach the order; zone 1's rider is
    idle next door: the repair places it there."""
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [500.0, 0.0], [30.0, 0.0]])
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    times = np.ceil(dist / SPEED_M_S).astype(np.int64)
    riders = [Rider("full", 0, 0, 4, 1), Rider("idle", 3, 0, 3600, 2)]
    orders = [
        Order("mine", None, 1, 0, 600, state=OrderState.ONBOARD, rider_id="full"),
        Order("stray", 2, 4, 0, 900),
    ]
    spec = ProblemSpec(0, tuple(orders), tuple(riders), ArrayMatrices(times[None], dist[None], xy))
    params = SolverParams()
    zone0, points0 = spec.subproblem_with_points([0, 1], [0])
    zone1, points1 = spec.subproblem_with_points([], [1])
    plan0 = solve_greedy(zone0, params)
    assert [u.order_id for u in plan0.unassigned] == ["stray"]  # its shift ends first
    plans = [
        ZonePlan(0, _global(plan0, points0, 0), False, None),
        ZonePlan(1, _global(solve_greedy(zone1, params), points1, 1), False, None),
    ]
    fixed = repair_zones(spec, params, plans, deadline=float("inf"))
    assert not fixed[0].plan.unassigned
    route = next(r for r in fixed[1].plan.routes if r.rider_id == "idle")
    assert [s.order_id for s in route.stops] == ["stray", "stray"]
    assert [s.location for s in route.stops] == [2, 4]  # in the request's numbering
    merged = solve(spec, params.replace(partition_min_orders=1), budget_s=0.3)
    assert_valid_plan(spec.problem(), merged, params)


def _global(plan: Any, points: np.ndarray, zone: int) -> Any:
    from solver.runtime.dispatch import _localised

    return _localised(plan, points, zone, {})


def test_a_zone_job_pickles_without_matrices() -> None:
    """What goes to a worker is the request, not its travel matrices (an ArrayMatrices source
    carries them; the service's campus source does not, see tests/campus_maps)."""
    problem, xy = storm(8, 50, 10)
    spec = ProblemSpec.of_problem(problem, xy)
    assert len(pickle.dumps(spec)) > problem.time_s.nbytes  # this source holds its matrices
    again = pickle.loads(pickle.dumps(spec))
    assert np.array_equal(again.problem().time_s, problem.time_s)


def test_an_order_on_a_rider_s_current_route_stays_in_that_rider_s_zone() -> None:
    problem, xy = storm(9, 300, 60, pinned=0.0)
    spec = ProblemSpec.of_problem(problem, xy)
    plain = partition(spec, 5)
    zone_of_order = {o: k for k, z in enumerate(plain) for o in z.orders}
    # an order planned on a rider of another zone follows the rider
    rider = plain[0].riders[0]
    order = next(o for o in range(300) if zone_of_order[o] != 0)
    kept = partition(spec, 5, follow={problem.orders[order].id: problem.riders[rider].id})
    assert order in kept[0].orders and rider in kept[0].riders


def test_zones_shared_out_to_two_workers_merge_into_one_valid_plan() -> None:
    """Two workers: two jobs run at once, each with its share of the zones; the repair across
    them runs in the caller."""
    problem, xy = storm(10, 240, 50)
    with SolverPool(2) as pool:
        plan = solve(ProblemSpec.of_problem(problem, xy), PARTITIONED, budget_s=1.0, pool=pool)
        assert pool.expected_wait_s() == 0.0
    assert_valid_plan(problem, plan, PARTITIONED)
    assert plan.stats.zones == 4 and plan.stats.shed is None
    assert {r.zone for r in plan.routes if r.stops} == {0, 1, 2, 3}
    assert "repair" in plan.stats.phase_s


def test_a_shed_storm_gets_greedy_plans_by_zone_here() -> None:
    """The breaker's answer to a storm: greedy plans only, zone by zone, in this process."""
    problem, xy = storm(11, 240, 50)
    breaker = Shed(ShedReason.BREAKER_OPEN, "circuit breaker open")
    held: list[Shed] = []

    @contextlib.contextmanager
    def gate(shed: Shed) -> Iterator[None]:
        held.append(shed)
        yield

    spec = ProblemSpec.of_problem(problem, xy)
    plan = solve(spec, PARTITIONED, budget_s=1.0, shed=breaker, greedy_gate=gate)
    assert_valid_plan(problem, plan, PARTITIONED)
    assert plan.stats.engine is Engine.GREEDY and plan.stats.shed is breaker
    assert plan.stats.zones == 4 and held == [breaker]
    assert not [u for u in plan.unassigned if u.reason is UnassignedReason.SHED]


def test_orders_all_at_one_place_make_one_zone_and_no_warning() -> None:
    """A storm from one account to one building: every open order at the same midpoint."""
    problem, xy = storm(12, 60, 10, pinned=0.0)
    same = dataclasses.replace(
        problem,
        orders=tuple(dataclasses.replace(o, pickup=0, dropoff=60) for o in problem.orders),
    )
    spec = ProblemSpec.of_problem(
        Problem.build(
            now_s=0,
            orders=same.orders,
            riders=same.riders,
            time_s=same.time_s,
            distance_m=same.distance_m,
        ),
        xy,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zones = partition(spec, 4)
    assert len(zones) == 1 and len(zones[0].orders) == 60
    # two places: at most two zones
    two = tuple(
        dataclasses.replace(o, pickup=0 if k % 2 else 1, dropoff=60 if k % 2 else 61)
        for k, o in enumerate(problem.orders)
    )
    spec = ProblemSpec(0, two, problem.riders, spec.source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zones = partition(spec, 4)
    assert len(zones) == 2 and sorted(o for z in zones for o in z.orders) == list(range(60))
