"""A meeting type that books a room: a free room mailbox (from Graph's ``/places``) is
invited as a resource, names the meeting's location, and is kept on the booking."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from m365sync.scheduling.errors import NoRoomFree
from m365sync.scheduling.models import BookingStatus
from m365sync.scheduling.schemas import InviteeInput
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID
from support.scheduling_world import (
    SchedulingWorld,
    book_form,
    graph_time,
    local,
    local_times,
    next_weekday,
)

TENANT = f"/_sim/tenants/{DEMO_TENANT_ID}"


def add_room(world: SchedulingWorld, name: str, capacity: int) -> str:
    address = f"{name.lower()}@contoso.com"
    response = world.control.post(
        f"{TENANT}/users",
        json={
            "userPrincipalName": address,
            "displayName": name,
            "password": "unused-Passw0rd!",
            "userPurpose": "room",
            "capacity": capacity,
        },
    )
    response.raise_for_status()
    return address


def grant_place_read(world: SchedulingWorld) -> None:
    app = world.control.get(f"{TENANT}/apps/{SERVICE_APP_ID}").json()
    permissions = sorted({*app["applicationPermissions"], "Place.Read.All"})
    world.control.patch(
        f"{TENANT}/apps/{SERVICE_APP_ID}", json={"applicationPermissions": permissions}
    ).raise_for_status()
    world.control.post(
        f"{TENANT}/apps/{SERVICE_APP_ID}/consent", json={"permissions": ["Place.Read.All"]}
    ).raise_for_status()


def occupy(world: SchedulingWorld, room: str, start: datetime, end: datetime) -> None:
    """A meeting already in the room's calendar."""
    world.add_event(
        room, subject="Taken", start=graph_time(start), end=graph_time(end), sendInvitations=False
    )


def test_booking_invites_the_smallest_free_room(world: SchedulingWorld, client: TestClient) -> None:
    small = add_room(world, "Huddle", 4)
    large = add_room(world, "Atrium", 20)
    grant_place_read(world)
    world.meeting_type("onsite", ["adele@contoso.com"], name="On-site visit", book_room=True)
    start = local(next_weekday(1), 11)
    # The smallest room is taken at that time: the next one is booked.
    occupy(world, small, start, start + timedelta(minutes=30))

    response = book_form(client, f"/book/{world.organization.slug}/onsite", start)

    assert response.status_code == 303, response.text
    confirmation = client.get(response.headers["location"])
    assert "Atrium" in confirmation.text
    [event] = [e for e in world.sim_events("adele@contoso.com") if "On-site" in e["subject"]]
    resources = [
        a["emailAddress"]["address"].lower() for a in event["attendees"] if a["type"] == "resource"
    ]
    assert resources == [large]
    assert event["location"]["displayName"] == "Atrium"
    [booking] = world.bookings()
    assert (booking.status, booking.room_email, booking.room_name) == (
        BookingStatus.CONFIRMED,
        large,
        "Atrium",
    )
    assert [e.location for e in world.crm_events()] == ["Atrium"]


def test_without_place_read_all_the_page_names_the_permission(
    world: SchedulingWorld, client: TestClient
) -> None:
    add_room(world, "Huddle", 4)
    world.meeting_type("onsite", ["adele@contoso.com"], name="On-site visit", book_room=True)

    refused = book_form(
        client, f"/book/{world.organization.slug}/onsite", local(next_weekday(2), 11)
    )

    assert refused.status_code == 409
    assert "Place.Read.All" in refused.text
    assert [b.status for b in world.bookings()] == [BookingStatus.FAILED]


def test_only_times_with_a_free_room_are_offered(
    world: SchedulingWorld, client: TestClient
) -> None:
    room = add_room(world, "Huddle", 4)
    grant_place_read(world)
    world.clear_calendar("adele@contoso.com")
    world.meeting_type("onsite", ["adele@contoso.com"], name="On-site visit", book_room=True)
    day = next_weekday(2)
    page = f"/book/{world.organization.slug}/onsite"
    params = {"tz": "America/Los_Angeles", "day": day.isoformat()}
    # The only room is taken 10:00-10:30: Adele is free then, but the meeting needs a room.
    occupy(world, room, local(day, 10), local(day, 10, 30))

    busy = client.get(page, params=params)

    assert busy.status_code == 200
    assert "09:30" in local_times(busy.text, day)
    assert "10:00" not in local_times(busy.text, day)
    # Picking it anyway books nothing: the time is no longer available.
    refused = book_form(client, page, local(day, 10))
    assert refused.status_code == 409
    assert "no longer available" in refused.text
    assert world.bookings() == []

    world.clear_calendar(room)
    free = client.get(page, params=params)

    assert "10:00" in local_times(free.text, day)


async def test_no_free_room_at_confirmation_books_nothing_and_says_why(
    world: SchedulingWorld,
) -> None:
    """The room is taken between the slot check and the Outlook event (a race no slot check
    can close): the booking fails, its time is released, and the reason names the room."""
    room = add_room(world, "Huddle", 4)
    grant_place_read(world)
    world.meeting_type("onsite", ["adele@contoso.com"], name="On-site visit", book_room=True)
    start = local(next_weekday(2), 11)
    invitee = InviteeInput(name="Ian", email="ian@fabrikam.com", time_zone="UTC")
    with world.database.session() as session:
        service = world.service(session)
        booking = await service.reserve(world.organization.slug, "onsite", start, invitee)
        session.commit()
        occupy(world, room, start - timedelta(hours=1), start + timedelta(hours=2))

        with pytest.raises(NoRoomFree, match="No meeting room is free at that time"):
            await service.confirm(booking.id)
        session.commit()

    assert not [e for e in world.sim_events("adele@contoso.com") if "On-site" in e["subject"]]
    assert [b.status for b in world.bookings()] == [BookingStatus.FAILED]
