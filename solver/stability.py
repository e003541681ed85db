"""Stable dispatch over time: which soft assignments are frozen, and which orders a plan moves
away from the rider they are assigned to.

An open order may carry ``assigned_rider_id``: the rider whose phone shows it, who has not
accepted it yet (:mod:`solver.model`). Two parameters keep such orders where they are:

* ``params.freeze_horizon_s``: an assigned order whose planned pickup is that close is
  **frozen**, treated as committed to its rider (:func:`freeze`: every engine then keeps it
  there, and the checker holds it to it);
* ``params.reassignment_cost``: every other move away from the assigned rider (to another
  rider, or out of the plan) costs this much in the objective (:func:`moved_orders` counts
  them; the engines price them exactly, :mod:`solver.check` verifies the term).

And one decides when an order reaches a phone at all: ``params.dispatch_horizon_s``. A new order
is planned and quoted an ETA at once, but its stops stay *tentative* (not pushed, free to move)
until its rider would reach the pickup within the horizon (:func:`is_tentative`;
:func:`solver.routes.build_route` marks the stops).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from solver.model import Order, OrderState, Problem
from solver.params import SolverParams
from solver.plan import Route, StopKind
from solver.spec import ProblemSpec

__all__ = [
    "freeze",
    "frozen_order",
    "is_frozen",
    "is_tentative",
    "moved_orders",
    "planned_pickup_s",
]

P = TypeVar("P", Problem, ProblemSpec)


def planned_pickup_s(order: Order, now_s: int) -> int:
    """The pickup time an assigned order was planned for: ``assigned_pickup_s``, else the
    earliest any plan could pick it up (``max(ready_s, now_s)``)."""
    if order.assigned_pickup_s is not None:
        return order.assigned_pickup_s
    return max(order.ready_s, now_s)


def is_frozen(
    order: Order, now_s: int, params: SolverParams, capacities: Mapping[str, int]
) -> bool:
    """Whether an open order stays on its assigned rider whatever it costs: the rider is one of
    ``capacities`` (rider id -> bag capacity) and can carry it, and the planned pickup is
    within ``params.freeze_horizon_s`` of ``now_s``. Start-loaded orders (``pickup=None``,
    benchmarks only) have no pickup to plan and are never frozen: their assignment is priced
    only; nor is an order larger than its rider's bag (it must move)."""
    return (
        order.state is OrderState.OPEN
        and order.pickup is not None
        and order.assigned_rider_id is not None
        and order.size <= capacities.get(order.assigned_rider_id, -1)
        and params.freeze_horizon_s > 0
        and planned_pickup_s(order, now_s) <= now_s + params.freeze_horizon_s
    )


def frozen_order(order: Order) -> Order:
    """``order`` committed to its assigned rider."""
    return dataclasses.replace(order, state=OrderState.COMMITTED, rider_id=order.assigned_rider_id)


def freeze(problem: P, params: SolverParams) -> P:
    """``problem`` (or spec) with its frozen orders committed to their assigned riders; the
    same object when none is (idempotent: a frozen order is no longer open)."""
    riders = {r.id: r.capacity for r in problem.riders}
    frozen = [is_frozen(o, problem.now_s, params, riders) for o in problem.orders]
    if not any(frozen):
        return problem
    orders = tuple(frozen_order(o) if f else o for o, f in zip(problem.orders, frozen, strict=True))
    return dataclasses.replace(problem, orders=orders)  # validated again on construction


def is_tentative(order: Order, pickup_arrival_s: int, now_s: int, params: SolverParams) -> bool:
    """Whether a plan whose rider reaches ``order``'s pickup at ``pickup_arrival_s`` should
    not have it pushed to that rider yet: an open order assigned to no one, reached later than
    ``params.dispatch_horizon_s`` after ``now_s`` (never with a horizon of 0). An assigned
    order is on a phone already, and a pinned one is its rider's."""
    return (
        params.dispatch_horizon_s > 0
        and order.state is OrderState.OPEN
        and order.assigned_rider_id is None
        and pickup_arrival_s > now_s + params.dispatch_horizon_s
    )


def moved_orders(orders: Sequence[Order], routes: Iterable[Route]) -> list[str]:
    """Ids of the assigned orders the routes do not keep on their assigned rider (on another
    rider, or in no route), in ``orders``' order."""
    served_by = {
        stop.order_id: route.rider_id
        for route in routes
        for stop in route.stops
        if stop.kind is StopKind.DROPOFF
    }
    return [
        o.id
        for o in orders
        if o.assigned_rider_id is not None and served_by.get(o.id) != o.assigned_rider_id
    ]
