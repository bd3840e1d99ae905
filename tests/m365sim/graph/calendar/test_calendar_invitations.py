"""Meeting messages: what Exchange would send, recorded so tests can prove no spam."""

from __future__ import annotations

from typing import Any

MEETING: dict[str, Any] = {
    "subject": "Contoso x Fabrikam",
    "start": {"dateTime": "2030-04-02T15:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2030-04-02T16:00:00", "timeZone": "UTC"},
    "attendees": [
        {"emailAddress": {"address": "buyer@fabrikam.com", "name": "Buyer"}, "type": "required"},
        {
            "emailAddress": {"address": "alex@contoso.com", "name": "Alex Wilber"},
            "type": "optional",
        },
    ],
}


def sent(control, **filters: str) -> list[dict[str, Any]]:
    return control.get("/_sim/invitations", params=filters).json()["value"]


def test_no_attendees_no_messages(graph, control) -> None:
    lee = graph("lee@contoso.com")
    event = lee.post("/me/events", json={**MEETING, "attendees": []}).json()
    lee.patch(f"/me/events/{event['id']}", json={"subject": "Focus time"})
    lee.delete(f"/me/events/{event['id']}")
    assert sent(control) == []


def test_create_update_cancel_record_requests_updates_and_cancellations(graph, control) -> None:
    lee = graph("lee@contoso.com")
    event = lee.post("/me/events", json=MEETING).json()
    [request] = sent(control)
    assert request["kind"] == "request"
    assert request["from"] == "lee@contoso.com"
    assert request["to"] == ["buyer@fabrikam.com", "alex@contoso.com"]
    assert request["subject"] == "Contoso x Fabrikam" and request["iCalUId"] == event["iCalUId"]

    # A personal change (categories, reminder) sends nothing; a time change sends an update.
    lee.patch(f"/me/events/{event['id']}", json={"categories": ["CRM"], "isReminderOn": False})
    assert len(sent(control)) == 1
    lee.patch(
        f"/me/events/{event['id']}",
        json={
            "start": {"dateTime": "2030-04-02T17:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-04-02T18:00:00", "timeZone": "UTC"},
        },
    )
    assert [m["kind"] for m in sent(control)] == ["request", "update"]

    # Removing an attendee cancels for them only; adding one invites only them.
    lee.patch(
        f"/me/events/{event['id']}",
        json={
            "attendees": [
                MEETING["attendees"][0],
                {"emailAddress": {"address": "grady@contoso.com"}},
            ]
        },
    )
    latest = sent(control)[2:]
    assert {(m["kind"], tuple(m["to"])) for m in latest} == {
        ("cancellation", ("alex@contoso.com",)),
        ("request", ("grady@contoso.com",)),
    }

    assert (
        lee.post(f"/me/events/{event['id']}/cancel", json={"comment": "Sorry"}).status_code == 202
    )
    cancellation = sent(control)[-1]
    assert cancellation["kind"] == "cancellation"
    assert cancellation["subject"] == "Canceled: Contoso x Fabrikam"
    assert cancellation["comment"] == "Sorry"
    assert set(cancellation["to"]) == {"buyer@fabrikam.com", "grady@contoso.com"}
    assert lee.get(f"/me/events/{event['id']}").status_code == 404
    per_mailbox = control.get("/_sim/mailboxes/grady@contoso.com/invitations").json()["value"]
    assert [m["kind"] for m in per_mailbox] == ["request", "cancellation"]


def test_attendees_in_the_tenant_get_a_tentative_copy_and_can_respond(graph, control) -> None:
    lee = graph("lee@contoso.com")
    event = lee.post("/me/events", json=MEETING).json()
    alex = graph("alex@contoso.com")
    [copy] = alex.get("/me/events").json()["value"]
    assert copy["iCalUId"] == event["iCalUId"]
    assert copy["isOrganizer"] is False
    assert copy["responseStatus"]["response"] == "notResponded"
    assert copy["showAs"] == "tentative"
    assert copy["organizer"]["emailAddress"]["address"] == "lee@contoso.com"

    assert (
        alex.post(f"/me/events/{copy['id']}/accept", json={"sendResponse": True}).status_code == 202
    )
    assert sent(control, kind="accept")[0]["to"] == ["lee@contoso.com"]
    statuses = {
        a["emailAddress"]["address"]: a["status"]["response"]
        for a in lee.get(f"/me/events/{event['id']}").json()["attendees"]
    }
    assert statuses["alex@contoso.com"] == "accepted"
    assert alex.post(f"/me/events/{copy['id']}/cancel").status_code == 400  # not the organizer

    lee.patch(f"/me/events/{event['id']}", json={"subject": "Renamed"})
    assert alex.get(f"/me/events/{copy['id']}").json()["subject"] == "Renamed"
    lee.delete(f"/me/events/{event['id']}")
    cancelled = alex.get(f"/me/events/{copy['id']}").json()
    assert cancelled["isCancelled"] is True and cancelled["subject"] == "Canceled: Renamed"


def test_control_api_plays_an_external_organizer_moving_a_meeting(graph, control) -> None:
    created = control.post(
        "/_sim/mailboxes/lee@contoso.com/events",
        json={
            **MEETING,
            "organizer": {"emailAddress": {"name": "Buyer", "address": "buyer@fabrikam.com"}},
            "attendees": [{"emailAddress": {"address": "grady@contoso.com"}}],
        },
    ).json()
    assert created["isOrganizer"] is False
    moved = control.patch(
        f"/_sim/mailboxes/lee@contoso.com/events/{created['id']}",
        json={
            "start": {"dateTime": "2030-04-03T15:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-04-03T16:00:00", "timeZone": "UTC"},
        },
    ).json()
    assert moved["start"]["dateTime"].startswith("2030-04-03")
    cancelled = control.post(
        f"/_sim/mailboxes/lee@contoso.com/events/{created['id']}/cancel"
    ).json()
    assert cancelled["isCancelled"] is True
    assert (
        sent(control) == []
    )  # the organizer is outside the simulation: nothing sent on its behalf


def test_recurring_meeting_occurrence_changes_are_per_occurrence(graph, control) -> None:
    lee = graph("lee@contoso.com")
    lee.post(
        "/me/events",
        json={
            **MEETING,
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
                "range": {"type": "numbered", "startDate": "2030-04-02", "numberOfOccurrences": 4},
            },
        },
    )
    occurrences = lee.get(
        "/me/calendarView",
        params={"startDateTime": "2030-04-01T00:00:00Z", "endDateTime": "2030-05-01T00:00:00Z"},
    ).json()["value"]
    lee.delete(f"/me/events/{occurrences[1]['id']}")
    last = sent(control)[-1]
    assert last["kind"] == "cancellation" and last["occurrenceStart"].startswith("2030-04-09")
    alex_view = (
        graph("alex@contoso.com")
        .get(
            "/me/calendarView",
            params={"startDateTime": "2030-04-01T00:00:00Z", "endDateTime": "2030-05-01T00:00:00Z"},
        )
        .json()["value"]
    )
    assert [o["start"]["dateTime"][:10] for o in alex_view] == [
        "2030-04-02",
        "2030-04-16",
        "2030-04-23",
    ]
