"""Never double-booked: two invitees booking the same slot at once get one success and one
clean refusal, through a real server, and the database itself refuses overlapping claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from m365sync.scheduling.models import Booking, BookingStatus
from m365sync.scheduling.repository import SchedulingRepository, SlotAlreadyClaimed
from support.scheduling_world import SchedulingWorld, book_form, live_server, local, next_weekday


@pytest.fixture
def server_url(world: SchedulingWorld) -> Iterator[str]:
    with live_server(world.app) as url:
        yield url


def test_two_invitees_booking_one_slot_at_once(world: SchedulingWorld, server_url: str) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    start = local(next_weekday(1), 10)
    path = f"/book/{world.organization.slug}/intro"
    barrier = threading.Barrier(2)
    results: dict[str, httpx.Response] = {}

    def attempt(who: str) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as client:
            barrier.wait()
            results[who] = book_form(client, path, start, email=f"{who}@fabrikam.example", name=who)

    threads = [threading.Thread(target=attempt, args=(who,)) for who in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [303, 409], {k: (r.status_code, r.text[-400:]) for k, r in results.items()}
    refused = next(r for r in results.values() if r.status_code == 409)
    assert "no longer available" in refused.text
    confirmed = [b for b in world.bookings() if b.status is BookingStatus.CONFIRMED]
    assert len(confirmed) == 1 and len(world.bookings()) == 1
    events = [e for e in world.sim_events("adele@contoso.com") if "Intro call" in e["subject"]]
    assert len(events) == 1
    assert len(world.crm_events()) == 1


def test_the_database_refuses_an_overlapping_claim_from_another_session(
    world: SchedulingWorld,
) -> None:
    """Both sessions passed every check; only the uniqueness of the claims stands between
    them (what protects two processes or two PostgreSQL connections)."""
    meeting_type_id = world.meeting_type("intro", ["adele@contoso.com"], duration_minutes=60)
    adele = world.members["adele@contoso.com"]
    start = local(next_weekday(2), 9)

    def booking(offset: timedelta, email: str) -> Booking:
        return Booking(
            organization_id=world.organization.id,
            meeting_type_id=meeting_type_id,
            organizer_member_id=adele,
            host_member_ids=[adele],
            start=start + offset,
            end=start + offset + timedelta(hours=1),
            invitee_name=email,
            invitee_email=email,
        )

    first = world.database.sessions()
    second = world.database.sessions()
    try:
        SchedulingRepository(first).add_booking_with_claims(
            booking(timedelta(0), "a@x.example"), [adele]
        )
        first.commit()
        # Overlapping by half an hour, a different start time: still refused.
        with pytest.raises(SlotAlreadyClaimed):
            SchedulingRepository(second).add_booking_with_claims(
                booking(timedelta(minutes=30), "b@x.example"), [adele]
            )
        second.rollback()
        # Back to back is fine.
        SchedulingRepository(second).add_booking_with_claims(
            booking(timedelta(hours=1), "c@x.example"), [adele]
        )
        second.commit()
    finally:
        first.close()
        second.close()
    assert sorted(b.invitee_email for b in world.bookings()) == ["a@x.example", "c@x.example"]
