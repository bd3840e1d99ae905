"""The fault injector: make chosen requests fail the ways Microsoft's services fail.

Two kinds of rules, managed through ``/_sim/faults``:

- **Targeted**: the next ``count`` requests matching ``method`` (or ``*``), ``pathRegex``
  (``re.search`` on the path) and optionally ``mailbox`` (the user a ``/users/{id}`` or
  ``/me`` path addresses) fail with ``kind``.
- **Random**: every matching request fails with probability ``rate``, the kind drawn
  from ``kinds``, both from a ``random.Random(seed)`` so a soak test is reproducible.

Kinds: ``"429"`` (``ApplicationThrottled`` with ``Retry-After``), ``"500"``, ``"503"``,
``"504"`` (Graph-shaped error bodies), ``"drop"`` (the real response's headers and half
its body are sent, then the connection is closed), ``"garbled"`` (the real response's
status and headers with only the first half of its body, its ``Content-Length`` made to
match: a complete HTTP answer, often a 200, whose JSON does not decode, as a proxy or an
overloaded front end can deliver), ``"delay"`` (the real response, held
back ``delayMs`` before its first byte; the request keeps its throttling slot meanwhile,
which is how tests provoke the concurrency limit), ``"trickle"`` (the real response's
status and headers at once, then its body one byte every ``delayMs``, as a slow or
congested network delivers it: no single read waits long, yet the whole answer takes
``delayMs`` times its size; the request keeps its throttling slot until the last byte or
until the client hangs up), ``"expiredCursor"`` (410 ``SyncStateNotFound``, as an expired
delta token answers).

EWS requests (``/EWS/...``) are handed to ``m365sim.ews.faults``: every EWS operation is a
POST to one path, so a rule may also name an ``operation`` (read from the SOAP body), and
the kinds take Exchange's shapes there (``429`` is ``ErrorServerBusy`` with
``BackOffMilliseconds`` from ``backOffMs``, ``expiredCursor`` is
``ErrorInvalidSyncStateData``).

Faults never apply to ``/_sim/*``. Injected faults keep their status in the request log
and are also listed, with the rule that caused them, in ``GET /_sim/faults``.

Differences from the real service: error bodies for 500/504 are representative, not
copied from a specific Microsoft response; ``drop`` over an in-process
``httpx.ASGITransport`` just returns the truncated body (only a real socket can be cut).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import unquote

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sim.directory.models import new_id
from m365sim.ews import faults as ews_faults
from m365sim.exceptions import GraphError
from m365sim.graph.exceptions import (
    ApplicationThrottled,
    BadRequest,
    ResourceNotFound,
    SyncStateNotFound,
)
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState

__all__ = [
    "KINDS",
    "FaultBook",
    "FaultMiddleware",
    "FaultRule",
    "RandomFaults",
    "fault_book",
    "routes",
]

KINDS = ("429", "500", "503", "504", "drop", "garbled", "delay", "trickle", "expiredCursor")
_MAILBOX_PATH = re.compile(
    r"^/(?:v1\.0|beta)/(?:users/(?P<user>[^/(]+)|users\('(?P<quoted>[^']+)'\)|(?P<me>me))(?:/|$)"
)


class InternalServerError(GraphError):
    status = 500
    code = "generalException"
    message = "General exception while processing."


class ServiceUnavailable(GraphError):
    status = 503
    code = "serviceNotAvailable"
    message = "The service is temporarily unavailable. Please retry later."


class GatewayTimeout(GraphError):
    status = 504
    code = "UnknownError"
    message = "The request timed out before a response was received from the backend service."


class _DroppedConnectionFilter(logging.Filter):
    """uvicorn logs an error when an app cuts a response short; a dropped connection is the
    point of the ``drop`` fault, so that one message is silenced."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DroppedConnectionFilter())


@dataclass
class FaultRule:
    kind: str
    method: str = "*"
    path_regex: str = ""
    mailbox_id: str | None = None
    count: int = 1
    retry_after: int | None = None
    delay_ms: int = 0
    operation: str | None = None  # an EWS operation (SOAP body), e.g. "SyncFolderItems"
    back_off_ms: int | None = None  # EWS ErrorServerBusy's BackOffMilliseconds
    id: str = field(default_factory=new_id)
    injected: int = 0

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path_regex)

    def matches(
        self, method: str, path: str, mailbox_id: str | None, operation: str | None = None
    ) -> bool:
        return (
            self.count > 0
            and self.method in ("*", method)
            and self.pattern.search(path) is not None
            and (self.mailbox_id is None or self.mailbox_id == mailbox_id)
            and (self.operation is None or self.operation == operation)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "pathRegex": self.path_regex,
            "mailbox": self.mailbox_id,
            "remaining": self.count,
            "injected": self.injected,
            "retryAfter": self.retry_after,
            "delayMs": self.delay_ms,
            "operation": self.operation,
            "backOffMs": self.back_off_ms,
        }


@dataclass
class RandomFaults:
    rate: float
    seed: int
    kinds: list[str]
    path_regex: str = ""
    method: str = "*"
    retry_after: int | None = None
    delay_ms: int = 200
    injected: int = 0
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path_regex)
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible chaos, not security

    def draw(self, method: str, path: str) -> str | None:
        if self.method not in ("*", method) or self.pattern.search(path) is None:
            return None
        if self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.kinds)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rate": self.rate,
            "seed": self.seed,
            "kinds": self.kinds,
            "pathRegex": self.path_regex,
            "method": self.method,
            "injected": self.injected,
        }


@dataclass
class Injection:
    fault_id: str
    kind: str
    method: str
    path: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "faultId": self.fault_id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "at": self.at.isoformat(),
        }


@dataclass
class FaultBook:
    """All fault rules of one simulator, and what they injected."""

    rules: list[FaultRule] = field(default_factory=list)
    random_rules: list[RandomFaults] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)

    MAX_INJECTIONS: ClassVar[int] = 10_000

    def pick(
        self, method: str, path: str, mailbox_id: str | None, operation: str | None = None
    ) -> tuple[str, FaultRule | RandomFaults] | None:
        for rule in self.rules:
            if rule.matches(method, path, mailbox_id, operation):
                rule.count -= 1
                rule.injected += 1
                return rule.kind, rule
        for chaos in self.random_rules:
            kind = chaos.draw(method, path)
            if kind is not None:
                chaos.injected += 1
                return kind, chaos
        return None

    def record(
        self, rule: FaultRule | RandomFaults, kind: str, method: str, path: str, at: datetime
    ) -> None:
        if len(self.injections) < self.MAX_INJECTIONS:
            self.injections.append(Injection(rule.id, kind, method, path, at))


def fault_book(state: SimState) -> FaultBook:
    return state.extension("faults", FaultBook)


def _mailbox_of(state: SimState, scope: Scope) -> str | None:
    """The user id a Graph path addresses (``/users/{id|upn}`` or ``/me``), if known."""
    match = _MAILBOX_PATH.match(scope["path"])
    if match is None:
        return None
    if match.group("me"):
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                token = value.decode("latin-1").partition(" ")[2].strip()
                try:
                    claims = jwt.decode(token, options={"verify_signature": False})
                except jwt.PyJWTError:
                    return None
                oid = claims.get("oid")
                return str(oid) if oid else None
        return None
    key = unquote(match.group("user") or match.group("quoted") or "")
    found = state.find_user_anywhere(key)
    return found[1].id if found else None


def _error_for(kind: str, retry_after: int | None) -> GraphError:
    if kind == "429":
        return ApplicationThrottled(headers={"Retry-After": str(retry_after or 1)})
    if kind == "503":
        return ServiceUnavailable(
            headers={"Retry-After": str(retry_after)} if retry_after else None
        )
    if kind == "504":
        return GatewayTimeout()
    if kind == "expiredCursor":
        return SyncStateNotFound()
    return InternalServerError()


class FaultMiddleware:
    """Applies the fault book to every non-``/_sim`` HTTP request."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        book = fault_book(self.state)
        if not book.rules and not book.random_rules:
            await self.app(scope, receive, send)
            return
        if ews_faults.is_ews_path(scope["path"]):
            await ews_faults.apply(self, book, scope, receive, send)
            return
        needs_mailbox = any(rule.mailbox_id is not None for rule in book.rules)
        mailbox_id = _mailbox_of(self.state, scope) if needs_mailbox else None
        picked = book.pick(scope["method"], scope["path"], mailbox_id)
        if picked is None:
            await self.app(scope, receive, send)
            return
        kind, rule = picked
        book.record(rule, kind, scope["method"], scope["path"], self.state.now())
        if kind == "delay":
            await self._delayed(scope, receive, send, rule.delay_ms)
        elif kind == "trickle":
            await self._trickled(scope, receive, send, rule.delay_ms)
        elif kind == "drop":
            await self._dropped(scope, receive, send)
        elif kind == "garbled":
            await self._garbled(scope, receive, send)
        else:
            await self._error(scope, receive, send, _error_for(kind, rule.retry_after))

    async def _error(self, scope: Scope, receive: Receive, send: Send, error: GraphError) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = error.body(
            request_id=str(scope.get("state", {}).get("request_id", new_id())),
            client_request_id=headers.get("client-request-id"),
        )
        await JSONResponse(body, status_code=error.status, headers=error.headers)(
            scope, receive, send
        )

    async def _delayed(self, scope: Scope, receive: Receive, send: Send, delay_ms: int) -> None:
        async def held_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay_ms / 1000)
            await send(message)

        await self.app(scope, receive, held_send)

    async def _trickled(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        delay_ms: int,
        hang_up: Receive | None = None,
    ) -> None:
        """The real response, its body one byte every ``delay_ms``. ``hang_up`` is where the
        client's disconnect is announced (default ``receive``; EWS hands the app a replay of
        the request body instead): a client that gave up ends the trickle, as the real
        service stops sending to a closed connection."""
        gone = asyncio.Event()

        async def watch() -> None:
            while (await (hang_up or receive)())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher: asyncio.Task[None] | None = None

        async def trickling_send(message: Message) -> None:
            nonlocal watcher
            if message["type"] == "http.response.start":
                await send(message)
                watcher = asyncio.create_task(watch())
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            for index in range(len(body)):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), delay_ms / 1000)
                if gone.is_set():
                    return
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[index : index + 1],
                        "more_body": True,
                    }
                )
            if not gone.is_set():
                await send({**message, "body": b""})

        try:
            await self.app(scope, receive, trickling_send)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _dropped(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        await send(start)
        await send(
            {
                "type": "http.response.body",
                "body": body[: max(1, len(body) // 2)],
                "more_body": True,
            }
        )
        # Returning without the final body message makes the server close the connection.

    async def _garbled(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        body = body[: len(body) // 2]
        headers = [
            (name, value) for name, value in start.get("headers", []) if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


# -- control API -----------------------------------------------------------------------------


def _int(body: dict[str, Any], key: str, default: int | None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{key} must be a non-negative integer")
    return value


def _kind(value: Any) -> str:
    kind = str(value)
    if kind not in KINDS:
        raise BadRequest(f"Unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def _regex(value: Any) -> str:
    text = str(value or "")
    try:
        re.compile(text)
    except re.error as exc:
        raise BadRequest(f"pathRegex is not a valid regular expression: {exc}") from exc
    return text


async def faults(request: Request) -> Response:
    """GET: rules, random rules and injections. POST: add a rule (see module docstring).

    Targeted: ``{"kind": "503", "method": "GET", "pathRegex": "/messages", "count": 2,
    "mailbox": "adele@contoso.com", "retryAfter": 3, "delayMs": 500}`` (``status``: 500 is
    accepted for ``kind``; ``delayMs`` is for ``delay`` and ``trickle``). Random: ``{"rate":
    0.1, "seed": 42, "kinds": ["503", "drop"], "pathRegex": "/v1.0/"}``.
    """
    state = sim_state(request)
    book = fault_book(state)
    if request.method == "GET":
        return JSONResponse(
            {
                "value": [rule.as_json() for rule in book.rules],
                "random": [chaos.as_json() for chaos in book.random_rules],
                "injections": [i.as_json() for i in book.injections],
                "injectedCount": len(book.injections),
            }
        )
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object.")
    if "rate" in body:
        rate = body["rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise BadRequest("rate must be a number between 0 and 1")
        kinds = body.get("kinds") or ["429", "500", "503", "504"]
        if not isinstance(kinds, list) or not kinds:
            raise BadRequest("kinds must be a non-empty list")
        chaos = RandomFaults(
            rate=float(rate),
            seed=_int(body, "seed", 0) or 0,
            kinds=[_kind(k) for k in kinds],
            path_regex=_regex(body.get("pathRegex")),
            method=str(body.get("method", "*")).upper(),
            retry_after=_int(body, "retryAfter", None),
            delay_ms=_int(body, "delayMs", 200) or 0,
        )
        book.random_rules.append(chaos)
        return JSONResponse(chaos.as_json(), status_code=201)
    kind = _kind(body.get("kind", body.get("status", "")))
    mailbox_id: str | None = None
    if body.get("mailbox"):
        found = state.find_user_anywhere(str(body["mailbox"]))
        if found is None:
            raise BadRequest(f"No user {body['mailbox']!r} in any tenant")
        mailbox_id = found[1].id
    path_regex = body.get("pathRegex")
    if path_regex is None and kind == "expiredCursor" and not body.get("operation"):
        path_regex = r"/delta"
    rule = FaultRule(
        kind=kind,
        method=str(body.get("method", "*")).upper(),
        path_regex=_regex(path_regex),
        mailbox_id=mailbox_id,
        count=_int(body, "count", 1) or 0,
        retry_after=_int(body, "retryAfter", None),
        delay_ms=_int(body, "delayMs", 0) or 0,
        operation=str(body["operation"]) if body.get("operation") else None,
        back_off_ms=_int(body, "backOffMs", None),
    )
    book.rules.append(rule)
    return JSONResponse(rule.as_json(), status_code=201)


async def clear_faults(request: Request) -> Response:
    """Remove every rule and forget the injections."""
    state = sim_state(request)
    state.extensions.pop("faults", None)
    return Response(status_code=204)


async def remove_fault(request: Request) -> Response:
    book = fault_book(sim_state(request))
    key = str(request.path_params["fault_id"])
    before = len(book.rules) + len(book.random_rules)
    book.rules = [r for r in book.rules if r.id != key]
    book.random_rules = [r for r in book.random_rules if r.id != key]
    if len(book.rules) + len(book.random_rules) == before:
        raise ResourceNotFound(f"No fault {key!r}")
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/_sim/faults", faults, methods=["GET", "POST"]),
    Route("/_sim/faults", clear_faults, methods=["DELETE"]),
    Route("/_sim/faults/{fault_id}", remove_fault, methods=["DELETE"]),
]
