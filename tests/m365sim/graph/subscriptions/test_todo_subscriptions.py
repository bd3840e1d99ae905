"""Change notifications for Microsoft To Do tasks: delegated only, one list per subscription,
at most 4,230 minutes, ``#microsoft.graph.todoTask`` resource data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sim_tokens import SERVICE_APP_ID, bearer, mint_app_token, mint_user_token, wait_for
from webhook_receiver import Receiver
from webhook_receiver import receiver as receiver  # the fixture

from m365sim.server import SimServer

TENANT = "contoso.com"
ADELE = "adele@contoso.com"


@pytest.fixture
def auth(sim: SimServer) -> dict[str, str]:
    return bearer(mint_user_token(sim, TENANT, ADELE, ["Tasks.ReadWrite"]))


def expires(sim: SimServer, minutes: float = 60) -> str:
    return (sim.state.now() + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def default_list(http: httpx.Client, user: str = ADELE) -> str:
    lists = http.get(f"/_sim/mailboxes/{user}/todo/lists").json()["value"]
    return str(next(item["id"] for item in lists if item["wellknownListName"] == "defaultList"))


def subscribe(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver, **overrides: Any
) -> httpx.Response:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "resource": f"me/todo/lists/{default_list(http)}/tasks",
        "expirationDateTime": expires(sim),
        "clientState": "todo-secret",
    } | overrides
    return http.post("/v1.0/subscriptions", headers=auth, json=body)


def add_task(http: httpx.Client, list_id: str = "default", title: str = "Call Kim") -> str:
    made = http.post(f"/_sim/mailboxes/{ADELE}/todo/lists/{list_id}/tasks", json={"title": title})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def settled(http: httpx.Client) -> bool:
    return bool(http.get("/_sim/notifications").json()["pending"] == 0)


def test_task_changes_are_notified_with_client_state_and_todo_task_data(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    created = subscribe(sim, http, auth, receiver)
    assert created.status_code == 201, created.text
    subscription = created.json()
    list_id = default_list(http)
    assert subscription["resource"] == f"me/todo/lists/{list_id}/tasks"
    assert len(receiver.validations) == 1

    task_id = add_task(http)
    done = http.post(f"/_sim/mailboxes/{ADELE}/todo/lists/{list_id}/tasks/{task_id}/complete")
    assert done.status_code == 200
    assert http.delete(f"/_sim/mailboxes/{ADELE}/todo/lists/{list_id}/tasks/{task_id}").status_code
    payloads = receiver.wait(3)

    adele = sim.state.find_tenant(TENANT).find_user(ADELE)  # type: ignore[union-attr]
    notes = [p["value"][0] for p in payloads]
    # Graph delivers notifications concurrently and promises no order between them.
    assert sorted(n["changeType"] for n in notes) == ["created", "deleted", "updated"]
    path = f"Users/{adele.id}/todo/lists/{list_id}/tasks/{task_id}"  # type: ignore[union-attr]
    for note in notes:
        assert note["subscriptionId"] == subscription["id"]
        assert note["clientState"] == "todo-secret"
        assert note["tenantId"] == sim.state.find_tenant(TENANT).id  # type: ignore[union-attr]
        assert note["resource"] == path
        assert note["resourceData"]["@odata.type"] == "#microsoft.graph.todoTask"
        assert note["resourceData"]["id"] == task_id


def test_only_the_subscribed_list_is_notified(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    assert subscribe(sim, http, auth, receiver).status_code == 201
    other = http.post(f"/_sim/mailboxes/{ADELE}/todo/lists", json={"displayName": "Groceries"})
    add_task(http, other.json()["id"], "Milk")
    add_task(http, "default", "Send the quote")
    [payload] = receiver.wait(1)
    wait_for(lambda: settled(http))
    assert len(receiver.received()) == 1
    assert payload["value"][0]["changeType"] == "created"


def test_users_form_for_the_signed_in_user_and_nobody_else(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    quoted = f"users/{ADELE}/todo/lists('{default_list(http)}')/tasks"
    own = subscribe(sim, http, auth, receiver, resource=quoted)
    assert own.status_code == 201, own.text
    diego = "diego@contoso.com"
    others = subscribe(
        sim,
        http,
        auth,
        receiver,
        resource=f"users/{diego}/todo/lists/{default_list(http, diego)}/tasks",
    )
    assert others.status_code == 403
    assert others.json()["error"]["code"] == "ExtensionError"


def test_app_only_and_read_only_callers_are_refused(
    sim: SimServer, http: httpx.Client, receiver: Receiver
) -> None:
    app = bearer(mint_app_token(sim, TENANT, SERVICE_APP_ID, ["Tasks.ReadWrite.All"]))
    resource = f"users/{ADELE}/todo/lists/{default_list(http)}/tasks"
    refused = subscribe(sim, http, app, receiver, resource=resource)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ExtensionError"
    assert refused.json()["error"]["message"].startswith(
        "Operation: Create; Exception: [Status Code: Forbidden;"
    )
    read_only = bearer(mint_user_token(sim, TENANT, ADELE, ["Tasks.Read"]))
    assert subscribe(sim, http, read_only, receiver).status_code == 403
    mail_only = bearer(mint_user_token(sim, TENANT, ADELE, ["Mail.Read"]))
    assert subscribe(sim, http, mail_only, receiver).status_code == 403
    assert receiver.validations == []  # refused before the handshake


def test_expiration_is_at_most_4230_minutes(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    too_far = subscribe(sim, http, auth, receiver, expirationDateTime=expires(sim, 4231))
    assert too_far.status_code == 400
    assert too_far.json()["error"] == too_far.json()["error"] | {
        "code": "ExtensionError",
        "message": "Subscription expiration can only be 4230 minutes in the future.",
    }
    created = subscribe(sim, http, auth, receiver, expirationDateTime=expires(sim, 4229))
    assert created.status_code == 201
    renew = http.patch(
        f"/v1.0/subscriptions/{created.json()['id']}",
        headers=auth,
        json={"expirationDateTime": expires(sim, 4300)},
    )
    assert renew.status_code == 400
    renewed = http.patch(
        f"/v1.0/subscriptions/{created.json()['id']}",
        headers=auth,
        json={"expirationDateTime": expires(sim, 4000)},
    )
    assert renewed.status_code == 200


def test_unknown_list_and_bad_forms_are_refused(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    unknown = subscribe(sim, http, auth, receiver, resource="me/todo/lists/AAMkAGnope=/tasks")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ExtensionError"
    assert subscribe(sim, http, auth, receiver, resource="me/todo/lists").status_code == 400
    assert receiver.validations == []


def test_to_do_gets_only_reauthorization_lifecycle_events(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    subscription = subscribe(
        sim, http, auth, receiver, lifecycleNotificationUrl=f"{receiver.url}/lifecycle"
    ).json()
    lifecycle = f"/_sim/subscriptions/{subscription['id']}/lifecycle"
    assert http.post(lifecycle, json={"event": "missed"}).status_code == 400
    assert http.post(lifecycle, json={"event": "subscriptionRemoved"}).status_code == 400
    assert http.post(lifecycle, json={"event": "reauthorizationRequired"}).status_code == 202
    [challenge] = receiver.wait(1, "/lifecycle")
    assert challenge["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    assert challenge["value"][0]["clientState"] == "todo-secret"
    reauthorized = http.post(f"/v1.0/subscriptions/{subscription['id']}/reauthorize", headers=auth)
    assert reauthorized.status_code == 204
