"""JSON API: service accounts (Run Test, save, Set up for me, edit, remove, access policy)
and user connections (status, Connect your Office 365, Exchange, Disconnect)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from m365sync.connections import access_policy, service_accounts, setup, user_connections
from m365sync.connections.errors import SetupFailed
from m365sync.connections.run_test import ServiceAccountDraft, TestReport
from m365sync.connections.schemas import (
    AccessPolicyIn,
    AccessPolicyOut,
    CertificateAccountIn,
    CompleteCertificateIn,
    ConnectCompleteIn,
    ConnectStartOut,
    ExchangeConnectionIn,
    ExchangeServiceAccountIn,
    MailboxReachOut,
    MemberConnectionStatusOut,
    ReplaceSecretIn,
    RetestIn,
    SavedServiceAccountOut,
    ServiceAccountIn,
    ServiceAccountOut,
    SetupIn,
    TestReportOut,
    UserConnectionOut,
)
from m365sync.db.base import utcnow
from m365sync.errors import ValidationFailed
from m365sync.microsoft.auth import ClientSecret, Credential, load_certificate
from m365sync.organizations import service as orgs
from m365sync.sync import service as sync
from m365sync.web.dependencies import ApiAdmin, DbSession, Runtime

router = APIRouter(prefix="/organizations/{org}", tags=["connections"])


def _view(runtime: Any, account: Any) -> ServiceAccountOut:
    return ServiceAccountOut(
        **service_accounts.service_account_view(
            account, utcnow(), runtime.settings.secret_expiry_warning_days
        )
    )


def _report(report: TestReport) -> TestReportOut:
    return TestReportOut(**report.as_json())


def _draft(body: ServiceAccountIn) -> ServiceAccountDraft:
    """The body's one credential: ``client_secret`` or ``certificate_pem`` (None if neither)."""
    if body.client_secret is not None and body.certificate_pem is not None:
        raise ValidationFailed(
            "Both client_secret and certificate_pem were sent.", fix="Send only one of them."
        )
    credential: Credential | None = None
    if body.client_secret is not None:
        credential = ClientSecret(body.client_secret.get_secret_value())
    elif body.certificate_pem is not None:
        credential = load_certificate(body.certificate_pem.get_secret_value().encode("utf-8"))
    return ServiceAccountDraft(
        client_id=body.client_id,
        credential=credential,
        test_mailbox=body.test_mailbox,
        tenant_id=body.tenant_id,
        name=body.name,
        secret_expires_at=body.secret_expires_at,
    )


@router.get("/service-accounts", response_model=list[ServiceAccountOut])
def list_service_accounts(
    caller: ApiAdmin, session: DbSession, runtime: Runtime
) -> list[ServiceAccountOut]:
    return [
        _view(runtime, a)
        for a in service_accounts.list_service_accounts(session, caller.organization)
    ]


@router.post("/service-accounts/test", response_model=TestReportOut)
async def run_test(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ServiceAccountIn
) -> TestReportOut:
    """Run Test on what was entered; nothing is stored and no mailbox is modified."""
    report = await service_accounts.test_draft(session, runtime, caller.organization, _draft(body))
    return _report(report)


@router.post("/service-accounts", response_model=SavedServiceAccountOut, status_code=201)
async def add_service_account(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ServiceAccountIn
) -> SavedServiceAccountOut:
    """Run Test, then save; refused (422, with the checks) while a required check fails,
    unless ``partial`` is true."""
    account, report = await service_accounts.add_service_account(
        session,
        runtime,
        caller.organization,
        _draft(body),
        partial=body.partial,
        actor=caller.actor,
    )
    return SavedServiceAccountOut(service_account=_view(runtime, account), test=_report(report))


@router.post("/service-accounts/exchange", response_model=SavedServiceAccountOut, status_code=201)
async def add_exchange_service_account(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ExchangeServiceAccountIn
) -> SavedServiceAccountOut:
    """Run Test for Exchange (impersonating ``test_mailbox``), then save; refused (422, with
    the checks) while a required check fails, unless ``partial`` is true."""
    account, report = await service_accounts.add_exchange_service_account(
        session,
        runtime,
        caller.organization,
        name=body.name,
        server_url=body.server_url,
        username=body.username,
        password=body.password.get_secret_value(),
        test_mailbox=body.test_mailbox,
        partial=body.partial,
        actor=caller.actor,
    )
    return SavedServiceAccountOut(service_account=_view(runtime, account), test=_report(report))


@router.post("/service-accounts/exchange/test", response_model=TestReportOut)
async def run_exchange_test(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ExchangeServiceAccountIn
) -> TestReportOut:
    """Run Test for an Exchange service account as entered (impersonating ``test_mailbox``);
    nothing is stored and no mailbox is modified. An empty ``server_url`` uses Autodiscover."""
    report = await service_accounts.test_exchange_draft(
        session,
        runtime,
        caller.organization,
        server_url=body.server_url,
        username=body.username,
        password=body.password.get_secret_value(),
        test_mailbox=body.test_mailbox,
    )
    return _report(report)


@router.post("/service-accounts/setup", response_model=ConnectStartOut)
async def begin_setup(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SetupIn
) -> ConnectStartOut:
    """Set up for me: send an administrator of your Microsoft 365 tenant (Global
    Administrator or Privileged Role Administrator) to ``authorization_url``. Microsoft sends
    them back to ``{public_url}/admin/service-accounts/setup/callback`` with ``code`` and
    ``state``: POST those to ``service-accounts/setup/complete`` (or let the dashboard's page
    finish it)."""
    url = await setup.begin_setup(
        session,
        runtime,
        caller.organization,
        caller.member,
        features=body.features,
        test_mailbox=body.test_mailbox,
        name=body.name,
    )
    return ConnectStartOut(authorization_url=url)


@router.post(
    "/service-accounts/setup/complete", response_model=SavedServiceAccountOut, status_code=201
)
async def complete_setup(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ConnectCompleteIn
) -> SavedServiceAccountOut:
    """Finish Set up for me with the parameters of Microsoft's redirect: m365sync registers
    the app with its certificate, grants its permissions, waits for Entra ID, runs Run Test
    and saves the service account (``test`` says what Run Test found)."""
    try:
        result = await setup.complete_setup(
            session, runtime, body.params, organization_id=caller.organization.id
        )
    except SetupFailed:
        session.commit()  # the audit of what was done in the tenant stays, with the error
        raise
    return SavedServiceAccountOut(
        service_account=_view(runtime, result.account), test=_report(result.report)
    )


@router.post("/service-accounts/certificate", response_model=ServiceAccountOut, status_code=201)
def generate_certificate_account(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: CertificateAccountIn
) -> ServiceAccountOut:
    """Generate a key pair here; upload the returned ``certificate_pem`` to the app
    registration, then POST .../complete."""
    account = service_accounts.create_certificate_account(
        session, runtime, caller.organization, name=body.name, actor=caller.actor
    )
    return _view(runtime, account)


@router.post("/service-accounts/{account_id}/complete", response_model=SavedServiceAccountOut)
async def complete_certificate_account(
    caller: ApiAdmin,
    session: DbSession,
    runtime: Runtime,
    account_id: str,
    body: CompleteCertificateIn,
) -> SavedServiceAccountOut:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    report = await service_accounts.complete_certificate_account(
        session,
        runtime,
        caller.organization,
        account,
        client_id=body.client_id,
        test_mailbox=body.test_mailbox,
        tenant_id=body.tenant_id,
        partial=body.partial,
        actor=caller.actor,
    )
    return SavedServiceAccountOut(service_account=_view(runtime, account), test=_report(report))


@router.get("/service-accounts/{account_id}", response_model=ServiceAccountOut)
def get_service_account(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, account_id: str
) -> ServiceAccountOut:
    return _view(
        runtime, service_accounts.get_service_account(session, caller.organization, account_id)
    )


@router.post("/service-accounts/{account_id}/test", response_model=TestReportOut)
async def retest(
    caller: ApiAdmin,
    session: DbSession,
    runtime: Runtime,
    account_id: str,
    body: RetestIn | None = None,
) -> TestReportOut:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    report = await service_accounts.retest_service_account(
        session,
        runtime,
        caller.organization,
        account,
        test_mailbox=body.test_mailbox if body else None,
        actor=caller.actor,
    )
    return _report(report)


@router.post("/service-accounts/{account_id}/secret", response_model=SavedServiceAccountOut)
async def replace_secret(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, account_id: str, body: ReplaceSecretIn
) -> SavedServiceAccountOut:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    report = await service_accounts.replace_secret(
        session,
        runtime,
        caller.organization,
        account,
        secret=body.client_secret.get_secret_value(),
        secret_expires_at=body.secret_expires_at,
        partial=body.partial,
        actor=caller.actor,
    )
    return SavedServiceAccountOut(service_account=_view(runtime, account), test=_report(report))


@router.delete("/service-accounts/{account_id}", status_code=204)
def remove_service_account(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, account_id: str
) -> Response:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    service_accounts.remove_service_account(
        session, runtime, caller.organization, account, actor=caller.actor
    )
    return Response(status_code=204)


@router.post("/service-accounts/{account_id}/access-policy", response_model=AccessPolicyOut)
async def access_policy_commands(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, account_id: str, body: AccessPolicyIn
) -> AccessPolicyOut:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    commands = await access_policy.access_policy_commands(
        runtime, account, body.group, admin_upn=body.admin_upn
    )
    return AccessPolicyOut(
        application_access_policy=commands.application_access_policy,
        rbac_for_applications=commands.rbac_for_applications,
        notes=commands.notes,
    )


@router.get("/service-accounts/{account_id}/reachability", response_model=list[MailboxReachOut])
async def reachability(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, account_id: str
) -> list[MailboxReachOut]:
    account = service_accounts.get_service_account(session, caller.organization, account_id)
    results = await access_policy.reachability(session, runtime, caller.organization, account)
    return [
        MailboxReachOut(email=r.email, reach=r.reach.value, message=r.message, fix=r.fix)
        for r in results
    ]


# -- user connections ------------------------------------------------------------------------


@router.get("/connections", response_model=list[MemberConnectionStatusOut])
def connection_status(caller: ApiAdmin, session: DbSession) -> list[MemberConnectionStatusOut]:
    """Per member: synced domain?, covered by which service accounts, their own connection,
    and which protocol (Graph or an Exchange Server's EWS) serves each synced feature."""
    served: dict[str, dict[str, str]] = {}
    for unit in sync.mailbox_units(session, caller.organization.id):
        if unit.protocol:
            served.setdefault(unit.member_id, {})[unit.feature.value] = unit.protocol
    return [
        MemberConnectionStatusOut(
            member_id=row.member.id,
            email=row.member.email,
            synced_domain=row.synced_domain,
            via_service_account=[account.name for account in row.service_accounts],
            connection=UserConnectionOut(
                **user_connections.user_connection_view(row.connection, bool(row.service_accounts))
            )
            if row.connection
            else None,
            served_by=served.get(row.member.id, {}),
        )
        for row in user_connections.connection_overview(session, caller.organization)
    ]


@router.get("/members/{member_id}/connection", response_model=UserConnectionOut | None)
def get_connection(
    caller: ApiAdmin, session: DbSession, member_id: str
) -> UserConnectionOut | None:
    member = orgs.get_member(session, caller.organization, member_id)
    connection = user_connections.get_user_connection(session, caller.organization, member)
    if connection is None:
        return None
    covering = service_accounts.accounts_covering(session, caller.organization, member.domain)
    return UserConnectionOut(**user_connections.user_connection_view(connection, bool(covering)))


@router.post("/members/{member_id}/connection/office365", response_model=ConnectStartOut)
async def start_office365(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, member_id: str
) -> ConnectStartOut:
    """Begin "Connect your Office 365" for a member: send them to ``authorization_url``."""
    member = orgs.get_member(session, caller.organization, member_id)
    url = await user_connections.start_office365_connection(
        session, runtime, caller.organization, member
    )
    return ConnectStartOut(authorization_url=url)


@router.post("/connections/office365/complete", response_model=UserConnectionOut)
async def complete_office365(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: ConnectCompleteIn
) -> UserConnectionOut:
    """Finish a sign-in with the parameters of Microsoft's redirect (``code``, ``state``)."""
    connection = await user_connections.complete_office365_connection(
        session, runtime, body.params, organization_id=caller.organization.id
    )
    return UserConnectionOut(**user_connections.user_connection_view(connection))


@router.post(
    "/members/{member_id}/connection/exchange", response_model=UserConnectionOut, status_code=201
)
async def connect_exchange(
    caller: ApiAdmin,
    session: DbSession,
    runtime: Runtime,
    member_id: str,
    body: ExchangeConnectionIn,
) -> UserConnectionOut:
    member = orgs.get_member(session, caller.organization, member_id)
    connection = await user_connections.connect_exchange(
        session,
        runtime,
        caller.organization,
        member,
        server_url=body.server_url,
        username=body.username,
        password=body.password.get_secret_value(),
    )
    return UserConnectionOut(**user_connections.user_connection_view(connection))


@router.post("/members/{member_id}/connection/exchange/test", response_model=TestReportOut)
async def test_exchange_connection(
    caller: ApiAdmin,
    session: DbSession,
    runtime: Runtime,
    member_id: str,
    body: ExchangeConnectionIn,
) -> TestReportOut:
    """Run Test for a member's own Exchange connection as entered; nothing is stored."""
    member = orgs.get_member(session, caller.organization, member_id)
    report = await user_connections.test_exchange_connection(
        runtime,
        member,
        server_url=body.server_url,
        username=body.username,
        password=body.password.get_secret_value(),
    )
    return _report(report)


@router.post("/members/{member_id}/connection/test", response_model=TestReportOut)
async def retest_exchange_connection(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, member_id: str
) -> TestReportOut:
    """Run Test with a member's saved Exchange connection; its status takes the outcome."""
    member = orgs.get_member(session, caller.organization, member_id)
    report = await user_connections.retest_exchange_connection(
        session, runtime, caller.organization, member
    )
    return _report(report)


@router.delete("/members/{member_id}/connection", status_code=204)
def disconnect(caller: ApiAdmin, session: DbSession, runtime: Runtime, member_id: str) -> Response:
    member = orgs.get_member(session, caller.organization, member_id)
    sync.disconnect_member(session, runtime, caller.organization, member, actor=caller.actor)
    return Response(status_code=204)
