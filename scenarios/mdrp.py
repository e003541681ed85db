"""MDRPLIB instances (Grubhub meal delivery, Reyes et al.) as euclidean scenarios.

The files are read by :mod:`instances.mdrp`; this module turns an instance into a replayable
:class:`~scenarios.model.Scenario` and reports the reader's errors as :class:`ScenarioError`
(same field, value, reason, line and file).
"""

from __future__ import annotations

from pathlib import Path

from instances.mdrp import MdrpFormatError, MdrpInstance, read_mdrp
from scenarios.model import (
    MODES,
    Geometry,
    Point,
    Scenario,
    ScenarioError,
    ScenarioOrder,
    ScenarioRider,
)


def scenario_from_mdrp(
    folder: str | Path,
    *,
    capacity: int = 4,
    mode: str = "bike",
    name: str | None = None,
) -> Scenario:
    """Import one MDRPLIB instance folder as a euclidean :class:`Scenario`.

    Couriers become riders (shift from ``on_time``/``off_time``, position ``(x, y)``), orders
    are picked up at their restaurant's point and dropped at ``(x, y)``; minutes become whole
    seconds. An order is promised ``target click-to-door`` after it is placed; a ready time
    before the placement is clamped to the placement (and counted in
    ``extra["clamped_ready"]``).

    Parameters
    ----------
    folder
        The instance folder, holding ``couriers.txt``, ``orders.txt``, ``restaurants.txt`` and
        ``instance_parameters.txt`` (tab-separated, a header line each; see
        :func:`instances.mdrp.read_mdrp`).
    capacity
        Bag capacity of every rider (MDRPLIB has no capacities).
    mode
        Travel mode of every rider (one of :data:`scenarios.model.MODES`).
    name
        Scenario name; default the folder's name.

    Returns
    -------
    Scenario
        Geometry ``euclidean`` at the instance's ``meters_per_minute``; orders sorted by
        ``(placed_s, id)``; ``extra`` holds ``source``, ``instance`` (the folder's name),
        ``target_click_to_door_s``, ``max_click_to_door_s``, ``pay_per_order``,
        ``guaranteed_pay_per_hour`` and ``clamped_ready``.

    Raises
    ------
    ScenarioError
        A bad option; or, from the reader, a missing folder or file, a missing column, a
        missing, non-numeric or out-of-range value, a duplicate id or an order naming an
        unknown restaurant; the error names the file (``source``), the line and the column
        (``field``).
    """
    if mode not in MODES:
        raise ScenarioError("mode", mode, f"must be one of {MODES}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ScenarioError("capacity", capacity, "must be an integer >= 1")
    try:
        instance = read_mdrp(folder)
    except MdrpFormatError as exc:
        raise ScenarioError(
            exc.field, exc.value, exc.reason, line=exc.line, source=exc.source
        ) from exc
    return _scenario(instance, capacity=capacity, mode=mode, name=name)


def _scenario(instance: MdrpInstance, *, capacity: int, mode: str, name: str | None) -> Scenario:
    """The scenario of an instance read by :func:`instances.mdrp.read_mdrp`."""
    params = instance.parameters
    places = {ident: Point(r.x, r.y) for ident, r in instance.restaurants.items()}
    riders = tuple(
        ScenarioRider(c.id, c.on_s, c.off_s, Point(c.x, c.y), mode, capacity)
        for c in instance.couriers
    )
    orders: list[ScenarioOrder] = []
    clamped = 0
    for order in instance.orders:
        ready = order.ready_s
        if ready < order.placed_s:
            ready = order.placed_s
            clamped += 1
        orders.append(
            ScenarioOrder(
                id=order.id,
                placed_s=order.placed_s,
                merchant=places[order.restaurant],
                customer=Point(order.x, order.y),
                ready_s=ready,
                promised_s=order.placed_s + params.target_click_to_door_s,
                size=1,
                pickup_service_s=params.pickup_service_s,
                dropoff_service_s=params.dropoff_service_s,
                merchant_id=order.restaurant,
            )
        )
    orders.sort(key=lambda o: (o.placed_s, o.id))  # as scenarios.model.with_orders

    description = (
        f"MDRPLIB instance {instance.name} (Grubhub meal delivery routing problem, Reyes et al.; "
        f"research use only): {len(riders)} couriers, {len(places)} restaurants, "
        f"{len(orders)} orders"
    )
    extra = {
        "source": "mdrplib",
        "instance": instance.name,
        "target_click_to_door_s": params.target_click_to_door_s,
        "max_click_to_door_s": params.max_click_to_door_s,
        "pay_per_order": params.pay_per_order,
        "guaranteed_pay_per_hour": params.guaranteed_pay_per_hour,
        "clamped_ready": clamped,
    }
    return Scenario(
        name=instance.name if name is None else name,
        geometry=Geometry("euclidean", metres_per_minute=params.metres_per_minute),
        riders=riders,
        orders=tuple(orders),
        description=description,
        extra=extra,
    )
