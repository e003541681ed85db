"""The catalog of bundled campuses: ids, names, bounds, network sizes per mode, places."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from campus_maps.campus import Campus, load_campus
from campus_maps.config import DATA_DIR, MODES, campus_ids
from campus_maps.places import PlaceKind


@dataclass(frozen=True)
class CampusInfo:
    """What the catalog says about one campus.

    Attributes
    ----------
    id, name
        Campus id and display name.
    default
        Whether it is the default campus.
    bounds
        ``(min_lat, min_lng, max_lat, max_lng)`` of the map export.
    networks
        Per mode: ``(nodes, edges)`` of the rider network (largest strongly connected part).
    places
        Number of places per kind (``food``, ``dorm``, ``building``).
    build_s
        Per mode: seconds to build (cold) or load (warm) the network and its tables.
    """

    id: str
    name: str
    default: bool
    bounds: tuple[float, float, float, float]
    networks: dict[str, tuple[int, int]]
    places: dict[str, int]
    build_s: dict[str, float]


def describe_campus(campus: Campus) -> CampusInfo:
    """Build (or load) every mode's network of ``campus`` and summarise it."""
    networks, build_s = {}, {}
    for mode in MODES:
        net = campus.network(mode)
        networks[mode] = (net.stats.nodes, net.stats.edges)
        build_s[mode] = net.stats.build_s
    places = {kind.value: len(campus.places(kind)) for kind in PlaceKind}
    return CampusInfo(
        campus.id, campus.name, campus.config.default, campus.bounds, networks, places, build_s
    )


def list_campuses(*, cache_dir: Path | None = None, data_dir: Path = DATA_DIR) -> list[CampusInfo]:
    """Every bundled campus, described (networks are built on first use, then cached)."""
    return [
        describe_campus(load_campus(cid, cache_dir=cache_dir, data_dir=data_dir))
        for cid in campus_ids(data_dir)
    ]
