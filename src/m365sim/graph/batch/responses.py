"""``POST /v1.0/$batch``: JSON batching, executed by dispatching into the same ASGI app.

Each sub-request goes through the whole middleware stack again (request log, throttling,
faults, authentication), exactly as if the client had sent it alone, so a batch of 20
counts as 20 requests against the mailbox limits, as it does in Graph.

What is promised, following Graph's JSON batching documentation:

- at most 20 requests (more → 400); unique ``id``s; ``dependsOn`` must name earlier ids;
- requests run concurrently unless ordered by ``dependsOn``; a request whose dependency
  failed (status >= 400) answers 424 without running;
- at most 4 sub-requests in flight per mailbox (Outlook's concurrency rule for batches);
- a request that has a ``body`` must carry a ``Content-Type`` header, and a write
  (``POST``, ``PATCH``, ``PUT``) must have both, or the whole batch is refused with 400
  "Write request id : {id} does not contain Content-Type header or body." (Graph's text,
  reported in msgraph-sdk-dotnet#2628; the docs: "When a body is included with the request,
  the headers object must contain a value for Content-Type");
- each response carries ``id``, ``status``, ``headers`` (with Graph's header-name casing:
  ``Content-Type``, ``Retry-After``, ``Location``...) and ``body`` (JSON when the
  sub-response was JSON); responses come back **in an order that is not request order**
  (shuffled by a ``random.Random(SimConfig.batch_order_seed)`` per simulator), because
  Graph documents that "individual responses might appear in a different order than the
  requests": a client must pair them by ``id``. ``batch_shuffle`` false keeps request
  order (a documented kindness for debugging, never a default).

Differences from Graph: ``atomicityGroup`` (beta) is not supported; a nested ``$batch``
is refused; relative URLs may start with or without ``/`` and may include ``/v1.0``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from m365sim.exceptions import GraphError
from m365sim.graph.routing import GRAPH_PREFIX
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState

__all__ = ["BatchTooLarge", "InvalidBatchRequest", "batch", "graph_header_name"]

MAX_REQUESTS = 20
MAILBOX_CONCURRENCY = 4
_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
_WRITES = frozenset({"POST", "PATCH", "PUT"})
_HEADER_NAMES = {
    "etag": "ETag",
    "odata-version": "OData-Version",
    "www-authenticate": "WWW-Authenticate",
}


def graph_header_name(name: str) -> str:
    """A header name as Graph spells it in batch sub-responses (``Retry-After``, ``ETag``)."""
    lowered = name.lower()
    return _HEADER_NAMES.get(lowered) or "-".join(p.capitalize() for p in lowered.split("-"))


def _response_order(state: SimState, count: int) -> list[int]:
    """The order responses are listed in: shuffled (seeded per simulator) unless switched off."""
    order = list(range(count))
    if state.config.batch_shuffle:
        seed = state.config.batch_order_seed
        draws: dict[int, random.Random] = state.extension("batch_order", dict)
        rng = draws.setdefault(seed, random.Random(seed))  # noqa: S311 - reproducible order
        rng.shuffle(order)
    return order


class BatchTooLarge(GraphError):
    status = 400
    code = "BadRequest"
    message = f"Too many requests in the batch; the limit is {MAX_REQUESTS}."


class InvalidBatchRequest(GraphError):
    status = 400
    code = "BadRequest"
    message = "Invalid batch payload format."


def _mailbox_of(path: str) -> str:
    """The mailbox a sub-request addresses (``me`` or the ``users/{id}`` segment)."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "v1.0":
        parts = parts[1:]
    if len(parts) >= 2 and parts[0].lower() == "users":
        return parts[1].lower()
    return parts[0].lower() if parts else ""


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise InvalidBatchRequest("Invalid batch payload format: 'requests' must be an array.")
    requests: list[dict[str, Any]] = payload["requests"]
    if len(requests) > MAX_REQUESTS:
        raise BatchTooLarge()
    if not requests:
        raise InvalidBatchRequest("Invalid batch payload format: no requests.")
    seen: set[str] = set()
    for entry in requests:
        if not isinstance(entry, dict):
            raise InvalidBatchRequest("Each batch request must be an object.")
        rid, method, url = entry.get("id"), entry.get("method"), entry.get("url")
        if not isinstance(rid, str) or not rid:
            raise InvalidBatchRequest("Each batch request needs a string 'id'.")
        if rid in seen:
            raise InvalidBatchRequest(f"Request id '{rid}' is used more than once in the batch.")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise InvalidBatchRequest(f"Request '{rid}' has an invalid method.")
        if not isinstance(url, str) or not url or "://" in url:
            raise InvalidBatchRequest(f"Request '{rid}' must have a relative url.")
        if "$batch" in url:
            raise InvalidBatchRequest("A batch cannot contain another batch.")
        depends = entry.get("dependsOn", [])
        if not isinstance(depends, list) or any(d not in seen for d in depends):
            raise InvalidBatchRequest(
                f"Request '{rid}' depends on a request that is not before it in the batch."
            )
        headers = entry.get("headers", {})
        if headers is not None and not isinstance(headers, dict):
            raise InvalidBatchRequest(f"Request '{rid}' has invalid headers.")
        has_type = any(str(k).lower() == "content-type" for k in (headers or {}))
        has_body = entry.get("body") is not None
        if (has_body and not has_type) or (method.upper() in _WRITES and not has_body):
            raise InvalidBatchRequest(
                f"Write request id : {rid} does not contain Content-Type header or body."
            )
        seen.add(rid)
    return requests


async def _dispatch(parent: Request, entry: Mapping[str, Any]) -> dict[str, Any]:
    url: str = entry["url"]
    split = urlsplit(url if url.startswith("/") else "/" + url)
    path = split.path if split.path.startswith(GRAPH_PREFIX + "/") else GRAPH_PREFIX + split.path
    headers: dict[str, str] = {k.lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
    body = entry.get("body")
    raw = b""
    if body is not None:
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
        headers.setdefault("content-type", "application/json")
    for name in ("authorization", "client-request-id"):
        if name not in headers and name in parent.headers:
            headers[name] = parent.headers[name]
    headers["content-length"] = str(len(raw))
    scope: Scope = {
        "type": "http",
        "asgi": parent.scope.get("asgi", {"version": "3.0"}),
        "http_version": parent.scope.get("http_version", "1.1"),
        "method": str(entry["method"]).upper(),
        "scheme": parent.scope.get("scheme", "https"),
        "server": parent.scope.get("server"),
        "client": parent.scope.get("client"),
        "root_path": "",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": split.query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "state": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    status = 500
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1")
                if name.lower() not in ("content-length", "request-id", "client-request-id"):
                    out_headers[graph_header_name(name)] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await parent.app(scope, receive, send)
    except Exception:  # a dropped connection or crash in a sub-request is a 500 in the batch
        status = 500
        chunks = [
            orjson.dumps({"error": {"code": "InternalServerError", "message": "Internal error."}})
        ]
    payload = b"".join(chunks)
    result: dict[str, Any] = {"id": entry["id"], "status": status, "headers": out_headers}
    if payload:
        if "json" in out_headers.get("Content-Type", ""):
            try:
                result["body"] = orjson.loads(payload)
            except orjson.JSONDecodeError:
                result["body"] = payload.decode("utf-8", "replace")
        else:
            result["body"] = payload.decode("utf-8", "replace")
    return result


async def batch(request: Request) -> Response:
    """JSON batching: up to 20 requests, dependsOn, 4 in flight per mailbox."""
    entries = _validate(await json_body(request))
    gates: dict[str, asyncio.Semaphore] = {}
    done: dict[str, asyncio.Future[dict[str, Any]]] = {}
    loop = asyncio.get_running_loop()
    for entry in entries:
        done[entry["id"]] = loop.create_future()

    async def run(entry: dict[str, Any]) -> None:
        future = done[entry["id"]]
        try:
            for dependency in entry.get("dependsOn", []):
                result = await asyncio.shield(done[dependency])
                if int(result["status"]) >= 400:
                    future.set_result(
                        {
                            "id": entry["id"],
                            "status": 424,
                            "headers": {"Content-Type": "application/json"},
                            "body": {
                                "error": {
                                    "code": "FailedDependency",
                                    "message": "The request could not be completed because "
                                    f"request '{dependency}' it depends on failed.",
                                }
                            },
                        }
                    )
                    return
            gate = gates.setdefault(
                _mailbox_of(entry["url"]), asyncio.Semaphore(MAILBOX_CONCURRENCY)
            )
            async with gate:
                future.set_result(await _dispatch(request, entry))
        except Exception as exc:  # never leave dependants waiting
            if not future.done():
                future.set_exception(exc)
            raise

    await asyncio.gather(*(run(entry) for entry in entries))
    order = _response_order(sim_state(request), len(entries))
    return JSONResponse({"responses": [done[entries[i]["id"]].result() for i in order]})
