"""Certificate renewal without a person: past the renewal point, m365sync adds a new
certificate to the app it set up (addKey, proved with the current one), tests it, switches to
it and removes the old one (removeKey), while mail keeps syncing; and when the new one can't
be made to work, the current one stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from m365sync.connections import certificate_renewal
from m365sync.connections.models import (
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    ServiceAccount,
)
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.importer import load_demo_crm
from m365sync.crm.models import CrmActivity
from m365sync.db.base import utcnow
from m365sync.microsoft import errors as ms
from m365sync.microsoft.applications import certificate_expiry
from m365sync.microsoft.auth import AppOnlyAuth, ClientCertificate, generate_certificate
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.sync.models import SyncFeature, UnitStatus
from m365sync.sync.scheduler import Scheduler
from m365sync.sync.service import sync_member
from support.demo import demo_settings as make_settings
from support.litware import (
    ADMIN,
    LITWARE_DOMAIN,
    LITWARE_TENANT_ID,
    MESSAGE_SUBJECT,
    REP,
    SimControl,
)
from support.organizations import fresh
from support.setup_flow import FakeTime, actions, set_up


@pytest.fixture
def control(sim: Any) -> Any:
    control = SimControl(sim)
    control.add_litware()
    yield control
    control.close()


@pytest.fixture
def litware(db: Any, make_org: Any, make_member: Any, control: Any) -> Any:
    org = make_org("Litware", (LITWARE_DOMAIN,), "litware", verified=False)
    make_member(org, ADMIN, Role.ADMIN)
    make_member(org, REP)
    with db.session() as session:
        load_demo_crm(session, org.id)  # Kim Buyer of Fabrikam, who writes to Dana
    return org


def stored(db: Any, account_id: str) -> ServiceAccount:
    with db.session() as session:
        account = session.get(ServiceAccount, account_id)
        assert account is not None
        session.expunge(account)
        return account


def logged_subjects(db: Any) -> set[str]:
    with db.session() as session:
        return {a.subject for a in session.query(CrmActivity).all()}


async def sync_mail(db: Any, runtime: Any, org: Any) -> None:
    with db.session() as session:
        rep_id = orgs.get_member(session, fresh(session, org), REP).id
    try:
        outcome = await sync_member(db, runtime, rep_id, SyncFeature.EMAIL)
    finally:
        await runtime.aclose()
    assert outcome.status == UnitStatus.ACTIVE, outcome.error


def signs_in(settings: Any, account: ServiceAccount, certificate: ClientCertificate) -> bool:
    auth = AppOnlyAuth(
        settings,
        client_id=account.client_id or "",
        tenant_id=LITWARE_TENANT_ID,
        credential=certificate,
        cache_blob=None,
        on_cache_change=None,
    )
    try:
        auth.acquire(force_refresh=True)
    except ms.InvalidCredentials:
        return False
    return True


async def test_the_certificate_is_renewed_before_it_expires_and_mail_keeps_syncing(
    sim, db, runtime, settings, control, litware
):
    setup = await set_up(sim, db, runtime, litware)
    account_id = setup.account.id
    before = stored(db, account_id)
    old = runtime.credential(before)
    await sync_mail(db, runtime, litware)
    assert MESSAGE_SUBJECT in logged_subjects(db)

    # Not due yet: nothing happens.
    assert await certificate_renewal.renew_due_certificates(db, runtime) == []

    # The clock moves past the renewal point (30 days before the certificate expires).
    renewal_point = certificate_expiry(before.certificate_pem or "") - timedelta(days=30)
    renewed_at = utcnow().replace(microsecond=0)  # certificates keep whole seconds
    (result,) = await certificate_renewal.renew_due_certificates(
        db, runtime, now=renewal_point + timedelta(days=1)
    )

    assert result.renewed and result.old_removed
    after = stored(db, account_id)
    new = runtime.credential(after)
    assert isinstance(new, ClientCertificate) and isinstance(old, ClientCertificate)
    assert after.certificate_thumbprint == result.thumbprint != before.certificate_thumbprint
    assert after.status == ConnectionStatus.ACTIVE
    # The new certificate lives a whole lifetime from its making, not what the old one had left.
    lifetime = timedelta(days=settings.certificate_lifetime_days)
    assert certificate_expiry(after.certificate_pem or "") >= renewed_at + lifetime
    # In Entra ID: the new certificate only; the old one no longer signs the app in.
    (app,) = control.apps()
    assert [c["thumbprint"] for c in app["certificates"]] == [after.certificate_thumbprint]
    assert app["certificates"][0]["keyId"] == after.certificate_key_id
    assert signs_in(settings, after, new)
    assert not signs_in(settings, after, old)

    # Sync goes on, with the new certificate.
    control.deliver(
        REP,
        **{
            "from": {"name": "Kim Buyer", "address": "kim@fabrikam.com"},
            "subject": "After the renewal",
            "body": "<p>Still here.</p>",
        },
    )
    await sync_mail(db, runtime, litware)
    assert {MESSAGE_SUBJECT, "After the renewal"} <= logged_subjects(db)

    # The audit trail of the renewal, by m365sync itself.
    assert actions(db, litware)[-3:] == [
        "entra.certificate.add",
        "service_account.certificate_renewed",
        "entra.certificate.remove",
    ]


async def test_a_new_certificate_that_never_works_is_removed_and_the_current_one_stays(
    sim, db, runtime, control, litware
):
    setup = await set_up(sim, db, runtime, litware)
    before = stored(db, setup.account.id)
    control.patch_tenant(replicationDelaySeconds=600)  # the new certificate replicates too late
    time = FakeTime(control, moves_sim=False)

    due = certificate_expiry(before.certificate_pem or "") - timedelta(days=1)
    (result,) = await certificate_renewal.renew_due_certificates(
        db, runtime, now=due, sleep=time.sleep, clock=time.clock
    )

    assert not result.renewed
    assert "did not work" in result.problem and "stays in use" in result.problem
    after = stored(db, setup.account.id)
    assert after.certificate_thumbprint == before.certificate_thumbprint
    (app,) = control.apps()
    assert [c["thumbprint"] for c in app["certificates"]] == [before.certificate_thumbprint]
    assert actions(db, litware)[-3:] == [
        "entra.certificate.add",
        "entra.certificate.remove",
        "service_account.certificate_renewal_failed",
    ]
    await sync_mail(db, runtime, litware)  # still syncing with the current certificate


async def test_the_scheduler_renews_due_certificates_in_the_background(
    sim, db, control, litware, tmp_path
):
    """With certificates renewed 400 days ahead, the one m365sync just made (365 days) is due
    at once: the scheduler's periodic work renews it, once per check interval."""
    runtime = ConnectionRuntime.from_settings(
        make_settings(sim, tmp_path / "data", certificate_renewal_days=400), db
    )
    setup = await set_up(sim, db, runtime, litware)
    before = stored(db, setup.account.id)
    scheduler = Scheduler(db, runtime, runtime.settings)

    task = scheduler.renew_certificates_when_due()
    assert task is not None
    (result,) = await task
    assert result.renewed
    assert scheduler.renew_certificates_when_due() is None  # not before the next check
    assert stored(db, setup.account.id).certificate_thumbprint != before.certificate_thumbprint
    await runtime.aclose()


def test_only_certificates_of_apps_m365sync_registered_are_due():
    """A certificate the admin uploaded to an app of their own is theirs to renew."""
    expiring = generate_certificate("m365sync test", days=1)
    account = ServiceAccount(
        name="Certificate account",
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.CERTIFICATE,
        client_id="22222222-3333-4444-8555-000000000001",
        tenant_id=LITWARE_TENANT_ID,
        certificate_pem=expiring.certificate_pem,
    )
    assert not certificate_renewal.renewal_due(account, 30, utcnow())
    account.application_object_id = "33333333-4444-4555-8666-000000000001"
    assert certificate_renewal.renewal_due(account, 30, utcnow())
    assert not certificate_renewal.renewal_due(account, 30, utcnow() - timedelta(days=60))
