"""Calendar Scheduling for a host whose mailbox is on an Exchange Server: free/busy and
working hours from GetUserAvailability, the booking written over EWS (Exchange's
invitation recorded), reschedule and cancel, all against m365sim's Exchange Server read
by the product's exchangelib client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from m365sync.microsoft.ews import close_exchange_connections
from support.ews_clients import turn_on_exchange
from support.ews_world import add_exchange_service_account
from support.scheduling_world import (
    SchedulingWorld,
    book_form,
    graph_time,
    links_on,
    local,
    next_weekday,
    slots_on_page,
)

ADELE = "adele@contoso.com"
INVITEE = "pat@fabrikam.example"


@pytest.fixture
def exchange_world(world: SchedulingWorld) -> Iterator[SchedulingWorld]:
    """The scheduling world with its mailboxes on an Exchange Server 2019, served by an
    Exchange service account only (SQLite, then PostgreSQL)."""
    close_exchange_connections()
    turn_on_exchange(world.sim)
    add_exchange_service_account(
        world.sim, world.database, world.runtime, world.organization.id, replace=True
    )
    yield world
    close_exchange_connections()


@pytest.fixture
def ews_client(exchange_world: SchedulingWorld) -> Iterator[TestClient]:
    with TestClient(exchange_world.app) as test_client:
        yield test_client


def book_path(world: SchedulingWorld, slug: str) -> str:
    return f"/book/{world.organization.slug}/{slug}"


def test_free_busy_and_booking_over_ews(
    exchange_world: SchedulingWorld, ews_client: TestClient
) -> None:
    world, client = exchange_world, ews_client
    world.meeting_type("intro", [ADELE], name="Intro call")
    day = next_weekday(2)
    busy = local(day, 14)
    world.add_event(
        ADELE,
        subject="Board meeting",
        start=graph_time(busy),
        end=graph_time(busy + timedelta(hours=1)),
        sendInvitations=False,
    )
    page = client.get(book_path(world, "intro"), params={"day": day.isoformat(), "tz": "UTC"})
    assert page.status_code == 200, page.text
    offered = slots_on_page(page.text)
    assert local(day, 10) in offered  # inside Adele's 08:00-17:00 Pacific working hours
    assert busy not in offered  # busy in Exchange's free/busy
    assert local(day, 7) not in offered and local(day, 17) not in offered
    ews = world.control.get("/_sim/requests", params={"path_contains": "/EWS/"}).json()
    assert ews["value"], "free/busy was read over EWS"

    start = local(day, 10)
    booked = book_form(client, book_path(world, "intro"), start)
    assert booked.status_code == 303, booked.text
    [event] = [e for e in world.sim_events(ADELE) if "Intro call" in (e.get("subject") or "")]
    assert [a["emailAddress"]["address"].lower() for a in event["attendees"]] == [INVITEE]
    assert datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC) == start
    requests = world.invitations(kind="request", to=INVITEE)
    assert [r["iCalUId"] for r in requests] == [event["iCalUId"]]
    [crm_event] = world.crm_events()
    assert crm_event.external_id == event["iCalUId"]

    # The booked time is busy now.
    again = slots_on_page(
        client.get(book_path(world, "intro"), params={"day": day.isoformat(), "tz": "UTC"}).text
    )
    assert start not in again

    # Rescheduled: the same Exchange meeting moves, Exchange sends the update.
    moved = local(day, 15, 30)
    links = links_on(client.get(booked.headers["location"]).text)
    response = client.post(
        f"/book/_/reschedule/{links['reschedule']}",
        data={"start": moved.isoformat(), "tz": "America/Los_Angeles"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    [after] = [e for e in world.sim_events(ADELE) if "Intro call" in (e.get("subject") or "")]
    assert after["iCalUId"] == event["iCalUId"]
    assert datetime.fromisoformat(after["start"]["dateTime"][:19]).replace(tzinfo=UTC) == moved
    assert len(world.invitations(kind="update", to=INVITEE)) == 1
    [crm_event] = world.crm_events()
    assert crm_event.starts_at == moved

    cancel_token = links_on(client.get(response.headers["location"]).text)["cancel"]
    done = client.post(f"/book/_/cancel/{cancel_token}", data={"reason": "Another date"})
    assert done.status_code == 200, done.text
    assert [e for e in world.sim_events(ADELE) if "Intro call" in (e.get("subject") or "")] == []
    cancellations = world.invitations(kind="cancellation", to=INVITEE)
    assert [c["iCalUId"] for c in cancellations] == [event["iCalUId"]]
