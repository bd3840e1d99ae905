"""The sfsim ASGI application: OAuth, REST and control routes on one HTTPS origin."""

from __future__ import annotations

import asyncio
import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sim.request_log import RequestLogMiddleware
from sfsim.data.exceptions import MethodNotAllowed, NotFound
from sfsim.exceptions import SfError
from sfsim.faults import FaultMiddleware
from sfsim.http import JSONResponse
from sfsim.state import RequestRecord, SfState

_DATA_PREFIX = "/services/data/v"


class LatencyMiddleware:
    """Realistic latency: each Salesforce answer waits ``latency_ms ± latency_jitter_ms``,
    drawn from a generator seeded with ``latency_seed`` (off when ``latency_ms`` is 0)."""

    def __init__(self, app: ASGIApp, state: SfState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.state.config
        if (
            scope["type"] == "http"
            and config.latency_ms > 0
            and not scope["path"].startswith("/_sim")
        ):
            jitter = config.latency_jitter_ms
            delay = config.latency_ms + (
                self.state.latency_rng.uniform(-jitter, jitter) if jitter else 0
            )
            await asyncio.sleep(max(0.0, delay) / 1000)
        await self.app(scope, receive, send)


class LimitInfoMiddleware:
    """``Sforce-Limit-Info: api-usage=N/M`` on every answer of the REST API."""

    def __init__(self, app: ASGIApp, state: SfState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_DATA_PREFIX):
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"sforce-limit-info", self.state.limit_info_header().encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_header)


MAX_URI_AND_HEADERS_BYTES = 16_384


class RequestSizeMiddleware:
    """Salesforce's limit on a request's size: the URI and the headers together may not
    exceed 16,384 bytes. A longer URI is 414 URI Too Long; a URI that fits but whose
    headers push the total over is 431 Request Header Fields Too Large. Both are refused
    before authentication, so they count against no limit. The bodies are sfsim's own
    (Salesforce answers with a short HTML page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        uri = len(scope.get("raw_path") or scope["path"].encode()) + (
            len(query) + 1 if query else 0
        )
        headers = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))
        if uri > MAX_URI_AND_HEADERS_BYTES:
            status, reason = 414, "URI Too Long"
        elif uri + headers > MAX_URI_AND_HEADERS_BYTES:
            status, reason = 431, "Request Header Fields Too Large"
        else:
            await self.app(scope, receive, send)
            return
        page = f"<html><body><h1>{status} {reason}</h1></body></html>"
        await Response(page, status_code=status, media_type="text/html")(scope, receive, send)


async def render_sf_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SfError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def render_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route, wrong method) in Salesforce's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        error: SfError = MethodNotAllowed(
            f"HTTP Method '{request.method}' not allowed. Allowed are {allowed.replace(' ', '')}"
        )
    else:
        error = NotFound()
    return JSONResponse(error.body(), status_code=error.status)


def collect_routes() -> list[BaseRoute]:
    """Every route sfsim serves, gathered from each package's ``urls.py``."""
    from sfsim import faults, lightning
    from sfsim.control import urls as control_urls
    from sfsim.oauth import urls as oauth_urls
    from sfsim.rest import urls as rest_urls

    return [
        *control_urls.routes,
        *faults.routes,
        *oauth_urls.routes,
        *rest_urls.routes,
        *lightning.routes,
    ]


def build_app(state: SfState | None = None) -> Starlette:
    state = state or SfState()
    app = Starlette(
        routes=collect_routes(),
        exception_handlers={SfError: render_sf_error, HTTPException: render_http_error},
    )
    app.state.sf = state
    # Added innermost first: the request log sees everything, latency delays faults too.
    app.add_middleware(LimitInfoMiddleware, state=state)
    app.add_middleware(FaultMiddleware, state=state)
    app.add_middleware(LatencyMiddleware, state=state)
    app.add_middleware(RequestSizeMiddleware)
    app.add_middleware(
        RequestLogMiddleware, state=state, record=RequestRecord, new_id=lambda: uuid.uuid4().hex
    )
    return app
