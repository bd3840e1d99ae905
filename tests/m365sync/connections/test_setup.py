"""Set up for me: an administrator signs in with Microsoft (m365sim's real sign-in and
consent pages, MSAL's auth code flow with PKCE) and m365sync registers the service
account's app itself, through Microsoft Graph, with a certificate it generated; then the
failures, each with its cause and fix."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from m365sync.connections import service_accounts, setup, user_connections
from m365sync.connections.errors import (
    AdminRoleMissing,
    AuthorizationExpired,
    ReplicationSlow,
    SetupConsentDeclined,
    SetupFailed,
)
from m365sync.connections.models import (
    AuthorizationRequest,
    ConnectionStatus,
    CredentialType,
    Feature,
    UserConnection,
)
from m365sync.connections.run_test import Outcome
from m365sync.db.base import utcnow
from m365sync.errors import ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.sync.models import SyncFeature, UnitStatus
from m365sync.sync.service import sync_member
from support.litware import (
    ADMIN,
    APP_ADMIN,
    FOUR_PERMISSIONS,
    LITWARE_DOMAIN,
    LITWARE_TENANT_ID,
    REP,
    SimControl,
)
from support.organizations import fresh
from support.setup_flow import FakeTime, accounts, actions, begin, complete, set_up


@pytest.fixture
def control(sim: Any) -> Any:
    control = SimControl(sim)
    control.add_litware()
    yield control
    control.close()


@pytest.fixture
def litware(make_org: Any, make_member: Any, control: Any) -> Any:
    """The organization as its admin left it: a domain to sync (not verified yet), the admin
    and a sales rep; no service account."""
    org = make_org("Litware", (LITWARE_DOMAIN,), "litware", verified=False)
    make_member(org, ADMIN, Role.ADMIN)
    make_member(org, REP)
    return org


async def test_set_up_for_me_registers_one_app_with_a_certificate_and_consents(
    sim, db, runtime, control, litware
):
    result = await set_up(sim, db, runtime, litware)

    assert result.report.ok, [c.as_json() for c in result.report.required_failures()]
    (account,) = accounts(db, litware)
    assert account.status == ConnectionStatus.ACTIVE
    assert account.credential_type == CredentialType.CERTIFICATE
    assert account.name == "m365sync service account"
    assert account.tenant_id == LITWARE_TENANT_ID
    assert {"email", "calendar"} <= set(account.enabled_features)
    assert set(account.granted_permissions) == FOUR_PERMISSIONS
    assert account.application_object_id and account.certificate_key_id
    assert account.secret_sealed is None  # no secret: a certificate m365sync generated

    # Microsoft Entra ID holds exactly what m365sync made: one single-tenant app with one
    # service principal, one certificate (the account's) and the four consented roles.
    (app,) = control.apps()
    assert app["appId"] == account.client_id and app["id"] == account.application_object_id
    assert app["signInAudience"] == "AzureADMyOrg"
    assert app["secrets"] == []
    assert [c["thumbprint"] for c in app["certificates"]] == [account.certificate_thumbprint]
    assert app["certificates"][0]["keyId"] == account.certificate_key_id
    assert set(app["applicationPermissions"]) == FOUR_PERMISSIONS
    assert set(app["servicePrincipal"]["grantedApplicationPermissions"]) == FOUR_PERMISSIONS

    # Every object created in the tenant is audited; the domain is proved by the consent.
    done = actions(db, litware)
    assert done[:4] == [
        "entra.application.create",
        "entra.certificate.add",
        "entra.service_principal.create",
        "entra.permission.grant",
    ]
    assert done.count("entra.permission.grant") == 4
    assert "service_account.add" in done
    with db.session() as session:
        domain = orgs.list_domains(session, fresh(session, litware))[0]
        assert domain.verified_at is not None and domain.tenant_id == LITWARE_TENANT_ID
        # The administrator's token is gone with the step: no sign-in kept, no connection.
        assert session.query(AuthorizationRequest).count() == 0
        assert session.query(UserConnection).count() == 0

    # Email Sync and Calendar Sync run through it.
    with db.session() as session:
        rep = orgs.get_member(session, fresh(session, litware), REP)
        rep_id = rep.id
        for feature in (Feature.EMAIL, Feature.CALENDAR):
            access = runtime.graph_for_mailbox(session, rep, feature)
            assert access.source == "service_account" and access.connection_id == account.id
    for feature in (SyncFeature.EMAIL, SyncFeature.CALENDAR):
        outcome = await sync_member(db, runtime, rep_id, feature)
        assert outcome.status == UnitStatus.ACTIVE, outcome.error
    await runtime.aclose()


async def test_set_up_waits_out_entras_replication(sim, db, runtime, control, litware):
    control.patch_tenant(replicationDelaySeconds=60)
    time = FakeTime(control, moves_sim=True)

    result = await set_up(sim, db, runtime, litware, sleep=time.sleep, clock=time.clock)

    assert not isinstance(result, SetupFailed), result
    assert result.report.ok
    # It waited (seconds of real time pass while the app is made, so a little less than 60
    # on m365sim's clock may do) and stopped waiting as soon as Entra ID had caught up.
    assert 0 < time.now <= 60 + runtime.settings.setup_replication_poll_seconds
    assert result.account.status == ConnectionStatus.ACTIVE


async def test_slow_replication_keeps_the_account_waiting_with_the_cause_and_fix(
    sim, db, runtime, control, litware
):
    control.patch_tenant(replicationDelaySeconds=600)  # past the 180 s m365sync waits
    time = FakeTime(control, moves_sim=False)

    failure = await set_up(sim, db, runtime, litware, sleep=time.sleep, clock=time.clock)

    assert isinstance(failure, ReplicationSlow)
    assert "has not finished replicating" in failure.message
    assert "doesn't know the app yet (AADSTS700016)" in failure.message
    assert "wait a few minutes" in failure.fix
    assert time.now <= runtime.settings.setup_replication_timeout_seconds
    # Nothing is lost: the app stays in Entra ID, the account waits for its test.
    (app,) = control.apps()
    (account,) = accounts(db, litware)
    assert account.status == ConnectionStatus.PENDING
    assert account.client_id == app["appId"]
    assert "Waiting for Microsoft Entra ID" in account.status_detail and account.status_fix
    assert "entra.application.create" in actions(db, litware)

    # Once Entra ID caught up, running the test again and saving finishes it.
    control.advance_clock(600)
    with db.session() as session:
        organization = fresh(session, litware)
        stored = service_accounts.get_service_account(session, organization, account.id)
        report = await service_accounts.retest_service_account(
            session, runtime, organization, stored, save=True, actor=ADMIN
        )
        assert report.ok
        assert stored.status == ConnectionStatus.ACTIVE


async def test_declining_consent_creates_nothing(sim, db, runtime, control, litware):
    failure = await set_up(sim, db, runtime, litware, consent=False)

    assert isinstance(failure, SetupConsentDeclined)
    assert "declined" in failure.message and "nothing was created" in failure.message
    assert "click Accept" in failure.fix
    assert control.apps() == [] and accounts(db, litware) == []
    with db.session() as session:
        assert session.query(AuthorizationRequest).count() == 0  # used up


async def test_someone_who_is_no_admin_is_told_to_sign_in_as_one(
    sim, db, runtime, control, litware
):
    """A user without an admin role gets Microsoft's "Need admin approval" page."""
    failure = await set_up(sim, db, runtime, litware, username=REP)

    assert isinstance(failure, AdminRoleMissing)
    assert failure.status == 403
    assert "Global Administrator or Privileged Role Administrator" in failure.fix
    assert control.apps() == [] and accounts(db, litware) == []


async def test_an_application_administrator_cannot_grant_graph_permissions(
    sim, db, runtime, control, litware
):
    """Consent to the management permissions was given for everyone earlier: an Application
    Administrator gets the token and registers the app, but Graph refuses the grant (403);
    the app is deleted again and both steps are audited."""
    control.consent_for_everyone(["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])

    failure = await set_up(sim, db, runtime, litware, username=APP_ADMIN)

    assert isinstance(failure, AdminRoleMissing)
    assert "grant the app its permissions" in failure.message
    assert "deleted again: nothing is left behind" in failure.message
    assert "Insufficient privileges" in failure.message  # Microsoft's words
    assert "Global Administrator or Privileged Role Administrator" in failure.fix
    assert control.apps() == [] and accounts(db, litware) == []
    done = actions(db, litware)
    assert done[0] == "entra.application.create" and done[-1] == "entra.application.delete"


async def test_a_permission_removed_later_shows_in_run_test_and_on_the_account(
    sim, db, runtime, control, litware
):
    result = await set_up(sim, db, runtime, litware)
    control.revoke_permission(result.account.client_id, "Calendars.ReadWrite")

    with db.session() as session:
        organization = fresh(session, litware)
        account = service_accounts.get_service_account(session, organization, result.account.id)
        report = await service_accounts.retest_service_account(
            session, runtime, organization, account
        )
        calendar = report.check("feature:calendar")
        assert calendar is not None and calendar.outcome == Outcome.FAILED
        assert "Calendars.ReadWrite" in calendar.message and "grant admin consent" in calendar.fix
        view = service_accounts.service_account_view(account, utcnow())
        assert view["features"]["calendar"]["enabled"] is False
        assert view["features"]["calendar"]["reason"] == "Needs Calendars.ReadWrite."
        assert view["features"]["email"]["enabled"] is True


async def test_what_the_admin_chooses_is_checked_and_sign_ins_are_not_mixed_up(
    db, runtime, control, litware
):
    with pytest.raises(ValidationFailed, match="Task Sync can't be set up"):
        await begin(db, runtime, litware, features=["tasks"])
    with pytest.raises(ValidationFailed, match="No feature was chosen"):
        await begin(db, runtime, litware, features=[])
    with pytest.raises(ValidationFailed, match="outside the domains to sync"):
        await begin(db, runtime, litware, test_mailbox="kim@fabrikam.com")
    with pytest.raises(AuthorizationExpired):
        await complete(db, runtime, litware, {"code": "x", "state": "not-a-state"})
    # A setup's sign-in can't become a mailbox connection.
    url = await begin(db, runtime, litware)
    state = dict(parse_qsl(urlsplit(url).query))["state"]
    with db.session() as session, pytest.raises(AuthorizationExpired, match="Set up for me"):
        await user_connections.complete_office365_connection(
            session, runtime, {"code": "x", "state": state}
        )


async def test_set_up_for_me_with_scheduling_gets_place_read_all_consented(
    sim, db, runtime, control, litware
):
    result = await set_up(sim, db, runtime, litware, features=["scheduling"])

    assert result.report.ok, [c.as_json() for c in result.report.required_failures()]
    wanted = {*FOUR_PERMISSIONS, "Place.Read.All"}
    (app,) = control.apps()
    assert set(app["applicationPermissions"]) == wanted
    assert set(app["servicePrincipal"]["grantedApplicationPermissions"]) == wanted
    (account,) = accounts(db, litware)
    assert set(account.granted_permissions) == wanted


def test_features_map_to_the_permissions_of_designs_table():
    assert setup.permissions_for([Feature.EMAIL]) == ["Mail.Read", "Mail.ReadWrite"]
    assert set(setup.permissions_for(setup.parse_features(["scheduling"]))) == {
        *FOUR_PERMISSIONS,
        "Place.Read.All",  # for meeting types that book a room
    }
    assert ms.ConsentDeclined().fix  # the category the consent page's "Cancel" is read as
