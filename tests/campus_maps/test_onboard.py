"""Onboarding an operator's campus (`campus add`): every input format, clipping by box and
polygon, the refusals (each naming the value), the report's warnings, and list/check/remove
through the `campus-dispatch` command. Inputs are made here from the bundled tiny map."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from campus_dispatch.cli import main
from campus_maps import MODES, load_campus
from campus_maps.config import DATA_DIR
from campus_maps.onboard import (
    NoRiderNetworkError,
    NoRoadError,
    NotOsmFileError,
    OnboardError,
    TablesTooLargeError,
    onboard_campus,
    parse_bbox,
    read_extract,
    read_polygon,
)
from campus_maps.osm import osm_from_xml
from campus_maps.report import ModeAnalysis, ModeReport, estimate_table_bytes, report_warnings

TINY = DATA_DIR / "tiny" / "tiny.osm.xz"
UCE = DATA_DIR / "uce_quito" / "uce_quito.osm.xz"
#: The south-west corner of the tiny grid: nodes 1000, 1001, 1010, 1011 and the canteen.
SW_BOX = "9.9995,9.9995,10.0013,10.0013"


@pytest.fixture(scope="module")
def tiny_xml() -> bytes:
    return lzma.decompress(TINY.read_bytes())


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A maps dir and a cache dir under tmp, also as the environment defaults."""
    maps, cache = tmp_path / "maps", tmp_path / "cache"
    monkeypatch.setenv("CAMPUS_DISPATCH_MAPS_DIR", str(maps))
    monkeypatch.setenv("CAMPUS_DISPATCH_CACHE", str(cache))
    return maps, cache


def write_input(tmp_path: Path, xml: bytes, suffix: str) -> Path:
    path = tmp_path / f"input{suffix}"
    packers = {".osm": bytes, ".osm.xz": lzma.compress, ".osm.bz2": bz2.compress}
    packers[".osm.gz"] = gzip.compress
    path.write_bytes(packers[suffix](xml))
    return path


def write_pbf(path: Path) -> Path:
    """The tiny map as .osm.pbf, written with pyosmium's writer."""
    osmium = pytest.importorskip("osmium")
    from osmium.osm.mutable import Node, Way

    osm = osm_from_xml(TINY)
    writer = osmium.SimpleWriter(str(path))
    try:
        for nid in sorted(osm.nodes):
            n = osm.nodes[nid]
            writer.add_node(Node(id=nid, location=(n.lng, n.lat), tags=n.tags, version=1))
        for way in osm.ways:
            writer.add_way(Way(id=way.id, nodes=list(way.refs), tags=way.tags, version=1))
    finally:
        writer.close()
    return path


def test_the_tiny_map_onboards_and_loads_like_the_bundled_one(dirs: tuple[Path, Path]) -> None:
    maps, cache = dirs
    result = onboard_campus(
        "my_tiny", TINY, maps_dir=maps, name="My Tiny", timezone="Europe/Berlin", cache_dir=cache
    )
    folder = maps / "my_tiny"
    assert result.folder == folder
    assert {p.name for p in folder.iterdir()} == {
        "campus.toml",
        "my_tiny.osm.xz",
        "SOURCE.md",
        "report.png",
    }
    source = (folder / "SOURCE.md").read_text()
    assert "© OpenStreetMap contributors" in source and "ODbL 1.0" in source
    assert "`tiny.osm.xz`" in source and "none (the whole file)" in source
    import hashlib

    assert hashlib.sha256(TINY.read_bytes()).hexdigest() in source
    campus = load_campus("my_tiny", maps_dir=maps, cache_dir=cache)
    bundled = load_campus("tiny", cache_dir=cache)
    assert campus.name == "My Tiny" and campus.config.timezone == "Europe/Berlin"
    assert not campus.config.allow_private
    for mode in MODES:
        assert campus.network(mode).stats.nodes == bundled.network(mode).stats.nodes
        assert campus.network(mode).stats.edges == bundled.network(mode).stats.edges
        assert result.report.modes[mode].nodes == bundled.network(mode).stats.nodes
    assert [p.id for p in campus.places()] == [p.id for p in bundled.places()]
    assert result.report.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = result.report.text()
    for words in ("walk", "bike", "ebike", "food 3", "dorm 2", "largest strongly connected"):
        assert words in text


@pytest.mark.parametrize("suffix", [".osm", ".osm.gz", ".osm.bz2", ".osm.xz", ".osm.pbf"])
def test_every_input_format_gives_the_same_map(
    suffix: str, tiny_xml: bytes, tmp_path: Path
) -> None:
    if suffix == ".osm.pbf":
        path = write_pbf(tmp_path / "input.osm.pbf")
    else:
        path = write_input(tmp_path, tiny_xml, suffix)
    osm, stats = read_extract(path)
    reference = osm_from_xml(TINY)
    assert (stats.nodes_read, stats.ways_read) == (len(reference.nodes), len(reference.ways))
    assert osm.nodes == reference.nodes
    assert [(w.id, w.refs, w.tags) for w in osm.ways] == [
        (w.id, w.refs, w.tags) for w in reference.ways
    ]


def test_a_pbf_extract_onboards(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    maps, cache = dirs
    path = write_pbf(tmp_path / "city.osm.pbf")
    result = onboard_campus("pbf_campus", path, maps_dir=maps, cache_dir=cache, clip=None)
    assert (
        result.report.modes["walk"].nodes
        == load_campus("tiny", cache_dir=cache).network("walk").stats.nodes
    )


def test_a_box_keeps_nodes_inside_and_whole_ways_crossing_it() -> None:
    osm, stats = read_extract(TINY, parse_bbox(SW_BOX))
    ways = {w.id for w in osm.ways}
    assert {1, 3} <= ways  # South Road and West Road start inside
    assert 2 not in ways and 4 not in ways  # North Road and East Street never enter the box
    assert {1003, 1030} <= set(osm.nodes)  # their far ends stay: the roads are whole
    assert 1032 not in osm.nodes and 2002 not in osm.nodes  # outside, on no kept way
    assert osm.nodes[2001].tags["amenity"] == "restaurant"  # the canteen is inside
    assert stats.nodes_kept == len(osm.nodes) < stats.nodes_read
    assert osm.bounds == (9.9995, 9.9995, 10.0013, 10.0013)


def test_a_polygon_clips_like_a_box_but_only_inside_its_outline(tmp_path: Path) -> None:
    # a triangle over the south-west corner that leaves out Maple Hall (on its far side)
    ring = [[9.9995, 9.9995], [10.0016, 9.9995], [9.9995, 10.0016], [9.9995, 9.9995]]
    path = tmp_path / "area.geojson"
    path.write_text(
        json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}})
    )
    clip = read_polygon(path)
    assert clip.kind == "polygon" and len(clip.corners) == 3
    osm, _ = read_extract(TINY, clip)
    box, _ = read_extract(TINY, parse_bbox("9.9995,9.9995,10.0016,10.0016"))
    assert 2001 in osm.nodes and 2001 in box.nodes
    assert 3000 in box.nodes and 3000 not in osm.nodes  # a corner of Maple Hall
    assert clip.contains(np.array([10.0, 10.0011674]), np.array([10.0, 10.0002736])).tolist() == [
        True,
        False,
    ]
    assert {w.id for w in osm.ways} < {w.id for w in box.ways}


def test_an_onboarded_clip_is_the_service_area(dirs: tuple[Path, Path]) -> None:
    maps, cache = dirs
    result = onboard_campus(
        "sw_corner", TINY, maps_dir=maps, cache_dir=cache, clip=parse_bbox(SW_BOX)
    )
    config = result.campus.config
    assert config.service_area == (
        (9.9995, 9.9995),
        (9.9995, 10.0013),
        (10.0013, 10.0013),
        (10.0013, 9.9995),
    )
    assert "the box 9.9995,9.9995,10.0013,10.0013" in (result.folder / "SOURCE.md").read_text()
    assert [p.name for p in result.campus.places()] == ["Maple Hall", "Tiny Canteen"]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.osm", b"hello, not xml", "not valid XML"),
        ("track.osm", b"<?xml version='1.0'?><gpx><trk/></gpx>", "root element is <gpx>"),
        ("map.osm.xz", b"plain bytes", "cannot decompress it as .osm.xz"),
        ("map.osm.gz", b"plain bytes", "cannot decompress it as .osm.gz"),
        ("map.osm.pbf", b"plain bytes", "not a readable .osm.pbf"),
        ("empty.osm", b"<osm version='0.6'></osm>", "it has no nodes"),
        ("map.geojson", b"{}", "the name must end in .osm"),
    ],
)
def test_a_file_that_is_not_osm_is_named_with_what_is_wrong(
    name: str, content: bytes, problem: str, tmp_path: Path, dirs: tuple[Path, Path]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotOsmFileError) as err:
        onboard_campus("bad_file", path, maps_dir=dirs[0], cache_dir=dirs[1])
    assert str(path) in str(err.value) and problem in str(err.value)
    assert not (dirs[0] / "bad_file").exists()


def test_a_box_that_cuts_every_road_is_refused_naming_the_box(dirs: tuple[Path, Path]) -> None:
    with pytest.raises(NoRoadError, match=r"the box 1,1,2,2 \(S,W,N,E\) leaves no road of .*tiny"):
        onboard_campus("nowhere", TINY, maps_dir=dirs[0], clip=parse_bbox("1,1,2,2"))
    assert not dirs[0].exists() or not any(dirs[0].iterdir())


def test_a_mode_without_a_network_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    # one footway closed to bikes: walkers have a network, bikes have none
    path = tmp_path / "path.osm"
    path.write_text(
        "<osm version='0.6'>"
        "<node id='1' lat='10.0' lon='10.0'/><node id='2' lat='10.0' lon='10.001'/>"
        "<way id='9'><nd ref='1'/><nd ref='2'/>"
        "<tag k='highway' v='footway'/><tag k='bicycle' v='no'/></way></osm>"
    )
    with pytest.raises(NoRiderNetworkError, match="mode 'bike' has no rider network"):
        onboard_campus("footpath", path, maps_dir=dirs[0], cache_dir=dirs[1])
    assert not (dirs[0] / "footpath").exists()


def test_ids_that_exist_or_are_no_slug_are_refused(dirs: tuple[Path, Path]) -> None:
    maps, cache = dirs
    with pytest.raises(OnboardError, match="'tiny' is a bundled campus"):
        onboard_campus("tiny", TINY, maps_dir=maps, cache_dir=cache)
    for bad in ("My Campus", "campus/../x", "Caps", "", "1st"):
        with pytest.raises(OnboardError, match="lowercase slug"):
            onboard_campus(bad, TINY, maps_dir=maps, cache_dir=cache)
    onboard_campus("twice", TINY, maps_dir=maps, cache_dir=cache)
    with pytest.raises(OnboardError, match=r"'twice' is already onboarded.*--force"):
        onboard_campus("twice", TINY, maps_dir=maps, cache_dir=cache)
    again = onboard_campus("twice", TINY, maps_dir=maps, cache_dir=cache, force=True, name="Second")
    assert again.campus.name == "Second"
    assert [p.name for p in maps.iterdir()] == ["twice"]  # no staging folder left behind
    with pytest.raises(OnboardError, match="--timezone 'Mars/Olympus'"):
        onboard_campus("tz", TINY, maps_dir=maps, cache_dir=cache, timezone="Mars/Olympus")


def test_tables_too_large_for_the_limit_are_refused_before_building(
    dirs: tuple[Path, Path],
) -> None:
    maps, cache = dirs
    with pytest.raises(TablesTooLargeError, match=r"mode 'walk' has 9 nodes.*--max-table-bytes"):
        onboard_campus("small_limit", TINY, maps_dir=maps, cache_dir=cache, max_table_bytes=100)
    assert not (maps / "small_limit").exists() and not cache.exists()
    assert estimate_table_bytes(1000) == 1000 * 1000 * 24


def test_private_ways_warn_unless_allowed(dirs: tuple[Path, Path]) -> None:
    maps, cache = dirs
    closed = onboard_campus("closed", TINY, maps_dir=maps, cache_dir=cache)
    opened = onboard_campus("opened", TINY, maps_dir=maps, cache_dir=cache, allow_private=True)
    assert any("try --allow-private" in w for w in closed.report.warnings)
    assert not any("private" in w for w in opened.report.warnings)
    assert opened.report.modes["walk"].nodes > closed.report.modes["walk"].nodes


def _mode(mode: str, nodes: int) -> ModeReport:
    analysis = ModeAnalysis(mode, 10, nodes, 2 * nodes, nodes, 2 * nodes, nodes, 2 * nodes, 0)
    return ModeReport(mode, nodes, 2 * nodes, False, 0.1, estimate_table_bytes(nodes), analysis)


def test_no_food_and_a_small_bike_network_are_warned_with_what_to_do() -> None:
    modes = {"walk": _mode("walk", 100), "bike": _mode("bike", 40), "ebike": _mode("ebike", 40)}
    warnings = report_warnings(modes, {"food": 0, "dorm": 3}, allow_private=False)
    assert any("no food places" in w and "cannot draw merchants" in w for w in warnings)
    assert any("bike network is much smaller" in w and "40 vs 100" in w for w in warnings)
    modes["bike"] = _mode("bike", 60)
    assert report_warnings(modes, {"food": 2}, allow_private=False) == []


def test_list_check_and_remove_through_the_command(
    tmp_path: Path, dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    maps, _ = dirs
    assert (
        main(
            [
                "campus",
                "add",
                "cli_campus",
                "--osm",
                str(TINY),
                "--name",
                "CLI Campus",
                "--bbox",
                SW_BOX,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "onboarding report: CLI Campus [cli_campus]" in out
    assert str(maps / "cli_campus" / "report.png") in out

    assert main(["campus", "list"]) == 0
    out = capsys.readouterr().out
    assert "cli_campus" in out and "onboarded" in out and "CLI Campus" in out
    assert "tiny" in out and "bundled" in out

    png = tmp_path / "check.png"
    assert main(["campus", "check", "cli_campus", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "onboarding report: CLI Campus" in out and "cached" in out and png.is_file()

    assert main(["campus", "remove", "tiny"]) == 2
    assert "bundled" in capsys.readouterr().err
    assert main(["campus", "remove", "cli_campus"]) == 0
    assert not (maps / "cli_campus").exists()
    assert main(["campus", "check", "cli_campus"]) == 2
    assert "unknown campus 'cli_campus'" in capsys.readouterr().err


def test_command_errors_are_one_line(
    tmp_path: Path, dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("nope")
    assert main(["campus", "add", "x", "--osm", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: campus: ") and str(bad) in err and err.count("\n") == 1
    assert main(["campus", "add", "x", "--osm", str(TINY), "--max-table-bytes", "1K"]) == 2
    assert "over the limit of" in capsys.readouterr().err
    assert main(["campus", "add", "x", "--osm", str(TINY), "--bbox", "1,2,3"]) == 2
    assert "--bbox '1,2,3'" in capsys.readouterr().err


# ------------------------------------------------- what a review found: hardening, each pinned
def test_remove_refuses_anything_but_a_campus_id(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    maps, _ = dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "campus.toml").write_text('id = "outside"\n')
    for bad in ("../outside", str(outside), "Tiny", ""):
        assert main(["campus", "remove", bad, "--maps-dir", str(maps)]) == 2
    assert (outside / "campus.toml").is_file()


def test_hidden_folders_are_not_campuses(dirs: tuple[Path, Path]) -> None:
    from campus_maps.config import campus_folders, campus_ids

    maps, _ = dirs
    (maps / ".mine.123.tmp").mkdir(parents=True)
    (maps / ".mine.123.tmp" / "campus.toml").write_text('id = "mine"\n')
    assert campus_folders(maps) == set()
    assert ".mine.123.tmp" not in campus_ids(maps_dir=maps)
    assert campus_folders(maps / "missing") == set()


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("snap = 1", "snap"),
        ("modes = 3", "modes"),
        ("access = true", "access"),
        ('service_area = "north"', "service_area"),
        ('service_area = [["a", "b"], [1, 2], [3, 4]]', "service_area[0]"),
    ],
)
def test_a_campus_file_of_the_wrong_shape_is_a_config_error(
    dirs: tuple[Path, Path], line: str, key: str
) -> None:
    from campus_maps import CampusConfigError, load_campus_config

    maps, _ = dirs
    assert main(["campus", "add", "shaped", "--osm", str(TINY), "--maps-dir", str(maps)]) == 0
    toml = maps / "shaped" / "campus.toml"
    toml.write_text(f'id = "shaped"\nname = "Shaped"\nosm_file = "shaped.osm.xz"\n{line}\n')
    with pytest.raises(CampusConfigError) as info:
        load_campus_config("shaped", maps_dir=maps)
    assert info.value.key == key


def test_a_worker_never_plans_on_a_map_that_changed_under_it(dirs: tuple[Path, Path]) -> None:
    """A campus opened for a known map reads that map's cached tables, and refuses to build
    from a map file replaced since (``campus add --force``) instead of planning on it."""
    from campus_maps import MapChangedError, load_campus_config
    from campus_maps.matrices import campus_in_process

    maps, cache = dirs
    assert main(["campus", "add", "moving", "--osm", str(TINY), "--maps-dir", str(maps)]) == 0
    config = load_campus_config("moving", maps_dir=maps)
    first = load_campus("moving", maps_dir=maps, cache_dir=cache)
    digest = first.osm_digest
    # the cached tables of the old map serve a worker even though the file changed
    assert (
        main(["campus", "add", "moving", "--osm", str(UCE), "--maps-dir", str(maps), "--force"])
        == 0
    )
    worker_copy = campus_in_process(config, cache, digest)
    assert worker_copy.osm_digest == digest
    assert worker_copy.network("walk").stats.nodes == first.network("walk").stats.nodes
    # without them, the changed file is refused
    import shutil

    shutil.rmtree(cache / "moving")
    with pytest.raises(MapChangedError, match="changed since the campus was loaded"):
        campus_in_process(config, cache, "0" * 64)


def test_a_failed_forced_onboarding_keeps_the_previous_campus(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import campus_maps.onboard as onboard_module

    maps, _ = dirs
    assert main(["campus", "add", "kept", "--osm", str(TINY), "--maps-dir", str(maps)]) == 0
    before = (maps / "kept" / "campus.toml").read_text()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the table build failed")

    monkeypatch.setattr(onboard_module, "build_report", broken)
    again = ["campus", "add", "kept", "--osm", str(UCE), "--maps-dir", str(maps), "--force"]
    with pytest.raises(RuntimeError, match="table build failed"):
        main(again)
    assert (maps / "kept" / "campus.toml").read_text() == before
    assert sorted(p.name for p in maps.iterdir()) == ["kept"]
