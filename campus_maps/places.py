"""Named places of a campus map: food places (pickups) and dorms and other buildings (drop-offs)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import shapely

from campus_maps.osm import OsmData

FOOD_AMENITIES = frozenset({"restaurant", "cafe", "fast_food", "canteen", "food_court"})
DORM_BUILDINGS = frozenset({"dormitory", "residential", "apartments", "house", "terrace"})
#: Buildings nobody orders food to.
NOT_DESTINATIONS = frozenset({"garage", "garages", "shed", "roof", "no", "construction", "ruins"})


class PlaceKind(enum.Enum):
    """What a place is for in a delivery scenario."""

    FOOD = "food"  # pickup candidate: restaurant, cafe, fast food, canteen
    DORM = "dorm"  # drop-off candidate: where students live
    BUILDING = "building"  # drop-off candidate: other named buildings (offices, labs, halls)


@dataclass(frozen=True, slots=True)
class Place:
    """A point of interest with its centroid.

    Attributes
    ----------
    id
        ``node/<osm id>`` or ``way/<osm id>``.
    name
        The OSM ``name`` (or a generated one such as ``"cafe 1234"`` when it has none).
    kind
        :class:`PlaceKind`.
    category
        The tag that made it a place, e.g. ``amenity=cafe`` or ``building=dormitory``.
    lat, lng
        Centroid (for a building outline, of its polygon).
    """

    id: str
    name: str
    kind: PlaceKind
    category: str
    lat: float
    lng: float


def _classify(tags: dict[str, str]) -> tuple[PlaceKind, str] | None:
    amenity = tags.get("amenity", "")
    building = tags.get("building", "")
    if amenity in FOOD_AMENITIES:
        return PlaceKind.FOOD, f"amenity={amenity}"
    if tags.get("highway"):
        return None
    if building in DORM_BUILDINGS or amenity == "dormitory":
        return PlaceKind.DORM, f"building={building or 'yes'}"
    if building and building not in NOT_DESTINATIONS and tags.get("name"):
        return PlaceKind.BUILDING, f"building={building}"
    return None


def places_from_osm(osm: OsmData) -> list[Place]:
    """Every food place, dorm and named building of the map, with its centroid."""
    places: list[Place] = []
    for node in osm.nodes.values():
        found = _classify(node.tags) if node.tags else None
        if found:
            kind, category = found
            name = node.tags.get("name") or f"{category.split('=')[1]} {node.id}"
            places.append(Place(f"node/{node.id}", name, kind, category, node.lat, node.lng))
    for way in osm.ways:
        found = _classify(way.tags)
        if not found or len(way.refs) < 2 or any(r not in osm.nodes for r in way.refs):
            continue
        kind, category = found
        coords = [(osm.nodes[r].lng, osm.nodes[r].lat) for r in way.refs]
        shape = (
            shapely.Polygon(coords)
            if len(coords) >= 4 and coords[0] == coords[-1]
            else shapely.LineString(coords)
        )
        centroid = (
            shape.centroid
            if shape.is_valid and not shape.is_empty
            else shape.representative_point()
        )
        name = way.tags.get("name") or f"{category.split('=')[1]} {way.id}"
        places.append(Place(f"way/{way.id}", name, kind, category, centroid.y, centroid.x))
    return sorted(places, key=lambda p: (p.kind.value, p.name, p.id))
