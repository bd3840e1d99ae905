"""Microsoft To Do: lists, task CRUD, delta, and delegated-only access."""

from __future__ import annotations

from typing import Any

import httpx


def default_list(client: httpx.Client) -> dict[str, Any]:
    lists = client.get("/me/todo/lists").json()["value"]
    return next(lst for lst in lists if lst["wellknownListName"] == "defaultList")


def test_every_mailbox_has_the_default_tasks_list(graph) -> None:
    lists = graph("lee@contoso.com").get("/me/todo/lists").json()["value"]
    assert [(lst["displayName"], lst["wellknownListName"], lst["isOwner"]) for lst in lists] == [
        ("Tasks", "defaultList", True)
    ]


def test_task_crud_with_graphs_shape(graph) -> None:
    lee = graph("lee@contoso.com")
    list_id = default_list(lee)["id"]
    created = lee.post(
        f"/me/todo/lists/{list_id}/tasks",
        json={
            "title": "Send the Contoso proposal",
            "importance": "high",
            "dueDateTime": {"dateTime": "2030-02-01T00:00:00", "timeZone": "Pacific Standard Time"},
            "body": {"content": "Pricing v3", "contentType": "text"},
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["status"] == "notStarted"
    assert task["importance"] == "high"
    assert task["dueDateTime"] == {"dateTime": "2030-02-01T08:00:00.0000000", "timeZone": "UTC"}
    assert task["@odata.etag"].startswith('W/"') and task["createdDateTime"].endswith("Z")
    assert "completedDateTime" not in task

    done = lee.patch(
        f"/me/todo/lists/{list_id}/tasks/{task['id']}", json={"status": "completed"}
    ).json()
    assert done["status"] == "completed" and done["completedDateTime"]["timeZone"] == "UTC"
    assert done["@odata.etag"] != task["@odata.etag"]
    reopened = lee.patch(
        f"/me/todo/lists/{list_id}/tasks/{task['id']}", json={"status": "inProgress"}
    ).json()
    assert "completedDateTime" not in reopened
    bad = lee.patch(f"/me/todo/lists/{list_id}/tasks/{task['id']}", json={"status": "finished"})
    assert bad.status_code == 400
    assert lee.get(f"/me/todo/lists/{list_id}/tasks/{task['id']}").json()["status"] == "inProgress"

    assert lee.delete(f"/me/todo/lists/{list_id}/tasks/{task['id']}").status_code == 204
    assert lee.get(f"/me/todo/lists/{list_id}/tasks/{task['id']}").status_code == 404
    assert (
        lee.post(f"/me/todo/lists/{list_id}/tasks", json={"importance": "low"}).status_code == 400
    )


def test_lists_can_be_added_renamed_and_deleted_but_not_the_default(graph) -> None:
    lee = graph("lee@contoso.com")
    crm = lee.post("/me/todo/lists", json={"displayName": "CRM follow-ups"}).json()
    assert crm["wellknownListName"] == "none"
    renamed = lee.patch(f"/me/todo/lists/{crm['id']}", json={"displayName": "Follow-ups"}).json()
    assert renamed["displayName"] == "Follow-ups"
    assert lee.delete(f"/me/todo/lists/{crm['id']}").status_code == 204
    assert lee.delete(f"/me/todo/lists/{default_list(lee)['id']}").status_code == 400


def delta_round(client: httpx.Client, url: str, **headers: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        body = client.get(url, headers=headers).json()
        items.extend(body["value"])
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def test_tasks_delta_returns_changes_since_the_token(graph, control) -> None:
    lee = graph("lee@contoso.com")
    list_id = default_list(lee)["id"]
    ids = [
        lee.post(f"/me/todo/lists/{list_id}/tasks", json={"title": f"T{i}"}).json()["id"]
        for i in range(5)
    ]
    items, link = delta_round(
        lee, f"/me/todo/lists/{list_id}/tasks/delta()", Prefer="odata.maxpagesize=2"
    )
    assert [i["title"] for i in items] == ["T0", "T1", "T2", "T3", "T4"]
    assert delta_round(lee, link)[0] == []

    lee.patch(f"/me/todo/lists/{list_id}/tasks/{ids[0]}", json={"title": "T0 edited"})
    lee.delete(f"/me/todo/lists/{list_id}/tasks/{ids[1]}")
    control.post(
        "/_sim/mailboxes/lee@contoso.com/todo/lists/default/tasks",
        json={"title": "from the app", "dueDateTime": "+2d"},
    )
    control.post(f"/_sim/mailboxes/lee@contoso.com/todo/lists/default/tasks/{ids[2]}/complete")
    changes, link = delta_round(lee, link)
    by_id = {c["id"]: c for c in changes}
    assert by_id[ids[0]]["title"] == "T0 edited"
    assert by_id[ids[1]]["@removed"] == {"reason": "deleted"}
    assert by_id[ids[2]]["status"] == "completed"
    assert any(c.get("title") == "from the app" for c in changes)
    assert len(changes) == 4


def test_tasks_delta_token_expires(graph, control, sim) -> None:
    lee = graph("lee@contoso.com")
    list_id = default_list(lee)["id"]
    _, link = delta_round(lee, f"/me/todo/lists/{list_id}/tasks/delta")
    control.post(
        "/_sim/clock", json={"advanceSeconds": sim.state.config.delta_token_lifetime_seconds + 1}
    )
    expired = lee.get(link)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "SyncStateNotFound"


def test_app_only_tokens_are_refused(graph) -> None:
    app = graph()
    response = app.get("/users/lee@contoso.com/todo/lists")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ErrorAccessDenied"
    assert app.get("/me/todo/lists").status_code == 400


def test_delegated_token_without_tasks_scope_is_refused(graph) -> None:
    response = graph("lee@contoso.com", scopes=("User.Read", "Calendars.ReadWrite")).get(
        "/me/todo/lists"
    )
    assert response.status_code == 403


def test_todo_seed_section(control, graph, sim) -> None:
    seeded = control.post(
        "/_sim/seed",
        json={
            "tenants": [
                {
                    "displayName": "Fabrikam",
                    "domains": ["fabrikam.com"],
                    "users": [{"userPrincipalName": "kim@fabrikam.com"}],
                    "mailboxes": {
                        "kim@fabrikam.com": {
                            "todo": {
                                "tasks": [{"title": "Call back", "dueDateTime": "+1d"}],
                                "lists": [
                                    {
                                        "displayName": "Renewals",
                                        "tasks": [{"title": "Fabrikam renewal"}],
                                    }
                                ],
                            },
                            "events": [{"subject": "Kickoff", "start": "+1d", "end": "+25h"}],
                        }
                    },
                }
            ]
        },
    )
    assert seeded.status_code == 201, seeded.text
    lists = control.get("/_sim/mailboxes/kim@fabrikam.com/todo/lists").json()["value"]
    assert [lst["displayName"] for lst in lists] == ["Tasks", "Renewals"]
    events = control.get("/_sim/mailboxes/kim@fabrikam.com/events").json()["value"]
    assert [e["subject"] for e in events] == ["Kickoff"]
