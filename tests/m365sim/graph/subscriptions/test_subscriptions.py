"""Change notifications: handshake, notifications with clientState, retries, lifecycle, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sim_tokens import SERVICE_APP_ID, bearer, mint_app_token, mint_user_token, wait_for
from webhook_receiver import Receiver
from webhook_receiver import receiver as receiver  # the fixture

from m365sim.server import SimServer

TENANT = "contoso.com"
ROLES = ["Mail.Read", "Mail.ReadWrite", "Calendars.ReadWrite"]


@pytest.fixture
def auth(sim: SimServer) -> dict[str, str]:
    return bearer(mint_app_token(sim, TENANT, SERVICE_APP_ID, ROLES))


@pytest.fixture(autouse=True)
def fast_retries(sim: SimServer, http: httpx.Client) -> None:
    http.patch(
        "/_sim/notifications/settings", json={"retryBaseSeconds": 0.05, "retryMaxDelaySeconds": 0.2}
    )


def expires(sim: SimServer, minutes: float = 60) -> str:
    return (sim.state.now() + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def subscribe(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver, **overrides: Any
) -> httpx.Response:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{receiver.url}/notify",
        "resource": "users/adele@contoso.com/messages",
        "expirationDateTime": expires(sim),
        "clientState": "secret-from-the-product",
    } | overrides
    return http.post("/v1.0/subscriptions", headers=auth, json=body)


def deliver(
    http: httpx.Client, user: str = "adele@contoso.com", folder: str = "inbox"
) -> dict[str, Any]:
    response = http.post(
        f"/_sim/mailboxes/{user}/messages",
        json={"from": "buyer@fabrikam.com", "subject": "Quote", "body": "hi", "folder": folder},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_handshake_then_notification_with_client_state(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    created = subscribe(sim, http, auth, receiver)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["changeType"] == "created,updated,deleted"
    assert subscription["clientState"] == "secret-from-the-product"
    assert subscription["applicationId"] == SERVICE_APP_ID
    assert len(receiver.validations) == 1
    assert receiver.validations[0]["token"].startswith(
        "Validation: Testing client application reachability"
    )
    assert receiver.received() == []  # nothing sent before a change
    deliver(http)
    [payload] = receiver.wait(1)
    [note] = payload["value"]
    adele = sim.state.find_tenant(TENANT).find_user("adele@contoso.com")  # type: ignore[union-attr]
    assert note["subscriptionId"] == subscription["id"]
    assert note["clientState"] == "secret-from-the-product"
    assert note["changeType"] == "created"
    assert note["tenantId"] == sim.state.find_tenant(TENANT).id  # type: ignore[union-attr]
    assert note["resource"].startswith(f"Users/{adele.id}/Messages/")  # type: ignore[union-attr]
    assert note["resourceData"]["@odata.type"] == "#Microsoft.Graph.Message"
    assert note["resourceData"]["id"] == note["resource"].rsplit("/", 1)[1]
    assert note["subscriptionExpirationDateTime"] == subscription["expirationDateTime"]


def test_change_types_filter_notifications(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    assert subscribe(sim, http, auth, receiver, changeType="deleted").status_code == 201
    message = deliver(http)
    assert (
        http.delete(f"/_sim/mailboxes/adele@contoso.com/messages/{message['id']}").status_code
        == 204
    )
    [payload] = receiver.wait(1)
    assert payload["value"][0]["changeType"] == "deleted"
    assert len(receiver.received()) == 1


@pytest.mark.parametrize(
    ("mode", "message_start"),
    [
        (
            "error",
            "Subscription validation request failed. Notification endpoint must respond",
        ),
        (
            "wrong",
            "Subscription validation request failed. Response must exactly match validationToken",
        ),
    ],
)
def test_failed_handshake_refuses_the_subscription(
    sim: SimServer,
    http: httpx.Client,
    auth: dict[str, str],
    receiver: Receiver,
    mode: str,
    message_start: str,
) -> None:
    receiver.validation = mode
    refused = subscribe(sim, http, auth, receiver)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "InvalidRequest"
    assert refused.json()["error"]["message"].startswith(message_start)
    assert http.get("/v1.0/subscriptions", headers=auth).json()["value"] == []


def test_unreachable_endpoint_fails_the_handshake(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    refused = http.post(
        "/v1.0/subscriptions",
        headers=auth,
        json={
            "changeType": "created",
            "notificationUrl": "https://127.0.0.1:9/notify",
            "resource": "users/adele@contoso.com/messages",
            "expirationDateTime": expires(sim),
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("Subscription validation request failed.")


def test_http_notification_urls_are_refused_unless_local_development_allows_them(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    """Graph: the notificationUrl "must make use of the HTTPS protocol"; it answers
    "NotificationUrl scheme='http' is not supported." (microsoft-graph-docs-contrib#7821)."""
    plain = "http://" + receiver.url.removeprefix("https://")
    refused = subscribe(sim, http, auth, receiver, notificationUrl=f"{plain}/notify")
    assert refused.status_code == 400
    assert refused.json()["error"] == refused.json()["error"] | {
        "code": "InvalidRequest",
        "message": "NotificationUrl scheme='http' is not supported.",
    }
    lifecycle = subscribe(sim, http, auth, receiver, lifecycleNotificationUrl=f"{plain}/life")
    assert lifecycle.json()["error"]["message"] == (
        "LifecycleNotificationUrl scheme='http' is not supported."
    )
    assert receiver.validations == []
    # The documented knob for local development, never on by default.
    http.patch("/_sim/config", json={"allow_http_notification_urls": True})
    accepted = http.post(
        "/v1.0/subscriptions",
        headers=auth,
        json={
            "changeType": "created",
            "notificationUrl": "http://127.0.0.1:9/notify",
            "resource": "users/adele@contoso.com/messages",
            "expirationDateTime": expires(sim),
        },
    )
    # Accepted as a URL, so the handshake is tried (and fails: nothing listens there).
    assert accepted.json()["error"]["message"].startswith("Subscription validation request")


def test_expiration_and_client_state_limits(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    too_far = subscribe(sim, http, auth, receiver, expirationDateTime=expires(sim, 10080 + 5))
    assert too_far.status_code == 400
    assert too_far.json()["error"] == too_far.json()["error"] | {
        "code": "ExtensionError",
        "message": "Subscription expiration can only be 10080 minutes in the future.",
    }
    assert (
        subscribe(sim, http, auth, receiver, expirationDateTime=expires(sim, -1)).status_code == 400
    )
    assert subscribe(sim, http, auth, receiver, clientState="x" * 129).status_code == 400
    assert subscribe(sim, http, auth, receiver, changeType="created,renamed").status_code == 400
    assert (
        subscribe(
            sim, http, auth, receiver, resource="users/adele@contoso.com/contacts"
        ).status_code
        == 400
    )
    assert (
        subscribe(sim, http, auth, receiver, expirationDateTime=expires(sim, 10079)).status_code
        == 201
    )
    assert (
        receiver.validations and len(receiver.validations) == 1
    )  # refused bodies never reach the endpoint


def test_an_expiration_given_with_an_offset_is_answered_in_utc(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    moment = (sim.state.now() + timedelta(hours=2)).replace(microsecond=0)
    paris = moment.astimezone(timezone(timedelta(hours=2))).isoformat()  # "...T14:00:00+02:00"
    created = subscribe(sim, http, auth, receiver, expirationDateTime=paris)
    assert created.status_code == 201, created.text
    answered = created.json()["expirationDateTime"]
    assert answered == f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.0000000Z"


def test_policy_denied_and_unreachable_mailboxes(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    http.patch("/_sim/config", json={"policy_propagation_seconds": 0})
    http.post(
        f"/_sim/tenants/{TENANT}/accessPolicies",
        json={
            "AppId": SERVICE_APP_ID,
            "PolicyScopeGroupId": "crm-sync@contoso.com",
            "AccessRight": "RestrictAccess",
        },
    )
    denied = subscribe(sim, http, auth, receiver, resource="users/johanna@contoso.com/messages")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ExtensionError"
    assert denied.json()["error"]["message"] == (
        "Operation: Create; Exception: [Status Code: Forbidden; "
        "Reason: Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
        "AccessPolicy settings.]"
    )
    unlicensed = subscribe(sim, http, auth, receiver, resource="users/pradeep@contoso.com/messages")
    assert unlicensed.status_code == 404
    no_role = bearer(mint_app_token(sim, TENANT, SERVICE_APP_ID, ["Calendars.Read"]))
    assert subscribe(sim, http, no_role, receiver).status_code == 403
    assert receiver.validations == []


def test_delegated_subscriptions_are_limited_to_the_signed_in_mailbox(
    sim: SimServer, http: httpx.Client, receiver: Receiver
) -> None:
    token = bearer(
        mint_user_token(sim, TENANT, "adele@contoso.com", ["Mail.Read", "Mail.Read.Shared"])
    )
    assert subscribe(sim, http, token, receiver, resource="me/messages").status_code == 201
    assert (
        subscribe(
            sim, http, token, receiver, resource="users/diego@contoso.com/messages"
        ).status_code
        == 403
    )


def test_delivery_retries_after_endpoint_failures(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    subscription = subscribe(sim, http, auth, receiver).json()
    receiver.fail_next = [503, 500]
    deliver(http)
    [payload] = receiver.wait(1)
    assert payload["value"][0]["clientState"] == "secret-from-the-product"

    def attempts() -> list[tuple[int, int, bool]] | None:
        body = http.get(
            "/_sim/notifications",
            params={"subscriptionId": subscription["id"], "kind": "notification"},
        ).json()
        done = body["pending"] == 0
        return (
            [(e["attempt"], e["status"], e["delivered"]) for e in body["value"]] if done else None
        )

    assert wait_for(attempts) == [(1, 503, False), (2, 500, False), (3, 202, True)]


def test_retries_stop_after_the_retry_window(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    http.patch("/_sim/notifications/settings", json={"retryWindowSeconds": 0.3})
    subscription = subscribe(sim, http, auth, receiver).json()
    receiver.fail_next = [503] * 50
    deliver(http)

    def finished() -> list[Any] | None:
        body = http.get(
            "/_sim/notifications",
            params={"subscriptionId": subscription["id"], "kind": "notification"},
        ).json()
        return body["value"] if body["pending"] == 0 and body["value"] else None

    entries = wait_for(finished)
    assert 2 <= len(entries) < 10
    assert not any(e["delivered"] for e in entries)


def test_folder_subscription_only_sees_that_folder(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    created = subscribe(
        sim, http, auth, receiver, resource="users/adele@contoso.com/mailFolders('inbox')/messages"
    )
    assert created.status_code == 201
    deliver(http, folder="archive")
    deliver(http, folder="inbox")
    receiver.wait(1)
    wait_for(lambda: http.get("/_sim/notifications").json()["pending"] == 0)
    assert len(receiver.received()) == 1


def test_event_subscription(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    assert (
        subscribe(sim, http, auth, receiver, resource="users/adele@contoso.com/events").status_code
        == 201
    )
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    made = http.post(
        "/v1.0/users/adele@contoso.com/events",
        headers=auth,
        json={
            "subject": "Demo",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    assert made.status_code == 201, made.text
    [payload] = receiver.wait(1)
    assert payload["value"][0]["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert payload["value"][0]["resourceData"]["id"] == made.json()["id"]


def test_lifecycle_events_on_demand(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    subscription = subscribe(
        sim, http, auth, receiver, lifecycleNotificationUrl=f"{receiver.url}/lifecycle"
    ).json()
    assert [v["path"] for v in receiver.validations] == ["/notify", "/lifecycle"]
    assert (
        http.post(
            f"/_sim/subscriptions/{subscription['id']}/lifecycle", json={"event": "missed"}
        ).status_code
        == 202
    )
    [missed] = receiver.wait(1, "/lifecycle")
    assert missed["value"][0] == missed["value"][0] | {
        "lifecycleEvent": "missed",
        "subscriptionId": subscription["id"],
        "clientState": "secret-from-the-product",
    }
    http.post(
        f"/_sim/subscriptions/{subscription['id']}/lifecycle", json={"event": "subscriptionRemoved"}
    )
    removed = receiver.wait(2, "/lifecycle")[1]
    assert removed["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert http.get(f"/v1.0/subscriptions/{subscription['id']}", headers=auth).status_code == 404
    deliver(http)
    wait_for(lambda: http.get("/_sim/notifications").json()["pending"] == 0)
    assert receiver.received() == []


def test_reauthorization_required_before_expiry_then_reauthorize(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    http.patch("/_sim/notifications/settings", json={"reauthorizationLeadSeconds": 600})
    subscription = subscribe(
        sim,
        http,
        auth,
        receiver,
        lifecycleNotificationUrl=f"{receiver.url}/lifecycle",
        expirationDateTime=expires(sim, 30),
    ).json()
    http.post("/_sim/clock", json={"advanceSeconds": 21 * 60})
    [challenge] = receiver.wait(1, "/lifecycle")
    assert challenge["value"][0]["lifecycleEvent"] == "reauthorizationRequired"
    reauthorized = http.post(f"/v1.0/subscriptions/{subscription['id']}/reauthorize", headers=auth)
    assert reauthorized.status_code == 204


def test_renew_list_delete_and_expiry(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], receiver: Receiver
) -> None:
    subscription = subscribe(sim, http, auth, receiver).json()
    listed = http.get("/v1.0/subscriptions", headers=auth).json()["value"]
    assert [s["id"] for s in listed] == [subscription["id"]]
    renewed = http.patch(
        f"/v1.0/subscriptions/{subscription['id']}",
        headers=auth,
        json={"expirationDateTime": expires(sim, 120)},
    )
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] != subscription["expirationDateTime"]
    too_far = http.patch(
        f"/v1.0/subscriptions/{subscription['id']}",
        headers=auth,
        json={"expirationDateTime": expires(sim, 20000)},
    )
    assert too_far.status_code == 400
    # Past its expiry a subscription delivers nothing and is gone.
    http.post("/_sim/clock", json={"advanceSeconds": 121 * 60})
    auth = bearer(mint_app_token(sim, TENANT, SERVICE_APP_ID, ROLES))  # the old token expired too
    deliver(http)
    assert http.get(f"/v1.0/subscriptions/{subscription['id']}", headers=auth).status_code == 404
    wait_for(lambda: http.get("/_sim/notifications").json()["pending"] == 0)
    assert receiver.received() == []
    second = subscribe(sim, http, auth, receiver).json()
    assert http.delete(f"/v1.0/subscriptions/{second['id']}", headers=auth).status_code == 204
    assert http.get("/v1.0/subscriptions", headers=auth).json()["value"] == []
