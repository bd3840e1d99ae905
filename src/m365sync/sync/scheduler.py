"""The scheduler: the in-process one (the default; ``m365sync serve`` runs it), and the
passes the elected ``m365sync scheduler`` runs when scaled out (``prepare_units``,
``queue_due_units``, ``renew_subscriptions``; ``m365sync.workers.scheduler`` runs them).

Units run independently: each due unit runs as its own task, and the loop only starts
the due units that are not already running (at most ``sync_max_parallel_units`` at once),
then waits for a wake-up (a webhook's ``dispatch``, a finished unit, or the tick). So a
long first sync of one mailbox never delays another mailbox's notified unit. Every unit
shares the runtime's ``RequestBudget`` (a process-wide cap on Graph requests in flight) on
top of the Graph client's 4-per-mailbox limit (both units of a mailbox use the same client).

Before starting units, a pass resets stuck units and makes sure every member of every
organization has its units. When a unit runs next is decided by ``run_unit``: the poll
interval with jitter after a success (longer while its subscriptions are healthy), the
``Retry-After`` when throttled, exponential back-off on transient errors, and the parked
re-check interval on permanent ones.

About once an hour (``certificate_check_seconds``) the loop also starts, in the background,
the renewal of the certificates m365sync manages for the app registrations it set up itself
(``m365sync.connections.certificate_renewal``): the one scheduler of a deployment is where
this periodic work runs, so it runs once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from m365sync.connections.certificate_renewal import RenewalResult, renew_due_certificates
from m365sync.connections.models import ConnectionKind
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.microsoft.graph import RequestBudget
from m365sync.settings import Settings, get_settings
from m365sync.sync.features import SyncFeature
from m365sync.sync.notifications import RENEW_BEFORE, ensure_subscriptions
from m365sync.sync.repository import SyncRepository
from m365sync.sync.service import UnitResult, run_unit, worker_name

__all__ = [
    "CERTIFICATE_CHECK_SECONDS",
    "SCHEDULER_LEASE",
    "Scheduler",
    "prepare_units",
    "queue_due_units",
    "renew_subscriptions",
]

log = logging.getLogger(__name__)

CERTIFICATE_CHECK_SECONDS = 3600.0
SCHEDULER_LEASE = "scheduler"
"""The name the scaled-out scheduler is elected under (its ``scheduler_leases`` row)."""


def prepare_units(database: Database, settings: Settings) -> None:
    """Reset units left in a running stage by a process that died, and make sure every
    member of every organization has its units (Task Sync only with their own Office 365
    connection)."""
    with database.session() as session:
        repo = SyncRepository(session)
        now = utcnow()
        for unit in repo.reset_stuck(now, timedelta(seconds=settings.sync_stuck_after_seconds)):
            log.warning("reset stuck sync unit %s (%s)", unit.id, unit.feature.value)
        connections = ConnectionRepository(session)
        for member in repo.find_members():
            repo.ensure_unit(member, SyncFeature.EMAIL)
            repo.ensure_unit(member, SyncFeature.CALENDAR)
            own = connections.user_connection(member.organization_id, member.id)
            if own is not None and own.kind == ConnectionKind.OFFICE365:
                repo.ensure_unit(member, SyncFeature.TASKS)


def queue_due_units(
    database: Database,
    settings: Settings,
    queue: Callable[[str, str], None],
    limit: int,
) -> list[str]:
    """Hand up to ``limit`` due units to the workers' queue: those nobody runs and nobody
    queued within one lease (so a message lost with its worker is replaced). Units that
    synced before go first (their incremental runs are short), then first syncs, each the
    longest due first, with at most ``sync_max_first_syncs`` first syncs running or queued
    at once, so pool processes stay free for incremental syncs however large the new
    mailboxes are. Each gets a new ticket, committed before ``queue(unit_id, ticket)``
    sends it, so the worker that takes the message finds it. Returns the units queued."""
    now = utcnow()
    with database.session() as session:
        repo = SyncRepository(session)
        requeue_before = now - timedelta(seconds=settings.sync_lease_seconds)
        first_syncs = settings.sync_max_first_syncs
        if first_syncs is not None:
            first_syncs = max(0, first_syncs - repo.first_syncs_in_flight(now, requeue_before))
        due = repo.units_to_queue(now, limit, requeue_before, first_syncs=first_syncs)
        tickets = {unit_id: repo.mark_queued(unit_id) for unit_id in due}
    queued = []
    for unit_id, ticket in tickets.items():
        try:
            queue(unit_id, ticket)
        except Exception:  # the broker is away: the next pass tries again
            log.exception("could not queue sync unit %s", unit_id)
            with database.session() as session:
                SyncRepository(session).withdraw_ticket(unit_id, ticket)
            break
        queued.append(unit_id)
    return queued


async def renew_subscriptions(
    database: Database,
    runtime: ConnectionRuntime,
    notification_url: str,
    *,
    skip: Collection[str] = (),
    at_once: int = 4,
) -> list[str]:
    """Create, renew or reauthorize the change-notification subscriptions of active units
    that have none yet, or one that is unhealthy or expiring soon (``skip``: units tried
    lately). Returns the units handled."""

    def needing() -> list[str]:
        with database.session() as session:
            return SyncRepository(session).units_needing_subscriptions(utcnow(), RENEW_BEFORE)

    units = [u for u in await asyncio.to_thread(needing) if u not in skip]
    gate = asyncio.Semaphore(at_once)

    async def one(unit_id: str) -> None:
        async with gate:
            try:
                await ensure_subscriptions(database, runtime, unit_id, notification_url)
            except Exception:  # one unit's trouble must not stop the others'
                log.exception("could not renew the subscriptions of sync unit %s", unit_id)

    await asyncio.gather(*(one(u) for u in units))
    return units


class Scheduler:
    def __init__(
        self,
        database: Database,
        runtime: ConnectionRuntime,
        settings: Settings | None = None,
        *,
        tick_seconds: float = 5.0,
        certificate_check_seconds: float = CERTIFICATE_CHECK_SECONDS,
    ) -> None:
        self.database = database
        self.runtime = runtime
        self.settings = settings or get_settings()
        self.tick_seconds = tick_seconds
        self.certificate_check_seconds = certificate_check_seconds
        self._next_certificate_check = 0.0
        self._renewal: asyncio.Task[list[RenewalResult]] | None = None
        self.owner = worker_name()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[UnitResult]] = {}
        self.results: list[UnitResult] = []

    @property
    def running(self) -> set[str]:
        """Ids of the units running now."""
        return set(self._tasks)

    def dispatch(self, unit_id: str) -> None:
        """Make ``unit_id`` due now and wake the loop (thread-safe; called by the webhook)."""
        with self.database.session() as session:
            SyncRepository(session).schedule_now(unit_id)
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def _plan(self, running: set[str], limit: int) -> list[str]:
        prepare_units(self.database, self.settings)
        with self.database.session() as session:
            due = SyncRepository(session).due_units(utcnow(), limit + len(running))
            return [u.id for u in due if u.id not in running][:limit]

    async def start_due(
        self, budget: RequestBudget | None = None
    ) -> list[asyncio.Task[UnitResult]]:
        """Start every due unit that is not running yet, each as its own task (up to the
        free parallel slots); returns the tasks started. Their Graph requests count against
        ``budget`` (default: the runtime's for this event loop)."""
        budget = budget or self.runtime.request_budget()
        free = self.settings.sync_max_parallel_units - len(self._tasks)
        if free <= 0:
            return []
        due = await asyncio.to_thread(self._plan, set(self._tasks), free)
        started = []
        for unit_id in due:
            if unit_id in self._tasks:  # started while we were planning
                continue
            task = asyncio.create_task(self._run(unit_id, budget))
            self._tasks[unit_id] = task
            task.add_done_callback(functools.partial(self._finished, unit_id))
            started.append(task)
        return started

    async def _run(self, unit_id: str, budget: RequestBudget) -> UnitResult:
        if self.settings.webhook_url:
            await ensure_subscriptions(
                self.database, self.runtime, unit_id, self.settings.webhook_url
            )
        return await run_unit(
            self.database,
            self.runtime,
            unit_id,
            owner=self.owner,
            settings=self.settings,
            budget=budget,
        )

    def _finished(self, unit_id: str, task: asyncio.Task[UnitResult]) -> None:
        self._tasks.pop(unit_id, None)
        if not task.cancelled():
            error = task.exception()
            if error is None:
                self.results.append(task.result())
            else:
                log.error("sync unit %s stopped unexpectedly", unit_id, exc_info=error)
        if self._wake is not None:
            self._wake.set()  # a slot is free: more due units may start

    def renew_certificates_when_due(self) -> asyncio.Task[list[RenewalResult]] | None:
        """Start the certificate renewal job in the background (it may wait minutes for
        Entra ID, which the loop must not), at most once per ``certificate_check_seconds``
        and never twice at once; returns the task started, or None."""
        moment = time.monotonic()
        running = self._renewal is not None and not self._renewal.done()
        if running or moment < self._next_certificate_check:
            return None
        self._next_certificate_check = moment + self.certificate_check_seconds
        self._renewal = asyncio.create_task(self._renew_certificates())
        return self._renewal

    async def _renew_certificates(self) -> list[RenewalResult]:
        try:
            return await renew_due_certificates(self.database, self.runtime)
        except Exception:  # the next check tries again
            log.exception("certificate renewal pass failed")
            return []

    async def tick(self, budget: RequestBudget | None = None) -> list[UnitResult]:
        """Start the due units and wait for those (one pass; tests and one-shot runs)."""
        started = await self.start_due(budget)
        return list(await asyncio.gather(*started))

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    self.renew_certificates_when_due()
                    await self.start_due()
                except Exception:
                    log.exception("scheduler pass failed")
                waiters = [
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                await asyncio.wait(
                    waiters, timeout=self.tick_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            # Units still running stop here; what they stored is committed page by page,
            # and each gives its lease back as it stops, so the next start resumes them.
            tasks: list[asyncio.Task[Any]] = list(self._tasks.values())
            if self._renewal is not None and not self._renewal.done():
                tasks.append(self._renewal)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop = self._wake = None
            await self.runtime.aclose()
