"""Events CRUD, calendars, time zones and the event JSON shape."""

from __future__ import annotations

from m365sim.server import SimServer

MEETING = {
    "subject": "Quarterly review",
    "body": {"contentType": "html", "content": "<p>Agenda: <b>numbers</b></p>"},
    "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "Pacific Standard Time"},
    "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "Pacific Standard Time"},
    "location": {"displayName": "Room 1"},
}


def test_create_and_read_back_an_event(graph) -> None:
    lee = graph("lee@contoso.com")
    created = lee.post("/me/events", json=MEETING)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["type"] == "singleInstance"
    assert event["originalStartTimeZone"] == "Pacific Standard Time"
    assert event["start"] == {"dateTime": "2030-03-04T17:00:00.0000000", "timeZone": "UTC"}
    assert event["bodyPreview"] == "Agenda: numbers"
    assert event["isOrganizer"] is True
    assert event["responseStatus"]["response"] == "organizer"
    assert event["organizer"]["emailAddress"]["address"] == "lee@contoso.com"
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["iCalUId"] and event["webLink"].startswith("https://outlook.office365.com/")
    again = lee.get(f"/me/events/{event['id']}")
    assert again.status_code == 200
    assert again.json()["subject"] == "Quarterly review"
    listed = lee.get("/me/calendar/events").json()["value"]
    assert [e["id"] for e in listed] == [event["id"]]


def test_prefer_outlook_timezone_converts_start_and_end(graph) -> None:
    lee = graph("lee@contoso.com")
    event_id = lee.post("/me/events", json=MEETING).json()["id"]
    for zone_name, expected in (
        ("Eastern Standard Time", "2030-03-04T12:00:00.0000000"),
        ("Europe/Berlin", "2030-03-04T18:00:00.0000000"),
        ("Pacific Standard Time", "2030-03-04T09:00:00.0000000"),
    ):
        response = lee.get(
            f"/me/events/{event_id}", headers={"Prefer": f'outlook.timezone="{zone_name}"'}
        )
        assert response.json()["start"] == {"dateTime": expected, "timeZone": zone_name}
        assert zone_name in response.headers["Preference-Applied"]
    bad = lee.get(f"/me/events/{event_id}", headers={"Prefer": 'outlook.timezone="Mars/Olympus"'})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "TimeZoneNotSupportedException"


def test_update_changes_change_key_and_delete_removes(graph) -> None:
    lee = graph("lee@contoso.com")
    event = lee.post("/me/events", json=MEETING).json()
    patched = lee.patch(f"/me/events/{event['id']}", json={"subject": "Moved review"}).json()
    assert patched["subject"] == "Moved review"
    assert patched["changeKey"] != event["changeKey"]
    assert lee.delete(f"/me/events/{event['id']}").status_code == 204
    missing = lee.get(f"/me/events/{event['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_app_only_reaches_users_by_upn_and_needs_readwrite_to_write(graph) -> None:
    app = graph()
    created = app.post("/users/alex@contoso.com/calendar/events", json=MEETING)
    assert created.status_code == 201
    reader = graph(roles=("Calendars.Read",))
    assert reader.get("/users/alex@contoso.com/events").status_code == 200
    denied = reader.post("/users/alex@contoso.com/events", json=MEETING)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"


def test_secondary_calendar_holds_its_own_events(graph) -> None:
    lee = graph("lee@contoso.com")
    calendars = lee.get("/me/calendars").json()["value"]
    assert [c["isDefaultCalendar"] for c in calendars] == [True]
    crm = lee.post("/me/calendars", json={"name": "CRM"}).json()
    lee.post(f"/me/calendars/{crm['id']}/events", json=MEETING)
    assert (
        lee.get(f"/me/calendars/{crm['id']}/events").json()["value"][0]["subject"]
        == MEETING["subject"]
    )
    assert lee.get("/me/events").json()["value"] == []
    default = lee.get("/me/calendar").json()
    assert lee.delete(f"/me/calendars/{default['id']}").status_code == 400


def test_invalid_bodies_are_graph_400s(graph) -> None:
    lee = graph("lee@contoso.com")
    backwards = {
        **MEETING,
        "end": {"dateTime": "2030-03-04T08:00:00", "timeZone": "Pacific Standard Time"},
    }
    assert lee.post("/me/events", json=backwards).status_code == 400
    assert lee.post("/me/events", json={"subject": "no times"}).status_code == 400
    bad_zone = {**MEETING, "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "Nowhere"}}
    assert (
        lee.post("/me/events", json=bad_zone).json()["error"]["code"]
        == "TimeZoneNotSupportedException"
    )
    assert lee.get("/me/events?$select=nonsense").status_code == 400


def test_transaction_id_makes_a_retried_create_idempotent(graph) -> None:
    lee = graph("lee@contoso.com")
    body = {**MEETING, "transactionId": "crm-activity-42"}
    first = lee.post("/me/events", json=body).json()
    second = lee.post("/me/events", json=body).json()
    assert first["id"] == second["id"]
    assert len(lee.get("/me/events").json()["value"]) == 1


def test_select_top_and_paging_on_events(graph) -> None:
    lee = graph("lee@contoso.com")
    for day in range(1, 4):
        lee.post(
            "/me/events",
            json={
                **MEETING,
                "subject": f"Day {day}",
                "start": {"dateTime": f"2030-05-0{day}T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": f"2030-05-0{day}T10:00:00", "timeZone": "UTC"},
            },
        )
    first = lee.get("/me/events?$select=subject&$top=2&$orderby=subject desc").json()
    assert [e["subject"] for e in first["value"]] == ["Day 3", "Day 2"]
    assert set(first["value"][0]) == {"@odata.etag", "id", "subject"}
    nxt = lee.get(first["@odata.nextLink"]).json()
    assert [e["subject"] for e in nxt["value"]] == ["Day 1"]


def test_unreachable_mailbox_is_refused(graph, sim: SimServer) -> None:
    response = graph().get("/users/pradeep@contoso.com/events")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
