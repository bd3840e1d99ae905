"""A minimal Lightning Experience record page: ``/lightning/r/{Object}/{Id}/view``.

Salesforce's own page is a single-page app behind a browser session; sfsim shows a plain
HTML page of the record's fields and its related records (``EmailMessageRelation``,
``EventRelation``, ``Task``), with no sign-in, so a person can follow a link to a record
(the demo, browser tests). ``docs/sfsim.md`` lists this among the differences.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from sfsim.data.values import format_value
from sfsim.http import sf_state

__all__ = ["routes"]

# Child objects shown under a record, and the field that points at the parent.
RELATED = {
    "EmailMessageRelation": "EmailMessageId",
    "EventRelation": "EventId",
    "Task": "WhatId",
}
TITLE_FIELDS = ("Name", "Subject", "Username", "Id")


def _title(record: dict[str, Any]) -> str:
    return next(str(record[f]) for f in TITLE_FIELDS if record.get(f))


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} | Salesforce</title></head><body>{body}</body></html>",
        status_code=status,
    )


def _fields(record: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th scope=row>{escape(name)}</th><td data-field='{escape(name)}'>"
        f"{escape(str(format_value(value)))}</td></tr>"
        for name, value in record.items()
        if not name.startswith("_") and value not in (None, "", False)
    )
    return f"<table>{rows}</table>"


async def record_view(request: Request) -> Response:
    """A record's page in Lightning Experience (fields and related records)."""
    state = sf_state(request)
    object_name = str(request.path_params["sobject"])
    found = state.records.find(str(request.path_params["record_id"]))
    if found is None or found[0].name.lower() != object_name.lower() or found[1]["IsDeleted"]:
        return _page(
            "Record not found",
            "<h1>This record isn't available.</h1><p>It may have been deleted, or the "
            "address is wrong.</p>",
            status=404,
        )
    obj, record = found
    parts = [
        f"<p>{escape(obj.label)}</p><h1 data-record-id='{escape(record['Id'])}'>"
        f"{escape(_title(record))}</h1>",
        _fields(record),
    ]
    for child, parent_field in RELATED.items():
        if state.records.schema.get(child) is None:
            continue
        rows = [r for r in state.records.live(child) if r.get(parent_field) == record["Id"]]
        if rows:
            parts.append(f"<h2>{escape(child)} ({len(rows)})</h2>")
            parts.extend(_fields(r) for r in rows)
    return _page(_title(record), "".join(parts))


routes: list[BaseRoute] = [
    Route("/lightning/r/{sobject}/{record_id}/view", record_view, methods=["GET"]),
]
