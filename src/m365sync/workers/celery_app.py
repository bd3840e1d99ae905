"""Celery workers on Redis for scale-out: the same unit of work as the in-process runner.

Start workers with ``celery -A m365sync.workers.celery_app worker``; the broker is
``M365SYNC_CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``). ``sync_unit`` runs
``run_unit`` — the lease makes a unit run once even if it is queued twice, and every page
commits with its cursor, so ``acks_late`` redelivery after a crashed worker is safe.
Use PostgreSQL when workers run on several machines.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database, database_from_settings
from m365sync.settings import get_settings
from m365sync.sync.service import run_unit
from m365sync.workers.process import tune_garbage_collector

__all__ = ["app", "celery_dispatch", "sync_unit"]

_engine = get_settings()
app = Celery(
    "m365sync",
    broker=_engine.celery_broker_url,
    backend=_engine.celery_result_backend or _engine.celery_broker_url,
)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _worker_started(**_: Any) -> None:
    tune_garbage_collector()


@lru_cache(maxsize=1)
def _process() -> tuple[Database, ConnectionRuntime]:
    settings = get_settings()
    database = database_from_settings(settings)
    return database, ConnectionRuntime.from_settings(settings, database)


@app.task(name="m365sync.sync_unit")  # type: ignore[untyped-decorator]
def sync_unit(unit_id: str, full: bool = False) -> dict[str, Any]:
    """``sync(mailbox, feature)`` for one unit id; returns its outcome and counts."""
    database, runtime = _process()

    async def run() -> dict[str, Any]:
        try:
            result = await run_unit(database, runtime, unit_id, full=full)
        finally:
            await runtime.aclose()
        return {
            "unit_id": unit_id,
            "outcome": result.outcome,
            "status": result.status.value,
            "counts": result.progress.as_counts(),
            "error": result.error,
        }

    return asyncio.run(run())


def celery_dispatch(unit_id: str) -> None:
    """Queue a unit on the workers (the webhook's ``dispatch`` when scaled out)."""
    sync_unit.delay(unit_id)
