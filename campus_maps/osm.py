"""Reading OSM XML exports and keeping only the ways a rider of a given mode may travel."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from campus_maps.config import ModeConfig

#: Access values that close a way to the public (usable only where the campus allows private).
PRIVATE_ACCESS = frozenset({"private", "no", "customers", "delivery", "agricultural", "forestry"})
#: Mode-specific values that open a way whatever its general ``access`` tag says.
MODE_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})


class OsmFileError(ValueError):
    """An OSM file that cannot be read (names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class OsmNode:
    """An OSM node: id, position and tags."""

    id: int
    lat: float
    lng: float
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class OsmWay:
    """An OSM way: id, node ids in order, and tags."""

    id: int
    refs: tuple[int, ...]
    tags: dict[str, str]


@dataclass(frozen=True)
class OsmData:
    """The parsed content of one OSM XML export.

    Attributes
    ----------
    nodes, ways
        All nodes (by id) and all ways of the file.
    bounds
        ``(min_lat, min_lng, max_lat, max_lng)`` of the export, from its ``<bounds>`` element
        (or the node extent when the file has none).
    digest
        SHA-256 of the uncompressed XML: identifies the map content in cache keys.
    """

    nodes: dict[int, OsmNode]
    ways: tuple[OsmWay, ...]
    bounds: tuple[float, float, float, float]
    digest: str


def read_osm_bytes(path: Path) -> bytes:
    """The uncompressed XML of ``path`` (``.xz``, ``.bz2``, ``.gz`` or plain)."""
    raw = Path(path).read_bytes()
    try:
        if path.suffix == ".xz":
            return lzma.decompress(raw)
        if path.suffix == ".bz2":
            return bz2.decompress(raw)
        if path.suffix == ".gz":
            return gzip.decompress(raw)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise OsmFileError(f"{path}: cannot decompress: {exc}") from exc
    return raw


def osm_from_xml(path: Path) -> OsmData:
    """Parse an OSM XML export (optionally compressed) into nodes, ways and bounds."""
    xml = read_osm_bytes(path)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise OsmFileError(f"{path}: not valid OSM XML: {exc}") from exc
    if root.tag != "osm":
        raise OsmFileError(f"{path}: root element is <{root.tag}>, expected <osm>")
    nodes: dict[int, OsmNode] = {}
    ways: list[OsmWay] = []
    for element in root:
        if element.tag == "node":
            tags = {t.get("k", ""): t.get("v", "") for t in element.iter("tag")}
            nid = int(element.get("id", "0"))
            nodes[nid] = OsmNode(
                nid, float(element.get("lat", "nan")), float(element.get("lon", "nan")), tags
            )
        elif element.tag == "way":
            tags = {t.get("k", ""): t.get("v", "") for t in element.iter("tag")}
            refs = tuple(int(nd.get("ref", "0")) for nd in element.iter("nd"))
            ways.append(OsmWay(int(element.get("id", "0")), refs, tags))
    if not nodes:
        raise OsmFileError(f"{path}: no nodes")
    bounds_el = root.find("bounds")
    if bounds_el is not None:
        bounds = tuple(
            float(bounds_el.get(k, "nan")) for k in ("minlat", "minlon", "maxlat", "maxlon")
        )
    else:
        lats = [n.lat for n in nodes.values()]
        lngs = [n.lng for n in nodes.values()]
        bounds = (min(lats), min(lngs), max(lats), max(lngs))
    return OsmData(nodes, tuple(ways), bounds, hashlib.sha256(xml).hexdigest())  # type: ignore[arg-type]


def is_way_allowed(tags: dict[str, str], mode: ModeConfig, *, allow_private: bool) -> bool:
    """Whether a rider of ``mode`` may travel this way at all."""
    highway = tags.get("highway")
    if highway is None or highway not in mode.speeds_mps:
        return False
    if tags.get("area") == "yes" and highway not in ("pedestrian", "footway"):
        return False  # parking lots and the like; plazas are kept as walkable outlines
    if tags.get("construction") or tags.get("disused") == "yes":
        return False
    specific = tags.get(mode.tag)
    if specific == "no":
        return False
    if specific in MODE_ALLOWED:
        return True
    return allow_private or tags.get("access") not in PRIVATE_ACCESS


def mode_tags(tags: dict[str, str], mode: ModeConfig) -> dict[str, str]:
    """The way's tags as this mode sees them (bikes ignore one-way where contraflow is allowed)."""
    out = dict(tags)
    if mode.respect_oneway and (
        tags.get(f"oneway:{mode.tag}") == "no" or tags.get("cycleway", "").startswith("opposite")
    ):
        out.pop("oneway", None)
    if not mode.respect_oneway:
        out.pop("oneway", None)
        out.pop("junction", None)
    return out


def filter_ways_for_mode(osm: OsmData, mode: ModeConfig, *, allow_private: bool) -> list[OsmWay]:
    """The ways a rider of ``mode`` may use, with tags adjusted for the mode's one-way rules."""
    kept = []
    for way in osm.ways:
        if is_way_allowed(way.tags, mode, allow_private=allow_private) and all(
            ref in osm.nodes for ref in way.refs
        ):
            kept.append(OsmWay(way.id, way.refs, mode_tags(way.tags, mode)))
    return kept


def write_osm_xml(osm: OsmData, ways: list[OsmWay], path: Path) -> None:
    """Write ``ways`` and the nodes they use as a minimal OSM XML file (for osmnx)."""
    used = sorted({ref for way in ways for ref in way.refs})
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="campus_maps">',
    ]
    for nid in used:
        node = osm.nodes[nid]
        lines.append(f' <node id="{nid}" lat="{node.lat!r}" lon="{node.lng!r}"/>')
    for way in ways:
        lines.append(f' <way id="{way.id}">')
        lines.extend(f'  <nd ref="{ref}"/>' for ref in way.refs)
        lines.extend(f"  <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in way.tags.items())
        lines.append(" </way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
