"""Snapping errors, the on-disk cache, campus config validation and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from campus_maps import (
    Campus,
    CampusConfigError,
    OffCampusError,
    OutsideServiceAreaError,
    PointOffNetworkError,
    UnknownCampusError,
    UnknownModeError,
    load_campus,
)
from campus_maps.__main__ import main

DLAT, DLNG = 0.000898, 0.000912  # one block of the tiny grid


def test_snaps_to_edge_not_node(tiny: Campus) -> None:
    # a point beside South Road, a third of the way along the first block
    snapped = tiny.snap([(10.0 - 0.0001, 10.0 + 0.33 * DLNG)], "walk")
    assert snapped.access_m[0] == pytest.approx(11.1, abs=0.5)
    assert snapped.snap_lat[0] == pytest.approx(10.0, abs=1e-7)
    assert snapped.snap_lng[0] == pytest.approx(10.0 + 0.33 * DLNG, abs=1e-7)
    assert snapped.access_s[0] == pytest.approx(snapped.access_m[0] / 1.3)


def test_point_outside_service_area_is_a_typed_error(tiny: Campus) -> None:
    far = (10.0 + 0.2 * DLAT, 10.0 + 5.0 * DLNG)
    with pytest.raises(OutsideServiceAreaError) as err:
        tiny.snap([(10.0, 10.0), far], "bike")
    assert isinstance(err.value, OffCampusError)
    assert err.value.index == 1
    assert err.value.lat == pytest.approx(far[0])
    assert err.value.distance_m == pytest.approx(170, abs=10)
    assert "outside the campus service area" in str(err.value)
    assert f"{far[0]:.6f}" in str(err.value)


def test_snap_or_errors_snaps_once_or_lists_every_bad_point(tiny: Campus) -> None:
    good = [(10.0 - 0.0001, 10.0 + 0.33 * DLNG), (10.0 + 0.5 * DLAT, 10.0)]
    snapped, errors = tiny.snap_or_errors(good, "bike")
    assert errors == [] and snapped is not None
    expected = tiny.snap(good, "bike")
    for name in ("edge", "fraction", "access_m", "snap_lat", "snap_lng"):
        assert np.array_equal(getattr(snapped, name), getattr(expected, name)), name
    far = (10.0 + 0.2 * DLAT, 10.0 + 5.0 * DLNG)
    snapped, errors = tiny.snap_or_errors([good[0], far, far], "bike")
    assert snapped is None
    assert [e.index for e in errors] == [1, 2]
    assert all(isinstance(e, OutsideServiceAreaError) for e in errors)


def test_point_too_far_from_network_is_a_typed_error(cache_dir: Path) -> None:
    strict = load_campus("tiny", cache_dir=cache_dir, overrides={"snap": {"max_distance_m": 20.0}})
    middle_of_block = (10.0 + 0.5 * DLAT, 10.0 + 2.5 * DLNG)  # ~45 m from any bike way
    with pytest.raises(PointOffNetworkError) as err:
        strict.snap([middle_of_block], "bike")
    assert err.value.distance_m > 20.0
    assert err.value.limit_m == 20.0
    assert "too far from the rider network" in str(err.value)
    assert "(limit 20 m)" in str(err.value)


def test_cache_is_reused_and_rebuilt_when_speeds_change(tmp_path: Path) -> None:
    first = load_campus("tiny", cache_dir=tmp_path).network("bike")
    again = load_campus("tiny", cache_dir=tmp_path).network("bike")
    assert not first.stats.from_cache
    assert again.stats.from_cache
    assert again.stats.cache_key == first.stats.cache_key
    np.testing.assert_array_equal(again.tables.time_s, first.tables.time_s)

    slower = {"modes": {"bike": {"speeds_mps": {"residential": 2.0}}}}
    changed = load_campus("tiny", cache_dir=tmp_path, overrides=slower).network("bike")
    assert not changed.stats.from_cache
    assert changed.stats.cache_key != first.stats.cache_key
    assert changed.tables.time_s.sum() > first.tables.time_s.sum()
    # the other modes keep their cache entries
    walk_key = load_campus("tiny", cache_dir=tmp_path).network("walk").stats.cache_key
    assert (
        load_campus("tiny", cache_dir=tmp_path, overrides=slower).network("walk").stats.cache_key
        == walk_key
    )


def test_private_roads_usable_where_the_campus_allows(cache_dir: Path) -> None:
    closed = load_campus("tiny", cache_dir=cache_dir).network("bike")
    opened = load_campus(
        "tiny", cache_dir=cache_dir, overrides={"access": {"allow_private": True}}
    ).network("bike")
    assert "service" not in set(closed.arrays.edge_highway.tolist())
    assert "service" in set(opened.arrays.edge_highway.tolist())


def test_quito_needs_private_service_roads(cache_dir: Path) -> None:
    quito = load_campus("uce_quito", cache_dir=cache_dir)
    assert quito.config.allow_private
    opened = quito.network("walk").stats.nodes
    closed = (
        load_campus(
            "uce_quito", cache_dir=cache_dir, overrides={"access": {"allow_private": False}}
        )
        .network("walk")
        .stats.nodes
    )
    assert opened > 3 * closed


def test_config_errors_name_the_key_and_value(cache_dir: Path) -> None:
    with pytest.raises(CampusConfigError) as err:
        load_campus(
            "tiny",
            cache_dir=cache_dir,
            overrides={"modes": {"walk": {"speeds_mps": {"footway": -1}}}},
        )
    assert err.value.key == "modes.walk.speeds_mps.footway"
    assert err.value.value == -1
    with pytest.raises(CampusConfigError) as err:
        load_campus("tiny", cache_dir=cache_dir, overrides={"snap": {"max_distance_m": "far"}})
    assert err.value.key == "snap.max_distance_m"
    with pytest.raises(UnknownCampusError, match="known campuses: northwestern, tiny, uce_quito"):
        load_campus("atlantis", cache_dir=cache_dir)
    with pytest.raises(UnknownModeError, match="scooter"):
        load_campus("tiny", cache_dir=cache_dir).network("scooter")


def test_cli_list_and_info(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cache-dir", str(cache_dir), "list"]) == 0
    out = capsys.readouterr().out
    assert "* northwestern" in out and "uce_quito" in out and "OpenStreetMap" in out
    assert main(["--cache-dir", str(cache_dir), "info", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "Tiny Test Campus" in out and "walk" in out and "food" in out
    assert main(["--cache-dir", str(cache_dir), "info", "atlantis"]) == 2
    assert "unknown campus 'atlantis'" in capsys.readouterr().err
