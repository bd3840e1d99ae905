"""Reading JSON values into typed field values, and writing them back as Salesforce does.

Dates are ``YYYY-MM-DD``; date-times are read in ISO 8601 with any offset and written
in UTC as ``2024-05-01T09:30:00.000+0000``, Salesforce's own format.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sfsim.data.exceptions import InvalidEmailAddress, JsonParserError, StringTooLong
from sfsim.schema.fields import FieldDef

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist"})


def format_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def format_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_datetime(text: str) -> datetime | None:
    match = _DATETIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset_minutes = sign * (int(digits[:2]) * 60 + int(digits[2:]))
        from datetime import timedelta

        parsed -= timedelta(minutes=offset_minutes)
    return parsed


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None
    except ValueError:
        return None


def _type_error(definition: FieldDef, value: Any) -> JsonParserError:
    kind = {
        "boolean": "boolean",
        "date": "date",
        "datetime": "datetime",
        "double": "double",
        "currency": "double",
        "int": "int",
    }.get(definition.type, "string")
    token = "VALUE_STRING" if isinstance(value, str) else "VALUE_" + type(value).__name__.upper()
    return JsonParserError(
        f"Cannot deserialize instance of {kind} from {token} value {value} or request may be "
        "missing a required field"
    )


def coerce(definition: FieldDef, value: Any) -> Any:
    """The stored value for ``value`` written to ``definition`` (None clears the field)."""
    if value is None:
        return False if definition.type == "boolean" else None
    kind = definition.type
    if kind in _TEXT_TYPES or kind in ("id", "reference"):
        if isinstance(value, (bool, dict | list)):
            raise _type_error(definition, value)
        text = str(value)
        if text == "" and kind not in ("id", "reference"):
            return None
        if definition.length and len(text) > definition.length:
            shown = text if len(text) <= 40 else text[:40] + "(truncated)"
            raise StringTooLong(
                f"{definition.label}: data value too large: {shown} "
                f"(max length={definition.length})",
                fields=[definition.name],
            )
        if kind == "email" and not _EMAIL.match(text):
            raise InvalidEmailAddress(
                f"{definition.label}: invalid email address: {text}", fields=[definition.name]
            )
        return text or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _type_error(definition, value)
    if kind == "date":
        parsed_date = parse_date(value) if isinstance(value, str) else None
        if parsed_date is None:
            raise _type_error(definition, value)
        return parsed_date
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _type_error(definition, value)
        return parsed
    if kind in ("double", "currency"):
        if isinstance(value, bool):
            raise _type_error(definition, value)
        if isinstance(value, int | float):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise _type_error(definition, value) from None
    if kind == "int":
        if isinstance(value, bool):
            raise _type_error(definition, value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise _type_error(definition, value)
    raise _type_error(definition, value)  # pragma: no cover - every type is handled above
