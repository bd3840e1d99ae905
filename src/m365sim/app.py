"""The m365sim ASGI application: identity, Graph and control routes on one HTTPS origin."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from m365sim.ews import install as install_ews
from m365sim.exceptions import GraphError, SimError
from m365sim.faults import FaultMiddleware
from m365sim.graph.exceptions import MethodNotAllowed, NotModelled
from m365sim.graph.subscriptions import install as install_subscriptions
from m365sim.http import JSONResponse, request_id
from m365sim.latency import LatencyMiddleware
from m365sim.request_log import RequestLogMiddleware
from m365sim.state import RequestRecord, SimState
from m365sim.throttling import ThrottlingMiddleware


def graph_request_ids(scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
    """What every answer carries, as on Graph: ``request-id`` (m365sim's id for the request)
    and ``client-request-id``, the client's own header echoed when it sent one, else the
    same value as ``request-id``."""
    client_rid = next(
        (v for k, v in scope.get("headers", []) if k == b"client-request-id"),
        request_id.encode(),
    )
    return [(b"request-id", request_id.encode()), (b"client-request-id", client_rid)]


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
    app.add_middleware(
        RequestLogMiddleware,
        state=state,
        record=RequestRecord,
        new_id=lambda: str(uuid.uuid4()),
        answer_headers=graph_request_ids,
    )
    install_subscriptions(state)
    install_ews(state)
    return app
