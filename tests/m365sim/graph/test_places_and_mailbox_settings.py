"""Rooms (``/places``) and ``mailboxSettings`` PATCH, as Graph documents them."""

from __future__ import annotations

import httpx

from m365sim.directory.models import Tenant

ADELE = "/users/adele@contoso.com"


def add_room(control: httpx.Client, tenant: Tenant, name: str, capacity: int) -> dict:
    response = control.post(
        f"/_sim/tenants/{tenant.id}/users",
        json={
            "userPrincipalName": f"{name.lower()}@contoso.com",
            "displayName": name,
            "password": "unused-Passw0rd!",
            "userPurpose": "room",
            "capacity": capacity,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_rooms_are_listed_with_place_read_all(graph, control, demo_tenant) -> None:
    add_room(control, demo_tenant, "Harbour", 8)
    add_room(control, demo_tenant, "Atrium", 20)
    denied = graph(roles=["User.Read.All"]).get("/places/microsoft.graph.room")
    assert denied.status_code == 403
    client = graph(roles=["Place.Read.All"])
    rooms = client.get("/places/microsoft.graph.room").json()["value"]
    assert [(r["displayName"], r["capacity"], r["bookingType"]) for r in rooms] == [
        ("Atrium", 20, "standard"),
        ("Harbour", 8, "standard"),
    ]
    assert rooms[0]["@odata.type"] == "#microsoft.graph.room"
    big = client.get("/places/microsoft.graph.room", params={"$filter": "capacity ge 10"})
    assert [r["emailAddress"] for r in big.json()["value"]] == ["atrium@contoso.com"]
    one = client.get("/places/harbour@contoso.com").json()
    assert one["id"] == rooms[1]["id"]
    settings = graph(roles=["MailboxSettings.Read"]).get(
        "/users/harbour@contoso.com/mailboxSettings"
    )
    assert settings.json()["userPurpose"] == "room"
    lists = client.get("/places/microsoft.graph.roomList")
    assert lists.status_code == 501


def test_mailbox_settings_patch_changes_working_hours_everywhere(graph) -> None:
    reader = graph(roles=["MailboxSettings.Read"])
    refused = reader.patch(f"{ADELE}/mailboxSettings", json={"timeZone": "UTC"})
    assert refused.status_code == 403
    writer = graph(roles=["MailboxSettings.ReadWrite", "Calendars.Read"])
    changed = writer.patch(
        f"{ADELE}/mailboxSettings",
        json={
            "timeZone": "W. Europe Standard Time",
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday"],
                "startTime": "07:30:00.0000000",
                "endTime": "15:00:00.0000000",
            },
        },
    )
    assert changed.status_code == 200, changed.text
    hours = reader.get(f"{ADELE}/mailboxSettings").json()["workingHours"]
    assert hours == {
        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday"],
        "startTime": "07:30:00.0000000",
        "endTime": "15:00:00.0000000",
        "timeZone": {"name": "W. Europe Standard Time"},
    }
    schedule = writer.post(
        f"{ADELE}/calendar/getSchedule",
        json={
            "schedules": ["adele@contoso.com"],
            "startTime": {"dateTime": "2030-01-07T00:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2030-01-08T00:00:00", "timeZone": "UTC"},
        },
    ).json()["value"][0]
    assert schedule["workingHours"]["startTime"] == "07:30:00.0000000"
    bad = writer.patch(f"{ADELE}/mailboxSettings", json={"workingHours": {"startTime": "9am"}})
    assert bad.status_code == 400
    other = writer.patch(f"{ADELE}/mailboxSettings", json={"language": {"locale": "fr-FR"}})
    assert other.status_code == 501
