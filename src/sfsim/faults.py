"""The fault injector: make chosen REST calls fail the ways Salesforce fails.

Rules, managed through ``/_sim/faults``: the next ``count`` requests matching ``method``
(or ``*``) and ``pathRegex`` (``re.search`` on the path) fail with ``kind``; or, with
``rate`` and ``seed``, every matching request fails with that probability (reproducibly).

Kinds: ``UNABLE_TO_LOCK_ROW`` (400), ``SERVER_UNAVAILABLE`` (503), ``REQUEST_LIMIT_EXCEEDED``
(403), ``INVALID_SESSION_ID`` (401), ``UNKNOWN_EXCEPTION`` (500), each in Salesforce's error
shape; ``delay`` (the real answer, ``delayMs`` late); ``drop`` (half the real answer, then
the connection closes). Faults apply only to ``/services/data`` and never to ``/_sim``;
an injected fault does not count against the daily API limit.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sfsim.data import exceptions as err
from sfsim.exceptions import ApiError
from sfsim.http import JSONResponse, json_body, sf_state
from sfsim.state import SfState

ERRORS: dict[str, type[ApiError]] = {
    "UNABLE_TO_LOCK_ROW": err.UnableToLockRow,
    "SERVER_UNAVAILABLE": err.ServerUnavailable,
    "REQUEST_LIMIT_EXCEEDED": err.RequestLimitExceeded,
    "INVALID_SESSION_ID": err.InvalidSessionId,
    "UNKNOWN_EXCEPTION": err.UnknownException,
}
KINDS = (*ERRORS, "delay", "drop")


@dataclass
class FaultRule:
    kind: str
    method: str = "*"
    path_regex: str = ""
    count: int = 1
    rate: float | None = None
    seed: int = 0
    delay_ms: int = 0
    injected: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path_regex)
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible chaos, not security

    def fires(self, method: str, path: str) -> bool:
        if self.method not in ("*", method) or self.pattern.search(path) is None:
            return False
        if self.rate is not None:
            return self.rng.random() < self.rate
        if self.count <= 0:
            return False
        self.count -= 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "pathRegex": self.path_regex,
            "remaining": None if self.rate is not None else self.count,
            "rate": self.rate,
            "seed": self.seed,
            "delayMs": self.delay_ms,
            "injected": self.injected,
        }


def fault_rules(state: SfState) -> list[FaultRule]:
    return state.extension("faults", list)


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: SfState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        rules = fault_rules(self.state)
        if scope["type"] != "http" or not rules or not path.startswith("/services/data/"):
            await self.app(scope, receive, send)
            return
        rule = next((r for r in rules if r.fires(scope["method"], path)), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        rule.injected += 1
        if rule.kind == "delay":

            async def held(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await asyncio.sleep(rule.delay_ms / 1000)
                await send(message)

            await self.app(scope, receive, held)
        elif rule.kind == "drop":
            await self._dropped(scope, receive, send)
        else:
            error = ERRORS[rule.kind]()
            headers = {"Sforce-Limit-Info": self.state.limit_info_header()}
            await JSONResponse(error.body(), status_code=error.status, headers=headers)(
                scope, receive, send
            )

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


async def faults(request: Request) -> Response:
    """GET: the rules and what they injected. POST: add a rule (see ``sfsim.faults``)."""
    rules = fault_rules(sf_state(request))
    if request.method == "GET":
        return JSONResponse({"value": [r.as_json() for r in rules]})
    body = await json_body(request)
    if not isinstance(body, dict):
        raise err.InvalidInput("Expected a JSON object describing the fault.")
    kind = str(body.get("kind", ""))
    if kind not in KINDS:
        raise err.InvalidInput(f"Unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    try:
        rule = FaultRule(
            kind=kind,
            method=str(body.get("method", "*")).upper(),
            path_regex=str(body.get("pathRegex", "")),
            count=int(body.get("count", 1)),
            rate=float(body["rate"]) if body.get("rate") is not None else None,
            seed=int(body.get("seed", 0)),
            delay_ms=int(body.get("delayMs", 0)),
        )
    except (re.error, TypeError, ValueError) as exc:
        raise err.InvalidInput(f"Fault rejected: {exc}") from exc
    rules.append(rule)
    return JSONResponse(rule.as_json(), status_code=201)


async def clear_faults(request: Request) -> Response:
    """Remove every fault rule."""
    fault_rules(sf_state(request)).clear()
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/_sim/faults", faults, methods=["GET", "POST"]),
    Route("/_sim/faults", clear_faults, methods=["DELETE"]),
]
