"""The m365sim ASGI application: identity, Graph and control routes on one HTTPS origin."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sim.ews import install as install_ews
from m365sim.exceptions import GraphError, SimError
from m365sim.faults import FaultMiddleware
from m365sim.graph.exceptions import MethodNotAllowed, NotModelled
from m365sim.graph.subscriptions import install as install_subscriptions
from m365sim.http import JSONResponse, request_id
from m365sim.latency import LatencyMiddleware
from m365sim.state import RequestRecord, SimState
from m365sim.throttling import ThrottlingMiddleware


class RequestLogMiddleware:
    """Gives every request an id and appends it to the request log (``/_sim`` excluded).

    Every answer carries ``request-id`` (m365sim's id for the request) and
    ``client-request-id``: the client's own header echoed when it sent one, else the same
    value as ``request-id``, as Graph does.
    """

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        rid = str(uuid.uuid4())
        scope["state"]["request_id"] = rid
        status = 500
        started = time.perf_counter()
        started_at = self.state.now()

        # Graph echoes the client's client-request-id (or, without one, its own request-id).
        client_rid = next(
            (v for k, v in scope.get("headers", []) if k == b"client-request-id"), rid.encode()
        )

        logged = scope["path"].startswith("/_sim")

        def log() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            tags: dict[str, Any] = scope["state"].get("log_tags", {})
            self.state.request_log.append(
                RequestRecord(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status=status,
                    started_at=started_at,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    request_id=rid,
                    **tags,
                )
            )

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"request-id", rid.encode()))
                headers.append((b"client-request-id", client_rid))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Logged before the answer's last bytes leave: a client that reads the log
                # once it has its answer finds the request there.
                log()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log()  # an answer that never finished (an error, a dropped connection)


async def render_unrouted(request: Request, exc: Exception) -> Response:
    """A path no route serves (404) or a method a route does not take (405), in Graph's
    JSON error shape; a 404 says m365sim does not model the request rather than pretending
    Microsoft would not find it."""
    assert isinstance(exc, HTTPException)
    error: GraphError
    if exc.status_code == 405:
        error = MethodNotAllowed(headers=dict(exc.headers or {}))
    elif exc.status_code == 404:
        error = NotModelled(
            f"m365sim does not model {request.method} {request.url.path}: it is not part of "
            "the simulated surface (docs/m365sim/coverage.md lists what is). Microsoft may "
            "serve it; m365sim cannot say how."
        )
    else:
        return JSONResponse(
            {"error": {"code": "BadRequest", "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return await render_sim_error(request, error)


async def render_sim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimError)
    body = exc.body(
        request_id=request_id(request),
        client_request_id=request.headers.get("client-request-id"),
    )
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def collect_routes() -> list[BaseRoute]:
    """Every route m365sim serves, gathered from each package's ``urls.py``."""
    from m365sim import faults
    from m365sim.control import urls as control_urls
    from m365sim.ews import urls as ews_urls
    from m365sim.graph import urls as graph_urls
    from m365sim.graph.policies import urls as policies_urls
    from m365sim.graph.subscriptions import urls as subscriptions_urls
    from m365sim.identity import urls as identity_urls

    return [
        *control_urls.routes,
        *faults.routes,
        *policies_urls.routes,
        *subscriptions_urls.control_routes,
        *ews_urls.control_routes,
        *graph_urls.routes,
        *identity_urls.routes,
        *ews_urls.routes,
    ]


def build_app(state: SimState | None = None) -> Starlette:
    state = state or SimState()
    app = Starlette(
        routes=collect_routes(),
        exception_handlers={SimError: render_sim_error, HTTPException: render_unrouted},
    )
    app.state.sim = state
    # Starlette wraps in reverse order of addition: the request log is outermost (it sees
    # injected faults and 429s), then the fault injector, then throttling's slot release,
    # then the latency model (inside throttling, so a request keeps its slot while delayed).
    app.add_middleware(LatencyMiddleware, state=state)
    app.add_middleware(ThrottlingMiddleware, state=state)
    app.add_middleware(FaultMiddleware, state=state)
    app.add_middleware(RequestLogMiddleware, state=state)
    install_subscriptions(state)
    install_ews(state)
    return app
