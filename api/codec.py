"""Proto ⇄ Python values: timestamps and durations as seconds, and the one two-way map between
each proto enum of the contract and its Python value (travel modes by name, stop kinds, engines,
unassigned reasons, shed reasons). Every package that reads or writes messages uses these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from solver.plan import Engine, ShedReason, StopKind, UnassignedReason

V = TypeVar("V")
P = TypeVar("P", bound=int)


def timestamp_at(epoch_s: float) -> Timestamp:
    """A protobuf Timestamp of ``epoch_s`` (s since the epoch, nanosecond resolution)."""
    ts = Timestamp()
    ts.FromNanoseconds(round(epoch_s * 1e9))
    return ts


def epoch_of(ts: Timestamp) -> float:
    """Seconds since the epoch of a protobuf Timestamp."""
    return ts.ToNanoseconds() / 1e9


def duration_of(seconds: float) -> Duration:
    """A protobuf Duration of ``seconds``."""
    d = Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def seconds_of(d: Duration) -> float:
    """Seconds of a protobuf Duration."""
    return d.ToNanoseconds() / 1e9


class EnumMap(Generic[V, P]):
    """A proto enum ⇄ Python values, one to one: ``to_proto(value)`` and
    ``from_proto(number)`` (``KeyError`` for a number without a value, e.g. ``*_UNSPECIFIED``,
    unless a default is given)."""

    def __init__(self, pairs: Mapping[V, P]) -> None:
        self._to = dict(pairs)
        self._from = {number: value for value, number in self._to.items()}
        if len(self._from) != len(self._to):
            raise ValueError("an enum map must be one to one")

    def to_proto(self, value: V) -> P:
        """The proto number of ``value``."""
        return self._to[value]

    def from_proto(self, number: P | int, default: V | None = None) -> V:
        """The value of a proto number (``default`` when it has none and one is given)."""
        if number in self._from:
            return self._from[number]
        if default is not None:
            return default
        raise KeyError(number)

    def has_proto(self, number: int) -> bool:
        """Whether the proto number has a value."""
        return number in self._from

    def values(self) -> tuple[V, ...]:
        """Every Python value, in the map's order."""
        return tuple(self._to)


#: Travel modes by name (the names of ``campus_maps.MODES``).
MODES: EnumMap[str, pb.TravelMode] = EnumMap({"walk": pb.WALK, "bike": pb.BIKE, "ebike": pb.EBIKE})
#: Stop kinds of a route.
STOP_KINDS: EnumMap[StopKind, pb.StopKind] = EnumMap(
    {StopKind.PICKUP: pb.PICKUP, StopKind.DROPOFF: pb.DROPOFF}
)
#: The engines the service answers with (benchmark peers have no proto value).
ENGINES: EnumMap[Engine, pb.Engine] = EnumMap(
    {
        Engine.ORTOOLS: pb.ORTOOLS,
        Engine.GREEDY: pb.GREEDY,
        Engine.RUIN_RECREATE: pb.RUIN_RECREATE,
    }
)
#: Why an order is unassigned: each reason under the same name.
UNASSIGNED_REASONS: EnumMap[UnassignedReason, pb.UnassignedReason] = EnumMap(
    {reason: pb.UnassignedReason.Value(reason.name) for reason in UnassignedReason}
)
#: Why a request was shed to the greedy: ``SHED_`` + the reason's name.
SHED_REASONS: EnumMap[ShedReason, pb.ShedReason] = EnumMap(
    {reason: pb.ShedReason.Value(f"SHED_{reason.name}") for reason in ShedReason}
)
