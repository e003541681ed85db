"""Load shapes: the lunch rush ramps up, holds and ramps down; the spike is 5x for a minute;
soak holds; bad settings are named."""

from __future__ import annotations

import pytest

from load.shapes import LoadProfile, lunch_rush, make_profile, soak, spike, steps


def test_lunch_rush_ramps_up_holds_and_ramps_down() -> None:
    profile = lunch_rush(20, ramp_up_s=30, plateau_s=40, ramp_down_s=20)
    assert profile.duration_s == 90 and profile.peak_users == 20
    assert profile.users_at(0) == 4  # 20 % of the peak
    assert profile.users_at(15) == 12
    assert profile.users_at(30) == profile.users_at(69) == 20
    assert 4 < profile.users_at(80) < 20  # type: ignore[operator]
    assert profile.users_at(90) is None


def test_spike_is_five_times_the_base_for_a_minute() -> None:
    profile = spike(4)
    assert profile.duration_s == 120
    assert profile.users_at(29) == 4
    assert profile.users_at(30) == profile.users_at(89) == 20
    assert profile.users_at(90) == profile.users_at(119) == 4


def test_soak_holds_and_steps_step() -> None:
    assert {soak(6, duration_s=300).users_at(t) for t in range(0, 300, 7)} == {6}
    profile = steps([1, 3, 9], step_s=10)
    assert [profile.users_at(t) for t in (0, 9, 10, 25, 29.9)] == [1, 1, 3, 9, 9]
    assert profile.users_at(30) is None


def test_make_profile_scales_the_named_profiles() -> None:
    assert make_profile("lunch", 9, 180).points[1] == (60.0, 9.0)
    assert make_profile("spike", 2, 100).users_at(20) == 10  # 20 s, then the 60 s spike
    assert make_profile("soak", 3).duration_s == 600
    assert "users 3@0s -> 3@600s" in make_profile("soak", 3).summary()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: lunch_rush(0), "peak_users=0"),
        (lambda: spike(3, factor=-1), "factor=-1"),
        (lambda: soak(2, duration_s=float("nan")), "duration_s=nan"),
        (lambda: make_profile("brunch", 3), "profile='brunch'"),
        (lambda: make_profile("spike", 3, 60), "seconds=60"),
        (lambda: LoadProfile("x", ((1.0, 2.0), (3.0, 2.0))), "first point must be at 0 s"),
        (lambda: LoadProfile("x", ((0.0, 2.0), (3.0, 2.0), (2.0, 1.0))), "must not decrease"),
    ],
)
def test_bad_profiles_are_named(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
