"""Calendar Scheduling's background job: recovering bookings left pending.

A booking is committed (with its claims) before Outlook hears of it, so a process that
stops between the two leaves a *pending* booking holding its time. ``PendingBookingRecovery``
looks for bookings pending longer than a short grace period (a booking request still
talking to Outlook is younger than that) and lets ``SchedulingService.recover`` finish or
release each one, in a unit of work of its own.

The web app runs it for its lifetime (``m365sync.web.app``): only the web app makes
bookings, so wherever bookings are made, their recovery runs too. Several web processes
may run it at once; ``recover`` is idempotent (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from m365sync.db.session import Database
from m365sync.scheduling.models import BookingStatus
from m365sync.scheduling.repository import SchedulingRepository
from m365sync.scheduling.service import SchedulingService

__all__ = ["PENDING_GRACE", "RECOVERY_INTERVAL_SECONDS", "PendingBookingRecovery"]

log = logging.getLogger(__name__)

PENDING_GRACE = timedelta(minutes=2)
"""How long a booking may stay pending before it is taken for abandoned. A booking
request gives up on Outlook well within this (the Graph client's timeouts and retries)."""
RECOVERY_INTERVAL_SECONDS = 60.0


class PendingBookingRecovery:
    """Finds stale pending bookings and recovers them: once at ``start`` (a restart after a
    crash), then every ``interval_seconds`` until ``stop``."""

    def __init__(
        self,
        database: Database,
        service: Callable[[Session], SchedulingService],
        *,
        grace: timedelta = PENDING_GRACE,
        interval_seconds: float = RECOVERY_INTERVAL_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.service = service
        self.grace = grace
        self.interval_seconds = interval_seconds
        self.now = now
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, BookingStatus | None]:
        """Recover every stale pending booking; returns each one's status afterwards."""
        with self.database.session() as session:
            stale = SchedulingRepository(session).stale_pending_bookings(self.now() - self.grace)
        outcome: dict[str, BookingStatus | None] = {}
        for booking_id in stale:
            try:
                with self.database.session() as session:
                    outcome[booking_id] = await self.service(session).recover(booking_id)
            except Exception:  # one booking's trouble must not stop the others' recovery
                log.exception("could not recover pending booking %s", booking_id)
        return outcome

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run_forever(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=30)
            self._task = None

    async def _run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                recovered = await self.run_once()
            except Exception:  # e.g. the database is briefly unreachable: try next time
                log.exception("pending booking recovery failed")
            else:
                if recovered:
                    log.info("recovered pending bookings: %s", recovered)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_seconds)
