"""The ``campus`` subcommands of ``campus-dispatch`` (assembled by :mod:`campus_dispatch.cli`):
``add`` (onboard an OSM extract), ``check`` (re-run the onboarding report), ``list`` and
``remove``; and the errors they report."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from campus_maps.config import CampusConfigError, UnknownCampusError, default_maps_dir
from campus_maps.network import EmptyNetworkError
from campus_maps.onboard import OnboardError
from campus_maps.osm import OsmFileError

#: Errors a command reports as ``error: <label>: <message>`` (exit 2) instead of a traceback.
ERRORS: dict[type[Exception], str] = {
    OnboardError: "campus",
    UnknownCampusError: "campus",
    CampusConfigError: "campus",
    OsmFileError: "map",
    EmptyNetworkError: "map",
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """``1073741824``, ``512M``, ``2G``, ``1.5GiB``: a size in bytes (K/M/G/T are powers of
    1024)."""
    match = _SIZE.match(text)
    if not match or (match.group(3) and match.group(3).lower() not in ("b", "ib")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 2147483648 or 2G")
    power = " kmgt".index(match.group(2).lower() or " ")
    value = int(float(match.group(1)) * 1024**power)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def _maps_dir(args: argparse.Namespace) -> Path:
    return Path(args.maps_dir) if args.maps_dir else default_maps_dir()


def cmd_campus_add(args: argparse.Namespace) -> int:
    """Onboard an OSM extract as a campus and print its onboarding report."""
    from campus_maps.onboard import onboard_campus, parse_bbox, read_polygon

    clip = None
    if args.bbox:
        clip = parse_bbox(args.bbox)
    elif args.polygon:
        clip = read_polygon(args.polygon)
    result = onboard_campus(
        args.campus,
        args.osm,
        maps_dir=_maps_dir(args),
        name=args.name,
        timezone=args.timezone,
        clip=clip,
        allow_private=args.allow_private,
        force=args.force,
        max_table_bytes=args.max_table_bytes,
        cache_dir=args.cache_dir,
    )
    print(result.report.text())
    print(f"onboarded {args.campus!r} into {result.folder}")
    return 0


def cmd_campus_check(args: argparse.Namespace) -> int:
    """Re-run the onboarding report of a bundled or onboarded campus."""
    from campus_maps.onboard import check_campus

    _, report = check_campus(
        args.campus,
        maps_dir=_maps_dir(args),
        cache_dir=args.cache_dir,
        max_table_bytes=args.max_table_bytes,
        png_path=args.png,
    )
    print(report.text())
    return 0


def cmd_campus_list(args: argparse.Namespace) -> int:
    """One line per bundled and onboarded campus (read from the campus files; nothing built)."""
    from campus_maps.onboard import list_campus_entries

    maps_dir = _maps_dir(args)
    entries = list_campus_entries(maps_dir)
    print(f"{'id':<16} {'where':<10} {'map':<32} {'size':>9}  name")
    for e in entries:
        print(f"{e.id:<16} {e.where:<10} {e.map_file:<32} {e.map_bytes / 1024:>7.0f}kB  {e.name}")
    print(f"(onboarded campuses live in {maps_dir}; Map data (c) OpenStreetMap contributors, ODbL)")
    return 0


def cmd_campus_remove(args: argparse.Namespace) -> int:
    """Delete an onboarded campus folder (bundled campuses are refused)."""
    from campus_maps.onboard import remove_campus

    folder = remove_campus(args.campus, _maps_dir(args))
    print(f"removed {args.campus!r} ({folder}); its cached tables stay until the cache is cleared")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``campus`` (``add``, ``check``, ``list``, ``remove``) to the subcommands."""
    campus = sub.add_parser(
        "campus",
        help="onboard, check, list and remove campus maps",
        description="Bring a campus from an OpenStreetMap extract (add), re-run its onboarding "
        "report (check), list the bundled and onboarded campuses, remove an onboarded one. "
        "Exit status: 0 done, 2 a bad map, campus id or setting (one 'error:' line).",
    )
    verbs = campus.add_subparsers(
        dest="verb", required=True, metavar="VERB", help="what to do (VERB --help: its options)"
    )

    def common(parser: argparse.ArgumentParser, *, tables: bool) -> None:
        parser.add_argument(
            "--maps-dir",
            type=Path,
            default=None,
            help="folder of onboarded campuses (default: $CAMPUS_DISPATCH_MAPS_DIR or "
            "~/.local/share/campus-dispatch/maps)",
        )
        if tables:
            parser.add_argument(
                "--cache-dir",
                type=Path,
                default=None,
                help="travel table cache (default: $CAMPUS_DISPATCH_CACHE or "
                "~/.cache/campus-dispatch)",
            )
            parser.add_argument(
                "--max-table-bytes",
                type=parse_bytes,
                default=None,
                help="refuse a mode whose all-pairs tables would need more (e.g. 2G; default: "
                "[tables] max_bytes of defaults.toml)",
            )

    add = verbs.add_parser("add", help="onboard an OSM extract (.osm[.xz|.bz2|.gz] or .osm.pbf)")
    add.add_argument("campus", help="new campus id: a lowercase slug such as my_campus")
    add.add_argument("--osm", type=Path, required=True, help="the OSM file to read (required)")
    add.add_argument("--name", default=None, help="display name (default: the id)")
    add.add_argument("--timezone", default="UTC", help="IANA timezone, e.g. America/Chicago")
    where = add.add_mutually_exclusive_group()
    where.add_argument("--bbox", default=None, help="clip to the box S,W,N,E (degrees)")
    where.add_argument(
        "--polygon", type=Path, default=None, help="clip to the polygon of a GeoJSON file"
    )
    add.add_argument(
        "--allow-private",
        action="store_true",
        help="riders may use access=private/no ways (campus service roads)",
    )
    add.add_argument("--force", action="store_true", help="replace an onboarded campus")
    common(add, tables=True)
    add.set_defaults(func=cmd_campus_add)

    check = verbs.add_parser("check", help="re-run the onboarding report of a campus")
    check.add_argument("campus", help="campus id (bundled or onboarded)")
    check.add_argument(
        "--png",
        type=Path,
        default=None,
        help="where to draw the picture (default: the "
        "onboarded campus folder, or the cache folder of a bundled campus)",
    )
    common(check, tables=True)
    check.set_defaults(func=cmd_campus_check)

    listing = verbs.add_parser("list", help="bundled and onboarded campuses")
    common(listing, tables=False)
    listing.set_defaults(func=cmd_campus_list)

    remove = verbs.add_parser("remove", help="delete an onboarded campus")
    remove.add_argument("campus", help="onboarded campus id")
    common(remove, tables=False)
    remove.set_defaults(func=cmd_campus_remove)
