"""Seeds: a tenant's mailbox sections (``messages``, ``events``, ``todo``) reach the mailboxes,
and a section m365sim doesn't know is refused by name."""

from datetime import timedelta

import httpx

from m365sim.graph.todo.backend import TodoBackend
from m365sim.server import SimServer

_TENANT = {
    "displayName": "Seeded Ltd",
    "domains": ["seeded.example"],
    "users": [{"userPrincipalName": "sam@seeded.example", "displayName": "Sam Seeded"}],
}


def test_each_mailbox_section_of_a_seed_fills_the_mailbox(
    sim: SimServer, control: httpx.Client
) -> None:
    mailboxes = {
        "sam@seeded.example": {
            "messages": [{"subject": "Welcome aboard", "receivedDateTime": "-1d"}],
            "events": [{"subject": "Kick-off", "start": "+1d", "end": "+1500m"}],
            "todo": [{"title": "Read the handbook", "dueDateTime": "+2d"}],
        }
    }
    created = control.post("/_sim/tenants", json={**_TENANT, "mailboxes": mailboxes})
    assert created.status_code == 201, created.text

    messages = control.get("/_sim/mailboxes/sam@seeded.example/messages").json()["value"]
    assert [m["subject"] for m in messages] == ["Welcome aboard"]
    events = control.get("/_sim/mailboxes/sam@seeded.example/events").json()["value"]
    assert [e["subject"] for e in events] == ["Kick-off"]
    assert events[0]["start"]["timeZone"] == "UTC"

    found = sim.state.find_user_anywhere("sam@seeded.example")
    assert found is not None
    store = TodoBackend(sim.state).store(*found)
    tasks = store.list_tasks(store.default_list.id)
    assert [t.title for t in tasks] == ["Read the handbook"]
    assert tasks[0].due is not None
    due, _zone = tasks[0].due
    assert due.date() == (sim.state.now() + timedelta(days=2)).date()


def test_an_unknown_mailbox_section_is_refused_by_name(control: httpx.Client) -> None:
    mailboxes = {"sam@seeded.example": {"contacts": [{"displayName": "Kim"}]}}
    refused = control.post("/_sim/tenants", json={**_TENANT, "mailboxes": mailboxes})
    assert refused.status_code == 400
    assert "unknown section 'contacts'" in refused.text
