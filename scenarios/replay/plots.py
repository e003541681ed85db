"""The pictures of a replay: KPIs over time per policy, the route map of its snapshot, and the
trade-off of a tuning run (PNG)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from numpy.typing import NDArray

from scenarios.model import Point
from scenarios.replay.kpis import KPI_INFO
from scenarios.replay.policies import STORM_LEVELS
from scenarios.replay.simulate import OrderRecord, ReplayResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from campus_maps import Campus

#: Resolution of every picture (dots per inch).
DPI = 110
#: Networks drawn as the campus roads, bottom layer first: (mode, colour, line width).
ROAD_LAYERS = (("walk", "#e3e3e3", 0.6), ("bike", "#c8c8c8", 0.8))
#: Rider ids are written next to the riders up to this many riders (beyond: clutter).
MAX_RIDER_LABELS = 25
#: Metres per degree of latitude (mean Earth radius).
M_PER_DEG = 111_195.0


# ---------------------------------------------------------------------------------- helpers
def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders created) and free it.

    Every picture is a bare :class:`~matplotlib.figure.Figure` on an Agg canvas: no pyplot,
    no GUI backend, nothing left registered anywhere once it is written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    try:
        fig.savefig(out, format="png", dpi=DPI)
    finally:
        fig.clear()
    return out


def _labels(results: Sequence[ReplayResult]) -> list[str]:
    """A legend label per result: its policy, made unique when two results share it."""
    names = [r.policy for r in results]
    if len(set(names)) == len(names):
        return names
    names = [f"{r.policy} ({r.scenario})" for r in results]
    if len(set(names)) == len(names):
        return names
    return [f"{name} #{k + 1}" for k, name in enumerate(names)]


def on_time_curve(
    orders: Sequence[OrderRecord],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The cumulative on-time rate as a step function of time.

    An order's outcome is *settled* at the earlier of its delivery and its promised time: on
    time if it was delivered no later than promised, late otherwise (delivered late, or not
    delivered when the promise passed). The rate at ``t`` is the orders settled on time by
    ``t`` over the orders settled by ``t``; once every promise has passed it equals the
    ``on_time_rate`` KPI (undelivered orders count as not on time).

    Parameters
    ----------
    orders
        The orders of a replay.

    Returns
    -------
    times_s, rate
        The settlement times (s from the period start, ascending, unique) and the rate in
        [0, 1] just after each.
    """
    if not orders:
        return np.zeros(0), np.zeros(0)
    settled = np.array(
        [
            o.promised_s if o.delivered_s is None else min(o.delivered_s, o.promised_s)
            for o in orders
        ],
        dtype=np.float64,
    )
    on_time = np.array(
        [o.delivered_s is not None and o.delivered_s <= o.promised_s for o in orders],
        dtype=np.float64,
    )
    order = np.argsort(settled, kind="stable")
    settled, on_time = settled[order], on_time[order]
    count = np.arange(1, len(settled) + 1, dtype=np.float64)
    rate = np.cumsum(on_time) / count
    last = np.r_[settled[1:] != settled[:-1], True]  # the state after all ties at a time
    return settled[last], rate[last]


def _break_gaps(
    t_s: NDArray[np.float64], series: Sequence[NDArray[np.float64]], interval_s: int
) -> list[NDArray[np.float64]]:
    """Times and series with a NaN one interval after every batch followed by a longer pause
    (no dispatch call: nothing visible) and after the last batch, so that a step plot holds each
    value for one interval and the lines break at the pauses instead of bridging them."""
    if not len(t_s) or interval_s <= 0:
        return [t_s, *series]
    gaps = np.r_[np.flatnonzero(np.diff(t_s) > interval_s) + 1, len(t_s)]
    t_out = np.insert(t_s, gaps, t_s[gaps - 1] + interval_s)
    return [t_out, *(np.insert(np.asarray(v, dtype=np.float64), gaps, np.nan) for v in series)]


def _minor_log_label(ax: Axes, value: float, _pos: int | None) -> str:
    """Label the 2 and 5 minor ticks of a log axis spanning less than two decades."""
    lo, hi = ax.get_ylim()
    if lo <= 0 or math.log10(hi / lo) >= 2:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(mantissa) in (2, 5) else ""


# ---------------------------------------------------------------------------------- KPIs
def plot_kpis_over_time(
    results: Sequence[ReplayResult], path: str | Path, *, title: str = ""
) -> Path:
    """Plot how the replays of one or more policies went, batch by batch, into one PNG.

    Three panels (four with a storm guard's readings) share the time axis (minutes from the
    period start), one line per result in one colour across panels:

    1. open orders at each batch (placed, not yet picked up: ``BatchRecord.open_orders``);
    2. cumulative on-time rate (%): orders settled on time so far over orders settled so far,
       an order settling at the earlier of its delivery and its promised time (see
       :func:`on_time_curve`); it ends at the ``on_time_rate`` KPI;
    3. only when the storm guard of some replay raised the storm level or held orders
       (``BatchRecord.storm_level`` > 0 or ``BatchRecord.held`` > 0): the storm level after
       each batch (solid steps, 0 normal to 3 severe) and the orders each answer held (dashed,
       right axis) — see :func:`_plot_guard`;
    4. dispatch latency per batch (ms, log scale), crosses marking batches shed to greedy and
       red circles batches rejected without an answer.

    Parameters
    ----------
    results
        The replays to compare (typically one scenario, one per policy); legend labels are
        ``ReplayResult.policy`` (with the scenario, then a number, when two results share it).
    path
        Output PNG file (parent folders are created).
    title
        Figure title; default: the scenario name(s).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        When ``results`` is empty.
    """
    if not results:
        raise ValueError("plot_kpis_over_time: no replay results to plot")
    guarded = any(b.storm_level > 0 or b.held > 0 for r in results for b in r.batches)
    if guarded:
        fig = Figure(figsize=(10, 10), layout="constrained")
        ax_open, ax_rate, ax_guard, ax_lat = fig.subplots(
            4, 1, sharex=True, height_ratios=(1.0, 1.0, 0.9, 1.1)
        )
    else:
        fig = Figure(figsize=(10, 8), layout="constrained")
        ax_open, ax_rate, ax_lat = fig.subplots(3, 1, sharex=True, height_ratios=(1.0, 1.0, 1.1))
    colours = [f"C{k % 10}" for k in range(len(results))]
    many = len(results) > 1
    t_end = 0.0
    shed_seen = rejected_seen = False
    rated = False
    for result, label, colour in zip(results, _labels(results), colours, strict=True):
        batches = result.batches
        t_s = np.array([b.t_s for b in batches], dtype=np.float64)
        if len(t_s):
            t_end = max(t_end, float(t_s[-1]) / 60)
        open_orders = np.array([b.open_orders for b in batches], dtype=np.float64)
        latency_ms = np.array([max(b.latency_s, 1e-6) * 1000 for b in batches])
        gap_t, gap_open, gap_latency = _break_gaps(
            t_s, [open_orders, latency_ms], result.batch_interval_s
        )
        ax_open.step(
            gap_t / 60,
            gap_open,
            where="post",
            color=colour,
            lw=1.4,
            alpha=0.85 if many else 1.0,
            label=label,
        )
        ax_lat.plot(
            gap_t / 60,
            gap_latency,
            color=colour,
            lw=0.9,
            marker="o",
            ms=1.6,
            alpha=0.8 if many else 1.0,
        )
        t_min = t_s / 60
        shed = np.array([bool(b.shed_reason) and not b.rejected for b in batches], dtype=bool)
        rejected = np.array([bool(b.rejected) for b in batches], dtype=bool)
        if shed.any():
            shed_seen = True
            ax_lat.plot(t_min[shed], latency_ms[shed], "x", color=colour, ms=5, mew=1.2)
        if rejected.any():
            rejected_seen = True
            ax_lat.plot(
                t_min[rejected], latency_ms[rejected], "o", mfc="none", mec="red", ms=6, mew=1.2
            )
        settle_s, rate = on_time_curve(result.orders)
        if len(settle_s):
            t_end = max(t_end, float(settle_s[-1]) / 60)
            ax_rate.step(
                settle_s / 60,
                100 * rate,
                where="post",
                color=colour,
                lw=1.6,
                label=f"{label}: {100 * rate[-1]:.1f}% at the end",
            )
            rated = True
    # carry each on-time curve on to the common end, where a dot marks its final value
    for line in list(ax_rate.get_lines()):
        xs = np.asarray(line.get_xdata(), dtype=np.float64)
        ys = np.asarray(line.get_ydata(), dtype=np.float64)
        if len(xs) and xs[-1] < t_end:
            line.set_data(np.r_[xs, t_end], np.r_[ys, ys[-1]])
        if len(ys):
            ax_rate.plot(t_end, ys[-1], "o", color=line.get_color(), ms=4, zorder=3)

    ax_open.set_ylabel("open orders\n(placed, not picked up)")
    top = max((float(np.nanmax(ln.get_ydata())) for ln in ax_open.get_lines()), default=0.0)
    ax_open.set_ylim(0, max(1.0, top) * 1.18)  # headroom for the legend
    ax_open.yaxis.get_major_locator().set_params(integer=True)
    handles, names = ax_open.get_legend_handles_labels()
    if shed_seen:
        handles.append(Line2D([], [], ls="none", marker="x", color="0.3", label="shed to greedy"))
        names.append("shed to greedy")
    if rejected_seen:
        handles.append(
            Line2D([], [], ls="none", marker="o", mfc="none", mec="red", label="rejected batch")
        )
        names.append("rejected batch")
    ax_open.legend(handles, names, loc="upper right", fontsize=9, ncols=min(4, len(handles)))

    ax_rate.set_ylabel("cumulative on-time\nrate (%)")
    ax_rate.set_ylim(-2, 102)
    if rated:
        ax_rate.legend(loc="lower left", fontsize=9)
    panels = [ax_open, ax_rate, ax_lat]
    if guarded:
        _plot_guard(ax_guard, results, colours)
        panels.insert(2, ax_guard)

    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("dispatch latency\nper batch (ms)")
    ax_lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax_lat.yaxis.set_minor_formatter(FuncFormatter(partial(_minor_log_label, ax_lat)))
    ax_lat.set_xlabel("time from period start (min)")
    ax_lat.set_xlim(0, max(t_end, 1.0) * 1.03)
    for ax in panels:
        ax.grid(True, which="major", color="0.88", lw=0.7)
        ax.set_axisbelow(True)
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    fig.suptitle(title or f"{', '.join(scenarios)}: KPIs over time", fontsize=13)
    return _save(fig, path)


def _plot_guard(ax: Axes, results: Sequence[ReplayResult], colours: Sequence[str]) -> None:
    """The storm guard's panel: each replay's storm level after every batch (solid steps on
    0-3, a rejected batch keeping the last level) and the orders each answer held (dashed, on
    a right-hand axis; no value at rejected batches), one colour per replay."""
    held_ax = ax.twinx()
    top = 0.0
    for result, colour in zip(results, colours, strict=True):
        batches = result.batches
        t_s = np.array([b.t_s for b in batches], dtype=np.float64)
        level = np.array([b.storm_level for b in batches], dtype=np.float64)
        held = np.array([np.nan if b.rejected else b.held for b in batches], dtype=np.float64)
        if len(held) and not np.all(np.isnan(held)):
            top = max(top, float(np.nanmax(held)))
        gap_t, gap_level, gap_held = _break_gaps(t_s, [level, held], result.batch_interval_s)
        ax.step(gap_t / 60, gap_level, where="post", color=colour, lw=1.6)
        held_ax.step(gap_t / 60, gap_held, where="post", color=colour, lw=1.1, ls="--")
    ax.set_ylim(-0.2, 3.4)
    ax.set_yticks(range(len(STORM_LEVELS)), STORM_LEVELS)
    ax.set_ylabel("storm level")
    scale = max(1.0, top) * 1.1 / 3  # the most held level with "severe", 0 with "normal"
    held_ax.set_ylim(-0.2 * scale, 3.4 * scale)
    held_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    held_ax.set_ylabel("orders held\n(quarantined)")
    ax.legend(
        [
            Line2D([], [], color="0.3", lw=1.6),
            Line2D([], [], color="0.3", lw=1.1, ls="--"),
        ],
        ["storm level", "orders held (right axis)"],
        loc="upper left",
        fontsize=9,
    )


# ---------------------------------------------------------------------------------- route map
def _road_lines(campus: Campus) -> list[tuple[list[NDArray[np.float64]], str, float]]:
    """The campus roads per layer of :data:`ROAD_LAYERS`: (lng, lat) polylines, colour, width.

    Drawn from the network arrays (the edges' real shapes; the networkx graph of a network
    keeps straight node-to-node edges only), each two-way street once.
    """
    layers = []
    for mode, colour, width in ROAD_LAYERS:
        try:
            arrays = campus.network(mode).arrays
        except KeyError:  # a campus without this mode (UnknownModeError)
            continue
        u, v = arrays.edge_u.tolist(), arrays.edge_v.tolist()
        pairs = set(zip(u, v, strict=True))
        off = arrays.geom_offsets
        lines = [
            np.column_stack(
                [arrays.geom_lng[off[e] : off[e + 1]], arrays.geom_lat[off[e] : off[e + 1]]]
            )
            for e in range(arrays.num_edges)
            if u[e] < v[e] or (v[e], u[e]) not in pairs
        ]
        layers.append((lines, colour, width))
    return layers


def _nice_length(approx: float) -> float:
    """The 1, 2 or 5 times a power of ten nearest below ``approx`` (> 0)."""
    power = 10 ** math.floor(math.log10(approx))
    return max(m * power for m in (1, 2, 5) if m * power <= approx)


def _scale_bar(ax: Axes, metres_per_unit: float, width_units: float) -> None:
    """A scale bar about a fifth of the axes wide, lower left."""
    metres = _nice_length(width_units * metres_per_unit / 5)
    text = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    ax.plot(
        [bx, bx + metres / metres_per_unit], [by, by], color="0.15", lw=3, solid_capstyle="butt"
    )
    ax.annotate(text, (bx, by), xytext=(0, 5), textcoords="offset points", fontsize=8)


def _rider_palette() -> list[tuple[float, float, float, float]]:
    """The rider colours: ``tab20`` without its greys (they read as roads), dark shades first,
    then light ones, so riders next to each other in the list differ in hue (18, cycling)."""
    cmap = matplotlib.colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [cmap(i) for i in order if i not in (14, 15)]


def _arrow_tail(route: NDArray[np.float64]) -> tuple[float, float] | None:
    """The last point of ``route`` apart from its end (``None``: the route does not move)."""
    moved = np.flatnonzero(np.any(route != route[-1], axis=1))
    if not len(moved):
        return None
    x, y = route[moved[-1]]
    return float(x), float(y)


def _unique(points: Iterable[Point]) -> list[Point]:
    """The distinct points, in first-seen order."""
    return list(dict.fromkeys(points))


def plot_route_map(
    result: ReplayResult,
    path: str | Path,
    *,
    campus: Campus | None = None,
    title: str = "",
    frame_with: Sequence[ReplayResult] = (),
) -> Path:
    """Draw where everything was at the replay's snapshot moment, into one PNG.

    Merchants of orders not yet picked up (triangles), customers of the orders open or onboard
    (squares), and each rider with a route: its position (dot, labelled with its id when there
    are at most :data:`MAX_RIDER_LABELS` riders) and its remaining route as a polyline in its
    own colour (``tab20`` without greys, cycling) ending in an arrowhead. The map is a square
    in metres around all of them. On a campus (``result.geometry == "campus"``) the axes are
    longitude/latitude with aspect ``1 / cos(latitude)``, over the campus roads in light grey
    when ``campus`` is given (its walk network under its bike network); on the Euclidean plane
    of the MDRP instances the axes are km with equal aspect. A scale bar sits lower left.

    Parameters
    ----------
    result
        A replay with a :class:`~scenarios.replay.simulate.RouteSnapshot`.
    path
        Output PNG file (parent folders are created).
    campus
        The campus the replay ran on, for its roads; ``None``: no roads.
    title
        Figure title above the standard one (scenario, policy, time from the period start).
    frame_with
        Other replays of the same scenario whose snapshots the frame also covers: maps drawn
        with the same ``frame_with`` (e.g. one per policy) share their frame and their rider
        colours, and compare.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        When ``result.snapshot`` is ``None``, or a campus is given for a Euclidean replay.
    """
    snap = result.snapshot
    if snap is None:
        raise ValueError(
            f"plot_route_map: the replay of {result.scenario!r} ({result.policy}) has no route "
            "snapshot (ReplayResult.snapshot is None: no batch dispatched any route)"
        )
    on_campus = result.geometry == "campus"
    if campus is not None and not on_campus:
        raise ValueError(
            f"plot_route_map: campus {campus.id!r} given for a {result.geometry!r} replay "
            f"of {result.scenario!r}; pass campus=None"
        )

    def xy(points: Sequence[Point]) -> NDArray[np.float64]:
        """Plot coordinates: (lng, lat) on a campus, (x, y) km on a plane."""
        pts = np.array([(p.a, p.b) for p in points], dtype=np.float64).reshape(-1, 2)
        return pts[:, ::-1] if on_campus else pts / 1000

    def line_xy(line: NDArray[np.float64]) -> NDArray[np.float64]:
        pts = np.asarray(line, dtype=np.float64).reshape(-1, 2)
        return pts[:, ::-1] if on_campus else pts / 1000

    rider_ids = sorted(snap.riders)
    positions = xy([snap.riders[r][0] for r in rider_ids])
    routes = [line_xy(snap.riders[r][1]) for r in rider_ids]
    merchants = xy(_unique(snap.merchants))
    customers = xy(_unique(snap.customers))
    framed = [positions, merchants, customers, *routes]
    for other in frame_with:
        if other.snapshot is None or other.geometry != result.geometry:
            continue
        o = other.snapshot
        framed.append(xy([here for here, _ in o.riders.values()]))
        framed += [line_xy(line) for _, line in o.riders.values()]
        framed += [xy(_unique(o.merchants)), xy(_unique(o.customers))]
    everything = np.vstack(framed)

    fig = Figure(figsize=(9, 9), layout="constrained")
    ax = fig.add_subplot()
    if len(everything):
        lo, hi = everything.min(axis=0), everything.max(axis=0)
    else:
        lo, hi = np.zeros(2), np.ones(2)
    # a square in metres around everything, padded by 8 % of its side (at least 150 m)
    centre = (lo + hi) / 2
    if on_campus:
        stretch = 1 / math.cos(math.radians(float(centre[1])))
        m_per_unit = np.array([M_PER_DEG / stretch, M_PER_DEG])  # metres per degree lng, lat
    else:
        stretch = 1.0
        m_per_unit = np.array([1000.0, 1000.0])
    side_m = float(np.max((hi - lo) * m_per_unit))
    half_m = side_m / 2 + max(0.08 * side_m, 150.0)
    half = half_m / m_per_unit
    ax.set_xlim(centre[0] - half[0], centre[0] + half[0])
    ax.set_ylim(centre[1] - half[1], centre[1] + half[1])
    ax.set_aspect(stretch, adjustable="box")

    if campus is not None:
        for lines, grey, width in _road_lines(campus):
            ax.add_collection(
                LineCollection(lines, colors=grey, linewidths=width, zorder=1),
                autolim=False,
            )
    palette = _rider_palette()
    # a rider keeps its colour on every map drawn with the same ``frame_with``
    ids = {r for other in frame_with if other.snapshot is not None for r in other.snapshot.riders}
    colour_of = {r: k for k, r in enumerate(sorted(ids | set(rider_ids)))}
    count = len(rider_ids)
    for k, (rider_id, route, here) in enumerate(zip(rider_ids, routes, positions, strict=True)):
        rgba = palette[colour_of[rider_id] % len(palette)]
        # earlier routes wider, so a route running along another one still shows at its sides
        width = 4.0 - 2.4 * k / max(1, count - 1) if count > 1 else 2.5
        ax.plot(route[:, 0], route[:, 1], color=rgba, lw=width, alpha=0.9, zorder=3)
        tail = _arrow_tail(route)
        if tail is not None:  # an arrowhead at the end: where the route goes
            ax.annotate(
                "",
                xy=(float(route[-1, 0]), float(route[-1, 1])),
                xytext=tail,
                arrowprops={"arrowstyle": "-|>", "color": rgba, "lw": 0, "mutation_scale": 16},
                zorder=4,
            )
        ax.plot(*here, "o", color=rgba, ms=9, mec="black", mew=0.8, zorder=5)
        if count > MAX_RIDER_LABELS:
            continue
        ax.annotate(
            rider_id,
            tuple(here),
            xytext=(6, 5),
            textcoords="offset points",
            fontsize=8,
            color="0.1",
            zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    for points, marker, size, face, edge_w in (
        (merchants, "^", 9, "#ffb000", 0.8),
        (customers, "s", 7, "white", 1.0),
    ):
        if len(points):
            ax.plot(
                points[:, 0],
                points[:, 1],
                marker,
                ms=size,
                mfc=face,
                mec="black",
                mew=edge_w,
                ls="none",
                zorder=4,
            )

    handles: list[Any] = [
        Line2D(
            [],
            [],
            ls="none",
            marker="^",
            ms=9,
            mfc="#ffb000",
            mec="black",
            label=f"merchant, order not picked up ({len(merchants)})",
        ),
        Line2D(
            [],
            [],
            ls="none",
            marker="s",
            ms=7,
            mfc="white",
            mec="black",
            label=f"customer, order open or onboard ({len(customers)})",
        ),
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            ms=9,
            mfc="0.6",
            mec="black",
            label=f"rider with a route ({len(rider_ids)})",
        ),
        Line2D([], [], color="0.5", lw=2, label="remaining route"),
    ]
    if campus is not None:
        handles.append(
            Line2D([], [], color=ROAD_LAYERS[-1][1], lw=1.5, label=f"{campus.name} roads")
        )
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)

    if on_campus:
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(axis="x", labelrotation=30)
    else:
        ax.set_xlabel("x (km)")
        ax.set_ylabel("y (km)")
    ax.grid(True, color="0.92", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    x0, x1 = ax.get_xlim()
    _scale_bar(ax, float(m_per_unit[0]), x1 - x0)

    info = f"{result.scenario} · {result.policy} · t = {snap.t_s / 60:.1f} min from period start"
    ax.set_title(info, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)


# ---------------------------------------------------------------------- tuning trade-off
#: Points closer than this on the picture (pixels) share one label ("3*, 7").
LABEL_MERGE_PX = 9.0
#: A group label lists at most this many sets ("1*, 3, 5, 9, 11, … +4").
LABEL_MAX_SETS = 6


def _label_groups(px: NDArray[np.float64], radius: float) -> list[list[int]]:
    """Points (rows of ``px``, pixels) in groups: a point closer than ``radius`` to one of a
    group's points is in it (single linkage); groups and members in first-seen order."""
    parent = list(range(len(px)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in range(len(px)):
        for b in range(a + 1, len(px)):
            if float(np.hypot(*(px[a] - px[b]))) < radius:
                parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for k in range(len(px)):
        groups.setdefault(root(k), []).append(k)
    return list(groups.values())


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Area shared by two boxes ``(x0, y0, x1, y1)``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def place_labels(
    anchors: NDArray[np.float64],
    sizes: NDArray[np.float64],
    obstacles: Sequence[Sequence[float]],
    area: Sequence[float],
    *,
    gap: float = 5.0,
    rings: int = 5,
) -> list[tuple[float, float]]:
    """Where to put each label: the lower-left corner of its box relative to its anchor
    (pixels), chosen in turn among eight places around the anchor (right above first), then
    the same farther out, as the first that overlaps no other label, no obstacle box and stays
    inside ``area``; when none is free, the one overlapping least. A simple, deterministic
    stand-in for adjustText.

    Parameters
    ----------
    anchors
        Label anchors, ``(n, 2)`` pixels, in placement order (the important ones first).
    sizes
        Width and height of each label, ``(n, 2)`` pixels.
    obstacles
        Boxes labels must not cover (the markers).
    area
        The box labels must stay in (the axes).
    """
    placed: list[tuple[float, float, float, float]] = []
    offsets: list[tuple[float, float]] = []
    for (x, y), (w, h) in zip(anchors, sizes, strict=True):
        best: tuple[float, tuple[float, float]] | None = None
        for ring in range(rings):
            r = gap + ring * (h + 2 * gap)
            for dx, dy in (
                (r, r * 0.6),
                (r, -r * 0.6 - h),
                (-r - w, r * 0.6),
                (-r - w, -r * 0.6 - h),
                (-w / 2, r + 2),
                (-w / 2, -r - 2 - h),
                (r + 2, -h / 2),
                (-r - 2 - w, -h / 2),
            ):
                box = (x + dx, y + dy, x + dx + w, y + dy + h)
                outside = w * h - _overlap(box, area)
                cost = sum(_overlap(box, other) for other in [*placed, *obstacles])
                cost += 10 * outside
                if best is None or cost < best[0]:
                    best = (cost, (dx, dy))
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        dx, dy = best[1]
        offsets.append((dx, dy))
        placed.append((x + dx, y + dy, x + dx + w, y + dy + h))
    return offsets


def _kpi_name(kpi: str) -> str:
    """``kpi``'s :data:`~scenarios.replay.kpis.KPI_INFO` label without its explanation in
    brackets (``"on-time rate"``, ``"ETA churn per order, mean"``)."""
    label = KPI_INFO[kpi][0]
    return re.sub(r"\s*\([^()]*\)", "", label).strip() or label


def kpi_axis_label(kpi: str) -> str:
    """An axis label of ``kpi``: its name (:func:`_kpi_name`), then its unit in brackets
    (``"on-time rate (%)"``, ``"ETA churn per order, mean (min)"``)."""
    unit = KPI_INFO[kpi][1]
    return f"{_kpi_name(kpi)} ({unit})" if unit else _kpi_name(kpi)


def _kpi_limits(lim: tuple[float, float], percent: bool) -> tuple[float, float]:
    """Axis limits of a KPI: a percentage stays within 0-100 %, with room for labels beyond a
    point at 0 or 100 only."""
    low, high = lim
    if percent and high > 100:
        high = min(high, 100 + 0.12 * (100 - low) + 0.5)
    if percent and low < 0:
        low = max(low, 0 - 0.12 * high - 0.5)
    return low, high


def tradeoff_figure(
    labels: Sequence[int | str],
    y_values: Sequence[float],
    x_values: Sequence[float],
    on_front: Sequence[bool],
    chosen: int,
    *,
    title: str = "",
    y_kpi: str = "on_time_rate",
    x_kpi: str = "solver_latency_p99_ms",
    on_line: Sequence[bool] | None = None,
) -> Figure:
    """The figure :func:`plot_tradeoff` writes (drawn once, its layout fixed, so that the
    label boxes can be measured)."""
    if not labels:
        raise ValueError("plot_tradeoff: no parameter sets to plot")
    for kpi in (y_kpi, x_kpi):
        if kpi not in KPI_INFO:
            raise ValueError(f"plot_tradeoff: unknown KPI {kpi!r}")
    y_percent, x_percent = (KPI_INFO[k][1] == "%" for k in (y_kpi, x_kpi))
    y = (100 if y_percent else 1) * np.asarray(y_values, dtype=np.float64)
    x = (100 if x_percent else 1) * np.asarray(x_values, dtype=np.float64)
    front = np.asarray(on_front, dtype=bool)
    line = front if on_line is None else np.asarray(on_line, dtype=bool)
    if not len(labels) == len(y) == len(x) == len(front) == len(line):
        raise ValueError("plot_tradeoff: one value per parameter set in each sequence")
    fig = Figure(figsize=(7.5, 5.5), layout="constrained", dpi=DPI)
    ax = fig.subplots()
    ax.scatter(x[~front], y[~front], s=36, color="#9a9a9a", label="dominated", zorder=2)
    ax.scatter(x[front], y[front], s=48, color="C0", label="Pareto front (*)", zorder=3)
    # the front's staircase: at each x, the best y of the sets at least as good on x, its
    # corners on the dominated side (x lower-better: each point's y holds to the next point
    # on the right, "post"; x higher-better: from the previous point on the left, "pre")
    order = np.argsort(x[line], kind="stable")
    where: Literal["pre", "post"] = "pre" if KPI_INFO[x_kpi][2] > 0 else "post"
    ax.step(x[line][order], y[line][order], where=where, color="C0", lw=1.2, zorder=1)
    ax.scatter(
        [x[chosen]],
        [y[chosen]],
        s=220,
        facecolors="none",
        edgecolors="C3",
        linewidths=2.0,
        label="chosen",
        zorder=4,
    )
    ax.margins(x=0.1, y=0.15)
    ax.set_ylim(*_kpi_limits(ax.get_ylim(), y_percent))
    ax.set_xlim(*_kpi_limits(ax.get_xlim(), x_percent))
    ax.set_xlabel(kpi_axis_label(x_kpi))
    ax.set_ylabel(kpi_axis_label(y_kpi))
    ax.grid(True, alpha=0.3)
    if not title and (y_kpi, x_kpi) == ("on_time_rate", "solver_latency_p99_ms"):
        title = "on-time rate vs latency"
    ax.set_title(title or f"{_kpi_name(y_kpi)} vs {_kpi_name(x_kpi)}", fontsize=10)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # the layout, then frozen: the labels are placed in pixels
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]

    px = ax.transData.transform(np.column_stack([x, y]))
    groups = _label_groups(px, LABEL_MERGE_PX)
    # the chosen set's group first, then the front's, then left to right
    groups.sort(key=lambda g: (chosen not in g, not front[g].any(), float(px[g, 0].min())))
    style: dict[str, Any] = {
        "fontsize": 8,
        "zorder": 6,
        "ha": "left",
        "va": "bottom",
        "bbox": {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
    }
    texts, anchors, sizes = [], [], []
    for group in groups:
        names = [f"{labels[k]}{'*' if front[k] else ''}" for k in group]
        if len(names) > LABEL_MAX_SETS:
            names = [*names[: LABEL_MAX_SETS - 1], f"… +{len(names) - LABEL_MAX_SETS + 1}"]
        probe = ax.text(0, 0, ", ".join(names), **style)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        texts.append(", ".join(names))
        anchors.append(px[group].mean(axis=0))
        sizes.append((extent.width, extent.height))
    marker = 6.0
    obstacles = [(x - marker, y - marker, x + marker, y + marker) for x, y in px]
    cx, cy = px[chosen]
    obstacles.append((cx - 10, cy - 10, cx + 10, cy + 10))
    box = ax.get_window_extent(renderer)
    offsets = place_labels(
        np.array(anchors).reshape(-1, 2),
        np.array(sizes).reshape(-1, 2),
        obstacles,
        (box.x0, box.y0, box.x1, box.y1),
    )
    to_data = ax.transData.inverted()
    for text, anchor, (w, h), (dx, dy) in zip(texts, anchors, sizes, offsets, strict=True):
        far = math.hypot(dx + w / 2, dy + h / 2) > 3 * h  # pushed away: a leader line
        ax.annotate(
            text,
            tuple(to_data.transform(anchor)),
            xytext=(dx, dy),
            textcoords="offset pixels",
            arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkB": 4}
            if far
            else None,
            **style,
        )
    return fig


def plot_tradeoff(
    labels: Sequence[int | str],
    y_values: Sequence[float],
    x_values: Sequence[float],
    on_front: Sequence[bool],
    chosen: int,
    path: str | Path,
    *,
    title: str = "",
    y_kpi: str = "on_time_rate",
    x_kpi: str = "solver_latency_p99_ms",
    on_line: Sequence[bool] | None = None,
) -> Path:
    """The trade-off of a tuning run as a PNG: one KPI against another per parameter set (by
    default on-time rate against dispatch latency p99), the Pareto front joined by a step
    line, the chosen set ringed.

    Axis labels are the KPIs' labels of :data:`~scenarios.replay.kpis.KPI_INFO` (without
    their explanation in brackets, :func:`kpi_axis_label`) and units; percentages are drawn
    in % (0-100, as the tuning table shows them) and their axis stays within 0-100 %. The
    step line goes from front point to front point in order of x, its corners on the
    dominated side for each KPI's better direction: the best y reachable at each x.

    Each point is labelled with its set number, ``*`` on the front as in the table; points
    that fall together (within :data:`LABEL_MERGE_PX` pixels, ties among them) share one
    label (``"1*, 3*, 5"``); labels are placed around their points so that none covers
    another or a point (:func:`place_labels`), with a leader line when pushed away.

    Parameters
    ----------
    labels
        A label per set (its number in the table), written next to its point.
    y_values
        ``y_kpi`` per set, in its :data:`~scenarios.replay.kpis.KPI_INFO` form (a rate in
        [0, 1] for a percentage).
    x_values
        ``x_kpi`` per set, likewise.
    on_front
        Whether each set is on the Pareto front.
    chosen
        Position of the chosen set in the sequences.
    path
        Output PNG file (parent folders are created).
    title
        Figure title.
    y_kpi, x_kpi
        The KPIs drawn up and across (default on-time rate and latency p99).
    on_line
        Which sets the step line joins (default: the front sets). A front on more than the
        two drawn KPIs passes the front sets no other dominates on these two.

    Returns
    -------
    Path
        ``path``.
    """
    fig = tradeoff_figure(
        labels,
        y_values,
        x_values,
        on_front,
        chosen,
        title=title,
        y_kpi=y_kpi,
        x_kpi=x_kpi,
        on_line=on_line,
    )
    return _save(fig, path)
