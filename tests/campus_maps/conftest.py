"""Shared fixtures: campuses loaded with a per-session cache folder (never the user's cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campus_maps import Campus, load_campus


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campus-cache")


@pytest.fixture(scope="session")
def tiny(cache_dir: Path) -> Campus:
    return load_campus("tiny", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def northwestern(cache_dir: Path) -> Campus:
    return load_campus("northwestern", cache_dir=cache_dir)
