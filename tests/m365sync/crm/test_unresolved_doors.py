"""The unresolved queue's doors: the rep's page (plain forms, no JavaScript), the JSON API
and ``m365sync unresolved``, against m365sim and sfsim."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from m365sync.auth import set_password
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Member, Organization, Role
from m365sync.settings import get_settings
from m365sync.sync.features import SyncFeature
from m365sync.web.app import create_app
from support.cli_runner import cli_runner
from support.demo import DASHBOARD_PASSWORD
from support.salesforce_target_world import ADELE, PAT, SalesforceTarget

STRANGER = "jo@prospect.example"


@pytest.fixture
def waiting(target: SalesforceTarget) -> SalesforceTarget:
    """Salesforce connected, and a meeting of Adele's with a stranger waiting."""
    report = target.connect()
    assert report.ok, report.failures()
    target.mirror()
    soon = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    target.sync.control.post(
        f"/_sim/mailboxes/{ADELE}/events",
        json={
            "subject": "Intro with Jo",
            "start": {"dateTime": f"{soon}T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"{soon}T11:00:00", "timeZone": "UTC"},
            "attendees": [{"emailAddress": {"address": STRANGER}}],
        },
    ).raise_for_status()
    assert target.sync.sync(ADELE, SyncFeature.CALENDAR).outcome == "ok"
    assert target.drain().unmatched == 1
    return target


def web(target: SalesforceTarget) -> Any:
    return create_app(
        settings=target.settings, database=target.database, runtime=target.sync.runtime
    )


def signed_in(client: TestClient, target: SalesforceTarget) -> None:
    with target.database.session() as session:
        member = session.get(Member, target.sync.members[ADELE])
        assert member is not None
        set_password(session, member, DASHBOARD_PASSWORD)
    page = client.get("/sign-in")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/sign-in", data={"email": ADELE, "password": DASHBOARD_PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text


def csrf(html: str) -> str:
    return html.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_the_rep_relates_an_address_on_the_page_without_javascript(
    waiting: SalesforceTarget,
) -> None:
    with TestClient(web(waiting), follow_redirects=False) as client:
        signed_in(client, waiting)
        page = client.get("/me/unresolved")
        assert page.status_code == 200
        assert "Intro with Jo" in page.text and STRANGER in page.text

        found = client.get("/me/unresolved", params={"address": STRANGER, "q": "pat"})
        assert "Relate to Contact" in found.text
        pat_id = waiting.record_id("Contact", Email=PAT)
        assert pat_id in found.text

        refused = client.post(
            "/me/unresolved/relate",
            data={
                "address": STRANGER,
                "salesforce_id": "003000000000000AAA",
                "csrf_token": csrf(page.text),
            },
        )
        assert refused.status_code == 404
        assert "Search for the record by name" in refused.text

        done = client.post(
            "/me/unresolved/relate",
            data={"address": STRANGER, "salesforce_id": pat_id, "csrf_token": csrf(page.text)},
        )
        assert done.status_code == 303
        after = client.get(done.headers["location"])
        assert "Related:" in after.text
        assert "Nothing waits." in after.text

    assert waiting.drain().synced == 1
    (event,) = waiting.records("Event")
    assert event["WhoId"] == pat_id


def test_the_api_lists_searches_and_makes_a_lead(waiting: SalesforceTarget) -> None:
    with waiting.database.session() as session:
        organization = session.get(Organization, waiting.organization_id)
        assert organization is not None
        boss = organizations.add_member(session, organization, "boss@contoso.com", role=Role.ADMIN)
        _, token = organizations.create_api_token(session, organization, boss, name="test")
        slug = organization.slug
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/organizations/{slug}/unresolved"
    adele = waiting.sync.members[ADELE]
    with TestClient(web(waiting)) as client:
        (item,) = client.get(base, params={"member_id": adele}, headers=headers).json()
        assert (item["subject"], item["addresses"]) == ("Intro with Jo", [STRANGER])

        too_short = client.get(f"{base}/records", params={"q": "p"}, headers=headers)
        assert too_short.status_code == 422
        assert "two letters" in too_short.json()["error"]["message"]
        records = client.get(f"{base}/records", params={"q": "pat"}, headers=headers).json()
        assert any(r["sobject"] == "Contact" for r in records)

        made = client.post(
            f"{base}/addresses/{STRANGER}/lead",
            json={"name": "Jo Prospect", "member_id": adele},
            headers=headers,
        )
        assert made.status_code == 201, made.text
        assert made.json()["requeued"] == 1
        assert client.get(base, params={"member_id": adele}, headers=headers).json() == []
    (lead,) = [r for r in waiting.records("Lead") if r["Email"] == STRANGER]
    assert made.json()["salesforce_id"] == lead["Id"]


@pytest.fixture
def m365sync(
    waiting: SalesforceTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    settings = waiting.settings
    env = {
        "M365SYNC_DATA_DIR": str(settings.data_dir),
        "M365SYNC_DATABASE_URL": settings.resolved_database_url,
        "M365SYNC_SALESFORCE_LOGIN_URL": str(settings.salesforce_login_url),
        "M365SYNC_CA_BUNDLE": str(settings.ca_bundle),
        "M365SYNC_CONFIG_FILE": str(settings.data_dir / "none.env"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if settings.secret_key:
        monkeypatch.setenv("M365SYNC_SECRET_KEY", settings.secret_key)

    yield cli_runner(capsys)
    get_settings.cache_clear()


def test_the_command_line_lists_and_dismisses(m365sync: Any, waiting: SalesforceTarget) -> None:
    with waiting.database.session() as session:
        organization = session.get(Organization, waiting.organization_id)
        assert organization is not None
        slug = organization.slug

    code, out, err = m365sync("unresolved", "list", "--org", slug, "--member", ADELE, "--json")
    assert code == 0, err
    assert "Intro with Jo" in out and STRANGER in out

    code, out, err = m365sync(
        "unresolved", "dismiss", "not an address", "--org", slug, "--member", ADELE
    )
    assert code == 2
    assert "is not an email address" in err

    code, out, err = m365sync("unresolved", "dismiss", STRANGER, "--org", slug, "--member", ADELE)
    assert code == 0, err
    assert "dismissed" in out
    code, out, _ = m365sync("unresolved", "list", "--org", slug, "--member", ADELE, "--json")
    assert out.strip() == "[]"

    for command in ("list", "search", "relate", "lead", "dismiss"):
        code, out, _ = m365sync("unresolved", command, "--help")
        assert code == 0
        assert "--org" in out and "Organization slug" in out


def test_the_rep_makes_a_lead_with_one_click(waiting: SalesforceTarget) -> None:
    with TestClient(web(waiting), follow_redirects=False) as client:
        signed_in(client, waiting)
        page = client.get("/me/unresolved")
        done = client.post(
            "/me/unresolved/lead",
            data={"address": STRANGER, "name": "Jo Prospect", "csrf_token": csrf(page.text)},
        )
        assert done.status_code == 303, done.text
        assert "Lead created in Salesforce" in client.get(done.headers["location"]).text

    (lead,) = [r for r in waiting.records("Lead") if r["Email"] == STRANGER]
    assert waiting.drain().synced == 1
    (event,) = waiting.records("Event")
    assert event["WhoId"] == lead["Id"]
