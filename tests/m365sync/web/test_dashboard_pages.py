"""The admin pages beyond the first pass: edit and rotate secret in the side panel,
Connect using Exchange, a member's password, CSV import results, and the scheduling
setting in Sync settings — as the HTML a person gets back."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

from m365sync.microsoft.ews import close_exchange_connections
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Role
from support.demo import SERVICE_APP_ID, SERVICE_SECRET, SERVICE_SECRET_ID
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, turn_on_exchange


@pytest.fixture
def admin(client: TestClient, people: Any, sign_in: Any, csrf_of: Any) -> str:
    """Signed in as Contoso's admin, with contoso.com as a domain to sync; the CSRF token."""
    contoso = people.organization("Contoso", "contoso")
    people.member(contoso, "admin@contoso.com", Role.ADMIN, name="Megan Bowen")
    people.member(contoso, "adele@contoso.com", Role.USER, name="Adele Vance")
    sign_in(client, "admin@contoso.com")
    token = csrf_of(client.get("/admin/domains").text)
    assert (
        client.post("/admin/domains", data={"name": "contoso.com", "csrf_token": token}).status_code
        == 303
    )
    return token


def saved_account(client: TestClient, token: str) -> str:
    answer = client.post(
        "/admin/service-accounts",
        data={
            "csrf_token": token,
            "name": "Contoso sync",
            "client_id": SERVICE_APP_ID,
            "client_secret": SERVICE_SECRET,
            "test_mailbox": "adele@contoso.com",
        },
    )
    assert answer.headers["location"] == "/admin/service-accounts?notice=saved"
    page = client.get("/admin/service-accounts").text
    return page.split("/limit-access", 1)[0].rsplit("/", 1)[1]


def test_rotating_to_a_secret_id_is_refused_with_the_fix_and_keeps_the_old_secret(
    sim: Any, client: TestClient, admin: str
) -> None:
    account_id = saved_account(client, admin)
    panel = client.get(f"/admin/service-accounts?panel=rotate&account={account_id}").text
    assert "Rotate the client secret" in panel and "New Client Secret Value" in panel

    refused = client.post(
        f"/admin/service-accounts/{account_id}/rotate-secret",
        data={"csrf_token": admin, "client_secret": SERVICE_SECRET_ID},
    )

    assert refused.status_code == 422
    assert "This is the secret&#39;s ID, not its value." in refused.text
    assert "Save anyway with the failing features turned off" in refused.text
    assert "--partial" not in refused.text and "&#34;partial&#34;" not in refused.text
    assert SERVICE_SECRET_ID not in refused.text
    listing = client.get("/admin/service-accounts").text
    assert 'badge-active">Active' in listing

    rotated = client.post(
        f"/admin/service-accounts/{account_id}/rotate-secret",
        data={"csrf_token": admin, "client_secret": SERVICE_SECRET},
        follow_redirects=True,
    )
    assert "New client secret tested and saved" in rotated.text
    assert SERVICE_SECRET not in rotated.text


def test_editing_renames_and_tests_again(sim: Any, client: TestClient, admin: str) -> None:
    account_id = saved_account(client, admin)

    edited = client.post(
        f"/admin/service-accounts/{account_id}/edit",
        data={"csrf_token": admin, "name": "CRM sync (Graph)", "test_mailbox": "admin@contoso.com"},
        follow_redirects=True,
    )

    assert "Service account tested and saved." in edited.text
    assert "CRM sync (Graph)" in edited.text
    panel = client.get(f"/admin/service-accounts?panel=edit&account={account_id}").text
    assert 'value="admin@contoso.com"' in panel

    blank = client.post(
        f"/admin/service-accounts/{account_id}/edit",
        data={"csrf_token": admin, "name": "", "test_mailbox": "admin@contoso.com"},
    )
    assert blank.status_code == 422
    assert "A service account needs a name." in blank.text


def test_connect_using_exchange_refuses_exchange_online_and_saves_what_passes_run_test(
    sim: Any, client: TestClient, admin: str
) -> None:
    panel = client.get("/admin/service-accounts?panel=exchange").text
    assert "EWS server URL" in panel and 'name="test_mailbox"' in panel

    online = client.post(
        "/admin/service-accounts/exchange",
        data={
            "csrf_token": admin,
            "server_url": "https://outlook.office365.com/EWS/Exchange.asmx",
            "username": "svc-crm@contoso.com",
            "password": "an Exchange password",
            "test_mailbox": "diego@contoso.com",
        },
    )
    assert online.status_code >= 400
    assert "is Exchange Online" in online.text
    assert "Connect your Office 365" in online.text or "Office 365" in online.text
    assert "an Exchange password" not in online.text

    missing = client.post(
        "/admin/service-accounts/exchange",
        data={"csrf_token": admin, "server_url": "https://mail.contoso.com/EWS/Exchange.asmx"},
    )
    assert "Username, Password, Test mailbox: required." in missing.text

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}/EWS/Exchange.asmx"
    unreachable = client.post(
        "/admin/service-accounts/exchange",
        data={
            "csrf_token": admin,
            "server_url": closed,
            "username": SERVICE_ACCOUNT,
            "password": "an Exchange password",
            "test_mailbox": "diego@contoso.com",
        },
    )
    assert unreachable.status_code == 422  # Run Test's server check, before anything is saved
    assert "did not answer" in unreachable.text and "firewall" in unreachable.text
    assert 'value="diego@contoso.com"' in unreachable.text  # the panel keeps what was entered
    assert "an Exchange password" not in unreachable.text
    assert "No service account yet." in client.get("/admin/service-accounts").text

    server = turn_on_exchange(sim)  # an on-premises Exchange Server that answers
    try:
        saved = client.post(
            "/admin/service-accounts/exchange",
            data={
                "csrf_token": admin,
                "server_url": server,
                "username": SERVICE_ACCOUNT,
                "password": SERVICE_PASSWORD,
                "test_mailbox": "diego@contoso.com",
            },
            follow_redirects=True,
        )
    finally:
        close_exchange_connections()
    assert "Exchange service account saved." in saved.text
    row = saved.text.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    cells = [c.split(">", 1)[1].split("</td>", 1)[0].strip() for c in row.split("<td")[1:]]
    # Name, Kind, Client ID, Tenant, Server, Features: the server in its own column.
    assert cells[1] == "Exchange" and cells[2] == "—" and cells[4] == server
    assert "Email Sync" in cells[5] and "Calendar Sync" in cells[5]
    assert SERVICE_PASSWORD not in saved.text


def test_an_admin_sets_a_members_password_and_they_sign_in_with_it(
    client: TestClient, admin: str, people: Any, sign_in: Any
) -> None:
    page = client.get("/admin/members").text
    found = re.search(r'<option value="([^"]+)">adele@contoso.com</option>', page)
    assert found is not None
    adele_id = found.group(1)

    different = client.post(
        "/admin/members/password",
        data={
            "csrf_token": admin,
            "member_id": adele_id,
            "password": "x" * 14,
            "repeat_password": "y" * 14,
        },
    )
    assert different.status_code == 422
    assert "The two passwords are different." in different.text

    weak = client.post(
        "/admin/members/password",
        data={
            "csrf_token": admin,
            "member_id": adele_id,
            "password": "short",
            "repeat_password": "short",
        },
    )
    assert "This password is too weak." in weak.text and "at least 12 characters" in weak.text

    done = client.post(
        "/admin/members/password",
        data={
            "csrf_token": admin,
            "member_id": adele_id,
            "password": "adele's new passphrase",
            "repeat_password": "adele's new passphrase",
        },
        follow_redirects=True,
    )
    assert "Password set" in done.text
    client.cookies.clear()
    assert sign_in(client, "adele@contoso.com", "adele's new passphrase").status_code == 303


def test_a_csv_import_applies_good_rows_and_lists_the_rejected_ones(
    client: TestClient, admin: str
) -> None:
    csv = "email,name,role\nlee@contoso.com,Lee Gu,user\nnot-an-address,Nobody,user\n"

    answer = client.post(
        "/admin/members/import",
        data={"csrf_token": admin},
        files={"file": ("team.csv", csv.encode(), "text/csv")},
    )

    assert "1 added, 0 updated; 1 rows not imported" in answer.text
    assert "line 3: &#39;not-an-address&#39; is not an email address." in answer.text
    assert "lee@contoso.com" in client.get("/admin/members").text


def test_sync_settings_hold_the_scheduling_lead_rule(client: TestClient, admin: str) -> None:
    page = client.get("/admin/sync-settings").text
    assert "Create a lead for an unknown invitee" in page
    assert 'name="scheduling_create_leads" aria-describedby="scheduling-leads-help" checked' in page

    bad = client.post(
        "/admin/sync-settings",
        data={
            "csrf_token": admin,
            "mail_folders": "inbox",
            "backfill_days": "-3",
            "calendar_days_back": "30",
            "calendar_days_ahead": "180",
            "delete_policy": "keep",
        },
    )
    assert bad.status_code == 422
    assert "Backfill window: enter a number of days from 0 (everything) to 3650." in bad.text

    saved = client.post(
        "/admin/sync-settings",
        data={
            "csrf_token": admin,
            "mail_folders": "inbox",
            "backfill_days": "14",
            "calendar_days_back": "30",
            "calendar_days_ahead": "180",
            "delete_policy": "keep",
        },
        follow_redirects=True,
    )
    assert "Sync settings saved." in saved.text
    assert 'name="scheduling_create_leads" aria-describedby="scheduling-leads-help" >' in saved.text
    assert 'value="14"' in saved.text


def test_the_navigation_links_the_scheduling_pages(client: TestClient, admin: str) -> None:
    admin_page = client.get("/admin/members").text
    assert 'href="/scheduling/admin"' in admin_page
    user_page = client.get("/me/connections").text
    assert 'href="/scheduling"' in user_page
    assert client.get("/scheduling/admin").status_code == 200


def test_an_admin_lists_and_revokes_api_tokens(
    client: TestClient, admin: str, people: Any, database: Any
) -> None:
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        megan = organizations.get_member(db, contoso, "admin@contoso.com")
        _, token = organizations.create_api_token(db, contoso, megan, name="Nightly export")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    other_admin = people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    with database.session() as db:
        others, _ = organizations.create_api_token(
            db, organizations.get_organization(db, fabrikam.id), other_admin
        )
    api = "/api/v1/organizations/contoso/domains"
    assert client.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    page = client.get("/admin/api-tokens")
    assert page.status_code == 200 and 'href="/admin/api-tokens" aria-current="page"' in page.text
    assert "Nightly export" in page.text and f"{token[:10]}…" in page.text
    assert token not in page.text and "Fabrikam" not in page.text
    token_id = page.text.split('action="/admin/api-tokens/', 1)[1].split("/", 1)[0]

    assert (
        client.post(f"/admin/api-tokens/{others.id}/revoke", data={"csrf_token": admin}).status_code
        == 404
    )
    done = client.post(
        f"/admin/api-tokens/{token_id}/revoke", data={"csrf_token": admin}, follow_redirects=True
    )
    assert "API token revoked: it no longer works." in done.text
    assert "Revoked" in done.text and 'action="/admin/api-tokens/' not in done.text
    refused = client.get(api, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "was revoked on" in refused.json()["error"]["message"]
    with database.session() as db:
        assert (
            organizations.list_api_tokens(db, organizations.get_organization(db, fabrikam.id))[
                0
            ].revoked_at
            is None
        )


def test_an_admin_made_a_user_on_the_members_page_loses_their_api_tokens(
    client: TestClient, admin: str, people: Any, database: Any
) -> None:
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        diego = organizations.add_member(db, contoso, "diego@contoso.com", role=Role.ADMIN)
        _, token = organizations.create_api_token(db, contoso, diego, name="Diego's script")
    for role in ("user", "admin"):
        answer = client.post(
            f"/admin/members/{diego.id}/role",
            data={"csrf_token": admin, "role": role, "confirmed": "yes"},
        )
        assert answer.status_code == 303
    refused = client.get(
        "/api/v1/organizations/contoso/domains", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 401
    assert "Revoked" in client.get("/admin/api-tokens").text


def test_a_role_changes_only_once_the_admin_confirms_it(
    client: TestClient, admin: str, database: Any
) -> None:
    with database.session() as db:
        contoso = organizations.get_organization(db, "contoso")
        diego = organizations.add_member(db, contoso, "diego@contoso.com", name="Diego")

    unconfirmed = client.post(
        f"/admin/members/{diego.id}/role", data={"csrf_token": admin, "role": "admin"}
    )
    assert unconfirmed.headers["location"] == f"/admin/members/{diego.id}/role?to=admin"
    question = client.get(unconfirmed.headers["location"]).text
    assert "Make Diego an admin?" in question
    with database.session() as db:
        assert organizations.get_member(db, contoso, diego.id).role == Role.USER

    client.post(
        f"/admin/members/{diego.id}/role",
        data={"csrf_token": admin, "role": "admin", "confirmed": "yes"},
    )
    with database.session() as db:
        assert organizations.get_member(db, contoso, diego.id).role == Role.ADMIN


def test_a_too_long_name_is_refused_on_the_members_page(client: TestClient, admin: str) -> None:
    answer = client.post(
        "/admin/members",
        data={"csrf_token": admin, "email": "lee@contoso.com", "name": "x" * 201, "role": "user"},
    )
    assert answer.status_code == 422
    assert "The member&#39;s name is 201 characters long; the most is 200." in answer.text
    assert "lee@contoso.com" not in answer.text.split("</h1>", 1)[1]
