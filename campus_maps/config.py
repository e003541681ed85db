"""Per-campus settings: map file, travel modes with access rules and speed tables, snapping.

Settings come from ``data/defaults.toml`` merged with ``data/<campus>/campus.toml`` (the campus
file overrides any key). A bad value raises :class:`CampusConfigError` naming the file, the key
and the value.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
MODES = ("walk", "bike", "ebike")
#: Environment variable naming the maps directory (campuses onboarded by operators).
MAPS_DIR_ENV = "CAMPUS_DISPATCH_MAPS_DIR"


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks: a map's identity in the caches
    and in an onboarded campus's SOURCE."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_maps_dir() -> Path:
    """Where onboarded campuses live: ``$CAMPUS_DISPATCH_MAPS_DIR``, else
    ``~/.local/share/campus-dispatch/maps``."""
    env = os.environ.get(MAPS_DIR_ENV)
    return Path(env) if env else Path.home() / ".local" / "share" / "campus-dispatch" / "maps"


class CampusConfigError(ValueError):
    """An invalid campus setting: names the file, the key and the value."""

    def __init__(self, source: str, key: str, value: object, reason: str) -> None:
        self.source, self.key, self.value, self.reason = source, key, value, reason
        super().__init__(f"{source}: {key}={value!r}: {reason}")


class UnknownCampusError(KeyError):
    """No bundled campus has this id."""

    def __init__(self, campus_id: str, known: list[str]) -> None:
        self.campus_id = campus_id
        self.known = known
        super().__init__(f"unknown campus {campus_id!r}; known campuses: {', '.join(known)}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownModeError(KeyError):
    """The travel mode is not one of :data:`MODES`."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__(f"unknown travel mode {mode!r}; modes: {', '.join(MODES)}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModeConfig:
    """Access rules and speeds of one travel mode.

    Attributes
    ----------
    name
        ``walk``, ``bike`` or ``ebike``.
    speeds_mps
        Speed in m/s per OSM ``highway`` type; types not listed are not traversable.
    respect_oneway
        Whether ``oneway`` tags bind this mode (bikes: yes, walkers: no).
    tag
        The OSM mode-specific access key (``foot`` or ``bicycle``): ``no`` forbids a way,
        ``yes``/``designated``/``permissive`` overrides a general ``access`` restriction.
    dismount_speed_mps
        Speed on ways tagged ``<tag>=dismount`` (bikes pushed); ``None``: the tag is ignored.
    """

    name: str
    speeds_mps: Mapping[str, float]
    respect_oneway: bool
    tag: str
    dismount_speed_mps: float | None = None

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the network of this mode, as plain data."""
        data = asdict(self)
        data["speeds_mps"] = dict(sorted(self.speeds_mps.items()))
        return data


@dataclass(frozen=True)
class CampusConfig:
    """Everything needed to build one campus's rider networks.

    Attributes
    ----------
    id, name
        Campus id (folder name) and display name.
    osm_path
        The compressed OSM XML export.
    default
        Whether this is the default campus.
    timezone
        IANA timezone of the campus (for scenario clocks).
    modes
        One :class:`ModeConfig` per travel mode.
    allow_private
        Whether ``access=private``/``no`` ways are usable (campus service roads).
    snap_max_distance_m
        Points farther than this from a mode's network are rejected.
    access_speed_mps
        Speed of the off-network leg between a point and the network.
    service_area
        ``[(lat, lng), ...]`` polygon; empty: the OSM export's bounding box.
    """

    id: str
    name: str
    osm_path: Path
    default: bool
    timezone: str
    modes: Mapping[str, ModeConfig]
    allow_private: bool
    snap_max_distance_m: float
    access_speed_mps: float
    service_area: tuple[tuple[float, float], ...] = field(default=())

    def mode(self, name: str) -> ModeConfig:
        """The settings of travel mode ``name``."""
        try:
            return self.modes[name]
        except KeyError:
            raise UnknownModeError(name) from None

    def network_key(self, mode: str, osm_digest: str) -> str:
        """Cache key of a mode's network: map content + mode rules + speeds + the format of the
        stored tables (:data:`campus_maps.tables.CACHE_FORMAT`: a new format gets new folders,
        an old cache entry is never read as a new one)."""
        from campus_maps.tables import CACHE_FORMAT  # tables imports network, which imports us

        payload = {
            "osm": osm_digest,
            "mode": self.mode(mode).fingerprint(),
            "allow_private": self.allow_private,
            "table_format": CACHE_FORMAT,
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _positive(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CampusConfigError(source, key, value, "must be a number")
    if not math.isfinite(value) or value <= 0:
        raise CampusConfigError(source, key, value, "must be a finite number > 0")
    return float(value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise CampusConfigError(str(path), "<file>", path.name, f"not valid TOML: {exc}") from exc


def parse_campus_config(
    data: Mapping[str, Any], *, folder: Path, source: str, defaults: Mapping[str, Any]
) -> CampusConfig:
    """Validate merged settings (defaults overridden by ``data``) into a :class:`CampusConfig`."""
    merged = _merge(dict(defaults), data)
    for key in ("id", "name", "osm_file"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise CampusConfigError(source, key, merged.get(key), "must be a non-empty string")
    osm_path = folder / merged["osm_file"]
    if not osm_path.is_file():
        raise CampusConfigError(source, "osm_file", merged["osm_file"], f"no file at {osm_path}")

    def table_of(key: str) -> Mapping[str, Any]:
        value = merged.get(key, {})
        if not isinstance(value, Mapping):
            raise CampusConfigError(source, key, value, "must be a table")
        return value

    mode_tables, snap, access = table_of("modes"), table_of("snap"), table_of("access")
    modes: dict[str, ModeConfig] = {}
    for name in MODES:
        table = mode_tables.get(name)
        if not isinstance(table, Mapping):
            raise CampusConfigError(source, f"modes.{name}", table, "missing mode table")
        speeds = table.get("speeds_mps")
        if not isinstance(speeds, Mapping) or not speeds:
            raise CampusConfigError(source, f"modes.{name}.speeds_mps", speeds, "must be a table")
        checked = {
            str(hw): _positive(source, f"modes.{name}.speeds_mps.{hw}", v)
            for hw, v in speeds.items()
        }
        dismount = table.get("dismount_speed_mps")
        modes[name] = ModeConfig(
            name=name,
            speeds_mps=checked,
            respect_oneway=bool(table.get("respect_oneway", False)),
            tag=str(table.get("tag", "foot")),
            dismount_speed_mps=None
            if dismount is None
            else _positive(source, f"modes.{name}.dismount_speed_mps", dismount),
        )
    area = merged.get("service_area", [])
    if not isinstance(area, list | tuple):
        raise CampusConfigError(source, "service_area", area, "must be a list of [lat, lng]")
    corners: list[tuple[float, float]] = []
    for k, corner in enumerate(area):
        if (
            not isinstance(corner, list | tuple)
            or len(corner) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in corner)
            or not -90 <= corner[0] <= 90
            or not -180 <= corner[1] <= 180
        ):
            raise CampusConfigError(source, f"service_area[{k}]", corner, "must be [lat, lng]")
        corners.append((float(corner[0]), float(corner[1])))
    if corners and len(corners) < 3:
        raise CampusConfigError(source, "service_area", area, "needs at least 3 corners")
    return CampusConfig(
        id=merged["id"],
        name=merged["name"],
        osm_path=osm_path,
        default=bool(merged.get("default", False)),
        timezone=str(merged.get("timezone", "UTC")),
        modes=modes,
        allow_private=bool(access.get("allow_private", False)),
        snap_max_distance_m=_positive(source, "snap.max_distance_m", snap.get("max_distance_m")),
        access_speed_mps=_positive(source, "snap.access_speed_mps", snap.get("access_speed_mps")),
        service_area=tuple(corners),
    )


def campus_folder(
    campus_id: str, *, data_dir: Path = DATA_DIR, maps_dir: Path | None = None
) -> Path:
    """The folder of campus ``campus_id``: bundled (``data_dir``) first, then ``maps_dir``;
    :class:`UnknownCampusError` when neither has it."""
    for root in (data_dir, maps_dir):
        if root is not None and (root / campus_id / "campus.toml").is_file():
            return root / campus_id
    raise UnknownCampusError(campus_id, campus_ids(data_dir, maps_dir))


def load_campus_config(
    campus_id: str,
    *,
    data_dir: Path = DATA_DIR,
    maps_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CampusConfig:
    """Read ``<folder>/campus.toml`` over ``data_dir/defaults.toml``, where the folder is the
    bundled campus of that id in ``data_dir``, else the onboarded one in ``maps_dir``.

    ``overrides`` (same shape as the TOML) is applied last, e.g. to try other speeds.
    """
    folder = campus_folder(campus_id, data_dir=data_dir, maps_dir=maps_dir)
    path = folder / "campus.toml"
    data = _read_toml(path)
    if overrides:
        data = _merge(data, overrides)
    if data.get("id", campus_id) != campus_id:
        raise CampusConfigError(str(path), "id", data.get("id"), f"must equal folder {campus_id!r}")
    return parse_campus_config(
        data, folder=folder, source=str(path), defaults=_read_toml(data_dir / "defaults.toml")
    )


def campus_folders(root: Path) -> set[str]:
    """Names of the campus folders in ``root`` (those with a ``campus.toml``). Hidden folders
    (an onboarding in progress stages its campus in one) are not campuses, and a folder that
    cannot be read (missing, no permission) holds none."""
    try:
        return {
            p.parent.name for p in root.glob("*/campus.toml") if not p.parent.name.startswith(".")
        }
    except OSError:
        return set()


def campus_ids(data_dir: Path = DATA_DIR, maps_dir: Path | None = None) -> list[str]:
    """Ids of the campuses under ``data_dir`` and ``maps_dir`` (folders with a campus.toml),
    sorted; an onboarded campus cannot shadow a bundled one."""
    ids = campus_folders(data_dir)
    if maps_dir is not None:
        ids |= campus_folders(maps_dir)
    return sorted(ids)


def bundled(campus_id: str, data_dir: Path = DATA_DIR) -> bool:
    """Whether ``campus_id`` is a campus shipped in the package."""
    return (data_dir / campus_id / "campus.toml").is_file()


def default_campus_id(data_dir: Path = DATA_DIR) -> str:
    """The campus marked ``default = true`` (else the first one)."""
    ids = campus_ids(data_dir)
    for campus_id in ids:
        if _read_toml(data_dir / campus_id / "campus.toml").get("default"):
            return campus_id
    if not ids:
        raise UnknownCampusError("<default>", ids)
    return ids[0]
