"""The Salesforce JSON API against sfsim (unmodified simple-salesforce underneath), on
SQLite and PostgreSQL: connecting three ways, Run Test, the share, members' users, the
backlog with Retry, a drain and a mirror run; secrets go in and never come out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from m365sync.web.app import create_app
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_CONSUMER_SECRET
from support.salesforce_target_world import ADELE, SalesforceTarget, salesforce_target
from support.salesforce_world import DEMO_KEY, log_in_and_allow

target = salesforce_target
PRIVATE_KEY_LINE = DEMO_KEY.private_key_pem.splitlines()[1]


class Api:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"authorization": f"Bearer {token}"}
        self.base = "/api/v1/organizations/contoso/salesforce"
        self.answers: list[str] = []

    def call(self, method: str, path: str = "", status: int = 200, **kwargs: Any) -> Any:
        answer = self.client.request(method, self.base + path, headers=self.headers, **kwargs)
        assert answer.status_code == status, answer.text
        self.answers.append(answer.text)
        return answer.json() if answer.content else None


@pytest.fixture
def api(target: SalesforceTarget) -> Iterator[Api]:
    token = target.add_admin()
    app = create_app(settings=target.settings, database=target.database)
    with TestClient(app) as client:
        yield Api(client, token)


def jwt(api: Api, **overrides: Any) -> Any:
    body = {
        "consumer_key": SALESFORCE_CONSUMER_KEY,
        "username": "integration@acme.example",
        "private_key_pem": DEMO_KEY.private_key_pem,
        "certificate_pem": DEMO_KEY.certificate_pem,
        **overrides,
    }
    return api.call("POST", "/connect/jwt", json=body)


def test_connect_with_jwt_then_the_overview_says_who_and_where(
    api: Api, target: SalesforceTarget
) -> None:
    assert api.call("GET")["connected"] is False

    report = jwt(api)

    assert report["ok"] is True
    assert report["verdict"] == "Connected and working: every check passed."
    overview = api.call("GET")
    assert (overview["status"], overview["auth_kind"]) == ("active", "jwt_bearer")
    assert overview["integration_username"] == "integration@acme.example"
    assert overview["instance_url"] == target.sf.url
    assert overview["effective_share"] == 0.5
    assert overview["api_limit"] > 0
    users = {m["email"]: m["salesforce_username"] for m in api.call("GET", "/members")}
    assert users[ADELE] == "adele@acme.example"
    assert not any(PRIVATE_KEY_LINE in text for text in api.answers)


def test_a_refused_sign_in_saves_nothing_and_says_why(api: Api) -> None:
    report = jwt(api, consumer_key="3MVG9.not-a-key")

    assert report["ok"] is False
    assert report["verdict"].startswith("Not connected:")
    failed = next(c for c in report["checks"] if c["outcome"] == "failed")
    assert "Consumer" in failed["fix"]
    assert api.call("GET")["connected"] is False


def test_client_credentials_then_run_test_share_and_users(
    api: Api, target: SalesforceTarget
) -> None:
    report = api.call(
        "POST",
        "/connect/client-credentials",
        json={
            "consumer_key": SALESFORCE_CONSUMER_KEY,
            "consumer_secret": SALESFORCE_CONSUMER_SECRET,
        },
    )
    assert report["ok"], report

    assert api.call("POST", "/test")["ok"] is True
    assert api.call("PUT", "/share", json={"share": 0.3})["effective_share"] == 0.3
    refused = api.call("PUT", "/share", json={"share": 1.5}, status=422)["error"]
    assert "at most 100 %" in refused["message"] and refused["fix"]
    assert api.call("GET", "")["create_leads"] is False
    assert api.call("PUT", "/create-leads", json={"enabled": True})["create_leads"] is True
    assert api.call("GET", "")["create_leads"] is True

    adele = next(m for m in api.call("GET", "/members") if m["email"] == ADELE)
    chosen = api.call("PUT", f"/members/{adele['member_id']}", json={"user": "rep@acme.example"})
    assert (chosen["salesforce_username"], chosen["matched_by"]) == ("rep@acme.example", "admin")
    # Matching by address again keeps the admin's choice...
    matched = {m["email"]: m for m in api.call("POST", "/members/match")}
    assert matched[ADELE]["salesforce_username"] == "rep@acme.example"
    # ...until the admin goes back to matching.
    api.call("DELETE", f"/members/{adele['member_id']}", status=204)
    matched = {m["email"]: m for m in api.call("POST", "/members/match")}
    assert (matched[ADELE]["salesforce_username"], matched[ADELE]["matched_by"]) == (
        "adele@acme.example",
        "email",
    )
    unknown = api.call(
        "PUT", f"/members/{adele['member_id']}", json={"user": "nobody@acme.example"}, status=404
    )
    assert "nobody@acme.example" in unknown["error"]["message"]
    assert not any(SALESFORCE_CONSUMER_SECRET in text for text in api.answers)


def test_connect_salesforce_with_pkce_through_the_api(api: Api) -> None:
    started = api.call(
        "POST",
        "/connect/start",
        json={
            "consumer_key": SALESFORCE_CONSUMER_KEY,
            "consumer_secret": SALESFORCE_CONSUMER_SECRET,
        },
    )
    assert "code_challenge=" in started["authorization_url"]
    callback = log_in_and_allow(
        started["authorization_url"],
        username="integration@acme.example",
        password="Demo-Integration-1!",
    )

    report = api.call("POST", "/connect/complete", json={"callback": callback})

    assert report["ok"] is True
    assert api.call("GET")["auth_kind"] == "web_server"
    again = api.call("POST", "/connect/complete", json={"callback": callback}, status=422)
    assert "Connect Salesforce" in again["error"]["fix"]
    api.call("DELETE", status=204)
    assert api.call("GET")["status"] == "disconnected"


def test_the_backlog_names_the_parked_email_and_retry_writes_it_once_fixed(
    api: Api, target: SalesforceTarget
) -> None:
    jwt(api)
    assert api.call("POST", "/refresh")["loaded"]["Contact"] == 3
    rule = target.refuse_emails_titled("Secret plans")
    parked_id = target.mail("Secret plans")
    target.mail("Lunch")
    assert target.sync.sync(ADELE).outcome == "ok"

    drained = api.call("POST", "/drain")

    assert (drained["status"], drained["synced"], drained["parked"]) == ("drained", 1, 1)
    (item,) = api.call("GET", "/backlog")
    assert (item["subject"], item["state"], item["member_email"]) == (
        "Secret plans",
        "parked",
        ADELE,
    )
    assert rule in item["reason"] and "Validation Rules" in item["fix"]
    adele = next(m for m in api.call("GET", "/members") if m["email"] == ADELE)
    assert len(api.call("GET", "/backlog", params={"member": adele["member_id"]})) == 1
    # The Salesforce admin deactivates the rule; Retry writes the email, once.
    target.sf.state.records.validation_rules.clear()
    assert api.call("POST", "/backlog/retry", json={"activity_ids": [item["activity_id"]]}) == {
        "retried": 1
    }
    assert api.call("POST", "/drain")["synced"] == 1
    assert api.call("GET", "/backlog") == []
    assert len(target.email_messages(parked_id)) == 1
