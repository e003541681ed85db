"""The storm guard: reads each campus's order stream as it arrives (each order once), detects
abnormal bursts (恶意下单), keeps a storm level per campus, and says what to do with each
suspicious order (flag, deprioritise, quarantine), held until a person reviews it.

Domain code only: no gRPC, no server. The server feeds it batches (:meth:`Guards.review`) and
turns its verdicts into answers, metrics and admin calls."""

from storm.destinations import NamedPlace, named_places
from storm.detectors import Detector, Finding
from storm.guard import (
    Action,
    GuardReview,
    Guards,
    HeldOrder,
    IncomingOrder,
    OrderVerdict,
    ReviewOutcome,
    StormGuard,
    StormLevel,
)
from storm.settings import GuardMode, GuardSettings, GuardSettingsError

__all__ = [
    "Action",
    "Detector",
    "Finding",
    "GuardMode",
    "GuardReview",
    "GuardSettings",
    "GuardSettingsError",
    "Guards",
    "HeldOrder",
    "IncomingOrder",
    "NamedPlace",
    "OrderVerdict",
    "ReviewOutcome",
    "StormGuard",
    "StormLevel",
    "named_places",
]
