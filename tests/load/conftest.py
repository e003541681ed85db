"""In-process services on the tiny campus (port 0) for the load-test tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from campus_maps import Campus, load_campus
from server.app import Service, create_server
from tests.server.conftest import make_config


class RecordingEvent:
    """Stands in for locust's request event: keeps every report."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def fire(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture(scope="session")
def tiny() -> Campus:
    return load_campus("tiny")


@pytest.fixture(scope="module")
def service(tiny: Campus) -> Iterator[Service]:
    svc = create_server(make_config(metrics_port=-1), campuses={"tiny": tiny})
    yield svc
    svc.stop(0.5)
