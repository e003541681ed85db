"""Onboarding a campus: read an OSM extract, clip it, refuse what cannot work, write its folder."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import math
import re
import shutil
import time
import tomllib
import xml.etree.ElementTree as ET
import zoneinfo
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely

from campus_maps.campus import Campus, load_campus
from campus_maps.config import (
    DATA_DIR,
    MODES,
    CampusConfig,
    UnknownCampusError,
    bundled,
    campus_folder,
    campus_folders,
    file_digest,
    parse_campus_config,
)
from campus_maps.osm import OsmData, OsmNode, OsmWay, is_way_allowed, osm_from_xml
from campus_maps.report import (
    ModeAnalysis,
    OnboardReport,
    analyse_modes,
    build_report,
    estimate_table_bytes,
)

LatLng = tuple[float, float]
#: File name endings ``campus add`` reads, and how each is opened (``None``: pyosmium).
OSM_SUFFIXES: dict[str, Callable[..., Any] | None] = {
    ".osm": open,
    ".osm.xz": lzma.open,
    ".osm.bz2": bz2.open,
    ".osm.gz": gzip.open,
    ".osm.pbf": None,
}
#: A campus id: lowercase letters and digits, words joined by ``_`` or ``-``.
CAMPUS_ID = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")
CAMPUS_ID_MAX = 40
#: ``[tables] max_bytes`` when neither defaults.toml nor the campus sets it (2 GiB).
DEFAULT_MAX_TABLE_BYTES = 2 * 1024**3
ODBL = (
    "**Map data © OpenStreetMap contributors, available under the Open Database License "
    "(ODbL 1.0), https://www.openstreetmap.org/copyright — "
    "https://opendatacommons.org/licenses/odbl/1-0/.**"
)


class OnboardError(ValueError):
    """A campus that cannot be onboarded: the message names the value and what is wrong."""


class NotOsmFileError(OnboardError):
    """The input is not a readable OSM file (names the file and the problem)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: not an OSM file: {problem}")


class NoRoadError(OnboardError):
    """The box or polygon leaves no road of the extract."""


class NoRiderNetworkError(OnboardError):
    """Some travel mode has no network at all on the clipped map."""


class TablesTooLargeError(OnboardError):
    """A mode's all-pairs tables would not fit in ``[tables] max_bytes``."""


@dataclass(frozen=True)
class Clip:
    """The part of an extract to keep: a box or a polygon, as ``(lat, lng)`` corners.

    Attributes
    ----------
    kind
        ``bbox`` or ``polygon``.
    corners
        The ring, not closed (a box: SW, SE, NE, NW).
    source
        How the operator gave it (``--bbox S,W,N,E`` or the GeoJSON file name).
    """

    kind: str
    corners: tuple[LatLng, ...]
    source: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(south, west, north, east)``."""
        lats = [c[0] for c in self.corners]
        lngs = [c[1] for c in self.corners]
        return min(lats), min(lngs), max(lats), max(lngs)

    def describe(self) -> str:
        """One phrase naming the clip, for messages and SOURCE.md."""
        s, w, n, e = self.bounds
        if self.kind == "bbox":
            return f"the box {s:g},{w:g},{n:g},{e:g} (S,W,N,E)"
        return (
            f"the polygon of {self.source} ({len(self.corners)} corners, "
            f"within {s:g},{w:g},{n:g},{e:g})"
        )

    def in_bounds(self, lat: float, lng: float) -> bool:
        """Whether a point is inside the clip's bounding box (cheap pre-test)."""
        s, w, n, e = self.bounds
        return s <= lat <= n and w <= lng <= e

    def contains(
        self, lat: np.ndarray[Any, np.dtype[np.float64]], lng: np.ndarray[Any, np.dtype[np.float64]]
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which points are inside (the boundary counts as inside)."""
        s, w, n, e = self.bounds
        inside: np.ndarray[Any, np.dtype[np.bool_]] = (
            (lat >= s) & (lat <= n) & (lng >= w) & (lng <= e)
        )
        if self.kind == "polygon" and inside.any():
            polygon = shapely.Polygon([(c[1], c[0]) for c in self.corners])
            idx = np.nonzero(inside)[0]
            inside[idx] = shapely.intersects_xy(polygon, lng[idx], lat[idx])
        return inside


def parse_bbox(text: str) -> Clip:
    """``S,W,N,E`` in degrees as a :class:`Clip`; :class:`OnboardError` naming the text."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise OnboardError(f"--bbox {text!r}: expected four numbers S,W,N,E (degrees)")
    s, w, n, e = values
    if not (-90 <= s < n <= 90 and -180 <= w < e <= 180):
        raise OnboardError(
            f"--bbox {text!r}: need -90 <= S < N <= 90 and -180 <= W < E <= 180 (S,W,N,E)"
        )
    return Clip("bbox", ((s, w), (s, e), (n, e), (n, w)), f"--bbox {text}")


def _polygon_ring(data: Any) -> list[Any]:
    """The outer ring of the single polygon in a GeoJSON object (as ``[lng, lat]`` pairs)."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        features = [f for f in data.get("features") or [] if isinstance(f, dict)]
        if len(features) != 1:
            raise ValueError(f"a FeatureCollection of {len(features)} features; need exactly one")
        return _polygon_ring(features[0])
    if kind == "Feature":
        return _polygon_ring(data.get("geometry"))
    if kind == "Polygon":
        rings = data.get("coordinates")
    elif kind == "MultiPolygon":
        polygons = data.get("coordinates") or []
        if len(polygons) != 1:
            raise ValueError(f"a MultiPolygon of {len(polygons)} polygons; need exactly one")
        rings = polygons[0]
    else:
        raise ValueError(f"a GeoJSON {kind or 'value'} is not a Polygon (or a Feature of one)")
    if not isinstance(rings, list) or not rings or not isinstance(rings[0], list):
        raise ValueError("the polygon has no coordinates")
    return rings[0]


def read_polygon(path: Path) -> Clip:
    """The polygon of a GeoJSON file (a Polygon, or a Feature/FeatureCollection of one; holes
    are ignored) as a :class:`Clip`; :class:`OnboardError` naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        ring = _polygon_ring(data)
        corners = [(float(p[1]), float(p[0])) for p in ring]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OnboardError(f"--polygon {path}: cannot read GeoJSON: {exc}") from exc
    except (ValueError, TypeError, IndexError) as exc:
        raise OnboardError(f"--polygon {path}: {exc}") from exc
    if len(corners) > 1 and corners[0] == corners[-1]:
        corners.pop()
    bad = [c for c in corners if not (-90 <= c[0] <= 90 and -180 <= c[1] <= 180)]
    if bad:
        raise OnboardError(f"--polygon {path}: corner {bad[0]} (lat, lng) is out of range")
    if len(corners) < 3:
        raise OnboardError(f"--polygon {path}: needs at least 3 corners, has {len(corners)}")
    shape = shapely.Polygon([(c[1], c[0]) for c in corners])
    if not shape.is_valid or shape.area == 0:
        raise OnboardError(
            f"--polygon {path}: not a valid polygon ({shapely.is_valid_reason(shape)})"
        )
    return Clip("polygon", tuple(corners), Path(path).name)


def check_campus_id(campus_id: str, maps_dir: Path, *, force: bool = False) -> None:
    """Refuse an id that is not a simple lowercase slug, is bundled, or is already onboarded
    into ``maps_dir`` (unless ``force``)."""
    if len(campus_id) > CAMPUS_ID_MAX or not CAMPUS_ID.match(campus_id):
        raise OnboardError(
            f"campus id {campus_id!r}: use a simple lowercase slug (letters and digits, words "
            f"joined by _ or -, starting with a letter, at most {CAMPUS_ID_MAX} characters), "
            "e.g. 'uce_quito'"
        )
    if bundled(campus_id):
        raise OnboardError(f"campus id {campus_id!r} is a bundled campus; choose another id")
    if (maps_dir / campus_id / "campus.toml").is_file() and not force:
        raise OnboardError(
            f"campus id {campus_id!r} is already onboarded in {maps_dir / campus_id}; "
            "pass --force to replace it, or `campus remove` it first"
        )


def check_timezone(name: str) -> str:
    """An IANA timezone name; :class:`OnboardError` naming it otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise OnboardError(
            f"--timezone {name!r}: not an IANA timezone (e.g. America/Chicago)"
        ) from None
    return name


def osm_suffix(path: Path) -> str:
    """Which of :data:`OSM_SUFFIXES` ``path`` ends in; :class:`NotOsmFileError` otherwise."""
    name = path.name.lower()
    for suffix in sorted(OSM_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise NotOsmFileError(
        path, f"the name must end in {', '.join(OSM_SUFFIXES)} (OSM XML, compressed, or PBF)"
    )


@dataclass
class ExtractStats:
    """What was read and what the clip kept."""

    nodes_read: int = 0
    ways_read: int = 0
    nodes_kept: int = 0
    ways_kept: int = 0


@dataclass
class _Clipper:
    """Collects an extract's nodes and ways as they are read and keeps what the clip selects:
    nodes inside, and ways with at least one node inside, with all their nodes."""

    path: Path
    clip: Clip | None
    ids: array[int] = field(default_factory=lambda: array("q"))
    lats: array[float] = field(default_factory=lambda: array("d"))
    lngs: array[float] = field(default_factory=lambda: array("d"))
    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    ways: list[OsmWay] = field(default_factory=list)
    inside: set[int] | None = None
    file_bounds: tuple[float, float, float, float] | None = None
    stats: ExtractStats = field(default_factory=ExtractStats)

    def add_node(self, nid: int, lat: float, lng: float, tags: dict[str, str]) -> None:
        if self.inside is not None:
            raise NotOsmFileError(
                self.path,
                f"node {nid} comes after the ways: the file is not sorted "
                "(nodes, then ways); sort it with `osmium sort`",
            )
        if not (math.isfinite(lat) and math.isfinite(lng)):
            raise NotOsmFileError(self.path, f"node {nid} has no valid lat/lon")
        self.stats.nodes_read += 1
        self.ids.append(nid)
        self.lats.append(lat)
        self.lngs.append(lng)
        if tags and (self.clip is None or self.clip.in_bounds(lat, lng)):
            self.tags[nid] = tags

    def _inside_ids(self) -> set[int]:
        if self.inside is None:
            ids = np.frombuffer(self.ids, dtype=np.int64)
            if self.clip is None:
                self.inside = set(ids.tolist())
            else:
                lat = np.frombuffer(self.lats, dtype=np.float64)
                lng = np.frombuffer(self.lngs, dtype=np.float64)
                self.inside = set(ids[self.clip.contains(lat, lng)].tolist())
        return self.inside

    def add_way(self, wid: int, refs: tuple[int, ...], tags: dict[str, str]) -> None:
        self.stats.ways_read += 1
        inside = self._inside_ids()
        if refs and any(r in inside for r in refs):
            self.ways.append(OsmWay(wid, refs, tags))

    def finish(self) -> OsmData:
        if not self.stats.nodes_read:
            raise NotOsmFileError(self.path, "it has no nodes")
        inside = self._inside_ids()
        wanted = inside | {r for way in self.ways for r in way.refs}
        ids = np.frombuffer(self.ids, dtype=np.int64)
        lat = np.frombuffer(self.lats, dtype=np.float64)
        lng = np.frombuffer(self.lngs, dtype=np.float64)
        keep = np.nonzero(np.isin(ids, np.fromiter(wanted, dtype=np.int64, count=len(wanted))))[0]
        nodes = {
            int(ids[i]): OsmNode(
                int(ids[i]),
                float(lat[i]),
                float(lng[i]),
                self.tags.get(int(ids[i]), {}) if int(ids[i]) in inside else {},
            )
            for i in keep.tolist()
        }
        self.stats.nodes_kept, self.stats.ways_kept = len(nodes), len(self.ways)
        if self.clip is not None:
            bounds = self.clip.bounds
        elif self.file_bounds is not None:
            bounds = self.file_bounds
        elif nodes:
            bounds = (float(lat.min()), float(lng.min()), float(lat.max()), float(lng.max()))
        else:
            bounds = (0.0, 0.0, 0.0, 0.0)
        return OsmData(nodes, tuple(self.ways), bounds, "")


def _read_xml(handle: IO[bytes], clipper: _Clipper) -> None:
    """Stream OSM XML into ``clipper`` (nodes, ways and ``<bounds>``; relations skipped)."""
    depth = 0
    root: ET.Element | None = None
    for event, element in ET.iterparse(handle, events=("start", "end")):
        if event == "start":
            depth += 1
            if root is None:
                root = element
                if element.tag != "osm":
                    raise NotOsmFileError(
                        clipper.path, f"the XML root element is <{element.tag}>, expected <osm>"
                    )
            continue
        depth -= 1
        if depth != 1 or root is None:
            continue
        kind = element.tag
        if kind == "node":
            tags = {t.get("k", ""): t.get("v", "") for t in element.iter("tag")}
            clipper.add_node(
                int(element.get("id", "0")),
                float(element.get("lat", "nan")),
                float(element.get("lon", "nan")),
                tags,
            )
        elif kind == "way":
            tags = {t.get("k", ""): t.get("v", "") for t in element.iter("tag")}
            refs = tuple(int(nd.get("ref", "0")) for nd in element.iter("nd"))
            clipper.add_way(int(element.get("id", "0")), refs, tags)
        elif kind == "bounds":
            clipper.file_bounds = tuple(  # type: ignore[assignment]
                float(element.get(k, "nan")) for k in ("minlat", "minlon", "maxlat", "maxlon")
            )
        root.clear()
    if root is None:
        raise NotOsmFileError(clipper.path, "it is empty")


def _read_pbf(path: Path, clipper: _Clipper) -> None:
    """Read an ``.osm.pbf`` with pyosmium into ``clipper``."""
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - osmium is a dependency
        raise OnboardError(
            f"{path}: reading .osm.pbf needs the Python package 'osmium' (pyosmium): "
            "pip install osmium"
        ) from exc
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
    box = processor.header.box()
    if box.valid():
        clipper.file_bounds = (
            box.bottom_left.lat,
            box.bottom_left.lon,
            box.top_right.lat,
            box.top_right.lon,
        )
    for obj in processor:
        if isinstance(obj, osmium.osm.Node):
            loc = obj.location
            lat, lng = (loc.lat, loc.lon) if loc.valid() else (math.nan, math.nan)
            clipper.add_node(obj.id, lat, lng, dict(obj.tags))
        elif isinstance(obj, osmium.osm.Way):
            clipper.add_way(obj.id, tuple(n.ref for n in obj.nodes), dict(obj.tags))


def read_extract(path: Path, clip: Clip | None = None) -> tuple[OsmData, ExtractStats]:
    """Read an OSM file (``.osm``, ``.osm.xz``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``) and
    keep what ``clip`` selects (everything when ``None``).

    Raises
    ------
    NotOsmFileError
        The file is missing, compressed wrongly, not OSM XML/PBF, or has no nodes.
    """
    path = Path(path)
    if not path.is_file():
        raise NotOsmFileError(path, "no such file")
    suffix = osm_suffix(path)
    opener = OSM_SUFFIXES[suffix]
    clipper = _Clipper(path, clip)
    try:
        if opener is None:
            _read_pbf(path, clipper)
        else:
            with opener(path, "rb") as handle:
                _read_xml(handle, clipper)
    except ET.ParseError as exc:
        raise NotOsmFileError(path, f"not valid XML ({exc})") from exc
    except (lzma.LZMAError, EOFError, OSError) as exc:
        raise NotOsmFileError(path, f"cannot decompress it as {suffix} ({exc})") from exc
    except RuntimeError as exc:  # pyosmium
        raise NotOsmFileError(path, f"not a readable {suffix} file ({exc})") from exc
    except ValueError as exc:
        if isinstance(exc, OnboardError):
            raise
        raise NotOsmFileError(path, f"a bad number ({exc})") from exc
    return clipper.finish(), clipper.stats


def write_osm_xz(osm: OsmData, path: Path) -> None:
    """Write ``osm`` (nodes with tags, ways, ``<bounds>``) as OSM XML compressed with xz."""
    s, w, n, e = osm.bounds
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="campus-dispatch campus add" '
        'copyright="OpenStreetMap and contributors" '
        'attribution="http://www.openstreetmap.org/copyright" '
        'license="http://opendatacommons.org/licenses/odbl/1-0/">',
        f' <bounds minlat="{s!r}" minlon="{w!r}" maxlat="{n!r}" maxlon="{e!r}"/>',
    ]
    for nid in sorted(osm.nodes):
        node = osm.nodes[nid]
        head = f' <node id="{nid}" lat="{node.lat!r}" lon="{node.lng!r}"'
        if not node.tags:
            lines.append(head + "/>")
            continue
        lines.append(head + ">")
        lines.extend(f"  <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in node.tags.items())
        lines.append(" </node>")
    for way in osm.ways:
        lines.append(f' <way id="{way.id}">')
        lines.extend(f'  <nd ref="{ref}"/>' for ref in way.refs)
        lines.extend(f"  <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in way.tags.items())
        lines.append(" </way>")
    lines.append("</osm>\n")
    with lzma.open(path, "wb", preset=6) as out:
        out.write("\n".join(lines).encode("utf-8"))


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def campus_toml_text(
    campus_id: str,
    name: str,
    osm_file: str,
    timezone: str,
    *,
    allow_private: bool,
    service_area: Sequence[LatLng],
    source: str,
) -> str:
    """The ``campus.toml`` of an onboarded campus."""
    corners = ",\n".join(f"  [{lat!r}, {lng!r}]" for lat, lng in service_area)
    return (
        f"# {name}: onboarded with `campus-dispatch campus add` from {source}.\n"
        "# Every key of campus_maps/data/defaults.toml can be overridden here.\n"
        f"id = {_toml_str(campus_id)}\n"
        f"name = {_toml_str(name)}\n"
        f"osm_file = {_toml_str(osm_file)}\n"
        f"timezone = {_toml_str(timezone)}\n"
        "\n# [lat, lng] corners: points outside are refused\n"
        f"service_area = [\n{corners},\n]\n"
        "\n[access]\n"
        f"allow_private = {'true' if allow_private else 'false'}\n"
    )


def source_md_text(
    campus_id: str,
    name: str,
    *,
    original: Path,
    sha256: str,
    clip: Clip | None,
    osm_file: str,
    stats: ExtractStats,
) -> str:
    """The ``SOURCE.md`` of an onboarded campus: ODbL attribution, original file, clip."""
    where = clip.describe() if clip is not None else "none (the whole file)"
    corners = "; ".join(f"{lat:.7g},{lng:.7g}" for lat, lng in clip.corners) if clip else "—"
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# {name} (`{campus_id}`)\n\n"
        f"{ODBL}\n"
        "The travel tables derived from this map (and cached on disk) are derived databases of "
        "OpenStreetMap data: if you publish them, they stay under the ODbL with this "
        "attribution.\n\n"
        "| | |\n|---|---|\n"
        f"| original file | `{original.name}` |\n"
        f"| sha256 of the original file | `{sha256}` |\n"
        f"| clip | {where} |\n"
        f"| clip corners (lat,lng) | {corners} |\n"
        f"| kept | {stats.nodes_kept} of {stats.nodes_read} nodes, "
        f"{stats.ways_kept} of {stats.ways_read} ways (relations dropped) |\n"
        f"| map file | `{osm_file}`: the clipped OSM XML, compressed with xz |\n"
        f"| onboarded | {today} with `campus-dispatch campus add` |\n"
    )


def configured_max_table_bytes(folder: Path | None = None) -> int:
    """``[tables] max_bytes`` of the campus file in ``folder`` over ``defaults.toml``."""
    value: Any = DEFAULT_MAX_TABLE_BYTES
    source = DATA_DIR / "defaults.toml"
    files = [DATA_DIR / "defaults.toml"] + ([folder / "campus.toml"] if folder else [])
    for path in files:
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("tables", {})
            if isinstance(table, dict) and "max_bytes" in table:
                value = table["max_bytes"]
                source = path
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OnboardError(f"{source}: tables.max_bytes={value!r}: must be a whole number > 0")
    return value


def refuse_unusable_networks(
    analyses: dict[str, ModeAnalysis], *, campus_id: str, max_table_bytes: int
) -> None:
    """Refuse a campus where some mode has no rider network, or whose tables are too large."""
    for mode, a in analyses.items():
        if a.nodes < 2 or a.edges == 0:
            hint = (
                f"; {a.private_dropped} private ways were dropped: try --allow-private"
                if a.private_dropped
                else "; widen the box or polygon, or check the map"
            )
            raise NoRiderNetworkError(
                f"campus {campus_id!r}: mode {mode!r} has no rider network "
                f"({a.ways} usable ways, {a.filtered_nodes} nodes, largest strongly connected "
                f"part {a.nodes} nodes){hint}"
            )
    for mode, a in analyses.items():
        need = estimate_table_bytes(a.nodes)
        if need > max_table_bytes:
            raise TablesTooLargeError(
                f"campus {campus_id!r}: mode {mode!r} has {a.nodes} nodes: its all-pairs tables "
                f"need about {need / 2**20:,.0f} MiB, over the limit of "
                f"{max_table_bytes / 2**20:,.0f} MiB ([tables] max_bytes); clip a smaller "
                "box or polygon, or raise the limit with --max-table-bytes"
            )


def _probe_config(
    campus_id: str, name: str, osm_path: Path, timezone: str, allow_private: bool
) -> CampusConfig:
    """The campus's settings before its folder exists (for analysing the clipped map)."""
    data = {
        "id": campus_id,
        "name": name,
        "osm_file": osm_path.name,
        "timezone": timezone,
        "access": {"allow_private": allow_private},
    }
    defaults = tomllib.loads((DATA_DIR / "defaults.toml").read_text(encoding="utf-8"))
    return parse_campus_config(
        data, folder=osm_path.parent, source=f"campus {campus_id}", defaults=defaults
    )


def count_roads(osm: OsmData, config: CampusConfig) -> int:
    """Ways of ``osm`` that some mode could ride if private ways were allowed."""
    return sum(
        1
        for way in osm.ways
        if any(is_way_allowed(way.tags, config.mode(m), allow_private=True) for m in MODES)
    )


@dataclass(frozen=True)
class OnboardResult:
    """An onboarded campus, its folder and its onboarding report."""

    campus: Campus
    folder: Path
    report: OnboardReport


def onboard_campus(
    campus_id: str,
    osm_path: Path,
    *,
    maps_dir: Path,
    name: str | None = None,
    timezone: str = "UTC",
    clip: Clip | None = None,
    allow_private: bool = False,
    force: bool = False,
    max_table_bytes: int | None = None,
    cache_dir: Path | None = None,
) -> OnboardResult:
    """Read and clip ``osm_path``, refuse what cannot work, write ``<maps_dir>/<id>/``
    (campus.toml, ``<id>.osm.xz``, SOURCE.md), build every mode's tables and report.

    Raises
    ------
    OnboardError
        A bad id, timezone, file, clip, a mode without a network, or tables too large; nothing
        is written then.
    """
    started = time.perf_counter()
    osm_path, maps_dir = Path(osm_path), Path(maps_dir)
    check_campus_id(campus_id, maps_dir, force=force)
    check_timezone(timezone)
    name = name or campus_id
    limit = max_table_bytes if max_table_bytes is not None else configured_max_table_bytes()
    osm, stats = read_extract(osm_path, clip)
    probe = _probe_config(campus_id, name, osm_path, timezone, allow_private)
    if count_roads(osm, probe) == 0:
        where = clip.describe() if clip else "the file"
        raise NoRoadError(
            f"{where} leaves no road of {osm_path} ({stats.nodes_kept} of {stats.nodes_read} "
            f"nodes and {stats.ways_kept} of {stats.ways_read} ways kept, none a road riders "
            "may use): check the box or polygon (S,W,N,E; GeoJSON is [lng, lat])"
        )
    analyses = analyse_modes(osm, probe)
    refuse_unusable_networks(analyses, campus_id=campus_id, max_table_bytes=limit)

    osm_file = f"{campus_id}.osm.xz"
    folder = maps_dir / campus_id
    maps_dir.mkdir(parents=True, exist_ok=True)
    previous: Path | None = None
    staging = maps_dir / f".{campus_id}.{time.time_ns()}.tmp"
    staging.mkdir()
    try:
        write_osm_xz(osm, staging / osm_file)
        area = clip.corners if clip else _box_corners(osm.bounds)
        (staging / "campus.toml").write_text(
            campus_toml_text(
                campus_id,
                name,
                osm_file,
                timezone,
                allow_private=allow_private,
                service_area=area,
                source=osm_path.name,
            ),
            encoding="utf-8",
        )
        (staging / "SOURCE.md").write_text(
            source_md_text(
                campus_id,
                name,
                original=osm_path,
                sha256=file_digest(osm_path),
                clip=clip,
                osm_file=osm_file,
                stats=stats,
            ),
            encoding="utf-8",
        )
        if folder.exists():  # --force: the previous campus is kept aside until this one works
            previous = maps_dir / f".{campus_id}.{time.time_ns()}.old"
            folder.rename(previous)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _put_back(previous, folder)
        raise
    try:
        campus = load_campus(campus_id, maps_dir=maps_dir, cache_dir=cache_dir)
        report = build_report(
            campus,
            analyses,
            png_path=folder / "report.png",
            max_table_bytes=limit,
            started=started,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        _put_back(previous, folder)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return OnboardResult(campus, folder, report)


def _put_back(previous: Path | None, folder: Path) -> None:
    """Restore the campus a failed ``--force`` onboarding set aside."""
    if previous is not None and previous.exists() and not folder.exists():
        previous.rename(folder)


def _box_corners(bounds: tuple[float, float, float, float]) -> tuple[LatLng, ...]:
    s, w, n, e = bounds
    return ((s, w), (s, e), (n, e), (n, w))


def check_campus(
    campus_id: str,
    *,
    maps_dir: Path | None = None,
    cache_dir: Path | None = None,
    max_table_bytes: int | None = None,
    png_path: Path | None = None,
) -> tuple[Campus, OnboardReport]:
    """Re-run the onboarding report of an existing campus (bundled or onboarded): the same
    refusals, then every mode's tables (built or loaded) and the PNG (default: the onboarded
    campus's folder, or the cache folder of a bundled one)."""
    started = time.perf_counter()
    folder = campus_folder(campus_id, maps_dir=maps_dir)
    limit = max_table_bytes if max_table_bytes is not None else configured_max_table_bytes(folder)
    campus = load_campus(campus_id, maps_dir=maps_dir, cache_dir=cache_dir)
    osm = osm_from_xml(campus.config.osm_path)
    analyses = analyse_modes(osm, campus.config)
    refuse_unusable_networks(analyses, campus_id=campus_id, max_table_bytes=limit)
    if png_path is None:
        png_path = (campus.cache_dir if bundled(campus_id) else folder) / "report.png"
    report = build_report(
        campus, analyses, png_path=png_path, max_table_bytes=limit, started=started
    )
    return campus, report


@dataclass(frozen=True)
class CampusEntry:
    """One line of ``campus list``."""

    id: str
    name: str
    where: str
    folder: Path
    map_file: str
    map_bytes: int


def list_campus_entries(maps_dir: Path | None = None) -> list[CampusEntry]:
    """Bundled campuses, then those onboarded into ``maps_dir`` (read from their campus.toml
    only: nothing is built)."""
    roots: list[tuple[str, Path]] = [("bundled", DATA_DIR)]
    if maps_dir is not None:
        roots.append(("onboarded", maps_dir))
    entries: list[CampusEntry] = []
    seen: set[str] = set()
    for where, root in roots:
        for campus_id in sorted(campus_folders(root)):
            toml_path = root / campus_id / "campus.toml"
            if campus_id in seen:
                continue
            seen.add(campus_id)
            try:
                data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                data = {}
            map_file = str(data.get("osm_file", "?"))
            map_path = toml_path.parent / map_file
            entries.append(
                CampusEntry(
                    campus_id,
                    str(data.get("name", "?")),
                    where,
                    toml_path.parent,
                    map_file,
                    map_path.stat().st_size if map_path.is_file() else 0,
                )
            )
    return entries


def remove_campus(campus_id: str, maps_dir: Path) -> Path:
    """Delete the onboarded campus folder ``<maps_dir>/<id>``; refuse a bundled id."""
    if bundled(campus_id):
        raise OnboardError(f"campus id {campus_id!r} is bundled with the package: not removed")
    if len(campus_id) > CAMPUS_ID_MAX or not CAMPUS_ID.match(campus_id):
        raise OnboardError(f"campus id {campus_id!r} is not a campus id: nothing removed")
    folder = Path(maps_dir) / campus_id
    if folder.is_symlink():
        raise OnboardError(f"{folder} is a symbolic link: not removed")
    if not (folder / "campus.toml").is_file():
        raise UnknownCampusError(campus_id, [e.id for e in list_campus_entries(maps_dir)])
    shutil.rmtree(folder)
    return folder
