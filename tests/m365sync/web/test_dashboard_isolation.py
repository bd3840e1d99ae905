"""Organization isolation and roles, route by route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from m365sync.db import Database
from m365sync.organizations.models import Domain, Role
from support.demo import SERVICE_APP_ID

ADMIN_PAGES = [
    "/admin/domains",
    "/admin/service-accounts",
    "/admin/members",
    "/admin/members/status",
    "/admin/sync-settings",
    "/admin/audit-log",
    "/admin/salesforce",
    "/admin/service-accounts?panel=exchange",
    "/admin/service-accounts/any-id/limit-access",
]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_a_user_who_is_not_an_admin_is_refused_admin_pages(
    client: TestClient, people: Any, path: str, sign_in: Any, csrf_of: Any
) -> None:
    org = people.organization("Contoso", "contoso")
    people.member(org, "adele@contoso.com", Role.USER)
    sign_in(client, "adele@contoso.com")

    answer = client.get(path)

    assert answer.status_code == 403
    assert "This page is for admins of your organization." in answer.text


def test_an_admin_cannot_remove_another_organizations_domain(
    client: TestClient, people: Any, database: Database, sign_in: Any, csrf_of: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    with database.session() as db:
        domain = Domain(organization_id=contoso.id, name="contoso.com")
        db.add(domain)
    sign_in(client, "admin@fabrikam.com")
    token = csrf_of(client.get("/admin/domains").text)

    answer = client.post(f"/admin/domains/{domain.id}/remove", data={"csrf_token": token})

    assert answer.status_code == 404
    with database.session() as db:
        assert db.get(Domain, domain.id) is not None
    assert "<td>contoso.com</td>" not in client.get("/admin/domains").text


def test_an_admin_cannot_change_the_role_of_another_organizations_member(
    client: TestClient, people: Any, database: Database, sign_in: Any, csrf_of: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    victim = people.member(contoso, "adele@contoso.com", Role.USER)
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    sign_in(client, "admin@fabrikam.com")
    token = csrf_of(client.get("/admin/members").text)

    answer = client.post(
        f"/admin/members/{victim.id}/role", data={"role": "admin", "csrf_token": token}
    )

    assert answer.status_code == 404
    assert "adele@contoso.com" not in client.get("/admin/members").text


def test_an_admin_cannot_set_the_password_of_another_organizations_member(
    client: TestClient, people: Any, sign_in: Any, csrf_of: Any
) -> None:
    contoso = people.organization("Contoso", "contoso")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    victim = people.member(contoso, "adele@contoso.com", Role.USER)
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    sign_in(client, "admin@fabrikam.com")
    token = csrf_of(client.get("/admin/members").text)

    answer = client.post(
        "/admin/members/password",
        data={
            "member_id": victim.id,
            "password": "a new long passphrase",
            "repeat_password": "a new long passphrase",
            "csrf_token": token,
        },
    )

    assert answer.status_code == 404
    assert "That member is not in your organization." in answer.text
    client.cookies.clear()
    assert sign_in(client, "adele@contoso.com", "a new long passphrase").status_code != 303


def test_an_admin_cannot_open_another_organizations_service_account(
    client: TestClient, people: Any, database: Database, sign_in: Any
) -> None:
    from m365sync.connections.models import ConnectionKind, CredentialType, ServiceAccount

    contoso = people.organization("Contoso", "contoso")
    fabrikam = people.organization("Fabrikam", "fabrikam")
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    with database.session() as db:
        account = ServiceAccount(
            organization_id=contoso.id,
            name="Contoso sync",
            kind=ConnectionKind.OFFICE365,
            credential_type=CredentialType.SECRET,
            client_id=SERVICE_APP_ID,
        )
        db.add(account)
    sign_in(client, "admin@fabrikam.com")

    for path in (
        f"/admin/service-accounts?panel=edit&account={account.id}",
        f"/admin/service-accounts?panel=rotate&account={account.id}",
        f"/admin/service-accounts/{account.id}/limit-access?group=crm-sync@contoso.com",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "That service account is not in your organization." in answer.text
        assert "Contoso sync" not in answer.text
