"""Proto ⇄ Python values: every enum of the contract maps one to one, times round-trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.codec import (
    ENGINES,
    MODES,
    SHED_REASONS,
    STOP_KINDS,
    UNASSIGNED_REASONS,
    EnumMap,
    duration_of,
    epoch_of,
    seconds_of,
    timestamp_at,
)
from api.pb.campus_dispatch.v1 import dispatch_pb2 as pb
from campus_maps import MODES as MODE_ORDER
from solver.plan import Engine, ShedReason, StopKind, UnassignedReason


def test_every_shed_reason_has_its_proto_value() -> None:
    assert set(SHED_REASONS.values()) == set(ShedReason)
    for reason in SHED_REASONS.values():
        assert pb.ShedReason.Name(SHED_REASONS.to_proto(reason)) == f"SHED_{reason.name}"
        assert SHED_REASONS.from_proto(SHED_REASONS.to_proto(reason)) is reason


def test_every_unassigned_reason_and_stop_kind_keeps_its_name() -> None:
    assert set(UNASSIGNED_REASONS.values()) == set(UnassignedReason)
    for reason in UnassignedReason:
        assert pb.UnassignedReason.Name(UNASSIGNED_REASONS.to_proto(reason)) == reason.name
    assert set(STOP_KINDS.values()) == set(StopKind)
    for kind in StopKind:
        assert pb.StopKind.Name(STOP_KINDS.to_proto(kind)) == kind.name
        assert STOP_KINDS.from_proto(STOP_KINDS.to_proto(kind)) is kind


def test_modes_are_the_campus_modes_and_unspecified_takes_the_default() -> None:
    assert MODES.values() == MODE_ORDER
    assert {pb.TravelMode.Name(MODES.to_proto(m)) for m in MODE_ORDER} == {"WALK", "BIKE", "EBIKE"}
    assert MODES.from_proto(pb.TRAVEL_MODE_UNSPECIFIED, "bike") == "bike"
    with pytest.raises(KeyError):
        MODES.from_proto(pb.TRAVEL_MODE_UNSPECIFIED)


def test_the_service_engines_have_proto_values_and_peers_do_not() -> None:
    assert set(ENGINES.values()) == {Engine.ORTOOLS, Engine.GREEDY, Engine.RUIN_RECREATE}
    assert not ENGINES.has_proto(pb.ENGINE_UNSPECIFIED)
    assert ENGINES.from_proto(pb.RUIN_RECREATE) is Engine.RUIN_RECREATE


def test_a_map_must_be_one_to_one() -> None:
    with pytest.raises(ValueError, match="one to one"):
        EnumMap({"a": 1, "b": 1})


@given(st.integers(min_value=0, max_value=4_000_000_000_000_000_000))
def test_timestamps_round_trip_to_the_nanosecond(nanos: int) -> None:
    ts = timestamp_at(nanos / 1e9)
    assert abs(ts.ToNanoseconds() - nanos) <= 2**-52 * nanos + 1
    assert epoch_of(ts) == ts.ToNanoseconds() / 1e9


@given(st.floats(min_value=0, max_value=86_400, allow_nan=False))
def test_durations_round_trip(seconds: float) -> None:
    assert abs(seconds_of(duration_of(seconds)) - seconds) <= 1e-9
