"""The Salesforce page as an admin's browser posts its forms (no JavaScript): connecting
with an uploaded private key, Run Test with its verdict, the share, a member's user, the
waiting records with Retry, Disconnect; and Activities linking to the Salesforce record.
On SQLite and PostgreSQL, against sfsim and m365sim."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from m365sync.crm.salesforce_schemas import SalesforceOverview
from m365sync.crm.salesforce_service import salesforce_overview
from m365sync.web.app import create_app
from support.demo import SALESFORCE_CONSUMER_KEY
from support.salesforce_target_world import (
    ADELE,
    ADMIN_PASSWORD,
    SalesforceTarget,
    salesforce_target,
)
from support.salesforce_world import DEMO_KEY

target = salesforce_target
ADMIN = "megan@contoso.com"


class Browser:
    """A signed-in admin's form posts, the CSRF token read from the last page."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        page = client.get("/sign-in")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = client.post(
            "/sign-in", data={"email": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303, signed.text
        self.page = self.get("/admin/salesforce")

    def get(self, path: str, status: int = 200) -> str:
        answer = self.client.get(path)
        assert answer.status_code == status, answer.text
        return answer.text

    def post(self, path: str, status: int = 303, **kwargs: Any) -> Any:
        csrf = self.page.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
        data = {"csrf_token": csrf, **kwargs.pop("data", {})}
        answer = self.client.post(path, data=data, **kwargs)
        assert answer.status_code == status, answer.text
        if status == 303:
            self.page = self.get(answer.headers["location"])
        else:
            self.page = answer.text
        return answer


@pytest.fixture
def admin(target: SalesforceTarget) -> Iterator[Browser]:
    target.add_admin(ADMIN)
    app = create_app(settings=target.settings, database=target.database)
    with TestClient(app, follow_redirects=False) as client:
        yield Browser(client)


def overview(target: SalesforceTarget) -> SalesforceOverview:
    with target.database.session() as session:
        return salesforce_overview(session, target.organization_id)


def connect(admin: Browser) -> None:
    admin.post(
        "/admin/salesforce/jwt",
        data={"consumer_key": SALESFORCE_CONSUMER_KEY, "username": "integration@acme.example"},
        files={"private_key_file": ("m365sync.key", DEMO_KEY.private_key_pem.encode())},
    )


def test_connect_with_an_uploaded_key_then_run_test_share_and_users(
    admin: Browser, target: SalesforceTarget
) -> None:
    assert "Salesforce is not connected." in admin.page
    assert 'href="/admin/salesforce"' in admin.page  # in the admin menu

    connect(admin)

    page = admin.page
    assert "Salesforce is connected" in page
    assert "Connected and working: every check passed." in page
    assert "integration@acme.example" in page and target.sf.url in page
    assert "m365sync may use 50 %" in page
    assert DEMO_KEY.private_key_pem.splitlines()[1] not in page

    admin.post("/admin/salesforce/test")
    assert "Run Test for Salesforce finished" in admin.page
    admin.post("/admin/salesforce/share", data={"share_percent": "25"})
    assert "m365sync may use 25 %" in admin.page
    admin.post("/admin/salesforce/share", data={"share_percent": "250"}, status=422)
    assert "at most 100 %" in admin.page

    assert "Create a Lead for an unknown person who books a meeting" in admin.page
    admin.post("/admin/salesforce/create-leads", data={"create_leads": "on"})
    assert "now becomes a Salesforce Lead" in admin.page
    assert overview(target).create_leads
    admin.post("/admin/salesforce/create-leads", data={})
    assert "their meetings wait unresolved" in admin.page
    assert not overview(target).create_leads

    member_id = admin.page.split('for="user-', 1)[1].split('"', 1)[0]
    admin.post(f"/admin/salesforce/members/{member_id}/link", data={"user": "rep@acme.example"})
    assert "rep@acme.example" in admin.page and "Back to matching" in admin.page
    admin.post(f"/admin/salesforce/members/{member_id}/unlink")
    assert "Back to matching" not in admin.page

    admin.post("/admin/salesforce/disconnect")
    assert "Salesforce is disconnected" in admin.page


def test_a_refused_sign_in_shows_the_verdict_and_the_fix(admin: Browser) -> None:
    admin.post(
        "/admin/salesforce/jwt",
        status=422,
        data={
            "consumer_key": "3MVG9.not-a-key",
            "username": "integration@acme.example",
            "private_key": DEMO_KEY.private_key_pem,
        },
    )
    assert "Not connected:" in admin.page
    assert "How to fix it:" in admin.page and "Manage Consumer Details" in admin.page


def test_parked_email_with_retry_and_activities_link_to_salesforce(
    admin: Browser, target: SalesforceTarget
) -> None:
    connect(admin)
    target.mirror()
    rule = target.refuse_emails_titled("Secret plans")
    target.mail("Secret plans")
    proposal = target.mail("Proposal")
    assert target.sync.sync(ADELE).outcome == "ok"
    target.drain()

    page = admin.get("/admin/salesforce")
    assert "Secret plans" in page and rule in page and "Parked" in page
    activity_id = page.split('name="activity_id" value="', 1)[1].split('"', 1)[0]

    (email,) = target.email_messages(proposal)
    url = f"{target.sf.url}/lightning/r/EmailMessage/{email['Id']}/view"
    listing = admin.get("/activities")
    assert url in listing
    proposal_id = next(
        line.split('href="/activities/', 1)[1].split('"', 1)[0]
        for line in listing.splitlines()
        if ">Proposal<" in line
    )
    assert url in admin.get(f"/activities/{proposal_id}")

    target.sf.state.records.validation_rules.clear()
    admin.post("/admin/salesforce/retry", data={"activity_id": activity_id})
    assert "will be written again" in admin.page
    target.drain()
    assert "Nothing waits" in admin.get("/admin/salesforce")
