"""Microsoft Graph change notifications: ``POST /webhooks/microsoft``, sync's door for
Microsoft (the rules are ``m365sync.sync.notifications``).

- Validation handshake: ``?validationToken=...`` is echoed back as ``text/plain`` (200).
- Notifications and lifecycle events: each item's ``clientState`` is checked against its
  subscription's secret, the unit is queued, and the answer is ``202`` (Microsoft wants an
  answer within 3 s; the sync itself runs elsewhere). Should the database be slow, the
  answer does not wait past ``ANSWER_WITHIN_SECONDS``: the check finishes in the background.
- Anyone can post here, so a body over ``webhook_max_body_bytes`` is refused (413) before it
  is read whole (by its ``Content-Length``, or as soon as it streams past the limit), and one
  with more than ``webhook_max_notifications`` items too (413); see
  ``m365sync.sync.notifications`` for how the rest of the work is bounded.

Mount it with ``app.include_router(webhook_router(database, dispatch, box=runtime.box))``;
``dispatch`` queues a unit id (the in-process ``Scheduler.dispatch``, or
``m365sync.workers.celery_app.celery_dispatch``); ``box`` opens the sealed per-subscription
secrets (the connection runtime's, so both use the installation's key). The limits come from
``settings`` (default: the app's, else the environment's). The public URL of this route is
the ``M365SYNC_WEBHOOK_URL`` setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from m365sync.crypto import SecretBox
from m365sync.db.session import Database
from m365sync.errors import M365SyncError
from m365sync.settings import Settings, get_settings
from m365sync.sync.notifications import (
    NotificationOutcome,
    TooManyNotifications,
    handle_notifications,
    notification_items,
)
from m365sync.web.security import read_body_within

__all__ = ["ANSWER_WITHIN_SECONDS", "WEBHOOK_PATH", "webhook_router"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/microsoft"
ANSWER_WITHIN_SECONDS = 2.5
"""Microsoft drops notifications a webhook answers slower than 3 s."""
MAX_UNFINISHED = 64
"""Notification POSTs still being checked in the background before new ones get 503."""


def _refusal(error: M365SyncError) -> JSONResponse:
    fix = error.fix
    if isinstance(error, TooManyNotifications):  # the limit is the operator's setting
        fix = f"{fix} (The limit is M365SYNC_WEBHOOK_MAX_NOTIFICATIONS.)"
    return JSONResponse({"error": {"message": error.message, "fix": fix}}, status_code=error.status)


def webhook_router(
    database: Database,
    dispatch: Callable[[str], None],
    *,
    box: SecretBox,
    settings: Settings | None = None,
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    unfinished: set[asyncio.Task[NotificationOutcome]] = set()

    def limits(request: Request) -> Settings:
        found = settings or getattr(request.app.state, "settings", None)
        return found if isinstance(found, Settings) else get_settings()

    def finished(task: asyncio.Task[NotificationOutcome]) -> None:
        unfinished.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("change notifications could not be queued: %s", error)

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def microsoft_notifications(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return Response(content=token, media_type="text/plain", status_code=200)
        configured = limits(request)
        try:
            raw = await read_body_within(
                request,
                configured.webhook_max_body_bytes,
                what="This change notification request",
                fix="Microsoft's notification batches are far smaller: if these are yours, "
                "raise M365SYNC_WEBHOOK_MAX_BODY_BYTES; otherwise they were not sent by "
                "Microsoft.",
            )
            payload = orjson.loads(raw) if raw else {}
            notification_items(payload, configured.webhook_max_notifications)
        except M365SyncError as error:
            return _refusal(error)
        except orjson.JSONDecodeError:
            return Response(status_code=400)
        if len(unfinished) >= MAX_UNFINISHED:
            # The database is not keeping up: Microsoft retries later, with back-off.
            return Response(status_code=503, headers={"Retry-After": "30"})
        task = asyncio.ensure_future(
            asyncio.to_thread(
                handle_notifications,
                database,
                box,
                payload,
                dispatch,
                max_items=configured.webhook_max_notifications,
            )
        )
        unfinished.add(task)
        task.add_done_callback(finished)
        await asyncio.wait({task}, timeout=ANSWER_WITHIN_SECONDS)
        return Response(status_code=202)  # accepted or refused: a forger learns nothing

    return router
