"""How a sync is asked to run now (the web app's "sync now", change notifications).

Two flavours, one interface (``dispatch`` one unit, ``sync_organization_now``):

- ``InProcessSyncWorkers`` runs the sync engine's in-process ``Scheduler`` inside the web
  process (``m365sync serve``: one process is all a small team needs), and beside it the
  Salesforce jobs (``SalesforceRunner``: the mirror and the writer, in threads of their
  own, so the Graph sync never waits on Salesforce). Both start with the app's lifespan
  and stop with it; ``dispatch`` wakes the scheduler at once.
- ``QueuedSyncWorkers`` only marks units due in the database (and, when scaled out, queues
  them on Celery, through ``m365sync.workers.celery_app.celery_dispatch``): the workers
  run elsewhere.

Pages call these *after* their own transaction has committed (a background task), so a
worker never looks at a service account or connection that is not saved yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import Scheduler
from m365sync.workers.salesforce import SalesforceRunner

__all__ = ["InProcessSyncWorkers", "QueuedSyncWorkers", "SyncWorkers"]

log = logging.getLogger(__name__)


class SyncWorkers(Protocol):
    def dispatch(self, unit_id: str) -> None: ...

    def sync_organization_now(self, organization_id: str) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _organization_unit_ids(database: Database, organization_id: str) -> list[str]:
    with database.session() as session:
        return [u.id for u in SyncRepository(session).units(organization_id)]


class InProcessSyncWorkers:
    """The sync engine's scheduler, run as a task of the web server's event loop."""

    def __init__(
        self, database: Database, runtime: ConnectionRuntime, *, tick_seconds: float = 5.0
    ) -> None:
        self.database = database
        self.scheduler = Scheduler(database, runtime, tick_seconds=tick_seconds)
        self.salesforce = SalesforceRunner(
            database, runtime.settings, runtime.box, tick_seconds=tick_seconds
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self.scheduler.run_forever(self._stop)),
            asyncio.create_task(self.salesforce.run_forever(self._stop)),
        ]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        self._tasks = []

    def dispatch(self, unit_id: str) -> None:
        self.scheduler.dispatch(unit_id)

    def sync_organization_now(self, organization_id: str) -> None:
        """Every unit of the organization due now (members without units yet get theirs,
        due at once, at the scheduler's next tick)."""
        for unit_id in _organization_unit_ids(self.database, organization_id):
            self.scheduler.dispatch(unit_id)


class QueuedSyncWorkers:
    """Workers run in other processes: mark units due (and, when ``queue`` is given, e.g.
    ``m365sync.workers.celery_app.celery_dispatch``, queue them at once with a new ticket,
    so a change notification does not wait for the scheduler's next pass)."""

    def __init__(self, database: Database, queue: Callable[[str, str], None] | None = None) -> None:
        self.database = database
        self.queue = queue

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def dispatch(self, unit_id: str) -> None:
        with self.database.session() as session:
            repo = SyncRepository(session)
            repo.schedule_now(unit_id)
            ticket = repo.mark_queued(unit_id) if self.queue is not None else None
        if self.queue is not None and ticket is not None:
            try:
                self.queue(unit_id, ticket)
            except Exception:  # the unit is due anyway: the scheduler queues it
                log.exception("could not queue sync unit %s", unit_id)
                with self.database.session() as session:
                    SyncRepository(session).withdraw_ticket(unit_id, ticket)

    def sync_organization_now(self, organization_id: str) -> None:
        for unit_id in _organization_unit_ids(self.database, organization_id):
            self.dispatch(unit_id)
