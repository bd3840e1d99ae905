"""The product's log lines: plain text by default, or one JSON object a line
(``M365SYNC_LOG_FORMAT=json``) carrying the request id (web) and the unit id (sync runs).

``request_id`` is set per HTTP request by the web app (the ``X-Request-ID`` the proxy sent,
else a new one, echoed in the response); ``unit_id`` for the length of a sync unit's run.
Both are context variables, so they follow the work into threads and tasks. Only
m365sync's own loggers (``m365sync.*``) are configured; other libraries keep Python's
default (warnings and errors): at DEBUG, MSAL and httpx would log requests and token
responses. m365sync's own lines never carry a secret, a token or an Authorization header.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from m365sync.errors import ValidationFailed

__all__ = [
    "JsonFormatter",
    "configure_product_logging",
    "log_level_number",
    "request_id",
    "unit_id",
    "unit_logging",
]

request_id: ContextVar[str | None] = ContextVar("m365sync_request_id", default=None)
unit_id: ContextVar[str | None] = ContextVar("m365sync_unit_id", default=None)

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request and unit ids (when
    set), and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("unit_id", unit_id)):
            value = var.get()
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


@contextmanager
def unit_logging(unit: str) -> Iterator[None]:
    """Lines logged inside carry ``unit_id``."""
    token = unit_id.set(unit)
    try:
        yield
    finally:
        unit_id.reset(token)


def log_level_number(level: str) -> int:
    number = LEVELS.get(level.strip().lower())
    if number is None:
        raise ValidationFailed(
            f"'{level}' is not a log level (M365SYNC_LOG_LEVEL).",
            fix="Set M365SYNC_LOG_LEVEL to DEBUG, INFO, WARNING or ERROR.",
        )
    return number


def configure_product_logging(level: str, log_format: str, text: logging.Formatter) -> None:
    """m365sync's loggers at ``level`` on stderr: as ``text`` formats them, or as JSON."""
    number = log_level_number(level)
    if log_format not in FORMATS:
        raise ValidationFailed(
            f"'{log_format}' is not a log format (M365SYNC_LOG_FORMAT).",
            fix="Set M365SYNC_LOG_FORMAT to text or json.",
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text)
    product = logging.getLogger("m365sync")
    for old in list(product.handlers):
        product.removeHandler(old)
    product.addHandler(handler)
    product.setLevel(number)
    product.propagate = False
