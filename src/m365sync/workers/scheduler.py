"""``m365sync scheduler``: the one process that decides what runs when, scaled out.

Run two (on two machines) for availability: one leads, elected through the database (the
``scheduler_leases`` row "scheduler"). The leader renews its lease every third of
``scheduler_election_seconds``; a standby tries as often and takes over once the leader's
lease has passed, so a scheduler that died (or lost the database) is replaced within one
election period. Only the leader runs the jobs; a leader that cannot renew stops them at
once. Two leaders for a moment (a leader frozen past its lease) would do no harm: units
are leased, queue tickets make duplicate messages do nothing, and booking recovery is
idempotent.

The jobs (``scale_out_jobs``), each run as its own task at its own interval, never two of
one at a time:

- ``units``: every member has its sync units; units stuck in a running stage are reset;
- ``queue``: due units to the Celery queue (every ``scheduler_interval_seconds``), the
  longest due first, keeping at most ``celery_queue_limit`` waiting there: the rest wait in
  the database, in order. A unit whose worker died is due again once its lease passes, so
  it is queued within lease + one interval;
- ``subscriptions`` (with ``webhook_url``): change-notification subscriptions created,
  renewed and reauthorized for active units;
- ``bookings``: Calendar Scheduling's bookings left pending are finished or released;
- ``certificates``: certificates m365sync manages for the app registrations it set up
  itself are renewed when due (``m365sync.connections.certificate_renewal``), hourly;
- ``salesforce`` (with ``queue_salesforce``): each organization's Salesforce mirror,
  writer and changes pull that is due (``m365sync.crm.salesforce_jobs``) to the Celery
  workers, every ``SALESFORCE_SECONDS``.

``jobs`` is a plain list: another periodic pass (a Salesforce mirror, say) is one more
``PeriodicJob`` and runs under the same election.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from m365sync.connections.certificate_renewal import renew_due_certificates
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm import open_crm
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.metrics import UNITS_QUEUED
from m365sync.scheduling.access import ConnectionCalendarAccess
from m365sync.scheduling.recovery import RECOVERY_INTERVAL_SECONDS, PendingBookingRecovery
from m365sync.scheduling.service import SchedulingService
from m365sync.scheduling.tokens import BookingTokens
from m365sync.settings import Settings
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import (
    CERTIFICATE_CHECK_SECONDS,
    SCHEDULER_LEASE,
    prepare_units,
    queue_due_units,
    renew_subscriptions,
)
from m365sync.sync.service import worker_name
from m365sync.workers.salesforce import queue_salesforce_jobs

__all__ = ["LEADER", "ElectedScheduler", "PeriodicJob", "scale_out_jobs"]

log = logging.getLogger(__name__)

LEADER = SCHEDULER_LEASE
HOUSEKEEPING_SECONDS = 60.0
SALESFORCE_SECONDS = 5.0


@dataclass
class PeriodicJob:
    """``run`` every ``interval_seconds`` while leading (the first time at once)."""

    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[object]]
    next_at: float = 0.0
    task: asyncio.Task[object] | None = field(default=None, repr=False)


class ElectedScheduler:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        jobs: list[PeriodicJob],
        *,
        owner: str | None = None,
        name: str = LEADER,
    ) -> None:
        self.database = database
        self.settings = settings
        self.jobs = jobs
        self.owner = owner or worker_name()
        self.name = name
        self.leading = False

    @property
    def renew_seconds(self) -> float:
        return self.settings.scheduler_election_seconds / 3

    def _elect(self) -> bool:
        with self.database.session() as session:
            return SyncRepository(session).take_scheduler_lease(
                self.name, self.owner, self.settings.scheduler_election_seconds
            )

    def _step_down(self) -> None:
        with self.database.session() as session:
            SyncRepository(session).release_scheduler_lease(self.name, self.owner)

    async def _stop_jobs(self) -> None:
        tasks = [job.task for job in self.jobs if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self.jobs:
            job.task = None
            job.next_at = 0.0

    def _start_due_jobs(self, now: float) -> None:
        for job in self.jobs:
            if now >= job.next_at and (job.task is None or job.task.done()):
                job.next_at = now + job.interval_seconds
                job.task = asyncio.create_task(self._run_job(job))

    async def _run_job(self, job: PeriodicJob) -> object:
        try:
            return await job.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the broker or the database is briefly away: next time
            log.exception("scheduler job %s failed", job.name)
            return None

    async def run_forever(self, stop: asyncio.Event) -> None:
        next_election = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_election:
                    try:
                        leading = await asyncio.to_thread(self._elect)
                    except Exception:
                        log.exception("could not reach the database to hold the election")
                        leading = False
                    next_election = now + self.renew_seconds
                    if leading != self.leading:
                        log.info(
                            "%s: %s",
                            self.owner,
                            "leading the scheduler jobs"
                            if leading
                            else "no longer leading: another scheduler leads",
                        )
                        if not leading:
                            await self._stop_jobs()
                    self.leading = leading
                if self.leading:
                    self._start_due_jobs(time.monotonic())
                wake = [next_election]
                if self.leading:
                    wake += [job.next_at for job in self.jobs]
                timeout = max(0.05, min(wake) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=timeout)
        finally:
            await self._stop_jobs()
            if self.leading:
                try:
                    await asyncio.to_thread(self._step_down)  # a standby takes over at once
                except Exception:
                    log.warning("could not step down; the lease simply runs out", exc_info=True)
                self.leading = False


def scale_out_jobs(
    database: Database,
    runtime: ConnectionRuntime,
    settings: Settings,
    *,
    queue: Callable[[str, str], None],
    queue_length: Callable[[], int],
    queue_salesforce: Callable[[str, str], None] | None = None,
) -> list[PeriodicJob]:
    """The scheduler's jobs; ``queue(unit_id, ticket)`` sends a unit to the workers,
    ``queue_length()`` says how many messages wait in their queue, and
    ``queue_salesforce(job, organization_id)`` sends a Salesforce job."""

    async def units() -> None:
        await asyncio.to_thread(prepare_units, database, settings)

    async def queue_units() -> int:
        room = settings.celery_queue_limit - await asyncio.to_thread(queue_length)
        if room <= 0:
            return 0
        queued = await asyncio.to_thread(queue_due_units, database, settings, queue, room)
        UNITS_QUEUED.inc(len(queued))
        return len(queued)

    tried: dict[str, datetime] = {}

    async def subscriptions() -> None:
        assert settings.webhook_url is not None
        now = utcnow()
        quiet = timedelta(seconds=settings.sync_parked_retry_seconds)
        for unit_id, at in list(tried.items()):
            if now - at > quiet:
                del tried[unit_id]
        handled = await renew_subscriptions(
            database, runtime, settings.webhook_url, skip=set(tried)
        )
        tried.update(dict.fromkeys(handled, now))

    tokens = BookingTokens.from_settings(settings)
    calendars = ConnectionCalendarAccess(runtime, database)

    def scheduling(session: Session) -> SchedulingService:
        return SchedulingService(session, calendars=calendars, crm=open_crm, tokens=tokens)

    recovery = PendingBookingRecovery(database, scheduling)

    async def bookings() -> None:
        recovered = await recovery.run_once()
        if recovered:
            log.info("recovered pending bookings: %s", recovered)

    async def certificates() -> None:
        await renew_due_certificates(database, runtime)

    sent_salesforce: dict[tuple[str, str], float] = {}

    async def salesforce() -> None:
        assert queue_salesforce is not None
        await asyncio.to_thread(queue_salesforce_jobs, database, queue_salesforce, sent_salesforce)

    jobs = [
        PeriodicJob("units", HOUSEKEEPING_SECONDS, units),
        PeriodicJob("queue", settings.scheduler_interval_seconds, queue_units),
        PeriodicJob("bookings", RECOVERY_INTERVAL_SECONDS, bookings),
        PeriodicJob("certificates", CERTIFICATE_CHECK_SECONDS, certificates),
    ]
    if settings.webhook_url:
        jobs.append(PeriodicJob("subscriptions", HOUSEKEEPING_SECONDS, subscriptions))
    if queue_salesforce is not None:
        jobs.append(PeriodicJob("salesforce", SALESFORCE_SECONDS, salesforce))
    return jobs
