"""Date-times as m365sim reads and writes them, in one place for every backend.

Reading: Graph sends ISO 8601 (``2024-05-01T09:30:00Z``, seven fractional digits, or an
offset); a value that names no offset is UTC unless the caller has a zone for it (a
calendar ``dateTimeTimeZone``). Seeds and control bodies may also give a moment relative to
the simulator's clock: ``"+2d"``, ``"-3h"``, ``"+30m"``, or ``{days: 30}`` in YAML.

Writing: Graph renders messages to the second (``2024-05-01T09:30:00Z``) and events, tasks
and subscriptions with seven fractional digits (``2024-05-01T09:30:00.0000000Z``), both UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "assume_utc",
    "graph_timestamp",
    "parse_datetime",
    "parse_iso",
    "parse_when",
    "relative_offset",
    "timestamp_to_second",
    "utc_date_time_tz",
]

_RELATIVE = re.compile(r"^([+-]\d+(?:\.\d+)?)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date-time as Graph writes it (``Z`` or an offset, any number of fractional
    digits); naive when it names no offset. ``ValueError`` when it is not one."""
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def assume_utc(value: datetime) -> datetime:
    """``value``, read as UTC when it names no offset."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time; one that names no offset is UTC."""
    return assume_utc(parse_iso(text))


def relative_offset(text: str) -> timedelta | None:
    """``"+2d"``, ``"-3h"``, ``"+30m"`` → the offset from now; None for anything else."""
    match = _RELATIVE.match(text.strip())
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_when(value: Any, now: datetime) -> datetime:
    """A moment in a seed or control body: a ``datetime`` (YAML reads unquoted ones), an
    offset (``{days: 30}``, ``"+30d"``, ``"-2h"``, ``"+30m"``) from ``now``, or ISO 8601."""
    if isinstance(value, datetime):
        return assume_utc(value)
    if isinstance(value, dict):
        return now + timedelta(**{k: float(v) for k, v in value.items()})
    text = str(value)
    offset = relative_offset(text)
    return now + offset if offset is not None else parse_datetime(text)


def graph_timestamp(value: datetime) -> str:
    """``2024-03-10T17:00:00.1234560Z`` (seven fractional digits, UTC), like Exchange."""
    v = value.astimezone(UTC)
    return f"{v:%Y-%m-%dT%H:%M:%S}.{v.microsecond:06d}0Z"


def timestamp_to_second(value: datetime) -> str:
    """Graph's ``2024-05-01T09:30:00Z`` (messages, the directory): UTC, to the second."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat()[:19] + "Z"


def utc_date_time_tz(moment: datetime) -> dict[str, str]:
    """A ``dateTimeTimeZone`` for ``moment`` in UTC, to the second: how a seed's or control
    body's date-time reaches a backend that takes Graph bodies."""
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
