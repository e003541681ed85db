"""Hand-made order streams for the storm guard."""

from __future__ import annotations

from storm import IncomingOrder, NamedPlace, StormGuard
from storm.settings import GuardSettings

#: Noon UTC on a Tuesday (epoch s).
T0 = 1_700_049_600.0
DAY = 86400.0
#: Two buildings 400 m apart (the radius is 75 m: each drop-off goes to one of them).
PLACES = (
    NamedPlace("way/1", "Willard Hall", 42.0500, -87.6800),
    NamedPlace("way/2", "Allison Hall", 42.0536, -87.6800),
)
OLD = T0 - 400 * DAY  # an account with history
NEW = T0 - 1 * DAY  # an account with none (first order yesterday)


def order(
    order_id: str,
    customer: str,
    placed_s: float,
    *,
    place: int = 0,
    since: float | None = OLD,
    is_open: bool = True,
    jitter_m: float = 0.0,
) -> IncomingOrder:
    """An order to ``PLACES[place]`` (moved north by ``jitter_m``)."""
    p = PLACES[place]
    return IncomingOrder(
        order_id, customer, placed_s, p.lat + jitter_m / 111_320, p.lng, since, is_open
    )


def guard(**changes: object) -> tuple[StormGuard, GuardSettings]:
    settings = GuardSettings(**changes)  # type: ignore[arg-type]
    return StormGuard(PLACES, settings), settings
