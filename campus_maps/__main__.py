"""Command line: ``python -m campus_maps list`` and ``python -m campus_maps info CAMPUS``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from campus_maps.campus import load_campus
from campus_maps.catalog import CampusInfo, describe_campus, list_campuses
from campus_maps.config import MODES, CampusConfigError, UnknownCampusError
from campus_maps.places import PlaceKind


def _format_row(info: CampusInfo) -> str:
    nets = "  ".join(f"{m} {n}/{e}" for m, (n, e) in info.networks.items())
    places = ", ".join(f"{k} {v}" for k, v in info.places.items())
    star = "*" if info.default else " "
    return f"{star} {info.id:<13} {info.name:<45} {nets}  | {places}"


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per campus (nodes/edges per mode, places)."""
    print("  id            name                                          nodes/edges per mode")
    for info in list_campuses(cache_dir=args.cache_dir):
        print(_format_row(info))
    print("(* default campus)  Map data (c) OpenStreetMap contributors, ODbL 1.0")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Load a campus, build its travel tables, and print a summary."""
    started = time.perf_counter()
    campus = load_campus(args.campus, cache_dir=args.cache_dir)
    info = describe_campus(campus)
    total = time.perf_counter() - started
    b = info.bounds
    print(f"{info.name} [{info.id}]{' (default)' if info.default else ''}")
    print(
        f"  map: {campus.config.osm_path.name}  "
        f"bounds {b[0]:.5f},{b[1]:.5f} - {b[2]:.5f},{b[3]:.5f}"
    )
    print("  Map data (c) OpenStreetMap contributors, ODbL 1.0")
    for mode in MODES:
        net = campus.network(mode)
        how = "loaded from cache" if net.stats.from_cache else "built"
        speeds = campus.config.mode(mode).speeds_mps
        fastest = max(speeds.values())
        finite = net.tables.time_s[np.isfinite(net.tables.time_s)]
        print(
            f"  {mode:<6} {net.stats.nodes:>5} nodes {net.stats.edges:>6} edges  "
            f"{how} in {net.stats.build_s:.2f} s  max speed {fastest} m/s  "
            f"network diameter {finite.max() / 60:.1f} min"
        )
    for kind in PlaceKind:
        names = [p.name for p in campus.places(kind)]
        sample = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
        print(f"  {kind.value:<8} {len(names):>4} places  {sample}")
    print(f"  ready in {total:.2f} s (cache: {campus.cache_dir})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m campus_maps``."""
    parser = argparse.ArgumentParser(prog="python -m campus_maps", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=None, help="travel table cache folder")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the bundled campuses").set_defaults(func=cmd_list)
    info = sub.add_parser("info", help="build a campus's travel tables and summarise it")
    info.add_argument(
        "campus", nargs="?", default=None, help="campus id (default: the default campus)"
    )
    info.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UnknownCampusError, CampusConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
