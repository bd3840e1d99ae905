"""Injected faults on EWS requests, in Exchange's shapes.

``m365sim.faults.FaultMiddleware`` hands EWS requests (``/EWS/...``) to ``apply``. Every
EWS operation is a POST to the same path, so a rule may name an ``operation``
(``SyncFolderItems``, ``GetItem``...), read here from the SOAP body; ``mailbox`` rules match
the ``X-AnchorMailbox`` header EWS clients send. Only requests that carry (or ride on)
credentials are eligible, so an NTLM handshake's first legs never use up a rule.

How each kind looks on EWS:

- ``429`` — throttling: HTTP 500 with a SOAP fault ``ErrorServerBusy`` whose ``MessageXml``
  carries ``BackOffMilliseconds`` (the rule's ``backOffMs``, else ``retryAfter`` seconds,
  else 1000), as Exchange throttles EWS;
- ``500`` — HTTP 500 with a SOAP fault ``ErrorInternalServerError``;
- ``503`` / ``504`` — the bare HTTP status IIS or a load balancer answers with;
- ``expiredCursor`` — HTTP 200 whose response message is ``ErrorInvalidSyncStateData``;
- ``delay``, ``trickle``, ``drop``, ``garbled`` — as for Graph.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from m365sim.ews.auth import looks_authenticated
from m365sim.ews.exceptions import (
    ErrorInternalServerError,
    ErrorInvalidSyncStateData,
    ErrorServerBusy,
)
from m365sim.ews.models import organizations
from m365sim.ews.soap import envelope, fault, to_bytes
from m365sim.state import SimState

if TYPE_CHECKING:
    from m365sim.faults import FaultBook, FaultMiddleware, FaultRule, RandomFaults

__all__ = ["apply", "is_ews_path"]

_OPERATION = re.compile(rb"<(?:[\w.-]+:)?Body\b[^>]*>\s*<(?:[\w.-]+:)?([A-Za-z]+)", re.DOTALL)
XML = "text/xml; charset=utf-8"


def is_ews_path(path: str) -> bool:
    return path.lower().startswith("/ews/")


def operation_of(body: bytes) -> str | None:
    match = _OPERATION.search(body)
    if match is None:
        return None
    name = match.group(1).decode("ascii")
    return "GetUserAvailability" if name == "GetUserAvailabilityRequest" else name


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def apply(
    middleware: FaultMiddleware, book: FaultBook, scope: Scope, receive: Receive, send: Send
) -> None:
    """Inject a matching fault into an EWS request, or pass it on untouched."""
    state: SimState = middleware.state
    body = await _read(receive)
    replay = _replay(body)
    if not looks_authenticated(state, scope, _header(scope, b"authorization")):
        await middleware.app(scope, replay, send)
        return
    operation = operation_of(body)
    anchor = _header(scope, b"x-anchormailbox")
    found = state.find_user_anywhere(anchor) if anchor else None
    picked = book.pick(scope["method"], scope["path"], found[1].id if found else None, operation)
    if picked is None:
        await middleware.app(scope, replay, send)
        return
    kind, rule = picked
    book.record(rule, kind, scope["method"], scope["path"], state.now())
    if kind == "delay":
        await middleware._delayed(scope, replay, send, rule.delay_ms)
    elif kind == "trickle":
        await middleware._trickled(scope, replay, send, rule.delay_ms, hang_up=receive)
    elif kind == "drop":
        await middleware._dropped(scope, replay, send)
    elif kind == "garbled":
        await middleware._garbled(scope, replay, send)
    else:
        await _error_response(state, kind, rule, operation)(scope, replay, send)


def _back_off_ms(rule: FaultRule | RandomFaults) -> int:
    explicit = getattr(rule, "back_off_ms", None)
    if explicit is not None:
        return int(explicit)
    if rule.retry_after is not None:
        return int(rule.retry_after) * 1000
    return 1000


def _server_version(state: SimState) -> dict[str, str] | None:
    for org in organizations(state).values():
        if org.serves_ews:
            return org.server_version()
    return None


def _error_response(
    state: SimState, kind: str, rule: FaultRule | RandomFaults, operation: str | None
) -> Response:
    if kind == "429":
        busy = ErrorServerBusy(back_off_ms=_back_off_ms(rule))
        document = fault(busy.code, busy.detail, detail_values=busy.detail_values())
        return Response(to_bytes(document), status_code=500, media_type=XML)
    if kind in ("503", "504"):
        return Response(b"", status_code=int(kind))
    if kind == "expiredCursor" and operation:
        from m365sim.ews.operations import error_response

        body = error_response(operation, ErrorInvalidSyncStateData())
        document = envelope([body], server_version=_server_version(state))
        return Response(to_bytes(document), media_type=XML)
    internal = ErrorInternalServerError()
    return Response(
        to_bytes(fault(internal.code, internal.detail)), status_code=500, media_type=XML
    )
