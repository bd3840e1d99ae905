"""Running Salesforce's jobs (``m365sync.crm.salesforce_jobs``: the mirror, the writer, the
changes pull) outside a request.

- ``SalesforceRunner``: in-process (``m365sync serve``), beside the sync scheduler. Every
  tick it asks each job which organizations need it and starts each in a thread of its
  own, at most one per job and organization at a time; the Graph sync's loop never waits
  on it.
- ``queue_salesforce_jobs``: the scaled-out scheduler's pass; it sends each
  (job, organization) that is due to the Celery workers (``m365sync.salesforce_job``),
  not again within the job's gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from m365sync.crm.salesforce_jobs import SalesforceJob, salesforce_jobs
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.settings import Settings

__all__ = ["SalesforceRunner", "queue_salesforce_jobs"]

log = logging.getLogger(__name__)


class SalesforceRunner:
    """The Salesforce jobs of every organization, run in this process."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        box: SecretBox,
        *,
        tick_seconds: float = 5.0,
        jobs: list[SalesforceJob] | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.box = box
        self.tick_seconds = tick_seconds
        self.jobs = jobs if jobs is not None else salesforce_jobs()
        self._running: dict[tuple[str, str], asyncio.Task[object]] = {}
        self._started: dict[tuple[str, str], float] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.results: list[tuple[str, str, object]] = []

    def poke(self) -> None:
        """Look for due work now rather than at the next tick (thread-safe)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def start_due(self) -> list[asyncio.Task[object]]:
        """Start every (job, organization) that is due and not running; returns the tasks."""
        started = []
        for job in self.jobs:
            due = await asyncio.to_thread(job.due, self.database, utcnow())
            for organization_id in due:
                key = (job.name, organization_id)
                last = self._started.get(key)
                recent = last is not None and time.monotonic() - last < job.gap_seconds
                if key in self._running or recent:
                    continue
                self._started[key] = time.monotonic()
                task = asyncio.create_task(self._run(job, organization_id))
                self._running[key] = task
                task.add_done_callback(functools.partial(self._finished, key))
                started.append(task)
        return started

    def _finished(self, key: tuple[str, str], task: asyncio.Task[object]) -> None:
        self._running.pop(key, None)

    async def _run(self, job: SalesforceJob, organization_id: str) -> object:
        try:
            result = await asyncio.to_thread(
                job.run, self.database, organization_id, self.settings, self.box
            )
        except Exception:  # one organization's trouble must not stop the others'
            log.exception("Salesforce job %s failed for organization %s", job.name, organization_id)
            return None
        self.results.append((job.name, organization_id, result))
        self.poke()  # e.g. the mirror's first read makes the writer due: no need to wait
        return result

    async def tick(self) -> list[object]:
        """Start what is due and wait for it (one pass; tests and one-shot runs)."""
        return list(await asyncio.gather(*await self.start_due()))

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.start_due()
                except Exception:  # the database is briefly away: next tick
                    log.exception("Salesforce jobs pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self._wake, stop), timeout=self.tick_seconds)
        finally:
            # A drain cut short converges on the next start (its lease runs out).
            tasks = list(self._running.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop = self._wake = None


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def queue_salesforce_jobs(
    database: Database,
    queue: Callable[[str, str], None],
    queued_at: dict[tuple[str, str], float],
    jobs: list[SalesforceJob] | None = None,
) -> list[tuple[str, str]]:
    """Send each due (job, organization) to the workers with ``queue(name, organization)``,
    unless it was sent within the job's gap (``queued_at`` remembers when). Returns what
    was sent."""
    sent: list[tuple[str, str]] = []
    for job in jobs if jobs is not None else salesforce_jobs():
        for organization_id in job.due(database, utcnow()):
            key = (job.name, organization_id)
            last = queued_at.get(key)
            if last is not None and time.monotonic() - last < job.gap_seconds:
                continue
            try:
                queue(job.name, organization_id)
            except Exception:  # the broker is away: the next pass tries again
                log.exception("could not queue Salesforce job %s", job.name)
                return sent
            queued_at[key] = time.monotonic()
            sent.append(key)
    return sent
