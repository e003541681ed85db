"""An in-process service on the tiny campus (port 0) whose metrics the alert rules read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campus_maps import load_campus
from server.app import Service, create_server
from tests.server.conftest import make_config


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = create_server(make_config(), campuses={"tiny": load_campus("tiny")})
    yield svc
    svc.stop(0.5)
