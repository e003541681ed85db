"""A dispatch problem before its travel matrices: orders and riders over numbered points, and a
picklable source that builds the matrices between any subset of those points where they are
needed (in a solver worker, per zone), so no matrix crosses a process boundary."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from solver.model import Order, Problem, ProblemError, Rider, check_entities


@runtime_checkable
class MatrixSource(Protocol):
    """Travel between the points of a request, built on demand.

    ``matrices(points)`` returns ``(profiles, k, k)`` whole-second times and metre distances
    between the given point indices (in that order); ``xy`` is ``(n, 2)`` metres east and north
    of some origin for every point (what zones are drawn from), or ``None`` when the points
    have no geometry. Implementations must pickle small (no matrix inside).
    """

    @property
    def num_points(self) -> int:
        """Number of points."""
        ...

    @property
    def num_profiles(self) -> int:
        """Number of travel profiles (modes)."""
        ...

    @property
    def xy(self) -> NDArray[np.float64] | None:
        """``(n, 2)`` planar coordinates in metres, or ``None``."""
        ...

    def matrices(self, points: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Times and distances between ``points``."""
        ...


@dataclass(frozen=True, eq=False)
class ArrayMatrices:
    """A :class:`MatrixSource` over matrices that exist already (offline runs, tests, the
    replay): it sends them whole when pickled, so the service does not use it."""

    time_s: NDArray[np.int64]
    distance_m: NDArray[np.float64]
    points_xy: NDArray[np.float64] | None = None

    @property
    def num_points(self) -> int:
        """Number of points."""
        return int(self.time_s.shape[1])

    @property
    def num_profiles(self) -> int:
        """Number of travel profiles."""
        return int(self.time_s.shape[0])

    @property
    def xy(self) -> NDArray[np.float64] | None:
        """Planar coordinates, when given."""
        return self.points_xy

    def matrices(self, points: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The sub-matrices of ``points``."""
        idx = np.ix_(np.arange(self.num_profiles), points, points)
        return self.time_s[idx], self.distance_m[idx]


@dataclass(frozen=True)
class ProblemSpec:
    """Orders and riders whose locations index the points of ``source``.

    Attributes
    ----------
    now_s, orders, riders
        As in :class:`~solver.model.Problem`.
    source
        Builds the travel matrices (:class:`MatrixSource`).
    """

    now_s: int
    orders: tuple[Order, ...]
    riders: tuple[Rider, ...]
    source: MatrixSource

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "riders", tuple(self.riders))
        check_entities(self.orders, self.riders, self.source.num_points, self.source.num_profiles)

    @classmethod
    def of_problem(cls, problem: Problem, xy: NDArray[np.float64] | None = None) -> ProblemSpec:
        """The spec of a problem whose matrices are built (``xy``: its points' geometry)."""
        if xy is not None and xy.shape != (problem.num_locations, 2):
            raise ProblemError("xy", xy.shape, f"must be ({problem.num_locations}, 2)")
        source = ArrayMatrices(problem.time_s, problem.distance_m, xy)
        return cls(problem.now_s, problem.orders, problem.riders, source)

    def problem(self) -> Problem:
        """The whole problem (every point's matrices built, points keep their numbers)."""
        points = np.arange(self.source.num_points, dtype=np.int64)
        return self._built(self.orders, self.riders, points)

    def subproblem_with_points(
        self, orders: Sequence[int], riders: Sequence[int]
    ) -> tuple[Problem, NDArray[np.int64]]:
        """The problem of some orders and riders (indices), over only the points they use
        (renumbered in order of first use), and those points' numbers in the spec."""
        used: dict[int, int] = {}

        def at(point: int) -> int:
            if point not in used:
                used[point] = len(used)
            return used[point]

        def maybe(point: int | None) -> int | None:
            return None if point is None else at(point)

        new_riders = [
            dataclasses.replace(
                self.riders[r],
                location=at(self.riders[r].location),
                end_location=maybe(self.riders[r].end_location),
            )
            for r in riders
        ]
        new_orders = [
            dataclasses.replace(
                self.orders[o],
                pickup=maybe(self.orders[o].pickup),
                dropoff=at(self.orders[o].dropoff),
            )
            for o in orders
        ]
        points = np.fromiter(used, dtype=np.int64, count=len(used))
        return self._built(new_orders, new_riders, points), points

    def _built(
        self, orders: Sequence[Order], riders: Sequence[Rider], points: NDArray[np.int64]
    ) -> Problem:
        """A problem of ``orders`` and ``riders`` (locations numbered as in ``points``) with
        the matrices between ``points`` built now."""
        if len(points):
            times, dists = self.source.matrices(points)
        else:
            profiles = self.source.num_profiles
            times, dists = np.zeros((profiles, 0, 0), np.int64), np.zeros((profiles, 0, 0))
        return Problem.build(
            now_s=self.now_s, orders=orders, riders=riders, time_s=times, distance_m=dists
        )


K = TypeVar("K", bound=Hashable)


class ProblemBuilder(Generic[K]):
    """The one way a problem is assembled from riders and orders at points named by a key
    (a lat/lng pair, a scenario point), riders by travel-mode name: the service's request
    conversion and the replay's view both build through it.

    Points are numbered in order of first use (:meth:`locate`), each with the fields that use
    it (for error reports); the profiles are the modes present among the riders, in
    ``mode_order``; a rider's shift never ends before it is available.
    """

    def __init__(self, mode_order: Sequence[str]) -> None:
        self.mode_order = tuple(mode_order)
        self._index: dict[K, int] = {}
        self._users: list[list[str]] = []
        self._riders: list[tuple[Rider, str]] = []
        self._orders: list[Order] = []

    def locate(self, key: K, user: str = "") -> int:
        """The number of the point ``key`` (a new one on first use); ``user`` names the field."""
        if key not in self._index:
            self._index[key] = len(self._index)
            self._users.append([])
        at = self._index[key]
        if user:
            self._users[at].append(user)
        return at

    def add_rider(
        self,
        id: str,
        at: K,
        mode: str,
        *,
        available_s: int,
        shift_end_s: int,
        capacity: int,
        user: str = "",
    ) -> None:
        """A rider at point ``at`` travelling by ``mode`` (one of ``mode_order``)."""
        if mode not in self.mode_order:
            raise ProblemError("mode", mode, f"must be one of {self.mode_order}")
        rider = Rider(
            id=id,
            location=self.locate(at, user),
            available_s=available_s,
            shift_end_s=max(shift_end_s, available_s),
            capacity=capacity,
        )
        self._riders.append((rider, mode))

    def add_order(
        self,
        id: str,
        pickup: K | None,
        dropoff: K,
        *,
        pickup_user: str = "",
        dropoff_user: str = "",
        **fields: Any,
    ) -> None:
        """An order from ``pickup`` (``None``: already in a bag) to ``dropoff``; ``fields`` are
        the other :class:`~solver.model.Order` fields."""
        at = None if pickup is None else self.locate(pickup, pickup_user)
        self._orders.append(
            Order(id=id, pickup=at, dropoff=self.locate(dropoff, dropoff_user), **fields)
        )

    @property
    def keys(self) -> list[K]:
        """The point keys, in point-number order."""
        return list(self._index)

    def users(self, point: int) -> list[str]:
        """The fields that use point number ``point``."""
        return self._users[point]

    @property
    def modes(self) -> tuple[str, ...]:
        """The travel modes present among the riders, in ``mode_order``: profile ``p`` is
        ``modes[p]``."""
        present = {mode for _, mode in self._riders}
        return tuple(m for m in self.mode_order if m in present)

    @property
    def riders(self) -> tuple[Rider, ...]:
        """The riders, each with the profile of its mode."""
        modes = self.modes
        return tuple(dataclasses.replace(r, profile=modes.index(m)) for r, m in self._riders)

    @property
    def orders(self) -> tuple[Order, ...]:
        """The orders."""
        return tuple(self._orders)

    def spec(self, now_s: int, source: MatrixSource) -> ProblemSpec:
        """The problem before its matrices, over ``source`` (built from :attr:`keys`)."""
        return ProblemSpec(now_s=now_s, orders=self.orders, riders=self.riders, source=source)

    def problem(
        self, now_s: int, time_s: NDArray[np.int64], distance_m: NDArray[np.float64]
    ) -> Problem:
        """The problem with matrices over :attr:`keys` and :attr:`modes` already built."""
        return Problem.build(
            now_s=now_s,
            orders=self.orders,
            riders=self.riders,
            time_s=time_s,
            distance_m=distance_m,
        )
