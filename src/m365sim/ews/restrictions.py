"""``FindItem`` restrictions: the search expressions EWS clients filter with.

Supported: ``And``, ``Or``, ``Not``, ``Exists``, ``Contains`` (substring, prefix or full
string; case-sensitive or not) and the six comparisons (``IsEqualTo``,
``IsNotEqualTo``, ``IsGreaterThan``, ``IsGreaterThanOrEqualTo``, ``IsLessThan``,
``IsLessThanOrEqualTo``) against a ``Constant``, on the FieldURIs in ``FIELDS`` and on
extended properties (``ExtendedFieldURI``, the ones stamped at ``CreateItem``: see
``ews.extended``).
Another property answers ``ErrorUnsupportedPathForQuery``, as Exchange does for a property
it can't search on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from m365sim.ews.exceptions import ResponseError
from m365sim.ews.extended import extended_key
from m365sim.ews.soap import child, children, local_name, t
from m365sim.graph.calendar.models import Event
from m365sim.graph.mail.models import Message

__all__ = ["matches"]


class ErrorUnsupportedPathForQuery(ResponseError):
    code = "ErrorUnsupportedPathForQuery"
    message = "The property can not be used with this type of restriction."


def _field(
    getter_message: Callable[[Message], Any] | None, getter_event: Callable[[Event], Any] | None
) -> Callable[[Any], Any]:
    def get(item: Any) -> Any:
        if isinstance(item, Message) and getter_message is not None:
            return getter_message(item)
        if isinstance(item, Event) and getter_event is not None:
            return getter_event(item)
        return None

    return get


FIELDS: dict[str, Callable[[Any], Any]] = {
    "item:Subject": _field(lambda m: m.subject, lambda e: e.subject),
    "item:DateTimeReceived": _field(lambda m: m.received, lambda e: e.created),
    "item:DateTimeSent": _field(lambda m: m.sent, lambda e: e.created),
    "item:DateTimeCreated": _field(lambda m: m.created, lambda e: e.created),
    "item:LastModifiedTime": _field(lambda m: m.modified, lambda e: e.modified),
    "item:Importance": _field(lambda m: m.importance.title(), lambda e: e.importance.title()),
    "item:Categories": _field(lambda m: list(m.categories), lambda e: list(e.categories)),
    "item:ItemClass": _field(lambda m: "IPM.Note", lambda e: "IPM.Appointment"),
    "item:HasAttachments": _field(lambda m: m.has_attachments, lambda e: False),
    "message:IsRead": _field(lambda m: m.is_read, None),
    "message:InternetMessageId": _field(lambda m: m.internet_message_id, None),
    "message:From": _field(lambda m: m.from_[1] if m.from_ else None, None),
    "message:Sender": _field(lambda m: m.sender[1] if m.sender else None, None),
    "message:ConversationTopic": _field(lambda m: m.subject, None),
    "calendar:Start": _field(None, lambda e: e.start),
    "calendar:End": _field(None, lambda e: e.end),
    "calendar:UID": _field(None, lambda e: e.ical_uid),
    "calendar:IsAllDayEvent": _field(None, lambda e: e.is_all_day),
    "calendar:IsCancelled": _field(None, lambda e: e.is_cancelled),
    "calendar:CalendarItemType": _field(
        None,
        lambda e: {
            "singleInstance": "Single",
            "seriesMaster": "RecurringMaster",
            "occurrence": "Occurrence",
            "exception": "Exception",
        }[e.type],
    ),
}

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "IsEqualTo": lambda a, b: a == b,
    "IsNotEqualTo": lambda a, b: a != b,
    "IsGreaterThan": lambda a, b: a > b,
    "IsGreaterThanOrEqualTo": lambda a, b: a >= b,
    "IsLessThan": lambda a, b: a < b,
    "IsLessThanOrEqualTo": lambda a, b: a <= b,
}


def _uri(node: Any) -> str:
    found = child(node, t("FieldURI"))
    if found is None:
        raise ErrorUnsupportedPathForQuery()
    uri = str(found.get("FieldURI") or "")
    if uri not in FIELDS:
        raise ErrorUnsupportedPathForQuery(
            f"The property '{uri}' can not be used with this type of restriction."
        )
    return uri


Extended = Callable[[Any, str], Any]
"""An item's extended property by ``extended_key`` (None: the item doesn't have it)."""


def _value(node: Any, item: Any, extended: Extended | None) -> Any:
    uri = child(node, t("ExtendedFieldURI"))
    if uri is not None:
        return extended(item, extended_key(uri)) if extended is not None else None
    return FIELDS[_uri(node)](item)


def _constant(node: Any) -> str:
    holder = child(node, t("FieldURIOrConstant"))
    constant = child(holder if holder is not None else node, t("Constant"))
    if constant is None:
        raise ErrorUnsupportedPathForQuery("Restrictions compare a property with a Constant.")
    return str(constant.get("Value") or "")


def _coerce(text: str, sample: Any) -> Any:
    if isinstance(sample, bool):
        return text.strip().lower() in ("true", "1")
    if isinstance(sample, datetime):
        raw = text.strip().replace("Z", "+00:00")
        value = datetime.fromisoformat(raw)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(sample, int):
        return int(text)
    return text


def matches(node: Any, item: Any, extended: Extended | None = None) -> bool:
    """Does ``item`` (a message, an event or a task) satisfy the search expression
    ``node``?"""
    name = local_name(node)
    if name == "And":
        return all(matches(c, item, extended) for c in children(node))
    if name == "Or":
        return any(matches(c, item, extended) for c in children(node))
    if name == "Not":
        return not any(matches(c, item, extended) for c in children(node))
    if name == "Exists":
        value = _value(node, item, extended)
        return value not in (None, "", [])
    if name == "Contains":
        value = _value(node, item, extended)
        needle = str(child(node, t("Constant")).get("Value") or "")
        values = value if isinstance(value, list) else [value]
        ignore_case = (node.get("ContainmentComparison") or "Exact") != "Exact"
        mode = node.get("ContainmentMode") or "FullString"
        for candidate in values:
            if candidate is None:
                continue
            hay = str(candidate)
            if ignore_case:
                hay, needle_cmp = hay.lower(), needle.lower()
            else:
                needle_cmp = needle
            if (
                (mode == "Substring" and needle_cmp in hay)
                or (mode == "Prefixed" and hay.startswith(needle_cmp))
                or (mode in ("FullString", "PrefixOnWords", "ExactPhrase") and hay == needle_cmp)
            ):
                return True
        return False
    if name in _COMPARISONS:
        value = _value(node, item, extended)
        if value is None:
            return name == "IsNotEqualTo"
        if isinstance(value, list):
            return any(_COMPARISONS[name](v, _constant(node)) for v in value)
        try:
            other = _coerce(_constant(node), value)
            return _COMPARISONS[name](value, other)
        except (TypeError, ValueError) as exc:
            raise ErrorUnsupportedPathForQuery(
                f"The constant of {name} doesn't fit the property's type."
            ) from exc
    raise ErrorUnsupportedPathForQuery(f"The {name} restriction is not supported.")
