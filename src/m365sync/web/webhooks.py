"""Microsoft Graph change notifications: ``POST /webhooks/microsoft``.

- Validation handshake: ``?validationToken=...`` is echoed back as ``text/plain`` (200).
- Notifications and lifecycle events: each item's ``clientState`` is checked against its
  subscription's secret, the unit is queued, and the answer is ``202`` at once (Microsoft
  wants an answer within 3 s; the sync itself runs elsewhere).

Mount it with ``app.include_router(webhook_router(database, dispatch, box=runtime.box))``;
``dispatch`` queues a unit id (the in-process ``Scheduler.dispatch``, or
``workers.celery_dispatch``); ``box`` opens the sealed per-subscription secrets (the
connection runtime's, so both use the installation's key). The public URL of this route is
the ``M365SYNC_WEBHOOK_URL`` setting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request, Response

from m365sync.crypto import SecretBox
from m365sync.db.session import Database
from m365sync.sync.notifications import handle_notifications

__all__ = ["WEBHOOK_PATH", "webhook_router"]

WEBHOOK_PATH = "/webhooks/microsoft"


def webhook_router(
    database: Database, dispatch: Callable[[str], None], *, box: SecretBox
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def microsoft_notifications(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return Response(content=token, media_type="text/plain", status_code=200)
        raw = await request.body()
        try:
            payload = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return Response(status_code=400)
        await asyncio.to_thread(handle_notifications, database, box, payload, dispatch)
        return Response(status_code=202)  # accepted or refused: a forger learns nothing

    return router
