"""REST routes. Salesforce answers with and without a trailing slash (simple-salesforce
sends both), so each path is served both ways. Specific paths come before ``{record_id}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from sfsim.rest import composite, responses

V = "/services/data/v{version}"
SOBJECT = f"{V}/sobjects/{{sobject}}"


def _both(path: str, endpoint: Callable[[Request], Any], methods: Sequence[str]) -> list[BaseRoute]:
    return [
        Route(path, endpoint, methods=list(methods)),
        Route(f"{path}/", endpoint, methods=list(methods)),
    ]


routes: list[BaseRoute] = [
    *_both("/services/data", responses.versions, ["GET"]),
    *_both(V, responses.resources, ["GET"]),
    *_both(f"{V}/limits", responses.limits, ["GET"]),
    *_both(f"{V}/query", responses.query, ["GET"]),
    *_both(f"{V}/query/{{locator}}", responses.query_more, ["GET"]),
    *_both(f"{V}/queryAll", responses.query_all, ["GET"]),
    *_both(f"{V}/queryAll/{{locator}}", responses.query_more, ["GET"]),
    *_both(f"{V}/composite", composite.composite, ["POST"]),
    *_both(f"{V}/composite/sobjects", composite.collection, ["POST", "PATCH", "DELETE"]),
    *_both(f"{V}/composite/sobjects/{{sobject}}", composite.collection_retrieve, ["GET"]),
    *_both(f"{V}/composite/sobjects/{{sobject}}/{{field}}", composite.collection_upsert, ["PATCH"]),
    *_both(f"{V}/sobjects", responses.describe_global, ["GET"]),
    *_both(SOBJECT, responses.sobject_root, ["GET", "POST"]),
    *_both(f"{SOBJECT}/describe", responses.describe, ["GET"]),
    *_both(f"{SOBJECT}/updated", responses.updated, ["GET"]),
    *_both(f"{SOBJECT}/deleted", responses.deleted, ["GET"]),
    *_both(f"{SOBJECT}/{{record_id}}", responses.row, ["GET", "PATCH", "DELETE"]),
    *_both(f"{SOBJECT}/{{field}}/{{value}}", responses.external_id_row, ["GET", "PATCH", "DELETE"]),
]
