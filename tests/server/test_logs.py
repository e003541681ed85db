"""The log format: one JSON object per line with an ISO-8601 time, a level and the logger; an
access or audit line's own fields at the top level; a traceback as one string; admin tokens
(and any bearer credential) redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from server.logs import REDACTED, JsonFormatter, configure_logging, iso_time

TOKEN = "log-token-0123456789abcdef"


@pytest.fixture()
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging([TOKEN], stream=out)
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(text) for text in out.getvalue().splitlines()]


def test_iso_time_is_utc_to_the_millisecond() -> None:
    assert iso_time(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_every_line_is_json_with_time_level_and_logger(stream: io.StringIO) -> None:
    access = logging.getLogger("campus_dispatch.access")
    access.info(json.dumps({"rpc": "Solve", "status": "OK", "latency_ms": 12.5}))
    logging.getLogger("campus_dispatch.admin").warning("plain text, 50% done")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tests.logs").exception("Solve failed for request %s", "r1")
    first, second, third = lines(stream)
    assert first["level"] == "INFO" and first["logger"] == "campus_dispatch.access"
    assert first["rpc"] == "Solve" and first["latency_ms"] == 12.5
    assert isinstance(first["time"], str) and first["time"].endswith("Z")
    assert list(first)[:3] == ["time", "level", "logger"]
    assert second["level"] == "WARNING" and second["message"] == "plain text, 50% done"
    assert third["level"] == "ERROR" and third["message"] == "Solve failed for request r1"
    assert "ValueError: boom" in str(third["exception"])
    assert len(stream.getvalue().splitlines()) == 3  # the traceback stays on its line


def test_tokens_never_reach_the_log(stream: io.StringIO) -> None:
    log = logging.getLogger("campus_dispatch.admin")
    log.info(json.dumps({"event": "config_change", "who": "token ops", "reason": TOKEN}))
    log.warning("header was authorization: Bearer some-other-secret-value")
    text = stream.getvalue()
    assert TOKEN not in text and "some-other-secret-value" not in text
    first, second = lines(stream)
    assert first["reason"] == REDACTED
    assert second["message"] == f"header was authorization: Bearer {REDACTED}"


def test_the_formatter_keeps_its_own_fields_first() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, '{"level": "fake", "a": 1}', (), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["a"] == 1
