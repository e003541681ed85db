"""The onboarding report of a campus: per-mode network sizes and connectivity, places, warnings
that tell the operator what to do, and a PNG of the rider networks and places."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from campus_maps.campus import Campus
from campus_maps.config import MODES, CampusConfig
from campus_maps.network import (
    EmptyNetworkError,
    add_edge_travel_times,
    graph_from_ways,
    simplify_network,
)
from campus_maps.osm import OsmData, filter_ways_for_mode, is_way_allowed
from campus_maps.places import FOOD_AMENITIES, PlaceKind

#: Bytes of one cell of a travel table, and how many (N, N) tables a mode keeps (time,
#: distance, predecessor): the estimate is a little high (predecessors are int32).
TABLE_BYTES_PER_CELL = 8
TABLE_ARRAYS = 3
#: Warn when the bike network has fewer nodes than this share of the walk network.
BIKE_WALK_MIN_SHARE = 0.5
#: Warn when less than this share of a mode's filtered road graph is strongly connected.
MIN_CONNECTED_SHARE = 0.5
PLACE_COLORS = {PlaceKind.FOOD: "#d62728", PlaceKind.DORM: "#1f77b4", PlaceKind.BUILDING: "#2ca02c"}
MODE_COLORS = {"walk": "#555555", "bike": "#ff7f0e", "ebike": "#9467bd"}


def estimate_table_bytes(nodes: int) -> int:
    """Memory of one mode's all-pairs tables: nodes² × bytes per cell × arrays."""
    return nodes * nodes * TABLE_BYTES_PER_CELL * TABLE_ARRAYS


@dataclass(frozen=True)
class ModeAnalysis:
    """One mode's road graph before and after the largest strongly connected part.

    Attributes
    ----------
    mode
        ``walk``, ``bike`` or ``ebike``.
    ways
        Ways the mode may use (:func:`~campus_maps.osm.filter_ways_for_mode`).
    filtered_nodes, filtered_edges
        The unsimplified graph of those ways, every component.
    scc_nodes, scc_edges
        Its largest strongly connected part (unsimplified).
    nodes, edges
        The rider network the tables are built on (largest strongly connected part,
        simplified): the table size follows ``nodes``.
    private_dropped
        Ways closed by ``access=private``/``no`` that the mode's highway types would otherwise
        take (0 when the campus allows private ways).
    """

    mode: str
    ways: int
    filtered_nodes: int
    filtered_edges: int
    scc_nodes: int
    scc_edges: int
    nodes: int
    edges: int
    private_dropped: int

    @property
    def connected_share(self) -> float:
        """Share of the filtered graph's nodes in its largest strongly connected part."""
        return self.scc_nodes / self.filtered_nodes if self.filtered_nodes else 0.0


def analyse_mode(osm: OsmData, config: CampusConfig, mode: str) -> ModeAnalysis:
    """Filter, load and measure ``mode``'s road graph of ``osm`` (no tables are built)."""
    cfg = config.mode(mode)
    ways = filter_ways_for_mode(osm, cfg, allow_private=config.allow_private)
    private = (
        0
        if config.allow_private
        else sum(
            1
            for way in osm.ways
            if is_way_allowed(way.tags, cfg, allow_private=True)
            and not is_way_allowed(way.tags, cfg, allow_private=False)
        )
    )
    try:
        graph = add_edge_travel_times(graph_from_ways(osm, ways, cfg), cfg)
    except EmptyNetworkError:
        return ModeAnalysis(mode, 0, 0, 0, 0, 0, 0, 0, private)
    if graph.number_of_nodes() == 0:
        return ModeAnalysis(mode, len(ways), 0, 0, 0, 0, 0, 0, private)
    largest = max(nx.strongly_connected_components(graph), key=len)
    scc = graph.subgraph(largest)
    simple = simplify_network(graph) if scc.number_of_edges() else scc
    return ModeAnalysis(
        mode,
        len(ways),
        graph.number_of_nodes(),
        graph.number_of_edges(),
        scc.number_of_nodes(),
        scc.number_of_edges(),
        simple.number_of_nodes(),
        simple.number_of_edges(),
        private,
    )


def analyse_modes(osm: OsmData, config: CampusConfig) -> dict[str, ModeAnalysis]:
    """:func:`analyse_mode` for every travel mode."""
    return {mode: analyse_mode(osm, config, mode) for mode in MODES}


@dataclass(frozen=True)
class ModeReport:
    """One mode's line of the report: the network built and what its road graph lost."""

    mode: str
    nodes: int
    edges: int
    from_cache: bool
    build_s: float
    table_bytes: int
    analysis: ModeAnalysis


@dataclass(frozen=True)
class OnboardReport:
    """What the operator reads after ``campus add`` or ``campus check``."""

    campus_id: str
    name: str
    osm_path: Path
    modes: dict[str, ModeReport]
    places: dict[str, int]
    warnings: list[str]
    png_path: Path
    max_table_bytes: int
    seconds: float

    def text(self) -> str:
        """The report as lines of text."""
        lines = [
            f"onboarding report: {self.name} [{self.campus_id}]",
            f"  map: {self.osm_path}  (Map data (c) OpenStreetMap contributors, ODbL 1.0)",
            "  mode     nodes  edges  in the largest strongly connected part   tables",
        ]
        for mode, m in self.modes.items():
            a = m.analysis
            how = "cached" if m.from_cache else "built"
            lines.append(
                f"  {mode:<6} {m.nodes:>6} {m.edges:>6}  {100 * a.connected_share:5.1f} % of "
                f"{a.filtered_nodes:>6} road nodes ({a.ways:>5} ways)  "
                f"{m.table_bytes / 2**20:7.1f} MiB, {how} in {m.build_s:.1f} s"
            )
        lines.append(
            f"  table limit {self.max_table_bytes / 2**20:,.0f} MiB per mode ([tables] max_bytes)"
        )
        lines.append(
            "  places: " + ", ".join(f"{kind} {count}" for kind, count in self.places.items())
        )
        if self.warnings:
            lines.append("  warnings:")
            lines.extend(f"  - {w}" for w in self.warnings)
        else:
            lines.append("  warnings: none")
        lines.append(f"  picture: {self.png_path}")
        lines.append(f"  ready in {self.seconds:.1f} s")
        return "\n".join(lines)


def report_warnings(
    modes: dict[str, ModeReport], places: dict[str, int], *, allow_private: bool
) -> list[str]:
    """What the operator should look at, each with what to do about it."""
    warnings: list[str] = []
    if places.get(PlaceKind.FOOD.value, 0) == 0:
        warnings.append(
            "no food places (amenity=" + "|".join(sorted(FOOD_AMENITIES)) + ") inside the "
            "service area and reachable by every mode: scenarios cannot draw merchants; widen "
            "the box or polygon, or add the restaurants to OpenStreetMap and onboard again"
        )
    walk, bike = modes.get("walk"), modes.get("bike")
    if walk and bike and walk.nodes and bike.nodes < BIKE_WALK_MIN_SHARE * walk.nodes:
        warnings.append(
            f"the bike network is much smaller than the walk network ({bike.nodes} vs "
            f"{walk.nodes} nodes, {100 * bike.nodes / walk.nodes:.0f} %): campus paths may be "
            "footways closed to bikes (bicycle=no), steps or one-way; check the map, or the "
            "bike speed table ([modes.bike.speeds_mps] in campus.toml)"
        )
    dropped = {m: r.analysis.private_dropped for m, r in modes.items()}
    if not allow_private and any(dropped.values()):
        counts = ", ".join(f"{m} {n}" for m, n in dropped.items())
        warnings.append(
            f"private ways dropped (access=private/no on ways riders could otherwise use: "
            f"{counts}): if riders may use the campus service roads, try --allow-private"
        )
    for mode, r in modes.items():
        share = r.analysis.connected_share
        if share < MIN_CONNECTED_SHARE:
            warnings.append(
                f"{mode}: only {100 * share:.0f} % of its road graph is in the largest "
                "strongly connected part; the rest cannot be reached: widen the clip if it cut "
                "the roads between the parts"
                + ("" if allow_private else ", or try --allow-private")
            )
    return warnings


def build_report(
    campus: Campus,
    analyses: dict[str, ModeAnalysis],
    *,
    png_path: Path,
    max_table_bytes: int,
    started: float | None = None,
) -> OnboardReport:
    """Build (or load) every mode's network and tables, count places, draw the PNG."""
    started = time.perf_counter() if started is None else started
    modes: dict[str, ModeReport] = {}
    for mode in MODES:
        net = campus.network(mode)
        modes[mode] = ModeReport(
            mode,
            net.stats.nodes,
            net.stats.edges,
            net.stats.from_cache,
            net.stats.build_s,
            estimate_table_bytes(net.stats.nodes),
            analyses[mode],
        )
    places = {kind.value: len(campus.places(kind)) for kind in PlaceKind}
    warnings = report_warnings(modes, places, allow_private=campus.config.allow_private)
    draw_report(campus, png_path)
    return OnboardReport(
        campus.id,
        campus.name,
        campus.config.osm_path,
        modes,
        places,
        warnings,
        png_path,
        max_table_bytes,
        time.perf_counter() - started,
    )


def draw_report(campus: Campus, path: Path) -> Path:
    """A PNG of the three rider networks side by side, with the places and the service area."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(5 * len(MODES), 6.5), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(MODES), sharex=True, sharey=True)
    lat0 = (campus.bounds[0] + campus.bounds[2]) / 2
    area_lng, area_lat = campus.service_area.exterior.xy
    places = campus.places()
    for ax, mode in zip(np.atleast_1d(axes), MODES, strict=True):
        net = campus.network(mode)
        a = net.arrays
        offsets = np.asarray(a.geom_offsets)
        coords = np.column_stack([np.asarray(a.geom_lng), np.asarray(a.geom_lat)])
        segments = [coords[offsets[e] : offsets[e + 1]] for e in range(a.num_edges)]
        ax.add_collection(LineCollection(segments, colors=MODE_COLORS.get(mode, "k"), lw=0.6))
        ax.plot(area_lng, area_lat, ls="--", lw=1.0, color="black", alpha=0.6)
        for kind in PlaceKind:
            chosen = [p for p in places if p.kind is kind]
            if chosen:
                ax.scatter(
                    [p.lng for p in chosen],
                    [p.lat for p in chosen],
                    s=14 if kind is PlaceKind.FOOD else 6,
                    color=PLACE_COLORS[kind],
                    zorder=3,
                )
        ax.set_title(f"{mode}: {net.stats.nodes} nodes, {net.stats.edges} edges")
        ax.set_aspect(1 / max(math.cos(math.radians(lat0)), 1e-6))
        ax.tick_params(labelsize=7)
        ax.autoscale_view()
    handles = [
        Line2D([], [], marker="o", ls="", color=PLACE_COLORS[k], label=f"{k.value} places")
        for k in PlaceKind
    ] + [Line2D([], [], ls="--", color="black", label="service area")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle(f"{campus.name} [{campus.id}] - map data (c) OpenStreetMap contributors, ODbL 1.0")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
