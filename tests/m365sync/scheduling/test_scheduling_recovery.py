"""Bookings a stopped process left pending: the booking and its claim were committed, then
the process died before (or while) Outlook heard of it. Recovery must end with exactly one
Outlook event, one invitation and one CRM event, or with the time released; and the app
runs it when it starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.scheduling.models import Booking, BookingClaim, BookingStatus
from m365sync.scheduling.recovery import PendingBookingRecovery
from m365sync.scheduling.repository import SchedulingRepository
from m365sync.scheduling.schemas import InviteeInput
from m365sync.scheduling.service import SchedulingService
from m365sync.web.pages.scheduling import install_scheduling
from m365sync.web.pages.scheduling import router as scheduling_router
from support.scheduling_world import SchedulingWorld, local, next_weekday

ADELE = "adele@contoso.com"
INVITEE = "pat@fabrikam.example"


async def reserve(world: SchedulingWorld, slug: str, start: datetime) -> str:
    """What the booking page does up to its first commit; the process then dies."""
    with world.database.session() as session:
        booking = await world.service(session).reserve(
            world.organization.slug,
            slug,
            start,
            InviteeInput(name="Pat Buyer", email=INVITEE, time_zone="Europe/Berlin"),
        )
        return booking.id


def recovery_at(world: SchedulingWorld, moment: Callable[[], datetime]) -> PendingBookingRecovery:
    """The app's recovery job, with a clock of the test's choosing."""

    def service(session: Session) -> SchedulingService:
        scheduling = world.scheduling
        return SchedulingService(
            session,
            calendars=scheduling.calendars,
            crm=EmbeddedCrm,
            tokens=scheduling.tokens,
            now=moment,
        )

    return PendingBookingRecovery(world.database, service, now=moment)


def minutes_from_now(minutes: int) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + timedelta(minutes=minutes)


def booking(world: SchedulingWorld, booking_id: str) -> Booking:
    with world.database.session() as session:
        found = session.get(Booking, booking_id)
        assert found is not None
        return found


def claims(world: SchedulingWorld, booking_id: str) -> int:
    with world.database.session() as session:
        return int(
            session.scalar(select(func.count()).where(BookingClaim.booking_id == booking_id)) or 0
        )


def demo_events(world: SchedulingWorld) -> list[dict[str, Any]]:
    return [e for e in world.sim_events(ADELE) if "Product demo" in (e.get("subject") or "")]


def assert_booked_once(world: SchedulingWorld, booking_id: str) -> None:
    [event] = demo_events(world)
    assert [a["emailAddress"]["address"].lower() for a in event["attendees"]] == [INVITEE]
    assert len(world.invitations(kind="request", to=INVITEE)) == 1
    [crm_event] = world.crm_events()
    assert crm_event.external_id == event["iCalUId"]
    recovered = booking(world, booking_id)
    assert recovered.status is BookingStatus.CONFIRMED
    assert recovered.graph_event_id == event["id"]


async def test_a_booking_left_pending_before_outlook_is_completed_once(
    world: SchedulingWorld,
) -> None:
    world.meeting_type("demo", [ADELE], name="Product demo")
    start = local(next_weekday(0), 10)
    booking_id = await reserve(world, "demo", start)
    assert demo_events(world) == [] and world.crm_events() == []

    # Within the grace period the booking may still be on its way to Outlook: left alone.
    assert await recovery_at(world, minutes_from_now(0)).run_once() == {}
    assert booking(world, booking_id).status is BookingStatus.PENDING

    recovery = recovery_at(world, minutes_from_now(5))
    assert await recovery.run_once() == {booking_id: BookingStatus.CONFIRMED}
    assert await recovery.run_once() == {}  # nothing pending any more
    assert_booked_once(world, booking_id)


async def test_a_booking_whose_outlook_event_was_made_before_the_crash_gets_no_second_event(
    world: SchedulingWorld,
) -> None:
    world.meeting_type("demo", [ADELE], name="Product demo")
    start = local(next_weekday(1), 11)
    booking_id = await reserve(world, "demo", start)
    with world.database.session() as session:
        await world.service(session).confirm(booking_id)
        session.rollback()  # the process died before committing what Outlook answered
    assert len(demo_events(world)) == 1
    assert booking(world, booking_id).status is BookingStatus.PENDING

    # The retried create carries the same transactionId: Graph answers with the first event.
    outcome = await recovery_at(world, minutes_from_now(5)).run_once()
    assert outcome == {booking_id: BookingStatus.CONFIRMED}
    assert_booked_once(world, booking_id)


async def test_outlook_unavailable_keeps_the_booking_pending_until_it_answers(
    world: SchedulingWorld,
) -> None:
    world.meeting_type("demo", [ADELE], name="Product demo")
    start = local(next_weekday(2), 9)
    booking_id = await reserve(world, "demo", start)
    world.control.post(
        "/_sim/faults",
        json={"kind": "500", "method": "POST", "pathRegex": "/calendar/events$", "count": 50},
    ).raise_for_status()
    recovery = recovery_at(world, minutes_from_now(5))
    assert await recovery.run_once() == {booking_id: BookingStatus.PENDING}
    assert demo_events(world) == [] and claims(world, booking_id) > 0

    world.control.delete("/_sim/faults").raise_for_status()
    assert await recovery.run_once() == {booking_id: BookingStatus.CONFIRMED}
    assert_booked_once(world, booking_id)


async def test_a_booking_still_pending_when_its_meeting_starts_is_released(
    world: SchedulingWorld,
) -> None:
    world.meeting_type("demo", [ADELE], name="Product demo")
    start = local(next_weekday(3), 14)
    booking_id = await reserve(world, "demo", start)

    after_start = start.astimezone(UTC) + timedelta(minutes=1)
    outcome = await recovery_at(world, lambda: after_start).run_once()
    assert outcome == {booking_id: BookingStatus.FAILED}
    released = booking(world, booking_id)
    assert released.failure and "released" in released.failure
    assert claims(world, booking_id) == 0
    assert demo_events(world) == [] and world.crm_events() == []
    assert world.invitations(kind="request", to=INVITEE) == []

    # The time is free again: the same slot can be booked.
    again = await reserve(world, "demo", start)
    assert booking(world, again).status is BookingStatus.PENDING


def test_the_app_recovers_pending_bookings_when_it_starts(world: SchedulingWorld) -> None:
    world.meeting_type("demo", [ADELE], name="Product demo")
    start = local(next_weekday(4), 10).astimezone(UTC)
    with world.database.session() as session:
        repo = SchedulingRepository(session)
        meeting_type = repo.meeting_type_by_slug(world.organization.id, "demo")
        assert meeting_type is not None
        adele = world.members[ADELE]
        stranded = Booking(
            organization_id=world.organization.id,
            meeting_type_id=meeting_type.id,
            organizer_member_id=adele,
            host_member_ids=[adele],
            start=start,
            end=start + timedelta(minutes=meeting_type.duration_minutes),
            status=BookingStatus.PENDING,
            invitee_name="Pat Buyer",
            invitee_email=INVITEE,
            created_at=datetime.now(UTC) - timedelta(minutes=10),  # before the restart
        )
        repo.add_booking_with_claims(stranded, [adele])
        booking_id = stranded.id

    with TestClient(world.app):  # the app's lifespan: recovery runs at start
        deadline = time.monotonic() + 20
        while booking(world, booking_id).status is BookingStatus.PENDING:
            assert time.monotonic() < deadline, "the app did not recover the pending booking"
            time.sleep(0.1)
    assert_booked_once(world, booking_id)


def test_scheduling_is_installed_once(world: SchedulingWorld) -> None:
    mounted = [getattr(r, "original_router", r) for r in world.app.routes]
    assert mounted.count(scheduling_router) == 1
    with pytest.raises(RuntimeError, match="already installed"):
        install_scheduling(world.app)
    assert [getattr(r, "original_router", r) for r in world.app.routes] == mounted
