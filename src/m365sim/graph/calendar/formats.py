"""Graph's calendar wire formats: ``dateTimeTimeZone``, ids, change keys (timestamps are
``m365sim.dates``).

Kept apart from the models so the To Do backend and the availability code share them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import struct
import uuid
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from m365sim.dates import parse_datetime, parse_iso
from m365sim.graph.calendar.exceptions import CalendarInvalidRequest, TimeZoneNotSupported
from m365sim.graph.timezones import UnknownTimeZone, to_zone, windows_name

__all__ = [
    "body_preview",
    "change_key",
    "date_time_tz",
    "new_item_id",
    "occurrence_id",
    "parse_date_time_tz",
    "parse_occurrence_id",
    "parse_window_bound",
    "zone",
]

_ID_PREFIX = "AAMkAD"
_OCCURRENCE_PREFIX = "AAMkAO"
_ID_SUFFIX = "AAA="
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def zone(name: str) -> tzinfo:
    """``tzinfo`` for a Windows or IANA name; Graph's 400 for an unknown one."""
    try:
        return to_zone(name)
    except UnknownTimeZone as exc:
        raise TimeZoneNotSupported.named(name) from exc


def stored_zone_name(name: str) -> str:
    """The Windows name Exchange keeps in ``originalStartTimeZone`` for ``name``."""
    try:
        return windows_name(name)
    except UnknownTimeZone as exc:
        raise TimeZoneNotSupported.named(name) from exc


def date_time_tz(value: datetime, zone_name: str) -> dict[str, str]:
    """A ``dateTimeTimeZone`` for ``value`` rendered in ``zone_name`` (echoed as given)."""
    local = value.astimezone(zone(zone_name))
    return {
        "dateTime": f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}0",
        "timeZone": zone_name,
    }


def floating_date_time_tz(day: date, zone_name: str) -> dict[str, str]:
    """All-day events are floating: midnight of their date in whatever zone is asked for."""
    return {"dateTime": f"{day.isoformat()}T00:00:00.0000000", "timeZone": zone_name}


def parse_date_time_tz(raw: Any, field: str) -> tuple[datetime, str]:
    """A request's ``dateTimeTimeZone`` → (UTC instant, the zone name as sent).

    A ``dateTime`` with an explicit offset wins over ``timeZone`` (Graph accepts both).
    """
    if not isinstance(raw, dict) or not raw.get("dateTime"):
        raise CalendarInvalidRequest(f"The '{field}' property needs a dateTime and a timeZone.")
    zone_name = str(raw.get("timeZone") or "UTC")
    tz = zone(zone_name)
    try:
        parsed = parse_iso(str(raw["dateTime"]))
    except ValueError as exc:
        raise CalendarInvalidRequest(
            f"Cannot convert the literal '{raw['dateTime']}' to the expected type 'Edm.DateTime'."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC), zone_name


def parse_window_bound(text: str | None) -> datetime | None:
    """``startDateTime``/``endDateTime`` of calendarView: ISO 8601; no offset means UTC."""
    if text is None or not text.strip():
        return None
    return parse_datetime(text.replace(" ", "+"))


def _filler(key: bytes) -> bytes:
    """The bytes before an item's key: a mailbox-GUID-like text and an entry-id header, so
    ids are as long as Exchange's (about 150 characters) and look like them."""
    guid = str(uuid.UUID(bytes=hashlib.sha256(key).digest()[:16])).encode()
    digest = hashlib.sha256(b"m365sim-calendar:" + key).digest()
    return b"\x00" + guid + b"\x00\x46\x00\x00\x00\x00\x00" + digest + digest[:14] + b"\x07\x00"


def _encode(prefix: str, raw: bytes) -> str:
    return f"{prefix}{base64.urlsafe_b64encode(raw).decode().rstrip('=')}{_ID_SUFFIX}"


def new_item_id() -> str:
    """A new event or calendar id, about 150 characters like Exchange's."""
    return _master_id(uuid.uuid4().bytes)


def _master_id(key: bytes) -> str:
    return _encode(_ID_PREFIX, _filler(key) + key)


def _id_bytes(item_id: str, prefix: str) -> bytes | None:
    if not item_id.startswith(prefix) or not item_id.endswith(_ID_SUFFIX):
        return None
    body = item_id[len(prefix) : -len(_ID_SUFFIX)]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        return None


def occurrence_id(master_id: str, original_start: datetime) -> str:
    """The id of one occurrence: the master's id and the occurrence's original start."""
    master = _id_bytes(master_id, _ID_PREFIX)
    key = master[-16:] if master else hashlib.sha256(master_id.encode()).digest()[:16]
    stamp = struct.pack(">q", int(original_start.timestamp()))
    return _encode(_OCCURRENCE_PREFIX, _filler(key) + key + stamp)


def parse_occurrence_id(item_id: str) -> tuple[str, datetime] | None:
    """(master id, original start) of an occurrence id; None for any other id."""
    data = _id_bytes(item_id, _OCCURRENCE_PREFIX)
    if data is None or len(data) < 24:
        return None
    key, stamp = data[-24:-8], data[-8:]
    if data[:-24] != _filler(key):
        return None
    (seconds,) = struct.unpack(">q", stamp)
    return _master_id(key), datetime.fromtimestamp(seconds, UTC)


def change_key(item_id: str, version: int) -> str:
    digest = hashlib.sha256(f"{item_id}:{version}".encode()).digest()[:16]
    return base64.b64encode(digest).decode()


def body_preview(content: str, content_type: str) -> str:
    text = content
    if content_type.lower() == "html":
        text = html.unescape(_TAGS.sub(" ", content))
    return _SPACE.sub(" ", text).strip()[:255]


def midnight(value: datetime, tz: tzinfo) -> bool:
    return value.astimezone(tz).time() == time(0, 0)
