"""Run a parsed query over the org's records: resolve fields against the schema (with
Salesforce's ``INVALID_FIELD`` / ``INVALID_TYPE`` errors), check each filter value's
type, filter, order, and render rows as the REST API does (relationship fields nest
under the relationship name with their own ``attributes``).

Paging lives in ``sfsim.rest``: a query's rows are a snapshot taken when it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sfsim.data import exceptions as err
from sfsim.data.models import Record, RecordStore
from sfsim.data.values import format_value
from sfsim.ids import normalize
from sfsim.schema.fields import FieldDef, ObjectDef
from sfsim.soql.parser import BoolOp, Comparison, DateLiteral, FieldRef, Not, Query, locate

_NUMERIC = frozenset({"double", "currency", "int"})
_TEXT = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "id", "reference"})
_POLYMORPHIC_FIELDS = ("Id", "Name", "Type")


@dataclass
class Resolved:
    """A field path resolved to the relationships it walks and the field it ends on."""

    ref: FieldRef
    hops: list[tuple[FieldDef, str]]  # (reference field, relationship name as spelled)
    field: FieldDef | None  # None for polymorphic Name/Type on a Who/What/Owner hop
    name: str  # the final field's name, spelled as Salesforce spells it


@dataclass
class QueryResult:
    total_size: int
    rows: list[dict[str, Any]]


def _no_such_column(query: Query, ref: FieldRef, name: str, entity: str) -> err.InvalidField:
    return err.InvalidField(
        locate(query.text, ref.token.pos)
        + f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def resolve(store: RecordStore, query: Query, obj: ObjectDef, ref: FieldRef) -> Resolved:
    parts = ref.path.split(".")
    current: ObjectDef | None = obj
    hops: list[tuple[FieldDef, str]] = []
    for position, part in enumerate(parts[:-1]):
        relationship = current.relationship(part) if current else None
        if relationship is None:
            if position == 0 and current is not None and current.name.lower() == part.lower():
                continue  # "Contact.Name" in a query on Contact names the object itself
            raise err.InvalidField(
                locate(query.text, ref.token.pos)
                + f"Didn't understand relationship '{part}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names."
            )
        hops.append((relationship, relationship.relationship_name or part))
        targets = relationship.reference_to
        current = store.schema.get(targets[0]) if len(targets) == 1 else None
    last = parts[-1]
    if current is None:  # polymorphic relationship (Who, What, Owner of an activity)
        known = next((n for n in _POLYMORPHIC_FIELDS if n.lower() == last.lower()), None)
        if known is None:
            raise _no_such_column(query, ref, last, "Name")
        return Resolved(ref, hops, None, known)
    definition = current.field(last)
    if definition is None:
        raise _no_such_column(query, ref, last, current.name)
    return Resolved(ref, hops, definition, definition.name)


def _follow(
    store: RecordStore, record: Record, resolved: Resolved
) -> tuple[Record | None, ObjectDef | None]:
    """The record a path's relationships lead to (None when a reference is empty)."""
    current: Record | None = record
    current_obj: ObjectDef | None = None
    for reference, _ in resolved.hops:
        target_id = current.get(reference.name) if current else None
        found = store.find(target_id) if target_id else None
        if found is None:
            return None, None
        current_obj, current = found
    return current, current_obj


def _value(store: RecordStore, record: Record, resolved: Resolved) -> Any:
    target, target_obj = _follow(store, record, resolved) if resolved.hops else (record, None)
    if target is None:
        return None
    if resolved.field is None:
        if resolved.name == "Type":
            return target_obj.name if target_obj else None
        return target.get(resolved.name)
    return target.get(resolved.field.name)


# -- filter values -------------------------------------------------------------------------


def _day_range(literal: DateLiteral, today: date) -> tuple[date, date]:
    """The half-open range of days ``[start, end)`` a date literal means."""
    if literal.name == "TODAY":
        return today, today + timedelta(days=1)
    if literal.name == "YESTERDAY":
        return today - timedelta(days=1), today
    if literal.name == "TOMORROW":
        return today + timedelta(days=1), today + timedelta(days=2)
    if literal.name == "LAST_N_DAYS":
        return today - timedelta(days=literal.days), today + timedelta(days=1)
    return today, today + timedelta(days=literal.days + 1)  # NEXT_N_DAYS


def _type_name(definition: FieldDef) -> str:
    return {"datetime": "dateTime", "currency": "double"}.get(definition.type, definition.type)


def _check_value(
    query: Query, comparison: Comparison, definition: FieldDef | None, value: Any, quoted: bool
) -> Any:
    """The filter value as the field's type, or Salesforce's error for the mismatch."""
    if definition is None or value is None:
        if value is None and comparison.op not in ("=", "!=", "IN", "NOT IN"):
            raise err.MalformedQuery(
                locate(query.text, comparison.value_token.pos) + "unexpected token: 'null'"
            )
        return value
    kind = definition.type
    where = locate(query.text, comparison.value_token.pos)
    if kind in ("date", "datetime", "boolean") or kind in _NUMERIC:
        wrong = quoted or (
            (kind == "boolean" and not isinstance(value, bool))
            or (
                kind in _NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float))
            )
            or (
                kind == "date"
                and not (
                    isinstance(value, DateLiteral)
                    or (isinstance(value, date) and not isinstance(value, datetime))
                )
            )
            or (kind == "datetime" and not isinstance(value, datetime | DateLiteral))
        )
        if wrong:
            raise err.InvalidField(
                where + f"value of filter criterion for field '{definition.name}' must be of type "
                f"{_type_name(definition)} and should not be enclosed in quotes"
            )
        return value
    if not quoted:
        raise err.MalformedQuery(where + f"unexpected token: '{comparison.value_token.text}'")
    if kind in ("id", "reference"):
        full = normalize(value)
        if full is None:
            raise err.InvalidQueryFilterOperator(where + f"invalid ID field: {value}")
        return full
    return value


def _compare(op: str, actual: Any, expected: Any, definition: FieldDef | None, today: date) -> bool:
    if isinstance(expected, DateLiteral):
        if actual is None:
            return op == "!="
        start_day, end_day = _day_range(expected, today)
        if isinstance(actual, datetime):
            start: Any = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
            end: Any = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC)
        else:
            start, end = start_day, end_day
        within: dict[str, bool] = {
            "=": start <= actual < end,
            "!=": not (start <= actual < end),
            "<": actual < start,
            "<=": actual < end,
            ">": actual >= end,
            ">=": actual >= start,
        }
        return within[op]
    if op == "=":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    if op in ("IN", "NOT IN"):
        hit = any(_equal(actual, candidate) for candidate in expected)
        return hit if op == "IN" else not hit
    if op == "LIKE":
        if actual is None:
            return False
        # % is any run of characters and _ one character; everything else is literal.
        regex = "".join(
            ".*" if char == "%" else "." if char == "_" else re.escape(char)
            for char in str(expected)
        )
        return re.fullmatch(regex, str(actual), re.IGNORECASE | re.DOTALL) is not None
    if actual is None or expected is None:
        return False
    left, right = actual, expected
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    ordered: dict[str, bool] = {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }
    return ordered[op]


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    if isinstance(actual, datetime) and isinstance(expected, datetime):
        return actual == expected
    return bool(actual == expected)


class _Runner:
    def __init__(self, store: RecordStore, query: Query, obj: ObjectDef, now: datetime) -> None:
        self.store = store
        self.query = query
        self.obj = obj
        self.today = now.date()
        self.where = self._prepare(query.where) if query.where is not None else None

    def _prepare(self, node: Any) -> Any:
        if isinstance(node, BoolOp):
            return BoolOp(node.op, [self._prepare(p) for p in node.parts])
        if isinstance(node, Not):
            return Not(self._prepare(node.part))
        assert isinstance(node, Comparison)
        resolved = resolve(self.store, self.query, self.obj, node.field)
        definition = resolved.field
        if node.op == "LIKE" and definition is not None and definition.type not in _TEXT:
            raise err.InvalidField(
                locate(self.query.text, node.field.token.pos)
                + f"invalid operator on {_type_name(definition)} field: LIKE"
            )
        if isinstance(node.value, list):
            assert isinstance(node.quoted, list)
            value: Any = [
                _check_value(self.query, node, definition, v, q)
                for v, q in zip(node.value, node.quoted, strict=True)
            ]
        else:
            assert isinstance(node.quoted, bool)
            value = _check_value(self.query, node, definition, node.value, node.quoted)
        return (resolved, node.op, value)

    def matches(self, record: Record, node: Any) -> bool:
        if isinstance(node, BoolOp):
            results = (self.matches(record, p) for p in node.parts)
            return all(results) if node.op == "AND" else any(results)
        if isinstance(node, Not):
            return not self.matches(record, node.part)
        resolved, op, value = node
        actual = _value(self.store, record, resolved)
        return _compare(op, actual, value, resolved.field, self.today)


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return value.toordinal()
    return value


def run_query(
    store: RecordStore,
    text: str,
    query: Query,
    *,
    version: str,
    include_deleted: bool,
    now: datetime,
) -> QueryResult:
    obj = store.schema.get(query.object_name)
    if obj is None:
        raise err.InvalidType(
            locate(text, query.object_token.pos)
            + f"sObject type '{query.object_name}' is not supported. If you are attempting to use "
            "a custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names."
        )
    selected = [resolve(store, query, obj, ref) for ref in query.fields]
    seen: set[str] = set()
    for resolved in selected:
        key = ".".join([h[1].lower() for h in resolved.hops] + [resolved.name.lower()])
        if key in seen:
            raise err.MalformedQuery(f"duplicate field selected: {resolved.ref.path}")
        seen.add(key)
    runner = _Runner(store, query, obj, now)
    orders = [(resolve(store, query, obj, o.field), o) for o in query.order]
    records = [
        r
        for r in (store.all(obj.name) if include_deleted else store.live(obj.name))
        if runner.where is None or runner.matches(r, runner.where)
    ]
    for resolved, order in reversed(orders):
        nulls_last = order.nulls_last if order.nulls_last is not None else order.descending
        present = [r for r in records if _value(store, r, resolved) is not None]
        empty = [r for r in records if _value(store, r, resolved) is None]
        present.sort(
            key=lambda r, res=resolved: _sort_key(_value(store, r, res)),  # type: ignore[misc]
            reverse=order.descending,
        )
        records = present + empty if nulls_last else empty + present
    if query.offset:
        if query.offset > 2000:
            raise err.InvalidField("Maximum SOQL offset allowed is 2000", fields=[])
        records = records[query.offset :]
    if query.limit is not None:
        records = records[: query.limit]
    if query.count_only:
        return QueryResult(total_size=len(records), rows=[])
    return QueryResult(
        total_size=len(records), rows=[_row(store, obj, r, selected, version) for r in records]
    )


def _attributes(obj_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": obj_name, "url": f"/services/data/v{version}/sobjects/{obj_name}/{record_id}"}


def _row(
    store: RecordStore, obj: ObjectDef, record: Record, selected: list[Resolved], version: str
) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": _attributes(obj.name, record["Id"], version)}
    for resolved in selected:
        if not resolved.hops:
            assert resolved.field is not None
            row[resolved.field.name] = format_value(record.get(resolved.field.name))
            continue
        container: dict[str, Any] | None = row
        current: Record | None = record
        for reference, relationship in resolved.hops:
            assert container is not None
            target_id = current.get(reference.name) if current else None
            found = store.find(target_id) if target_id else None
            if found is None:
                container.setdefault(relationship, None)
                container = None
                break
            target_obj, current = found
            nested = container.get(relationship)
            if nested is None:
                nested = container[relationship] = {
                    "attributes": _attributes(target_obj.name, current["Id"], version)
                }
            container = nested
        if container is not None and current is not None:
            value = _value(store, record, resolved)
            container[resolved.name] = format_value(value)
    return row
