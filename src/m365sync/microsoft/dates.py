"""Dates as Microsoft Graph writes them, read and written in this one place.

Graph gives an instant either as an ISO 8601 string with an offset (``receivedDateTime``:
``2026-01-12T09:30:00Z``) or as a ``dateTimeTimeZone`` (``{"dateTime":
"2026-01-12T09:30:00.0000000", "timeZone": "Pacific Standard Time"}``), whose zone may be a
Windows or an IANA name. Reading either gives an aware UTC ``datetime``; what we write is a
``dateTimeTimeZone`` in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dateutil.parser import isoparse

from m365sync.microsoft.timezones import zone_from_microsoft

__all__ = ["graph_date_time_zone", "read_graph_datetime"]


def read_graph_datetime(value: Any) -> datetime | None:
    """The instant a Graph date field holds, in UTC; None when the field is absent or empty.

    A time without an offset is in the ``dateTimeTimeZone``'s zone (UTC when none is
    named). Raises ``ValueError`` (``UnknownTimeZone`` for a zone we can't map) when the
    field holds something that is not a date."""
    zone_name: Any = None
    if isinstance(value, dict):
        zone_name, value = value.get("timeZone"), value.get("dateTime")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)  # Graph's own form: the fast path
    except ValueError:
        parsed = isoparse(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone_from_microsoft(str(zone_name)) if zone_name else UTC)
    return parsed.astimezone(UTC)


def graph_date_time_zone(value: datetime) -> dict[str, str]:
    """``value`` as a Graph ``dateTimeTimeZone`` in UTC (seven fractional digits, as Graph
    writes them)."""
    return {
        "dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        "timeZone": "UTC",
    }
