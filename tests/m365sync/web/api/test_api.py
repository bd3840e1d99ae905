"""The JSON API: token authentication, organization isolation, errors with cause and fix,
and the service-account flow end to end."""

from __future__ import annotations

import httpx
import pytest

from m365sync.connections.models import ConnectionStatus
from m365sync.connections.repository import ConnectionRepository
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.web.app import create_app
from support.connections import add_service_account
from support.demo import SERVICE_APP_ID, SERVICE_SECRET, SERVICE_SECRET_ID
from support.organizations import fresh


@pytest.fixture
def api(settings, db, runtime):
    app = create_app(settings=settings, database=db, runtime=runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def admin_token(db, org, email) -> str:
    with db.session() as session:
        organization = fresh(session, org)
        member = orgs.add_member(session, organization, email, role=Role.ADMIN)
        _, token = orgs.create_api_token(session, organization, member)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_openapi_is_published(api):
    response = await api.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/organizations/{org}/service-accounts" in response.json()["paths"]


async def test_missing_or_bad_token_is_401_with_a_fix(api, make_org):
    make_org()
    for headers in ({}, bearer("m365s_not-a-token")):
        response = await api.get("/api/v1/organizations/contoso/domains", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["fix"]


async def test_an_admin_of_one_organization_cannot_touch_another(api, db, make_org, make_member):
    contoso = make_org("Contoso", ("contoso.com",))
    fabrikam = make_org("Fabrikam", ("fabrikam.com",))
    contoso_token = admin_token(db, contoso, "admin@contoso.com")
    fabrikam_token = admin_token(db, fabrikam, "admin@fabrikam.com")
    victim = make_member(fabrikam, "ceo@fabrikam.com")

    # Another organization's routes: refused outright.
    for method, path in [
        ("GET", "/api/v1/organizations/fabrikam/members"),
        ("GET", "/api/v1/organizations/fabrikam/domains"),
        ("POST", "/api/v1/organizations/fabrikam/domains"),
        ("DELETE", "/api/v1/organizations/fabrikam/domains/fabrikam.com"),
        ("GET", "/api/v1/organizations/fabrikam/service-accounts"),
        ("GET", f"/api/v1/organizations/{fabrikam.id}/audit"),
    ]:
        response = await api.request(
            method, path, headers=bearer(contoso_token), json={"name": "evil.com"}
        )
        assert response.status_code == 403, (method, path, response.text)
        assert "another organization" in response.json()["error"]["message"]

    # Another organization's ids through one's own routes: not found, nothing changed.
    own = "/api/v1/organizations/contoso"
    assert (
        await api.get(f"{own}/members/{victim.id}", headers=bearer(contoso_token))
    ).status_code == 404
    assert (
        await api.delete(f"{own}/members/{victim.id}", headers=bearer(contoso_token))
    ).status_code == 404
    assert (
        await api.patch(
            f"{own}/members/{victim.id}", headers=bearer(contoso_token), json={"role": "admin"}
        )
    ).status_code == 404
    members = (
        await api.get("/api/v1/organizations/fabrikam/members", headers=bearer(fabrikam_token))
    ).json()
    assert {m["email"] for m in members} == {"admin@fabrikam.com", "ceo@fabrikam.com"}
    ceo = next(m for m in members if m["email"] == "ceo@fabrikam.com")
    assert ceo["role"] == "user"
    own_members = (await api.get(f"{own}/members", headers=bearer(contoso_token))).json()
    assert {m["email"] for m in own_members} == {"admin@contoso.com"}


async def test_non_admin_tokens_stop_working(api, db, make_org):
    org = make_org()
    token = admin_token(db, org, "admin@contoso.com")
    with db.session() as session:
        organization = fresh(session, org)
        orgs.update_member(
            session,
            organization,
            orgs.get_member(session, organization, "admin@contoso.com"),
            role="user",
        )
    response = await api.get("/api/v1/organizations/contoso/domains", headers=bearer(token))
    assert response.status_code == 401


async def test_a_revoked_token_gets_401_saying_so(api, db, make_org):
    contoso = make_org()
    fabrikam = make_org("Fabrikam", ("fabrikam.com",))
    token = admin_token(db, contoso, "admin@contoso.com")
    spare = admin_token(db, contoso, "diego@contoso.com")
    base = "/api/v1/organizations/contoso"

    listed = await api.get(f"{base}/api-tokens", headers=bearer(token))
    assert listed.status_code == 200
    rows = listed.json()
    assert {r["admin"] for r in rows} == {"admin@contoso.com", "diego@contoso.com"}
    assert all(token not in str(r) and spare not in str(r) for r in rows)
    spare_id = next(r["id"] for r in rows if r["admin"] == "diego@contoso.com")
    other_org_token = admin_token(db, fabrikam, "admin@fabrikam.com")
    refused = await api.delete(
        f"/api/v1/organizations/fabrikam/api-tokens/{spare_id}", headers=bearer(other_org_token)
    )
    assert refused.status_code == 404  # another organization's token: not found, not revoked

    revoked = await api.delete(f"{base}/api-tokens/{spare_id}", headers=bearer(token))
    assert revoked.status_code == 204
    answer = await api.get(f"{base}/domains", headers=bearer(spare))
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert "was revoked on" in error["message"] and error["fix"]
    after = (await api.get(f"{base}/api-tokens", headers=bearer(token))).json()
    assert [r["revoked_at"] is not None for r in after] == [False, True]
    assert after[0]["last_used_at"] is not None


async def test_demoting_and_promoting_again_does_not_bring_a_token_back(api, db, make_org):
    org = make_org()
    token = admin_token(db, org, "admin@contoso.com")
    other = admin_token(db, org, "diego@contoso.com")
    base = "/api/v1/organizations/contoso"
    members = (await api.get(f"{base}/members", headers=bearer(other))).json()
    admin_id = next(m["id"] for m in members if m["email"] == "admin@contoso.com")
    for role in ("user", "admin"):
        changed = await api.patch(
            f"{base}/members/{admin_id}", headers=bearer(other), json={"role": role}
        )
        assert changed.status_code == 200 and changed.json()["role"] == role
    answer = await api.get(f"{base}/domains", headers=bearer(token))
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]


async def test_a_name_longer_than_200_characters_is_a_422_and_one_bad_csv_line(api, db, make_org):
    org = make_org()
    token = admin_token(db, org, "admin@contoso.com")
    base = "/api/v1/organizations/contoso"
    long_name = "x" * 201
    added = await api.post(
        f"{base}/members",
        headers=bearer(token),
        json={"email": "lee@contoso.com", "name": long_name},
    )
    assert added.status_code == 422
    assert added.json()["error"] == {
        "message": "The member's name is 201 characters long; the most is 200.",
        "fix": "Shorten it to 200 characters or fewer.",
    }
    members = (await api.get(f"{base}/members", headers=bearer(token))).json()
    admin_id = members[0]["id"]
    renamed = await api.patch(
        f"{base}/members/{admin_id}", headers=bearer(token), json={"name": long_name}
    )
    assert renamed.status_code == 422 and renamed.json()["error"]["fix"]

    imported = await api.post(
        f"{base}/members/import",
        headers={**bearer(token), "Content-Type": "text/csv"},
        content=f"email,name\nlee@contoso.com,Lee Gu\nlong@contoso.com,{long_name}\n"
        "grady@contoso.com,Grady Archie\n",
    )
    assert imported.status_code == 200
    assert imported.json()["created"] == ["lee@contoso.com", "grady@contoso.com"]
    assert imported.json()["errors"] == [
        "line 3: The member's name is 201 characters long; the most is 200. "
        "Shorten it to 200 characters or fewer."
    ]


async def test_domains_members_and_expected_errors(api, db, make_org):
    org = make_org(domains=())
    token = admin_token(db, org, "admin@contoso.com")
    base = "/api/v1/organizations/contoso"
    created = await api.post(f"{base}/domains", headers=bearer(token), json={"name": "Contoso.com"})
    assert created.status_code == 201 and created.json()["name"] == "contoso.com"
    duplicate = await api.post(
        f"{base}/domains", headers=bearer(token), json={"name": "contoso.com"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["fix"]
    invalid = await api.post(
        f"{base}/domains", headers=bearer(token), json={"name": "not a domain"}
    )
    assert invalid.status_code == 422 and "contoso.com" in invalid.json()["error"]["fix"]
    malformed = await api.post(f"{base}/members", headers=bearer(token), json={"name": "no email"})
    assert malformed.status_code == 422 and "email" in malformed.json()["error"]["message"]
    imported = await api.post(
        f"{base}/members/import",
        headers={**bearer(token), "Content-Type": "text/csv"},
        content="email,name,role\nadele@contoso.com,Adele,user\nbad-address,X,user\nalex@contoso.com,Alex,admin\n",
    )
    assert imported.status_code == 200
    assert imported.json()["created"] == ["adele@contoso.com", "alex@contoso.com"]
    assert imported.json()["errors"][0].startswith("line 3:")
    audit = (await api.get(f"{base}/audit", headers=bearer(token))).json()
    assert {"domain.add", "member.import"} <= {e["action"] for e in audit}


async def test_service_account_flow(api, db, make_org, sim):
    org = make_org()
    token = admin_token(db, org, "admin@contoso.com")
    base = "/api/v1/organizations/contoso/service-accounts"
    body = {
        "client_id": SERVICE_APP_ID,
        "client_secret": SERVICE_SECRET_ID,
        "test_mailbox": "adele@contoso.com",
    }
    tested = await api.post(f"{base}/test", headers=bearer(token), json=body)
    assert tested.status_code == 200
    secret_check = next(c for c in tested.json()["checks"] if c["key"] == "secret_format")
    assert secret_check["outcome"] == "failed" and "secret's ID" in secret_check["message"]
    refused = await api.post(base, headers=bearer(token), json=body)
    assert refused.status_code == 422
    assert "secret's ID" in refused.json()["error"]["message"]
    assert '"partial": true' in refused.json()["error"]["fix"]
    assert "--partial" not in refused.json()["error"]["fix"]
    assert refused.json()["error"]["test"]["ok"] is False

    body["client_secret"] = SERVICE_SECRET
    saved = await api.post(base, headers=bearer(token), json=body)
    assert saved.status_code == 201, saved.text
    account = saved.json()["service_account"]
    assert account["status"] == "active"
    assert {k for k, v in account["features"].items() if v["enabled"]} == {
        "email",
        "calendar",
        "scheduling",
    }

    listed = (await api.get(base, headers=bearer(token))).json()
    assert [a["id"] for a in listed] == [account["id"]]
    policy = await api.post(
        f"{base}/{account['id']}/access-policy",
        headers=bearer(token),
        json={"group": "crm-sync@contoso.com"},
    )
    assert policy.status_code == 200
    assert "New-ApplicationAccessPolicy" in policy.json()["application_access_policy"]
    reach = await api.get(f"{base}/{account['id']}/reachability", headers=bearer(token))
    assert reach.status_code == 200
    assert (await api.delete(f"{base}/{account['id']}", headers=bearer(token))).status_code == 204
    assert (await api.get(f"{base}/{account['id']}", headers=bearer(token))).status_code == 404


async def test_the_api_refuses_what_the_dashboard_refuses(api, db, make_org):
    """The checks live in the services, so an API caller meets the same ones as the
    dashboard: an admin can't take away their own admin role, Run Test needs a credential,
    an Exchange account needs its username and password."""
    org = make_org()
    token = admin_token(db, org, "admin@contoso.com")
    base = "/api/v1/organizations/contoso"
    members = (await api.get(f"{base}/members", headers=bearer(token))).json()
    me = next(m for m in members if m["email"] == "admin@contoso.com")

    demoted = await api.patch(
        f"{base}/members/{me['id']}", headers=bearer(token), json={"role": "user"}
    )
    assert demoted.status_code == 422
    assert "your own admin role" in demoted.json()["error"]["message"]
    assert (await api.get(f"{base}/members", headers=bearer(token))).status_code == 200

    untested = await api.post(
        f"{base}/service-accounts/test",
        headers=bearer(token),
        json={"client_id": SERVICE_APP_ID, "test_mailbox": "adele@contoso.com"},
    )
    assert untested.status_code == 422
    assert "client secret's Value" in untested.json()["error"]["message"]
    assert '"client_secret"' in untested.json()["error"]["fix"]
    assert "--secret" not in untested.json()["error"]["fix"]

    exchange = await api.post(
        f"{base}/service-accounts/exchange",
        headers=bearer(token),
        json={
            "server_url": "https://mail.contoso.com/EWS/Exchange.asmx",
            "username": " ",
            "password": "an Exchange password",
        },
    )
    assert exchange.status_code == 422
    assert "Username, Test mailbox: required." in exchange.json()["error"]["message"]
    listed = await api.get(f"{base}/service-accounts", headers=bearer(token))
    assert listed.json() == []


async def test_connection_status_names_the_service_accounts_that_sync_each_member(
    api, db, make_org, make_member
):
    """The same accounts the command line's ``connections status`` names: none for a member
    of an unverified domain, and none while the account waits for a new secret."""
    org = make_org()
    with db.session() as session:
        orgs.add_domain(session, fresh(session, org), "fabrikam.com")  # not verified
    make_member(org, "adele@contoso.com")
    make_member(org, "kim@fabrikam.com")
    token = admin_token(db, org, "admin@contoso.com")
    base = "/api/v1/organizations/contoso"
    saved = await api.post(
        f"{base}/service-accounts",
        headers=bearer(token),
        json={
            "client_id": SERVICE_APP_ID,
            "client_secret": SERVICE_SECRET,
            "test_mailbox": "adele@contoso.com",
        },
    )
    assert saved.status_code == 201, saved.text

    rows = {
        r["email"]: r for r in (await api.get(f"{base}/connections", headers=bearer(token))).json()
    }
    assert rows["adele@contoso.com"]["via_service_account"] == ["Office 365 service account"]
    assert rows["kim@fabrikam.com"]["synced_domain"] is False
    assert rows["kim@fabrikam.com"]["via_service_account"] == []

    with db.session() as session:
        account = ConnectionRepository(session).service_accounts(org.id)[0]
        account.status = ConnectionStatus.NEEDS_NEW_SECRET  # its secret expired
    rows = {
        r["email"]: r for r in (await api.get(f"{base}/connections", headers=bearer(token))).json()
    }
    assert [r["via_service_account"] for r in rows.values()] == [[], [], []]


async def test_a_domain_the_tenant_does_not_own_is_added_with_a_warning(
    api, sim, db, runtime, make_org
):
    org = make_org()
    await add_service_account(db, runtime, org)
    token = admin_token(db, org, "admin@contoso.com")

    own = await api.post(
        "/api/v1/organizations/contoso/domains",
        json={"name": "contoso.onmicrosoft.com"},
        headers=bearer(token),
    )
    customer = await api.post(
        "/api/v1/organizations/contoso/domains",
        json={"name": "fabrikam.com"},
        headers=bearer(token),
    )

    assert own.status_code == 201 and own.json()["warning"] is None
    assert customer.status_code == 201  # added all the same: the admin decides
    assert "fabrikam.com" in customer.json()["warning"]
    assert "customer's or partner's domain, remove it" in customer.json()["warning_fix"]
