"""The storm guard's settings (the ``[guard]`` table of the configuration), validated, and its
modes."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class GuardMode(enum.Enum):
    """What the guard does with suspicious open orders (the value is the config text)."""

    #: No detection; orders already held stay held until released.
    OFF = "off"
    #: Report only; under a storm (level >= 2) suspicious orders are deprioritised anyway.
    FLAG = "flag"
    #: Dispatched only with riders left over after the legitimate orders.
    DEPRIORITISE = "deprioritise"
    #: Held for review (answered QUARANTINED) until released.
    QUARANTINE = "quarantine"
    #: By level: ``deprioritise_level`` and ``quarantine_level``.
    AUTO = "auto"


class GuardSettingsError(ValueError):
    """An invalid guard setting: names the key, the value and the reason."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"guard.{field}={value!r}: {reason}")


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Thresholds and actions of the storm guard; see ``config/dispatch.toml`` for each key.

    Attributes
    ----------
    mode
        Default :class:`GuardMode` of every campus (text); an operator may set a campus's mode
        live (admin ``SetGuardMode``).
    fresh_account_s
        An account whose first order is younger than this has "no history".
    customer_window_s, customer_max_orders
        Customer burst: an account placing more than ``customer_max_orders`` orders (or twice
        the learned 99th percentile of accounts, if higher) within ``customer_window_s``.
    destination_window_s, destination_min_orders, destination_fresh_share
        Fresh-account destination: at least ``destination_min_orders`` orders to one
        destination within the window from accounts with no history, and at least this share
        of all the orders to it in the window.
    destination_radius_m
        A drop-off within this distance of a named building goes to that building; others go
        to a square cell of this side.
    volume_window_s, baseline_days, volume_min_orders
        Campus volume: orders placed in the last ``volume_window_s`` against the normal of this
        time of day (learned per window-sized slot of the day, once seen on ``baseline_days``
        days); only counted with at least ``volume_min_orders`` orders in the window.
    volume_elevated_ratio, volume_storm_ratio, volume_severe_ratio
        Volume over normal that raises the level to 1, 2, 3.
    level_window_s, elevated_orders, storm_orders, severe_orders
        Suspicious orders placed within ``level_window_s`` that raise the level to 1, 2, 3.
    level_hold_s
        A level holds this long after its conditions ease (no flapping alerts).
    deprioritise_level, quarantine_level
        In ``auto`` mode, the levels from which suspicious orders are deprioritised and
        quarantined (below both: flagged only).
    hold_expiry_s
        A held order the backend has not sent for this long is forgotten.
    max_accounts
        Accounts remembered per campus (least recently seen forgotten first).
    """

    mode: str = "auto"
    fresh_account_s: int = 7 * 86400
    customer_window_s: int = 1800
    customer_max_orders: int = 4
    destination_window_s: int = 1800
    destination_min_orders: int = 6
    destination_fresh_share: float = 0.5
    destination_radius_m: float = 75.0
    volume_window_s: int = 900
    baseline_days: int = 3
    volume_min_orders: int = 20
    volume_elevated_ratio: float = 1.5
    volume_storm_ratio: float = 2.5
    volume_severe_ratio: float = 4.0
    level_window_s: int = 900
    elevated_orders: int = 1
    storm_orders: int = 10
    severe_orders: int = 40
    level_hold_s: int = 600
    deprioritise_level: int = 1
    quarantine_level: int = 2
    hold_expiry_s: int = 86400
    max_accounts: int = 200_000

    def __post_init__(self) -> None:
        modes = [m.value for m in GuardMode]
        if self.mode not in modes:
            raise GuardSettingsError("mode", self.mode, f"must be one of {', '.join(modes)}")
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise GuardSettingsError(spec.name, value, f"must be a number ({spec.type})")
                if spec.type == "int" and not float(value).is_integer():
                    raise GuardSettingsError(spec.name, value, "must be a whole number")
                if not math.isfinite(value) or value <= 0:
                    raise GuardSettingsError(spec.name, value, "must be above 0")
        if self.destination_fresh_share > 1:
            raise GuardSettingsError(
                "destination_fresh_share", self.destination_fresh_share, "must be at most 1"
            )
        ratios = (self.volume_elevated_ratio, self.volume_storm_ratio, self.volume_severe_ratio)
        if not 1 < ratios[0] <= ratios[1] <= ratios[2]:
            raise GuardSettingsError(
                "volume_storm_ratio",
                ratios,
                "volume ratios must grow: 1 < elevated <= storm <= severe",
            )
        counts = (self.elevated_orders, self.storm_orders, self.severe_orders)
        if not counts[0] <= counts[1] <= counts[2]:
            raise GuardSettingsError(
                "storm_orders", counts, "order counts must grow: elevated <= storm <= severe"
            )
        if not 1 <= self.deprioritise_level <= 2:
            raise GuardSettingsError(
                "deprioritise_level",
                self.deprioritise_level,
                "must be 1 or 2: under a storm (level 2) riders never go to suspicious orders"
                " before legitimate ones",
            )
        if not self.deprioritise_level <= self.quarantine_level <= 3:
            raise GuardSettingsError(
                "quarantine_level",
                self.quarantine_level,
                f"must be between deprioritise_level ({self.deprioritise_level}) and 3",
            )
        if 86400 % self.volume_window_s:
            raise GuardSettingsError(
                "volume_window_s", self.volume_window_s, "must divide a day (86400 s)"
            )

    @property
    def guard_mode(self) -> GuardMode:
        """:attr:`mode` as a :class:`GuardMode`."""
        return GuardMode(self.mode)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GuardSettings:
        """Build from a mapping such as the ``[guard]`` table of a TOML file."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise GuardSettingsError(str(key), values[key], "unknown setting")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (TOML-ready)."""
        return dataclasses.asdict(self)


def setting_types() -> dict[str, str]:
    """Each setting's type name (``"int"``, ``"float"``, ``"str"``)."""
    return {f.name: str(f.type) for f in dataclasses.fields(GuardSettings)}
