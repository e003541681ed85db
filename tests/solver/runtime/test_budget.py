"""The wall-clock budget of a solve, on an injected clock: the deadline counts from construction,
what is left is never negative, it expires exactly at the deadline, and phases add up their
time (also when their body raises, and with time measured elsewhere)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.runtime.budget import Budget


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_deadline_counts_from_construction() -> None:
    clock = FakeClock(100.0)
    budget = Budget(2.5, clock=clock)
    assert (budget.seconds, budget.started, budget.deadline) == (2.5, 100.0, 102.5)
    assert budget.phase_s == {}
    assert budget.elapsed() == 0.0 and budget.remaining() == 2.5 and not budget.expired
    clock.advance(1.0)
    assert budget.elapsed() == 1.0 and budget.remaining() == 1.5 and not budget.expired


def test_it_expires_exactly_at_the_deadline_and_nothing_is_left_after() -> None:
    clock = FakeClock(0.0)
    budget = Budget(1.0, clock=clock)
    clock.advance(0.75)
    clock.advance(0.1875)
    assert not budget.expired and budget.remaining() == 0.0625
    clock.advance(0.0625)
    assert budget.expired and budget.remaining() == 0.0
    clock.advance(5.0)
    assert budget.expired and budget.remaining() == 0.0 and budget.elapsed() == 6.0


@pytest.mark.parametrize("seconds", [0, 0.0, -1, -0.5, -1e9])
def test_a_zero_or_negative_budget_is_expired_at_once(seconds: float) -> None:
    clock = FakeClock(7.0)
    budget = Budget(seconds, clock=clock)
    assert budget.seconds == 0.0 and budget.deadline == 7.0
    assert budget.expired and budget.remaining() == 0.0


def test_seconds_are_a_float_whatever_the_number_given() -> None:
    budget = Budget(3, clock=FakeClock())
    assert isinstance(budget.seconds, float) and budget.seconds == 3.0


def test_a_phase_adds_the_time_of_its_body_and_phases_of_one_name_add_up() -> None:
    clock = FakeClock()
    budget = Budget(10.0, clock=clock)
    with budget.phase("greedy"):
        clock.advance(0.25)
    clock.advance(1.0)  # between phases: counted against the budget, not in any phase
    with budget.phase("search"):
        clock.advance(2.0)
    with budget.phase("greedy"):
        clock.advance(0.5)
    assert budget.phase_s == {"greedy": 0.75, "search": 2.0}
    assert budget.elapsed() == 3.75 and budget.remaining() == 6.25


def test_nested_phases_each_count_their_own_span() -> None:
    clock = FakeClock()
    budget = Budget(10.0, clock=clock)
    with budget.phase("solve"):
        clock.advance(1.0)
        with budget.phase("matrix"):
            clock.advance(0.5)
        clock.advance(0.25)
    assert budget.phase_s == {"solve": 1.75, "matrix": 0.5}


def test_a_phase_is_recorded_when_its_body_raises_and_the_error_goes_on() -> None:
    clock = FakeClock()
    budget = Budget(10.0, clock=clock)
    with pytest.raises(KeyError, match="boom"), budget.phase("ortools"):
        clock.advance(0.375)
        raise KeyError("boom")
    assert budget.phase_s == {"ortools": 0.375}


def test_record_adds_time_measured_elsewhere() -> None:
    clock = FakeClock()
    budget = Budget(1.0, clock=clock)
    budget.record("worker", 0.3)
    budget.record("worker", 2)  # an int is taken as seconds too
    with budget.phase("worker"):
        clock.advance(0.2)
    assert budget.phase_s == {"worker": pytest.approx(2.5)}
    assert isinstance(budget.phase_s["worker"], float)
    assert budget.elapsed() == pytest.approx(0.2)  # recorded time does not move the clock


def test_repr_shows_the_length_and_what_is_left() -> None:
    clock = FakeClock()
    budget = Budget(1.5, clock=clock)
    clock.advance(0.25)
    assert repr(budget) == "Budget(seconds=1.500, remaining=1.250)"


def test_the_default_clock_is_the_performance_counter() -> None:
    before = time.perf_counter()
    budget = Budget(60.0)
    after = time.perf_counter()
    assert before <= budget.started <= after
    assert budget.deadline == budget.started + 60.0
    assert 0.0 <= budget.elapsed() < 60.0 and not budget.expired


@settings(max_examples=100, deadline=None)
@given(
    seconds=st.floats(-10, 100, allow_nan=False),
    steps=st.lists(
        st.tuples(st.sampled_from(["", "greedy", "search", "ortools"]), st.floats(0, 5)),
        max_size=12,
    ),
)
def test_the_books_balance(seconds: float, steps: list[tuple[str, float]]) -> None:
    """Phases hold exactly the time spent inside them; elapsed and remaining add up to the
    budget until it expires, and remaining never goes below zero."""
    clock = FakeClock(1000.0)
    budget = Budget(seconds, clock=clock)
    inside: dict[str, float] = {}
    spent = 0.0
    for name, step in steps:
        if name:
            with budget.phase(name):
                clock.advance(step)
            inside[name] = inside.get(name, 0.0) + step
        else:
            clock.advance(step)
        spent += step
        assert budget.remaining() >= 0.0
        assert budget.expired == (clock.now >= budget.deadline)
        if not budget.expired:
            assert budget.elapsed() + budget.remaining() == pytest.approx(budget.seconds)
    assert budget.phase_s.keys() == inside.keys()
    for name, total in inside.items():
        assert budget.phase_s[name] == pytest.approx(total, abs=1e-9)
    assert budget.elapsed() == pytest.approx(spent, abs=1e-9)
