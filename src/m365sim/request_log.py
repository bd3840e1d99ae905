"""The request log m365sim and sfsim keep (``GET /_sim/requests``): one record per request,
``/_sim`` excluded, appended before the last bytes of its answer leave, so a client that
has its answer finds the request logged."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestLogMiddleware"]


class _LoggingState(Protocol):
    request_log: list[Any]

    def now(self) -> datetime: ...


class RequestLogMiddleware:
    """Gives every request an id (``new_id``, kept as ``scope["state"]["request_id"]``) and
    appends ``record(...)`` of it to ``state.request_log``, with the route's
    ``scope["state"]["log_tags"]``. ``answer_headers(scope, request_id)`` are added to
    every answer."""

    def __init__(
        self,
        app: ASGIApp,
        state: _LoggingState,
        record: Callable[..., Any],
        new_id: Callable[[], str],
        answer_headers: Callable[[Scope, str], list[tuple[bytes, bytes]]] | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.record = record
        self.new_id = new_id
        self.answer_headers = answer_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        rid = self.new_id()
        scope["state"]["request_id"] = rid
        status = 500
        started = time.perf_counter()
        started_at = self.state.now()
        logged = scope["path"].startswith("/_sim")

        def log() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            tags: dict[str, Any] = scope["state"].get("log_tags", {})
            self.state.request_log.append(
                self.record(
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
                if self.answer_headers is not None:
                    headers = list(message.get("headers", []))
                    headers += self.answer_headers(scope, rid)
                    message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                log()  # before the last bytes leave
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log()  # an answer that never finished (an error, a dropped connection)
