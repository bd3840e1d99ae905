"""Saving, retesting, certificates, secret expiry and how a sync unit reaches a mailbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from m365sync.connections import service_accounts
from m365sync.connections.errors import MemberNotSynced, NoConnection, NoDomains, RunTestFailed
from m365sync.connections.models import ConnectionStatus, Feature
from m365sync.errors import ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof
from support.connections import add_service_account
from support.demo import (
    DEMO_TENANT_ID,
    NO_CONSENT_APP_ID,
    NO_CONSENT_SECRET,
    SERVICE_APP_ID,
    SERVICE_SECRET_ID,
)
from support.organizations import fresh
from support.sim_tokens import sim_control


async def test_save_a_working_account(db, runtime, make_org):
    org = make_org()
    account, report = await add_service_account(
        db, runtime, org, secret_expires_at=datetime.now(UTC) + timedelta(days=200)
    )
    assert report.ok
    with db.session() as session:
        stored = service_accounts.get_service_account(session, fresh(session, org), account.id)
        view = service_accounts.service_account_view(stored, datetime.now(UTC))
        assert stored.status == ConnectionStatus.ACTIVE
        assert stored.tenant_id == DEMO_TENANT_ID
        assert sorted(stored.enabled_features) == ["calendar", "email", "scheduling"]
        assert view["features"]["tasks"]["enabled"] is False
        assert view["secret_expiry"]["level"] == "ok"
        domains = orgs.list_domains(session, fresh(session, org))
        assert domains[0].tenant_id == DEMO_TENANT_ID


async def test_save_refused_without_domains(db, runtime, make_org):
    with pytest.raises(NoDomains) as caught:
        await add_service_account(db, runtime, make_org(domains=()))
    assert "Add your domains to sync first" in (caught.value.fix or "")


async def test_save_refused_while_a_required_check_fails_unless_partial(db, runtime, make_org):
    org = make_org()
    with pytest.raises(RunTestFailed) as caught:
        await add_service_account(
            db, runtime, org, client_id=NO_CONSENT_APP_ID, secret=NO_CONSENT_SECRET
        )
    assert "Grant admin consent" in (caught.value.fix or "")
    with db.session() as session:
        assert service_accounts.list_service_accounts(session, fresh(session, org)) == []
    account, report = await add_service_account(
        db, runtime, org, client_id=NO_CONSENT_APP_ID, secret=NO_CONSENT_SECRET, partial=True
    )
    assert not report.ok
    with db.session() as session:
        stored = service_accounts.get_service_account(session, fresh(session, org), account.id)
        assert stored.status == ConnectionStatus.NEEDS_CONSENT
        assert stored.enabled_features == []
        view = service_accounts.service_account_view(stored, datetime.now(UTC))
        assert "Grant admin consent" in view["status_fix"]


async def test_partial_account_shows_features_off_and_why(demo_tenant, db, runtime, make_org):
    demo_tenant.service_principals[SERVICE_APP_ID].granted_application_permissions = {
        "Calendars.Read",
        "Calendars.ReadWrite",
    }
    account, report = await add_service_account(db, runtime, make_org())
    assert report.ok
    view = service_accounts.service_account_view(account, datetime.now(UTC))
    assert view["features"]["calendar"]["enabled"] is True
    assert view["features"]["email"]["enabled"] is False
    assert view["features"]["email"]["missing_permissions"] == ["Mail.Read", "Mail.ReadWrite"]
    assert "Mail.Read" in view["features"]["email"]["reason"]


def test_secret_expiry_warnings_and_expired():
    from m365sync.connections.models import ConnectionKind, CredentialType, ServiceAccount

    now = datetime(2026, 1, 1, tzinfo=UTC)
    account = ServiceAccount(
        name="x", kind=ConnectionKind.OFFICE365, credential_type=CredentialType.SECRET
    )
    levels = {}
    for days in (60, 29, 13, 6):
        account.secret_expires_at = now + timedelta(days=days, hours=1)
        notice = service_accounts.secret_expiry(account, now)
        levels[days] = (notice.level, notice.message)
    assert levels[60][0] == "ok"
    assert levels[29][0] == levels[13][0] == levels[6][0] == "warning"
    assert "under 30" in levels[29][1] and "under 14" in levels[13][1] and "under 7" in levels[6][1]
    account.secret_expires_at = now - timedelta(days=1)
    expired = service_accounts.secret_expiry(account, now)
    assert expired.level == "expired" and "needs a new secret" in expired.message
    assert "New client secret" in expired.fix


def test_the_secret_expiry_is_a_day_in_utc():
    assert service_accounts.parse_secret_expiry("") is None
    assert service_accounts.parse_secret_expiry("2027-06-30") == datetime(2027, 6, 30, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as refused:
        service_accounts.parse_secret_expiry("next June")
    assert "is not a date" in refused.value.message
    assert "Expires column" in (refused.value.fix or "")


async def test_expired_secret_marks_needs_new_secret_and_replacing_it_recovers(
    sim, demo_tenant, db, runtime, make_org
):
    org = make_org()
    account, _ = await add_service_account(db, runtime, org)
    app = demo_tenant.apps[SERVICE_APP_ID]
    sim_control(sim, "POST", "/_sim/clock", json={"advanceSeconds": 400 * 24 * 3600})
    with db.session() as session:
        stored = service_accounts.get_service_account(session, fresh(session, org), account.id)
        report = await service_accounts.retest_service_account(
            session, runtime, fresh(session, org), stored
        )
        assert report.check("sign_in").code == "AADSTS7000222"
        assert stored.status == ConnectionStatus.NEEDS_NEW_SECRET
        member = orgs.add_member(session, fresh(session, org), "adele@contoso.com")
        with pytest.raises(ms.SecretExpired):
            runtime.graph_for_mailbox(session, member, Feature.EMAIL)
    new_value = "Zx8Q~rotated.secret-value-000000000000009"
    from m365sim.directory.models import ClientSecret as SimSecret

    app.secrets.append(SimSecret(value=new_value, expires_at=sim.state.now() + timedelta(days=365)))
    with db.session() as session:
        stored = service_accounts.get_service_account(session, fresh(session, org), account.id)
        report = await service_accounts.replace_secret(
            session, runtime, fresh(session, org), stored, secret=new_value
        )
        assert report.ok and stored.status == ConnectionStatus.ACTIVE


async def test_certificate_generated_here_works(sim, db, runtime, make_org):
    org = make_org()
    with db.session() as session:
        account = service_accounts.create_certificate_account(
            session, runtime, fresh(session, org), name="Cert SA"
        )
        pem = account.certificate_pem
        assert "PRIVATE KEY" not in pem and "BEGIN CERTIFICATE" in pem
    sim_control(
        sim,
        "POST",
        f"/_sim/tenants/{DEMO_TENANT_ID}/apps/{SERVICE_APP_ID}/certificates",
        json={"pem": pem},
    )
    with db.session() as session:
        stored = service_accounts.get_service_account(session, fresh(session, org), account.id)
        report = await service_accounts.complete_certificate_account(
            session,
            runtime,
            fresh(session, org),
            stored,
            client_id=SERVICE_APP_ID,
            test_mailbox="adele@contoso.com",
        )
        assert report.ok, [c for c in report.checks if c.outcome == "failed"]
        assert stored.status == ConnectionStatus.ACTIVE
        member = orgs.add_member(session, fresh(session, org), "alex@contoso.com")
        access = runtime.graph_for_mailbox(session, member, Feature.CALENDAR)
        data = await access.graph.get_json(
            f"{access.user_path}/calendar/events", params={"$top": 1}
        )
        assert "value" in data
    await runtime.aclose()


async def test_uploaded_certificate_not_registered_is_invalid_credentials(db, runtime, make_org):
    from m365sync.microsoft.auth import generate_certificate

    with pytest.raises(RunTestFailed) as caught:
        await add_service_account(
            db, runtime, make_org(), secret=None, certificate=generate_certificate("stray")
        )
    assert caught.value.report.check("sign_in").outcome == "failed"


async def test_graph_for_mailbox_routes_by_feature(db, runtime, make_org, make_member):
    org = make_org()
    await add_service_account(db, runtime, org)
    adele = make_member(org, "adele@contoso.com")
    outsider = make_member(org, "someone@fabrikam.com")
    with db.session() as session:
        access = runtime.graph_for_mailbox(session, adele, Feature.EMAIL)
        assert access.source == "service_account" and access.user_path == "/users/adele@contoso.com"
        assert Feature.SCHEDULING in access.features and Feature.TASKS not in access.features
        page = await access.graph.get_json(
            f"{access.user_path}/mailFolders/inbox/messages", params={"$top": 1}
        )
        assert "value" in page
        with pytest.raises(NoConnection) as caught:
            runtime.graph_for_mailbox(session, adele, Feature.TASKS)
        assert "Connect your Office 365" in (caught.value.fix or "")
        with pytest.raises(MemberNotSynced):
            runtime.graph_for_mailbox(session, outsider, Feature.EMAIL)
    await runtime.aclose()


async def test_secret_id_save_refused_with_the_value_hint(db, runtime, make_org):
    with pytest.raises(RunTestFailed) as caught:
        await add_service_account(db, runtime, make_org(), secret=SERVICE_SECRET_ID)
    assert "secret's ID, not its value" in caught.value.message


async def test_saving_proves_only_the_domains_of_the_consenting_tenant(
    db, runtime, make_org, woodgrove_tenant
):
    """Run Test discovers woodgrove.com's tenant too, but the app's consent is Contoso's:
    contoso.com is verified there; woodgrove.com stays unverified and no tenant is written
    on it."""
    org = make_org(domains=("contoso.com", "woodgrove.com"), verified=False)
    _, report = await add_service_account(db, runtime, org)
    assert report.domain_tenants["woodgrove.com"] == woodgrove_tenant
    with db.session() as session:
        domains = {d.name: d for d in orgs.list_domains(session, fresh(session, org))}
        assert domains["contoso.com"].verified
        assert domains["contoso.com"].verification_method == DomainProof.SERVICE_ACCOUNT
        assert domains["contoso.com"].tenant_id == DEMO_TENANT_ID
        assert not domains["woodgrove.com"].verified
        assert domains["woodgrove.com"].tenant_id is None


async def test_an_account_without_consent_proves_nothing(db, runtime, make_org):
    org = make_org(verified=False)
    _, report = await add_service_account(
        db, runtime, org, client_id=NO_CONSENT_APP_ID, secret=NO_CONSENT_SECRET, partial=True
    )
    assert report.signed_in and not report.granted_permissions
    with db.session() as session:
        (domain,) = orgs.list_domains(session, fresh(session, org))
        assert not domain.verified and domain.tenant_id is None
