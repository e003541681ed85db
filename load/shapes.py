"""Load profiles (users over time) of the load tests: lunch rush, spike (an order storm), soak and
capacity steps; plain data that :class:`load.locustfile.DispatchShape` plays to locust."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Profile names accepted by :func:`make_profile`, with their default length (s).
PROFILES = {"lunch": 90.0, "spike": 120.0, "soak": 600.0}


@dataclass(frozen=True)
class LoadProfile:
    """Users over time: piecewise linear between ``points`` ``(t_s, users)``; two points at the
    same time make a step. The run ends after the last point.

    Attributes
    ----------
    name
        Shown in the report.
    points
        ``(seconds from the start, users)``, the first at 0 s, times non-decreasing.
    """

    name: str
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError(f"points={self.points!r}: at least two points are needed")
        if self.points[0][0] != 0:
            raise ValueError(f"points[0]={self.points[0]!r}: the first point must be at 0 s")
        for k, (t, users) in enumerate(self.points):
            if not (math.isfinite(t) and math.isfinite(users)) or users < 0:
                raise ValueError(f"points[{k}]={(t, users)!r}: need a finite time and users >= 0")
            if k and t < self.points[k - 1][0]:
                raise ValueError(f"points[{k}]={(t, users)!r}: times must not decrease")
        if self.duration_s <= 0:
            raise ValueError(f"points={self.points!r}: the profile must last longer than 0 s")

    @property
    def duration_s(self) -> float:
        """Length of the run (s)."""
        return self.points[-1][0]

    @property
    def peak_users(self) -> int:
        """The most users at any time."""
        return math.ceil(max(users for _, users in self.points))

    def users_at(self, t_s: float) -> int | None:
        """Users ``t_s`` seconds into the run (at least 1), or ``None`` once it is over."""
        if t_s >= self.duration_s:
            return None
        t_s = max(0.0, t_s)
        users = self.points[-1][1]
        for (t0, u0), (t1, u1) in zip(self.points, self.points[1:], strict=False):
            if t0 <= t_s < t1:
                users = u0 + (u1 - u0) * (t_s - t0) / (t1 - t0)
                break
        return max(1, round(users))

    def summary(self) -> str:
        """One line: name, length and the users at each point."""
        steps = " -> ".join(f"{u:g}@{t:g}s" for t, u in self.points)
        return f"{self.name}: {self.duration_s:g} s, users {steps}"


def _positive(name: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r}: must be a finite number > 0")


def lunch_rush(
    peak_users: int,
    *,
    ramp_up_s: float = 30.0,
    plateau_s: float = 40.0,
    ramp_down_s: float = 20.0,
    floor: float = 0.2,
) -> LoadProfile:
    """The lunch rush: from ``floor`` x the peak, ramp up to ``peak_users``, hold, ramp down."""
    _positive("peak_users", peak_users)
    for name, value in (
        ("ramp_up_s", ramp_up_s),
        ("plateau_s", plateau_s),
        ("ramp_down_s", ramp_down_s),
    ):
        _positive(name, value)
    if not 0 <= floor <= 1:
        raise ValueError(f"floor={floor!r}: must be in [0, 1]")
    low = max(1.0, floor * peak_users)
    up = ramp_up_s
    down = up + plateau_s
    end = down + ramp_down_s
    points = ((0.0, low), (up, peak_users), (down, peak_users), (end, low))
    return LoadProfile("lunch", tuple((float(t), float(u)) for t, u in points))


def spike(
    base_users: int,
    *,
    factor: float = 5.0,
    before_s: float = 30.0,
    spike_s: float = 60.0,
    after_s: float = 30.0,
) -> LoadProfile:
    """An order storm: ``base_users``, then ``factor`` x as many for ``spike_s``, then back."""
    for name, value in (
        ("base_users", base_users),
        ("factor", factor),
        ("before_s", before_s),
        ("spike_s", spike_s),
        ("after_s", after_s),
    ):
        _positive(name, value)
    top = float(base_users) * factor
    t1, t2 = before_s, before_s + spike_s
    base = float(base_users)
    points = ((0.0, base), (t1, base), (t1, top), (t2, top), (t2, base), (t2 + after_s, base))
    return LoadProfile("spike", points)


def soak(users: int, *, duration_s: float = 600.0) -> LoadProfile:
    """Steady ``users`` for a long ``duration_s`` (leaks, drift, slow degradation)."""
    _positive("users", users)
    _positive("duration_s", duration_s)
    return LoadProfile("soak", ((0.0, float(users)), (float(duration_s), float(users))))


def steps(levels: Sequence[int], step_s: float) -> LoadProfile:
    """Capacity steps: each of ``levels`` users held for ``step_s``."""
    _positive("step_s", step_s)
    if not levels:
        raise ValueError("levels: at least one level is needed")
    points: list[tuple[float, float]] = []
    for k, users in enumerate(levels):
        _positive(f"levels[{k}]", users)
        points += [(k * step_s, float(users)), ((k + 1) * step_s, float(users))]
    return LoadProfile("steps", tuple(points))


def make_profile(name: str, users: int, seconds: float | None = None) -> LoadProfile:
    """A named profile (:data:`PROFILES`) lasting ``seconds`` (default: its usual length).

    ``users`` is the peak for ``lunch``, the base (5x during the minute of the spike) for
    ``spike`` and the steady level for ``soak``. A lunch rush spends a third of its time
    ramping up, 4/9 on the plateau and 2/9 ramping down; a spike keeps its minute and splits
    the rest before and after it.
    """
    if name not in PROFILES:
        raise ValueError(f"profile={name!r}: must be one of {', '.join(PROFILES)}")
    seconds = PROFILES[name] if seconds is None else seconds
    _positive("seconds", seconds)
    if name == "lunch":
        return lunch_rush(
            users, ramp_up_s=seconds / 3, plateau_s=seconds * 4 / 9, ramp_down_s=seconds * 2 / 9
        )
    if name == "spike":
        if seconds <= 60:
            raise ValueError(f"seconds={seconds!r}: a spike profile needs more than its 60 s spike")
        rest = (seconds - 60.0) / 2
        return spike(users, before_s=rest, after_s=rest)
    return soak(users, duration_s=seconds)
