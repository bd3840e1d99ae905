"""Celery workers on Redis for scale-out: the same unit of work as the in-process runner.

Start workers with ``m365sync worker`` (or ``celery -A m365sync.workers.celery_app
worker``); the broker is ``M365SYNC_CELERY_BROKER_URL`` (default
``redis://127.0.0.1:6379/0``), the queue ``M365SYNC_CELERY_QUEUE``. Units reach the queue
from the elected ``m365sync scheduler`` and from the web app ("sync now", change
notifications), each message with the unit's queue ticket.

What makes a worker's death cost at most one lease:

- ``task_acks_late`` and ``task_reject_on_worker_lost``: a message is acknowledged only
  when its run has ended, and one whose pool process died is handed back to the queue;
- ``worker_prefetch_multiplier=1``: a worker process holds no message it is not running;
- the broker's visibility timeout is one lease plus one scheduler interval: a message held
  by a worker that vanished (SIGKILL, a lost machine) is delivered again then, not after
  kombu's default hour;
- whatever happens to messages, the unit's lease and ticket decide: ``sync_unit`` runs the
  unit only while the message's ticket is the unit's (``stale`` otherwise) and nobody holds
  its lease (``busy``); every page commits with its cursor, so a run cut short resumes;
  and the scheduler queues a due unit again once its lease has passed.

Every pool process keeps Outlook's per-mailbox limits together with the other workers,
the scheduler and the web app, in Redis (``m365sync.microsoft.limits``), so adding workers
adds no ``MailboxConcurrency`` 429s.

Use PostgreSQL when workers run on several machines.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown
from kombu.exceptions import ChannelError

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database, database_from_settings
from m365sync.settings import Settings, get_settings
from m365sync.sync.repository import SyncRepository
from m365sync.sync.service import run_unit
from m365sync.workers.process import tune_garbage_collector

__all__ = [
    "app",
    "celery_dispatch",
    "queue_length",
    "queue_salesforce_job",
    "queue_unit",
    "salesforce_job",
    "sync_unit",
    "visibility_timeout",
]

log = logging.getLogger(__name__)


def visibility_timeout(settings: Settings) -> int:
    """Seconds before an unacknowledged message is delivered again: one lease plus one
    scheduler interval (a running unit renews its lease every page, and a second delivery
    of its message finds the lease held or the ticket spent, and does nothing)."""
    return math.ceil(settings.sync_lease_seconds + settings.scheduler_interval_seconds)


_settings = get_settings()
app = Celery(
    "m365sync",
    broker=_settings.celery_broker_url,
    backend=_settings.celery_result_backend or _settings.celery_broker_url,
)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": visibility_timeout(_settings)},
    result_backend_transport_options={"visibility_timeout": visibility_timeout(_settings)},
    task_default_queue=_settings.celery_queue,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _worker_started(**_: Any) -> None:
    tune_garbage_collector()


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _worker_stopped(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1)
def _process() -> tuple[Database, ConnectionRuntime]:
    settings = get_settings()
    database = database_from_settings(settings)
    return database, ConnectionRuntime.from_settings(settings, database, share_graph_limits=True)


@app.task(name="m365sync.sync_unit")  # type: ignore[untyped-decorator]
def sync_unit(unit_id: str, full: bool = False, ticket: str | None = None) -> dict[str, Any]:
    """``sync(mailbox, feature)`` for one unit id (with the queue ``ticket`` it was sent
    with, if any); returns its outcome and counts."""
    database, runtime = _process()

    async def run() -> dict[str, Any]:
        try:
            result = await run_unit(database, runtime, unit_id, full=full, ticket=ticket)
        finally:
            await runtime.aclose()
        if result.outcome == "busy" and ticket is not None:
            # Running elsewhere (asked for during that run): the scheduler queues it
            # again once it is free.
            await asyncio.to_thread(_withdraw, database, unit_id, ticket)
        return {
            "unit_id": unit_id,
            "outcome": result.outcome,
            "status": result.status.value,
            "counts": result.progress.as_counts(),
            "error": result.error,
        }

    return asyncio.run(run())


def _withdraw(database: Database, unit_id: str, ticket: str) -> None:
    with database.session() as session:
        SyncRepository(session).withdraw_ticket(unit_id, ticket)


@app.task(name="m365sync.salesforce_job")  # type: ignore[untyped-decorator]
def salesforce_job(name: str, organization_id: str) -> dict[str, Any]:
    """One Salesforce job (``m365sync.crm.salesforce_jobs``: the mirror, the writer or the
    changes pull) for one organization. Two of the same at once are harmless: the writer
    holds a lease on the connection (the second answers busy)."""
    from m365sync.crm.salesforce_jobs import run_salesforce_job

    database, runtime = _process()
    result = run_salesforce_job(name, database, organization_id, runtime.settings, runtime.box)
    as_json = getattr(result, "as_json", None)
    return {"job": name, "organization_id": organization_id, **(as_json() if as_json else {})}


def queue_salesforce_job(name: str, organization_id: str) -> None:
    """Send a Salesforce job for one organization to the workers."""
    salesforce_job.apply_async(args=[name, organization_id], queue=_settings.celery_queue)


def queue_unit(unit_id: str, ticket: str) -> None:
    """Send a unit with its queue ticket to the workers."""
    sync_unit.apply_async(args=[unit_id], kwargs={"ticket": ticket}, queue=_settings.celery_queue)


def celery_dispatch(unit_id: str, ticket: str) -> None:
    """Queue a unit on the workers (the web app's "sync now" and change notifications)."""
    queue_unit(unit_id, ticket)


def queue_length() -> int:
    """Messages waiting in the workers' queue (not those being run)."""
    with app.connection_for_write() as connection:
        try:
            declared = connection.default_channel.queue_declare(
                queue=_settings.celery_queue, passive=True
            )
        except ChannelError:  # Redis keeps no empty list: an empty queue is "not found"
            return 0
    return int(declared.message_count)
