"""Ids as long as Exchange's: about 150 characters for default ids, about 70 for immutable
ones, with the ``-``, ``_`` and ``=`` real ones carry, so storage and URL encoding are
stressed here as in production."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from sim_tokens import GraphFactory

ADELE = "/users/adele@contoso.com"


@pytest.fixture
def client(graph: GraphFactory) -> httpx.Client:
    return graph(roles=("Mail.ReadWrite", "Calendars.ReadWrite"))


def test_message_and_folder_ids_are_exchange_sized(
    client: httpx.Client, control: httpx.Client
) -> None:
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 40})
    messages = client.get(f"{ADELE}/mailFolders/inbox/messages", params={"$top": "40"}).json()
    ids = [m["id"] for m in messages["value"]]
    assert all(145 <= len(i) <= 160 and i.startswith("AAMkA") for i in ids)
    assert any(set(i) & {"-", "_"} for i in ids) and all(i.endswith("=") for i in ids)
    inbox = client.get(f"{ADELE}/mailFolders/inbox").json()["id"]
    assert len(inbox) >= 145
    immutable = client.get(
        f"{ADELE}/mailFolders/inbox/messages",
        params={"$top": "40"},
        headers={"Prefer": 'IdType="ImmutableId"'},
    ).json()["value"]
    assert all(60 <= len(m["id"]) <= 75 and m["id"].startswith("AAkALg") for m in immutable)
    for message_id in ids[:5] + [m["id"] for m in immutable[:5]]:
        for written in (message_id, quote(message_id, safe="")):
            found = client.get(f"{ADELE}/messages/{written}", params={"$select": "subject"})
            assert found.status_code == 200, written


def test_event_ids_are_exchange_sized(client: httpx.Client) -> None:
    event = client.post(
        f"{ADELE}/events",
        json={
            "subject": "Weekly",
            "start": {"dateTime": "2030-01-07T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T09:30:00", "timeZone": "UTC"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 2},
            },
        },
    ).json()
    assert len(event["id"]) >= 145
    occurrences = client.get(
        f"{ADELE}/calendarView",
        params={"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-02-01T00:00:00Z"},
    ).json()["value"]
    occurrences = [o for o in occurrences if o["subject"] == "Weekly"]
    assert len(occurrences) == 2 and all(len(o["id"]) >= 145 for o in occurrences)
    assert client.get(f"{ADELE}/events/{quote(occurrences[1]['id'], safe='')}").status_code == 200
