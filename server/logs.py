"""The server's log: one JSON object per line on stderr, each with an ISO-8601 ``time`` (UTC,
milliseconds), a ``level`` and the ``logger``; the access and audit lines' own fields follow
(their message is a JSON object), any other message goes under ``message``. Admin tokens are
replaced by ``<redacted>`` wherever they would appear."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

#: What stands for a secret in a log line.
REDACTED = "<redacted>"
#: A bearer credential in free text (``Bearer <token>``).
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")


def iso_time(epoch_s: float) -> str:
    """``2024-05-01T12:00:00.123Z``: an instant in UTC, to the millisecond."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, then the fields of a JSON
    object message (else ``message``), and ``exception`` (the traceback as one string) when
    the record has one. ``secrets`` (admin tokens) never appear: each is replaced by
    :data:`REDACTED`, as is any ``Bearer <credential>``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` without the secrets."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        message = record.getMessage()
        fields: Any = None
        if message.startswith("{"):
            try:
                fields = json.loads(message)
            except ValueError:
                fields = None
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        else:
            line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return self.redact(json.dumps(line, default=str, ensure_ascii=False))


def configure_logging(
    secrets: Iterable[str] = (), *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) as a :class:`JsonFormatter` line;
    replaces the root logger's handlers. Returns the handler."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
