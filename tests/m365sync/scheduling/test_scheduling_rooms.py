"""A meeting type that books a room: a free room mailbox (from Graph's ``/places``) is
invited as a resource, names the meeting's location, and is kept on the booking."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from m365sync.scheduling.models import BookingStatus
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID
from support.scheduling_world import SchedulingWorld, book_form, graph_time, local, next_weekday

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


def test_no_free_room_books_nothing_and_says_why(
    world: SchedulingWorld, client: TestClient
) -> None:
    room = add_room(world, "Huddle", 4)
    grant_place_read(world)
    world.meeting_type("onsite", ["adele@contoso.com"], name="On-site visit", book_room=True)
    start = local(next_weekday(2), 11)
    occupy(world, room, start - timedelta(hours=1), start + timedelta(hours=2))

    busy = book_form(client, f"/book/{world.organization.slug}/onsite", start)

    assert busy.status_code == 409
    assert "No meeting room is free at that time" in busy.text
    assert not [e for e in world.sim_events("adele@contoso.com") if "On-site" in e["subject"]]
    assert [b.status for b in world.bookings()] == [BookingStatus.FAILED]
