"""The application factory: the whole product in one FastAPI app.

``create_app(settings=..., database=..., runtime=..., workers=...)`` installs

- the JSON API (``/api/v1``, ``m365sync.web.api``),
- the dashboard and user portal (``m365sync.web.pages``: pages, ``/static/web``, security
  headers),
- Calendar Scheduling's booking pages and the rep/admin scheduling pages
  (``m365sync.web.pages.scheduling.install_scheduling``; ``app.state.scheduling``, whose job that
  recovers bookings left pending runs for the app's lifetime),
- Microsoft Graph change notifications (``POST /webhooks/microsoft``,
  ``m365sync.web.api.notifications``),

and sets ``app.state.settings``, ``.database``, ``.runtime`` (the process's
``ConnectionRuntime``) and ``.sync_workers``.

``workers`` says where sync units run:

- ``"in-process"`` — the sync engine's scheduler runs inside this process for the app's
  lifetime (``m365sync serve``, and the dashboard's browser tests);
- ``"celery"`` — Celery workers run elsewhere; webhooks and "sync now" queue units there;
- ``"elsewhere"`` (default) — another process runs the workers; "sync now" marks units due.

``recover_bookings`` runs Calendar Scheduling's recovery of bookings left pending for the
app's lifetime (``m365sync web`` leaves it to the elected ``m365sync scheduler``).
``migrate`` runs the database migrations first.

Every app also answers ``/healthz``, ``/readyz`` and ``/metrics``
(``m365sync.web.api.operations``) and gives each request an id (the ``X-Request-ID`` a
proxy sent, else a new one; echoed in the response) that JSON logs carry.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Database, database_from_settings
from m365sync.db import migrate as run_migrations
from m365sync.logs import request_id
from m365sync.settings import Settings, get_settings
from m365sync.web.api import install_api
from m365sync.web.api.notifications import webhook_router
from m365sync.web.api.operations import install_operations
from m365sync.web.pages import install_pages
from m365sync.web.pages.scheduling import install_scheduling
from m365sync.workers.dispatch import InProcessSyncWorkers, QueuedSyncWorkers, SyncWorkers

__all__ = ["WorkerMode", "create_app"]

WorkerMode = Literal["in-process", "celery", "elsewhere"]


def _sync_workers(mode: WorkerMode, database: Database, runtime: ConnectionRuntime) -> SyncWorkers:
    if mode == "in-process":
        return InProcessSyncWorkers(database, runtime)
    if mode == "celery":
        from m365sync.workers.celery_app import celery_dispatch

        return QueuedSyncWorkers(database, celery_dispatch)
    return QueuedSyncWorkers(database)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    """Each request's id in ``m365sync.logs.request_id`` while it is served, and in the
    ``X-Request-ID`` response header: the proxy's when it sent a sensible one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        ident = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Request-ID", ident)
            await send(message)

        token = request_id.set(ident)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def create_app(
    *,
    settings: Settings | None = None,
    database: Database | None = None,
    runtime: ConnectionRuntime | None = None,
    workers: WorkerMode = "elsewhere",
    recover_bookings: bool = True,
    migrate: bool = False,
) -> FastAPI:
    settings = settings or get_settings()
    database = database or database_from_settings(settings)
    if migrate:
        run_migrations(database.engine)
    runtime = runtime or ConnectionRuntime.from_settings(settings, database)
    sync_workers = _sync_workers(workers, database, runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sync_workers.start()
        if recover_bookings:
            await app.state.scheduling.recovery.start()  # bookings left pending by a crash
        try:
            yield
        finally:
            if recover_bookings:
                await app.state.scheduling.recovery.stop()
            await sync_workers.stop()
            await runtime.aclose()

    app = FastAPI(
        title="m365sync",
        version="0.1.0",
        description="Sync Microsoft 365 mailboxes with your CRM. JSON API: organization-scoped, "
        "authenticated with API tokens (m365sync api-tokens create).",
        openapi_url="/api/openapi.json",
        docs_url=None,  # web.pages.api_docs serves it from the package, under the CSP
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.runtime = runtime
    app.state.sync_workers = sync_workers
    install_api(app)
    install_pages(app)
    install_scheduling(app)
    app.include_router(webhook_router(database, sync_workers.dispatch, box=runtime.box))
    if workers == "celery":
        from m365sync.workers.celery_app import queue_length

        install_operations(app, broker_url=settings.celery_broker_url, queue_length=queue_length)
    else:
        install_operations(app)
    app.add_middleware(RequestIds)
    return app
