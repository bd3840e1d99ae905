"""Two organizations on one server, two Microsoft 365 tenants: an organization that claims
another's domain and adds one of its users gets neither their sign-in nor their mail; the
real owner verifies the domain even after that claim, and takes its users' sign-ins.

Contoso (the demo tenant) is the organization that claims woodgrove.com; Woodgrove is the
organization of the Woodgrove tenant (seeded through m365sim's control API). The app is the
product's whole app, driven over HTTP (JSON API, sign-in pages); Microsoft's pages are
m365sim's, driven as a browser would.
"""

from __future__ import annotations

import certifi
import httpx
import pytest
from sqlalchemy import select

from m365sync.audit import service as audit
from m365sync.auth import set_password
from m365sync.auth.models import WebSession
from m365sync.connections import service_accounts
from m365sync.connections.run_test import ServiceAccountDraft
from m365sync.crm.importer import load_demo_crm
from m365sync.crm.models import CrmActivity
from m365sync.microsoft.auth import ClientSecret
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof, Member, Organization, Role
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStatus
from m365sync.sync.service import sync_member
from m365sync.web.app import create_app
from support.demo import (
    SERVICE_APP_ID,
    SERVICE_SECRET,
    USER_APP_ID,
    WOODGROVE_APP_ID,
    WOODGROVE_PASSWORD,
    WOODGROVE_PRIVATE_SUBJECT,
    WOODGROVE_PRIVATE_TASK,
    WOODGROVE_SECRET,
    WOODGROVE_TENANT_ID,
)
from support.microsoft_sign_in import sign_in
from support.organizations import fresh

BASE = "http://testserver"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def web(settings, db, runtime, sim) -> httpx.AsyncClient:
    """The product's app (as ``m365sync serve`` builds it) over HTTP. The demo tenant's
    user-connection app learns this app's redirect URIs (Woodgrove's seed has them)."""
    app = sim.state.find_tenant("contoso.com").apps[USER_APP_ID]
    app.redirect_uris += [
        f"{BASE}/auth/microsoft/callback",
        f"{BASE}/connections/office365/callback",
    ]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(
            app=create_app(settings=settings, database=db, runtime=runtime)
        ),
        base_url=BASE,
    )


def organization_with_admin(db, name: str, admin: str) -> tuple[Organization, str]:
    """A new organization (no domains yet), its admin, and the admin's API token."""
    with db.session() as session:
        organization = orgs.create_organization(session, name)
        member = orgs.add_member(session, organization, admin, role=Role.ADMIN)
        _, token = orgs.create_api_token(session, organization, member)
        load_demo_crm(session, organization.id)  # the CRM knows kim@fabrikam.com
    return organization, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def save_service_account(db, runtime, org, client_id, secret, mailbox) -> None:
    with db.session() as session:
        await service_accounts.add_service_account(
            session,
            runtime,
            fresh(session, org),
            ServiceAccountDraft(client_id, ClientSecret(secret), mailbox, name="Service account"),
        )


async def sign_in_with_microsoft(web: httpx.AsyncClient, email: str) -> httpx.Response:
    """The sign-in page's "Sign in with Microsoft": the start's answer."""
    page = await web.get("/sign-in")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return await web.post("/sign-in/microsoft", data={"email": email, "csrf_token": csrf})


async def finish_at_microsoft(web: httpx.AsyncClient, sim, start: httpx.Response, email: str):
    """Microsoft's pages (password, consent), then the callback back to the app."""
    params = sign_in(
        start.headers["location"],
        username=email,
        password=WOODGROVE_PASSWORD,
        ca_bundle=str(sim.tls.ca_bundle),
        redirect_prefix=f"{BASE}/auth/microsoft/callback",
    )
    return await web.get("/auth/microsoft/callback", params=params)


def signed_in_organization(db, email: str) -> list[str]:
    """The organizations ``email`` has a dashboard session in."""
    with db.session() as session:
        query = (
            select(Member.organization_id)
            .join(WebSession, WebSession.member_id == Member.id)
            .where(Member.email == email)
        )
        return sorted(set(session.scalars(query)))


def crm_subjects(db, organization_id: str) -> set[str]:
    with db.session() as session:
        return set(
            session.scalars(
                select(CrmActivity.subject).where(CrmActivity.organization_id == organization_id)
            )
        )


async def test_a_claimed_domain_gets_no_sign_in_and_no_mail_and_the_owner_takes_it_back(
    sim, db, runtime, settings, web, woodgrove_tenant
):
    # Contoso is a real customer: its own domain is proven by its service account's consent.
    contoso, contoso_token = organization_with_admin(db, "Contoso", "admin@contoso.com")
    api = f"/api/v1/organizations/{contoso.slug}"
    assert (
        await web.post(
            f"{api}/domains", headers=bearer(contoso_token), json={"name": "contoso.com"}
        )
    ).status_code == 201
    await save_service_account(
        db, runtime, contoso, SERVICE_APP_ID, SERVICE_SECRET, "adele@contoso.com"
    )

    # The attack: Contoso claims Woodgrove's domain and adds one of Woodgrove's users.
    claim = await web.post(
        f"{api}/domains", headers=bearer(contoso_token), json={"name": "woodgrove.com"}
    )
    assert claim.status_code == 201
    assert claim.json()["verified"] is False
    added = await web.post(
        f"{api}/members", headers=bearer(contoso_token), json={"email": "wendy@woodgrove.com"}
    )
    assert added.status_code == 201

    # Contoso's Run Test resolves woodgrove.com to Woodgrove's tenant, but its consent is
    # Contoso's: nothing is proven and no tenant is written on Contoso's claim.
    with db.session() as session:
        (account,) = service_accounts.list_service_accounts(session, fresh(session, contoso))
        report = await service_accounts.retest_service_account(
            session, runtime, fresh(session, contoso), account
        )
    assert report.domain_tenants["woodgrove.com"] == WOODGROVE_TENANT_ID
    domains = {
        d["name"]: d
        for d in (await web.get(f"{api}/domains", headers=bearer(contoso_token))).json()
    }
    assert domains["contoso.com"]["verified"] is True
    assert domains["contoso.com"]["verification_method"] == "service_account"
    assert domains["woodgrove.com"]["verified"] is False
    assert domains["woodgrove.com"]["tenant_id"] is None

    # Wendy's "Sign in with Microsoft" is not routed to Contoso.
    refused = await sign_in_with_microsoft(web, "wendy@woodgrove.com")
    assert refused.status_code == 400
    assert "No organization here has verified the domain woodgrove.com" in refused.text
    assert "Admin → My Organization → Domains" in refused.text  # the dashboard's words
    assert signed_in_organization(db, "wendy@woodgrove.com") == []

    # Signed in to Contoso's dashboard anyway (a password Contoso gave her), she can't
    # connect her mailbox there; neither can Contoso's admin start it for her.
    with db.session() as session:
        set_password(
            session,
            orgs.get_member(session, fresh(session, contoso), "wendy@woodgrove.com"),
            PASSWORD,
        )
    page = await web.get("/sign-in")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = await web.post(
        "/sign-in", data={"email": "wendy@woodgrove.com", "password": PASSWORD, "csrf_token": csrf}
    )
    assert signed.status_code == 303
    mine = await web.get("/me/connections")
    csrf = mine.text.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
    connect = await web.post("/me/connections/office365", data={"csrf_token": csrf})
    assert connect.status_code == 409
    assert "woodgrove.com is not verified for Contoso yet" in connect.text
    assert "location" not in connect.headers
    await web.post("/sign-out", data={"csrf_token": csrf})
    wendy_id = added.json()["id"]
    started = await web.post(
        f"{api}/members/{wendy_id}/connection/office365", headers=bearer(contoso_token)
    )
    assert started.status_code == 409
    assert started.json()["error"]["fix"]

    # Her mailbox waits in Contoso, with the reason shown; nothing of hers reaches its CRM.
    for feature in (SyncFeature.EMAIL, SyncFeature.TASKS):
        result = await sync_member(db, runtime, wendy_id, feature, settings=settings)
        assert result.status == UnitStatus.DOMAIN_NOT_VERIFIED
        assert "woodgrove.com is not verified yet" in result.error
    assert not crm_subjects(db, contoso.id) & {WOODGROVE_PRIVATE_SUBJECT, WOODGROVE_PRIVATE_TASK}

    # The real owner: Woodgrove claims its domain although Contoso claimed it first, and
    # its service account (consented by Woodgrove's admin) proves it.
    woodgrove, woodgrove_token = organization_with_admin(db, "Woodgrove", "admin@woodgrove.com")
    owner_api = f"/api/v1/organizations/{woodgrove.slug}"
    own = await web.post(
        f"{owner_api}/domains", headers=bearer(woodgrove_token), json={"name": "woodgrove.com"}
    )
    assert own.status_code == 201
    await save_service_account(
        db, runtime, woodgrove, WOODGROVE_APP_ID, WOODGROVE_SECRET, "wendy@woodgrove.com"
    )
    (owned,) = (await web.get(f"{owner_api}/domains", headers=bearer(woodgrove_token))).json()
    assert owned["verified"] is True and owned["tenant_id"] == WOODGROVE_TENANT_ID

    # Contoso's claim is gone (and its audit log says why); claiming it again is a 409.
    names = [
        d["name"] for d in (await web.get(f"{api}/domains", headers=bearer(contoso_token))).json()
    ]
    assert names == ["contoso.com"]
    with db.session() as session:
        assert "domain.claim_dropped" in {e.action for e in audit.list_events(session, contoso.id)}
    again = await web.post(
        f"{api}/domains", headers=bearer(contoso_token), json={"name": "woodgrove.com"}
    )
    assert again.status_code == 409
    assert "verified by another organization" in again.json()["error"]["message"]
    assert "operator" in again.json()["error"]["fix"]

    # Wendy's "Sign in with Microsoft" now lands in Woodgrove, at Woodgrove's tenant.
    await web.post(
        f"{owner_api}/members",
        headers=bearer(woodgrove_token),
        json={"email": "wendy@woodgrove.com"},
    )
    start = await sign_in_with_microsoft(web, "wendy@woodgrove.com")
    assert start.status_code == 303
    assert f"/{WOODGROVE_TENANT_ID}/oauth2/v2.0/authorize" in start.headers["location"]
    landed = await finish_at_microsoft(web, sim, start, "wendy@woodgrove.com")
    assert landed.status_code == 303, landed.text
    assert signed_in_organization(db, "wendy@woodgrove.com") == [woodgrove.id]

    # Contoso's member wendy@woodgrove.com is outside its domains now: still nothing.
    result = await sync_member(db, runtime, wendy_id, SyncFeature.EMAIL, settings=settings)
    assert result.status == UnitStatus.NO_CONNECTION
    assert WOODGROVE_PRIVATE_SUBJECT not in crm_subjects(db, contoso.id)


async def test_sign_in_with_microsoft_works_where_requests_ca_bundle_names_other_cas(
    sim, db, runtime, web, woodgrove_tenant, monkeypatch
):
    """REQUESTS_CA_BUNDLE is set to certifi's bundle, which lacks m365sim's CA: the product's
    ``ca_bundle`` setting must still be what MSAL trusts (it answered a bare 500 before)."""
    woodgrove, _ = organization_with_admin(db, "Woodgrove", "admin@woodgrove.com")
    with db.session() as session:
        orgs.add_domain(session, fresh(session, woodgrove), "woodgrove.com")
        orgs.verify_domain(
            session,
            fresh(session, woodgrove),
            "woodgrove.com",
            method=DomainProof.SERVICE_ACCOUNT,
            tenant_id=WOODGROVE_TENANT_ID,
        )
        orgs.add_member(session, fresh(session, woodgrove), "wendy@woodgrove.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())

    start = await sign_in_with_microsoft(web, "wendy@woodgrove.com")
    assert start.status_code == 303, start.text
    landed = await finish_at_microsoft(web, sim, start, "wendy@woodgrove.com")
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"] == "/"
    assert signed_in_organization(db, "wendy@woodgrove.com") == [woodgrove.id]


def test_the_domains_page_flags_an_unverified_domain_and_verifies_it_by_dns(
    app, client, people, sign_in, csrf_of
):
    """Admin → My Organization → Domains: the claim is flagged with the TXT record to
    publish; Verify checks DNS (a zone the test publishes in) and says what is missing."""
    zone: dict[str, list[str]] = {}
    app.state.txt_lookup = lambda name: list(zone.get(name, []))
    fabrikam = people.organization("Fabrikam", "fabrikam")
    people.member(fabrikam, "admin@fabrikam.com", Role.ADMIN)
    people.domain(fabrikam, "fabrikam.com", verified=False)
    sign_in(client, "admin@fabrikam.com")

    page = client.get("/admin/domains").text
    assert "Not verified" in page
    assert "fabrikam.com is not verified yet, so its mailboxes wait" in page
    record = page.split("<code>", 1)[1].split("</code>", 1)[0]
    assert record.startswith("m365sync-verification=")
    domain_id = page.split('action="/admin/domains/', 1)[1].split("/verify", 1)[0]

    refused = client.post(f"/admin/domains/{domain_id}/verify", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 422
    assert f"The TXT record {record} was not found on fabrikam.com" in refused.text
    assert "At your DNS provider, add a TXT record" in refused.text

    zone["fabrikam.com"] = [record]
    verified = client.post(f"/admin/domains/{domain_id}/verify", data={"csrf_token": csrf_of(page)})
    assert verified.headers["location"] == "/admin/domains?notice=verified"
    page = client.get("/admin/domains?notice=verified").text
    assert "Domain verified." in page and "Not verified" not in page
    assert "by its DNS TXT record" in page
