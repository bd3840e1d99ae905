"""Booking through the public pages against m365sim: one Outlook event with the invitee as
attendee (Exchange's invitation recorded), one CRM event, cancel and reschedule
propagating, round-robin balance, collective availability, signed links, and the cases
where scheduling is unavailable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from m365sync.crm.models import CrmContact, PersonKind
from m365sync.scheduling.models import BookingClaim, BookingStatus
from support.crm import InspectableCrm
from support.scheduling_world import (
    SchedulingWorld,
    book_form,
    graph_time,
    links_on,
    local,
    next_weekday,
    slots_on_page,
    token_from,
)

INVITEE = "pat@fabrikam.example"


def book_path(world: SchedulingWorld, slug: str) -> str:
    return f"/book/{world.organization.slug}/{slug}"


def events_named(world: SchedulingWorld, mailbox: str, name: str) -> list[dict]:
    return [e for e in world.sim_events(mailbox) if name in (e.get("subject") or "")]


def test_booking_creates_one_outlook_event_one_invitation_and_one_crm_event(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type(
        "demo",
        ["adele@contoso.com"],
        name="Product demo",
        online_meeting=True,
        questions=[{"label": "What would you like to see?", "required": True}],
    )
    monday = next_weekday(0)
    start = local(monday, 10)

    # A required question left empty: the form says what to fix and nothing is booked.
    refused = book_form(client, book_path(world, "demo"), start)
    assert refused.status_code == 422
    assert "Please answer: What would you like to see?" in refused.text
    assert world.bookings() == []

    question_field = next(part.split('"')[0] for part in refused.text.split('name="q_')[1:])
    response = book_form(
        client, book_path(world, "demo"), start, **{f"q_{question_field}": "Reporting"}
    )
    assert response.status_code == 303, response.text
    confirmation = client.get(response.headers["location"])
    assert "You&#39;re booked" in confirmation.text or "You're booked" in confirmation.text
    assert set(links_on(confirmation.text)) == {"cancel", "reschedule"}

    events = events_named(world, "adele@contoso.com", "Product demo")
    assert len(events) == 1
    event = events[0]
    attendees = [a["emailAddress"]["address"].lower() for a in event["attendees"]]
    assert attendees == [INVITEE]
    assert event["isOnlineMeeting"] is True
    assert datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC) == start
    requests = world.invitations(kind="request", to=INVITEE)
    assert len(requests) == 1 and requests[0]["iCalUId"] == event["iCalUId"]

    crm_events = world.crm_events()
    assert len(crm_events) == 1
    assert crm_events[0].external_id == event["iCalUId"]
    assert crm_events[0].starts_at == start
    with world.database.session() as session:
        crm = InspectableCrm(session, world.organization.id)
        leads = [lead for lead in crm.leads() if lead.email == INVITEE]
        assert len(leads) == 1  # unknown invitee -> a lead (the organization's default)
        assert crm.activity_people(crm_events[0].id) == [(PersonKind.LEAD, leads[0].id)]
    [booking] = world.bookings()
    assert booking.status is BookingStatus.CONFIRMED
    assert booking.graph_event_id == event["id"]


def test_known_contact_is_linked_and_no_lead_is_created(
    world: SchedulingWorld, client: TestClient
) -> None:
    with world.database.session() as session:
        contact = CrmContact(organization_id=world.organization.id, email=INVITEE, first_name="Pat")
        session.add(contact)
        session.flush()
        contact_id = contact.id
    world.meeting_type("intro", ["adele@contoso.com"])
    response = book_form(client, book_path(world, "intro"), local(next_weekday(1), 9))
    assert response.status_code == 303
    [event] = world.crm_events()
    with world.database.session() as session:
        crm = InspectableCrm(session, world.organization.id)
        assert crm.activity_people(event.id) == [(PersonKind.CONTACT, contact_id)]
        assert crm.leads() == []


def test_a_slot_that_became_busy_is_refused_with_other_times(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"])
    start = local(next_weekday(2), 14)
    # The rep accepts another meeting in Outlook after the invitee loaded the page.
    world.add_event(
        "adele@contoso.com",
        subject="Board meeting",
        start=graph_time(start),
        end=graph_time(start + timedelta(hours=1)),
        sendInvitations=False,
    )
    response = book_form(client, book_path(world, "intro"), start)
    assert response.status_code == 409
    assert "no longer available" in response.text
    offered = slots_on_page(response.text)
    assert offered and start not in offered
    assert world.bookings() == []
    assert events_named(world, "adele@contoso.com", "Intro") == []


def test_cancel_updates_outlook_and_the_crm(world: SchedulingWorld, client: TestClient) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    start = local(next_weekday(3), 11)
    confirmation = client.get(
        book_form(client, book_path(world, "intro"), start).headers["location"]
    )
    cancel_token = links_on(confirmation.text)["cancel"]
    [event] = events_named(world, "adele@contoso.com", "Intro call")

    assert "Cancel this meeting?" in client.get(f"/book/_/cancel/{cancel_token}").text
    done = client.post(f"/book/_/cancel/{cancel_token}", data={"reason": "Found another date"})
    assert done.status_code == 200 and "Meeting cancelled" in done.text

    assert events_named(world, "adele@contoso.com", "Intro call") == []
    cancellations = world.invitations(kind="cancellation", to=INVITEE)
    assert [c["iCalUId"] for c in cancellations] == [event["iCalUId"]]
    [crm_event] = world.crm_events()
    assert crm_event.is_cancelled
    [booking] = world.bookings()
    assert booking.status is BookingStatus.CANCELLED
    with world.database.session() as session:
        assert session.query(BookingClaim).count() == 0  # the time is free again
    again = client.post(f"/book/_/cancel/{cancel_token}", data={})
    assert again.status_code == 409 and "already cancelled" in again.text
    # ...and the time can be booked again.
    assert book_form(client, book_path(world, "intro"), start).status_code == 303


def test_reschedule_moves_the_outlook_event_and_the_crm_event(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    day = next_weekday(1)
    first, moved = local(day, 9), local(day, 15, 30)
    confirmation = client.get(
        book_form(client, book_path(world, "intro"), first).headers["location"]
    )
    old_links = links_on(confirmation.text)
    [event] = events_named(world, "adele@contoso.com", "Intro call")

    choices = client.get(
        f"/book/_/reschedule/{old_links['reschedule']}",
        params={"tz": "America/Los_Angeles", "day": day.isoformat()},
    )
    assert choices.status_code == 200
    offered = slots_on_page(choices.text)
    assert moved in offered
    # Its own current time is not blocked by itself.
    assert local(day, 9, 0) in offered or local(day, 9, 30) in offered

    response = client.post(
        f"/book/_/reschedule/{old_links['reschedule']}",
        data={"start": moved.isoformat(), "tz": "America/Los_Angeles"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    [after] = events_named(world, "adele@contoso.com", "Intro call")
    assert after["id"] == event["id"] and after["iCalUId"] == event["iCalUId"]
    assert datetime.fromisoformat(after["start"]["dateTime"][:19]).replace(tzinfo=UTC) == moved
    assert len(world.invitations(kind="update", to=INVITEE)) == 1
    [crm_event] = world.crm_events()
    assert crm_event.starts_at == moved and not crm_event.is_cancelled

    # Links from before the move no longer work; the new confirmation's do.
    stale = client.get(f"/book/_/cancel/{old_links['cancel']}")
    assert stale.status_code == 403 and "moved" in stale.text
    new_links = links_on(client.get(response.headers["location"]).text)
    assert client.get(f"/book/_/cancel/{new_links['cancel']}").status_code == 200


def test_forged_and_expired_links_are_rejected(world: SchedulingWorld, client: TestClient) -> None:
    world.meeting_type("intro", ["adele@contoso.com"])
    response = book_form(client, book_path(world, "intro"), local(next_weekday(4), 10))
    view_token = token_from(response.headers["location"])
    cancel_token = links_on(client.get(response.headers["location"]).text)["cancel"]

    forged = cancel_token[:-3] + ("AAA" if not cancel_token.endswith("AAA") else "BBB")
    page = client.get(f"/book/_/cancel/{forged}")
    assert page.status_code == 403 and "not valid" in page.text
    assert client.post(f"/book/_/cancel/{forged}", data={}).status_code == 403
    # A view link is not a cancel link.
    assert client.get(f"/book/_/cancel/{view_token}").status_code == 403
    # A token signed with another installation's key.
    from m365sync.scheduling.tokens import BookingAction, BookingTokens

    [booking] = world.bookings()
    other = BookingTokens(b"another installation's key....").issue(
        booking.id,
        BookingAction.CANCEL,
        version=1,
        meeting_start=booking.start,
        meeting_end=booking.end,
    )
    assert client.get(f"/book/_/cancel/{other}").status_code == 403
    # Expired: the meeting has started (issued for a booking that starts in the past).
    expired = world.tokens.issue(
        booking.id,
        BookingAction.CANCEL,
        version=1,
        meeting_start=datetime.now(UTC) - timedelta(minutes=1),
        meeting_end=datetime.now(UTC) + timedelta(minutes=29),
    )
    page = client.get(f"/book/_/cancel/{expired}")
    assert page.status_code == 403 and "expired" in page.text
    assert world.bookings()[0].status is BookingStatus.CONFIRMED


def test_round_robin_balances_bookings_between_free_reps(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type(
        "sales", ["adele@contoso.com", "lee@contoso.com"], kind="round_robin", name="Sales call"
    )
    day = next_weekday(1)
    for hour in (9, 10, 11, 13):
        response = book_form(
            client,
            book_path(world, "sales"),
            local(day, hour),
            email=f"buyer{hour}@fabrikam.example",
        )
        assert response.status_code == 303, response.text
    organizers = [b.organizer_member_id for b in world.bookings()]
    assert organizers.count(world.members["adele@contoso.com"]) == 2
    assert organizers.count(world.members["lee@contoso.com"]) == 2
    assert len(events_named(world, "adele@contoso.com", "Sales call")) == 2
    assert len(events_named(world, "lee@contoso.com", "Sales call")) == 2


def test_round_robin_skips_a_busy_rep(world: SchedulingWorld, client: TestClient) -> None:
    world.meeting_type("sales", ["adele@contoso.com", "lee@contoso.com"], kind="round_robin")
    start = local(next_weekday(2), 10)
    world.add_event(
        "adele@contoso.com",
        subject="Busy",
        start=graph_time(start),
        end=graph_time(start + timedelta(hours=1)),
        sendInvitations=False,
    )
    for n in range(2):
        at = start + timedelta(minutes=30 * n)
        assert (
            book_form(client, book_path(world, "sales"), at, email=f"b{n}@x.example").status_code
            == 303
        )
    assert {b.organizer_member_id for b in world.bookings()} == {world.members["lee@contoso.com"]}


def test_collective_link_offers_only_times_when_everyone_is_free(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type(
        "together", ["adele@contoso.com", "lee@contoso.com"], kind="collective", name="Joint call"
    )
    day = next_weekday(3)
    world.add_event(
        "lee@contoso.com",
        subject="Lee busy",
        start=graph_time(local(day, 8)),
        end=graph_time(local(day, 12)),
        sendInvitations=False,
    )
    page = client.get(
        book_path(world, "together"), params={"tz": "America/Los_Angeles", "day": day.isoformat()}
    )
    times = [s.strftime("%H:%M") for s in slots_on_page(page.text) if s.date() == day]
    assert times[0] == "12:00"
    response = book_form(client, book_path(world, "together"), local(day, 12))
    assert response.status_code == 303
    [event] = events_named(world, "adele@contoso.com", "Joint call")
    attendees = {a["emailAddress"]["address"].lower() for a in event["attendees"]}
    assert attendees == {INVITEE, "lee@contoso.com"}


def test_admin_switch_off_hides_the_member(world: SchedulingWorld, client: TestClient) -> None:
    world.meeting_type("intro", ["adele@contoso.com"])
    with world.database.session() as session:
        world.service(session).set_member_enabled(
            world.organization.id, world.members["adele@contoso.com"], False
        )
    page = client.get(book_path(world, "intro"), params={"tz": "UTC"})
    assert slots_on_page(page.text) == []
    # The customer is told no more than that (the admin's scheduling page says why).
    assert "No times are available right now." in page.text
    assert "switched off" not in page.text
    assert (
        book_form(client, book_path(world, "intro"), local(next_weekday(1), 9)).status_code == 409
    )


def test_unknown_booking_page_names_the_fix(world: SchedulingWorld, client: TestClient) -> None:
    page = client.get(f"/book/{world.organization.slug}/nope")
    assert page.status_code == 404 and "Check the link" in page.text
