"""Service accounts and user connections: add, test, save, status, remove, connect, disconnect.

Callers pass a ``Session`` and commit at their boundary. Secrets go in sealed and never
come out of this module except to MSAL. Every admin action is audited without secret values.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections.errors import (
    AuthorizationExpired,
    DomainNotVerified,
    ExchangeOnlineNotSupported,
    MemberNotSynced,
    NoDomains,
    RunTestFailed,
    WrongTenant,
)
from m365sync.connections.features import (
    FEATURE_TITLES,
    TASKS_VIA_SERVICE_ACCOUNT,
    delegated_feature_matrix,
)
from m365sync.connections.models import (
    AuthorizationRequest,
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    Feature,
    ServiceAccount,
    UserConnection,
)
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.run_test import ServiceAccountDraft, TestReport, run_connection_test
from m365sync.connections.runtime import ConnectionRuntime, mark_needs_reconnect
from m365sync.db.base import new_id, utcnow
from m365sync.errors import NotFound, ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import (
    ClientCertificate,
    ClientSecret,
    discover_tenant,
    generate_certificate,
)
from m365sync.microsoft.ews import (
    MIGRATION_STEPS,
    is_exchange_online,
    is_valid_ews_url,
    normalize_ews_url,
)
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Domain, DomainProof, Member, Organization, Role
from m365sync.organizations.repository import OrganizationRepository

AUTHORIZATION_LIFETIME = timedelta(minutes=15)

# -- service accounts -------------------------------------------------------------------------


def list_service_accounts(session: Session, organization: Organization) -> list[ServiceAccount]:
    return ConnectionRepository(session).service_accounts(organization.id)


def get_service_account(
    session: Session, organization: Organization, account_id: str
) -> ServiceAccount:
    account = ConnectionRepository(session).service_account(organization.id, account_id)
    if account is None:
        raise NotFound(
            f"No service account {account_id} in {organization.name}.",
            fix="List them with: m365sync service-accounts list",
        )
    return account


def _require_domains(session: Session, organization: Organization) -> None:
    if not OrganizationRepository(session).domains(organization.id):
        raise NoDomains()


def _apply_report(account: ServiceAccount, report: TestReport, *, partial: bool) -> None:
    account.tenant_id = report.tenant_id or account.tenant_id
    if (
        report.signed_in
        or account.status == ConnectionStatus.PENDING
        or not account.enabled_features
    ):
        # A sign-in failure keeps the features the account had, so sync units stop with
        # this cause ("needs new secret") instead of "no connection".
        account.granted_permissions = report.granted_permissions
        account.enabled_features = [f.value for f in report.enabled_features]
        account.missing_permissions = report.matrix.missing_as_json() if report.matrix else {}
    account.last_tested_at = utcnow()
    if report.ok:
        account.status = ConnectionStatus.ACTIVE
        account.status_detail = ""
        account.status_fix = ""
        return
    failure = report.required_failures()[0]
    account.status = _status_for_check(failure.code, failure.key, partial)
    account.status_detail = f"{failure.title}: {failure.message}"
    account.status_fix = failure.fix


def _status_for_check(code: str | None, key: str, partial: bool) -> ConnectionStatus:
    if code == "AADSTS7000222":
        return ConnectionStatus.NEEDS_NEW_SECRET
    if key == "consent" or code in {"AADSTS65001", "AADSTS90094"}:
        return ConnectionStatus.NEEDS_CONSENT
    if key in {"secret_format", "sign_in"}:
        return ConnectionStatus.INVALID_CREDENTIALS
    return ConnectionStatus.PARTIAL if partial else ConnectionStatus.ERROR


def _prove_domains(
    session: Session, organization: Organization, report: TestReport, actor: str
) -> None:
    """A service account's Run Test is Entra's word on the organization's domains: those
    Entra resolves to the tenant that issued the app a token carrying permissions (an admin
    of that tenant consented) are verified there. Other domains are left untouched: a tenant
    is never recorded on a domain it has not proved."""
    tenant_id = report.consented_tenant_id
    if tenant_id is None:
        return
    orgs.verify_domains_in_tenant(
        session,
        organization,
        tenant_id,
        report.domain_tenants,
        method=DomainProof.SERVICE_ACCOUNT,
        actor=actor,
    )


async def test_draft(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    draft: ServiceAccountDraft,
    test_mailbox: str,
    *,
    cache_blob: str | None = None,
) -> TestReport:
    """Run Test on what the admin entered, storing nothing."""
    return await run_connection_test(
        session,
        runtime.settings,
        organization,
        draft,
        test_mailbox,
        cache_blob=cache_blob,
        graph_transport=runtime.graph_transport,
    )


def _keep_test_result(
    session: Session,
    runtime: ConnectionRuntime,
    account: ServiceAccount,
    report: TestReport,
    *,
    partial: bool,
) -> None:
    """A stored account takes a new test's outcome; its cached MSAL client is dropped so the
    next run signs in with what was just saved."""
    _apply_report(account, report, partial=partial)
    account.updated_at = utcnow()
    runtime.forget(account.id)
    session.flush()


async def add_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    name: str,
    client_id: str,
    test_mailbox: str,
    secret: str | None = None,
    certificate: ClientCertificate | None = None,
    tenant_id: str | None = None,
    secret_expires_at: datetime | None = None,
    partial: bool = False,
    actor: str = "cli",
) -> tuple[ServiceAccount, TestReport]:
    """Run Test, then save an Office 365 service account (refused while a required check
    fails, unless ``partial``). Exactly one of ``secret`` / ``certificate``."""
    _require_domains(session, organization)
    if (secret is None) == (certificate is None):
        raise ValidationFailed(
            "Give either a client secret value or a certificate.",
            fix=(
                "Use --secret (or the M365SYNC_CLIENT_SECRET environment variable), or "
                "--certificate."
            ),
        )
    credential = ClientSecret(secret) if secret is not None else certificate
    assert credential is not None
    draft = ServiceAccountDraft(
        client_id=client_id.strip(), credential=credential, tenant_id=tenant_id
    )
    report = await test_draft(session, runtime, organization, draft, test_mailbox)
    if not report.ok and not partial:
        raise RunTestFailed(report)
    account = ServiceAccount(
        id=new_id(),
        organization_id=organization.id,
        name=name.strip() or "Office 365 service account",
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.SECRET if secret is not None else CredentialType.CERTIFICATE,
        client_id=draft.client_id,
        test_mailbox=test_mailbox.strip().lower(),
        secret_expires_at=secret_expires_at,
    )
    if secret is not None:
        runtime.seal(account, "secret_sealed", secret)
    if certificate is not None:
        runtime.seal(account, "private_key_sealed", certificate.private_key_pem)
        account.certificate_pem = certificate.certificate_pem
        account.certificate_thumbprint = certificate.thumbprint
    runtime.seal(account, "token_cache_sealed", report.token_cache)
    _apply_report(account, report, partial=partial)
    ConnectionRepository(session).add_service_account(account)
    _prove_domains(session, organization, report, actor)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.add",
        account.name,
        account_id=account.id,
        client_id=account.client_id,
        credential=account.credential_type.value,
        partial=partial and not report.ok,
        features=account.enabled_features,
    )
    return account, report


def create_certificate_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    name: str,
    actor: str = "cli",
) -> ServiceAccount:
    """Generate a key pair here (the safer default: the private key never leaves this server)
    and keep a pending account; upload ``certificate_pem`` to the app registration
    (Certificates & secrets → Certificates → Upload), then ``complete_certificate_account``."""
    _require_domains(session, organization)
    certificate = generate_certificate(f"m365sync {organization.slug} {name}".strip())
    account = ServiceAccount(
        id=new_id(),
        organization_id=organization.id,
        name=name.strip() or "Office 365 service account",
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.CERTIFICATE,
        certificate_pem=certificate.certificate_pem,
        certificate_thumbprint=certificate.thumbprint,
        status=ConnectionStatus.PENDING,
        status_detail="Waiting for the certificate to be uploaded to the app registration.",
        status_fix=(
            "Upload the certificate under Certificates & secrets → Certificates, then run "
            "the test and save."
        ),
    )
    runtime.seal(account, "private_key_sealed", certificate.private_key_pem)
    ConnectionRepository(session).add_service_account(account)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.certificate_generated",
        account.name,
        account_id=account.id,
    )
    return account


async def complete_certificate_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    client_id: str,
    test_mailbox: str,
    tenant_id: str | None = None,
    partial: bool = False,
    actor: str = "cli",
) -> TestReport:
    account.client_id = client_id.strip()
    return await retest_service_account(
        session,
        runtime,
        organization,
        account,
        test_mailbox=test_mailbox,
        tenant_id=tenant_id,
        partial=partial,
        actor=actor,
        save=True,
    )


async def retest_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    test_mailbox: str | None = None,
    tenant_id: str | None = None,
    partial: bool = False,
    save: bool = False,
    actor: str = "cli",
) -> TestReport:
    """Run Test with the stored credentials. With ``save``, apply the result like Save does
    (refused while a required check fails unless ``partial``); otherwise update the status."""
    if account.kind != ConnectionKind.OFFICE365 or not account.client_id:
        raise ValidationFailed(
            f"The service account '{account.name}' can't be tested yet.",
            fix="Give its Client ID (Application ID) first.",
        )
    mailbox = test_mailbox or account.test_mailbox or ""
    draft = ServiceAccountDraft(
        client_id=account.client_id,
        credential=runtime.credential(account),
        tenant_id=tenant_id or None,
    )
    report = await test_draft(
        session,
        runtime,
        organization,
        draft,
        mailbox,
        cache_blob=runtime.open(account, "token_cache_sealed"),
    )
    if save and not report.ok and not partial:
        raise RunTestFailed(report)
    account.test_mailbox = mailbox.strip().lower() or account.test_mailbox
    if report.token_cache:
        runtime.seal(account, "token_cache_sealed", report.token_cache)
    _prove_domains(session, organization, report, actor)
    _keep_test_result(session, runtime, account, report, partial=partial or not save)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.save" if save else "service_account.test",
        account.name,
        account_id=account.id,
        ok=report.ok,
    )
    return report


async def replace_secret(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    secret: str,
    secret_expires_at: datetime | None = None,
    partial: bool = False,
    actor: str = "cli",
) -> TestReport:
    """A new client secret (e.g. after "needs new secret"): tested before it replaces the old."""
    draft = ServiceAccountDraft(
        client_id=account.client_id or "",
        credential=ClientSecret(secret),
        tenant_id=account.tenant_id,
    )
    report = await test_draft(session, runtime, organization, draft, account.test_mailbox or "")
    if not report.ok and not partial:
        raise RunTestFailed(report)
    account.credential_type = CredentialType.SECRET
    runtime.seal(account, "secret_sealed", secret)
    runtime.seal(account, "token_cache_sealed", report.token_cache)
    account.secret_expires_at = secret_expires_at
    _prove_domains(session, organization, report, actor)
    _keep_test_result(session, runtime, account, report, partial=partial)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.secret_replaced",
        account.name,
        account_id=account.id,
    )
    return report


def rename_service_account(
    session: Session,
    organization: Organization,
    account: ServiceAccount,
    name: str,
    *,
    actor: str = "cli",
) -> None:
    """Give the account a new display name (audited); an unchanged name records nothing."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A service account needs a name.", fix="Enter a name.")
    if account.name == name:
        return
    account.name = name
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.rename",
        account.name,
        account_id=account.id,
    )


def remove_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    actor: str = "cli",
) -> None:
    ConnectionRepository(session).delete_service_account(account)
    runtime.forget(account.id)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.remove",
        account.name,
        account_id=account.id,
    )


@dataclass
class ExpiryNotice:
    level: str  # "ok" | "warning" | "expired"
    days_left: int | None
    message: str
    fix: str


def secret_expiry(
    account: ServiceAccount, now: datetime, thresholds: tuple[int, ...] = (30, 14, 7)
) -> ExpiryNotice:
    """Warned about 30, 14 and 7 days ahead (the nearest threshold reached is named); expired →
    "needs new secret" with the steps."""
    expires = account.secret_expires_at
    if account.credential_type != CredentialType.SECRET or expires is None:
        return ExpiryNotice("ok", None, "", "")
    days_left = (expires - now).days if expires > now else -1
    if expires <= now:
        return ExpiryNotice(
            "expired",
            0,
            f"The client secret expired on {expires:%Y-%m-%d}: the service account needs a new "
            "secret.",
            ms.SecretExpired.default_fix or "",
        )
    reached = [t for t in sorted(thresholds) if days_left < t]
    if not reached:
        return ExpiryNotice("ok", days_left, "", "")
    return ExpiryNotice(
        "warning",
        days_left,
        f"The client secret expires on {expires:%Y-%m-%d} ({days_left} days left, under "
        f"{reached[0]}).",
        "Create a new client secret before then and replace it here (m365sync service-accounts "
        "replace-secret). " + ms.SECRET_STEPS,
    )


def service_account_view(
    account: ServiceAccount, now: datetime, thresholds: tuple[int, ...] = (30, 14, 7)
) -> dict[str, Any]:
    """Everything people may see about a service account: never a secret."""
    expiry = secret_expiry(account, now, thresholds)
    status = account.status
    detail, fix = account.status_detail, account.status_fix
    if expiry.level == "expired":
        status, detail, fix = ConnectionStatus.NEEDS_NEW_SECRET, expiry.message, expiry.fix
    features = {
        f.value: {
            "enabled": f.value in account.enabled_features,
            "title": FEATURE_TITLES[f],
            "missing_permissions": account.missing_permissions.get(f.value, []),
            "reason": TASKS_VIA_SERVICE_ACCOUNT
            if f == Feature.TASKS
            else (
                ""
                if f.value in account.enabled_features
                else (
                    f"Needs {', '.join(account.missing_permissions.get(f.value, []))}."
                    if account.missing_permissions.get(f.value)
                    else "Not verified yet: run the test."
                )
            ),
        }
        for f in Feature
    }
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind.value,
        "credential_type": account.credential_type.value,
        "client_id": account.client_id,
        "tenant_id": account.tenant_id,
        "test_mailbox": account.test_mailbox,
        "status": status.value,
        "status_detail": detail,
        "status_fix": fix,
        "features": features,
        "granted_permissions": account.granted_permissions,
        "secret_expires_at": account.secret_expires_at.isoformat()
        if account.secret_expires_at
        else None,
        "secret_expiry": {
            "level": expiry.level,
            "days_left": expiry.days_left,
            "message": expiry.message,
            "fix": expiry.fix,
        },
        "certificate_thumbprint": account.certificate_thumbprint,
        "certificate_pem": account.certificate_pem,
        "ews_url": account.ews_url,
        "username": account.username,
        "last_tested_at": account.last_tested_at.isoformat() if account.last_tested_at else None,
        "created_at": account.created_at.isoformat() if account.created_at else None,
    }


# -- Exchange (EWS, legacy) --------------------------------------------------------------------


def _validate_ews(server_url: str) -> str:
    url = normalize_ews_url(server_url)
    if is_exchange_online(url):
        raise ExchangeOnlineNotSupported(
            f"{url} is Exchange Online, which no longer accepts EWS connections with a username "
            "and password.",
            fix=MIGRATION_STEPS,
        )
    if not is_valid_ews_url(url):
        raise ValidationFailed(
            f"'{server_url}' is not an HTTPS address of an Exchange server.",
            fix="Enter your on-premises server, e.g. https://mail.contoso.com/EWS/Exchange.asmx",
        )
    return url


def add_exchange_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    name: str,
    server_url: str,
    username: str,
    password: str,
    actor: str = "cli",
) -> ServiceAccount:
    """An on-premises Exchange service account (EWS with impersonation)."""
    _require_domains(session, organization)
    url = _validate_ews(server_url)
    account = ServiceAccount(
        id=new_id(),
        organization_id=organization.id,
        name=name.strip() or "Exchange service account",
        kind=ConnectionKind.EXCHANGE,
        credential_type=CredentialType.PASSWORD,
        ews_url=url,
        username=username.strip(),
        status=ConnectionStatus.PENDING,
        status_detail="Saved; EWS syncing is verified when the Exchange sync runs.",
    )
    runtime.seal(account, "password_sealed", password)
    ConnectionRepository(session).add_service_account(account)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.add",
        account.name,
        account_id=account.id,
        kind="exchange",
    )
    return account


def connect_exchange(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    member: Member,
    *,
    server_url: str,
    username: str,
    password: str,
) -> UserConnection:
    """A member's legacy Exchange connection, for on-premises servers only."""
    url = _validate_ews(server_url)
    repo = ConnectionRepository(session)
    existing = repo.user_connection(organization.id, member.id)
    if existing is not None:
        repo.delete_user_connection(existing)
    connection = UserConnection(
        id=new_id(),
        organization_id=organization.id,
        member_id=member.id,
        kind=ConnectionKind.EXCHANGE,
        ews_url=url,
        username=username.strip(),
        status=ConnectionStatus.PENDING,
        connected_at=utcnow(),
    )
    runtime.seal(connection, "password_sealed", password)
    repo.add_user_connection(connection)
    audit.record(session, organization.id, member.email, "user_connection.exchange", member.email)
    return connection


def migration_guidance(connection: UserConnection | ServiceAccount) -> str | None:
    """For a legacy Exchange connection that points at Exchange Online: how to switch."""
    if (
        connection.kind == ConnectionKind.EXCHANGE
        and connection.ews_url
        and is_exchange_online(connection.ews_url)
    ):
        return MIGRATION_STEPS
    return None


# -- Office 365 user connections ---------------------------------------------------------------


def redirect_uri(runtime: ConnectionRuntime) -> str:
    return f"{runtime.settings.public_url.rstrip('/')}/connections/office365/callback"


def _connectable_domain(session: Session, organization: Organization, member: Member) -> Domain:
    """The member's domain to sync, if their mailbox may be connected: it must be one of
    the organization's domains, and verified, except for an admin, whose sign-in may be the
    proof (see ``complete_office365_connection``)."""
    domain = OrganizationRepository(session).domain(organization.id, member.domain)
    if domain is None:
        raise MemberNotSynced(
            f"{member.email} is not in the domains to sync of {organization.name}, so its "
            "mailbox can't be connected.",
            fix=f"Ask an admin to add {member.domain} as a domain to sync, or use your address "
            "in one of them.",
        )
    if domain.verified_at is None and member.role != Role.ADMIN:
        raise DomainNotVerified(
            f"{domain.name} is not verified for {organization.name} yet, so mailboxes in it "
            "can't be connected.",
            fix=f"Ask an admin of your organization to verify {domain.name}, then connect again.",
        )
    return domain


async def start_office365_connection(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    member: Member,
    *,
    redirect: str | None = None,
) -> str:
    """Begin "Connect your Office 365": returns the Microsoft sign-in URL to send the user to.
    The sign-in goes to the tenant the member's domain is verified in, or, before Entra has
    vouched for the domain, to the tenant Entra resolves it to."""
    runtime.user_app_credentials()
    domain = _connectable_domain(session, organization, member)
    tenant_id = domain.tenant_id or await discover_tenant(runtime.settings, domain.name)
    pending = UserConnection(
        id=new_id(),
        organization_id=organization.id,
        member_id=member.id,
        kind=ConnectionKind.OFFICE365,
    )
    pending.updated_at = utcnow()
    auth = await asyncio.to_thread(runtime.delegated_auth, pending, tenant_id=tenant_id, fresh=True)
    flow = await asyncio.to_thread(  # asks Entra ID for the tenant's configuration
        auth.start, redirect or redirect_uri(runtime), login_hint=member.email
    )
    runtime.forget(pending.id)
    flow["m365sync_tenant_id"] = tenant_id
    request = AuthorizationRequest(
        id=new_id(), state=str(flow["state"]), organization_id=organization.id, member_id=member.id
    )
    runtime.seal(request, "flow_sealed", json.dumps(flow))
    repo = ConnectionRepository(session)
    repo.purge_authorizations(utcnow() - AUTHORIZATION_LIFETIME)
    repo.add_authorization(request)
    return str(flow["auth_uri"])


async def _resolved_tenants(
    runtime: ConnectionRuntime, domains: list[Domain], known: dict[str, str | None]
) -> dict[str, str | None]:
    """The tenant Entra resolves each domain to (None where it resolves to none)."""
    resolved = dict(known)
    for domain in domains:
        if domain.name in resolved:
            continue
        try:
            resolved[domain.name] = await discover_tenant(runtime.settings, domain.name)
        except ms.MicrosoftError:
            resolved[domain.name] = None
    return resolved


async def complete_office365_connection(
    session: Session,
    runtime: ConnectionRuntime,
    auth_response: dict[str, str],
    *,
    organization_id: str | None = None,
) -> UserConnection:
    """The redirect back from Microsoft: check ``state``, redeem the code (PKCE), check the
    account's tenant, store the sealed token cache and what was granted.

    The token's tenant must be the tenant the member's domain is verified in (or, before Entra
    has vouched for the domain, the tenant Entra resolves it to); otherwise nothing is stored.
    When an admin of the organization connects, Entra's answer proves the organization's
    domains resolved to that tenant; for other members it only records the tenant of a domain
    the organization already proved by DNS or the operator's word."""
    state = auth_response.get("state", "")
    repo = ConnectionRepository(session)
    request = repo.take_authorization(state) if state else None
    if (
        organization_id is not None
        and request is not None
        and request.organization_id != organization_id
    ):
        request = None
    if request is None or request.created_at < utcnow() - AUTHORIZATION_LIFETIME:
        raise AuthorizationExpired(
            "This sign-in is unknown or took too long (its state does not match a sign-in in "
            "progress).",
            fix="Start again with Connect your Office 365.",
        )
    if "error" in auth_response:
        error = ms.classify_aad_error(
            {
                "error": auth_response.get("error"),
                "error_description": auth_response.get("error_description", ""),
            }
        )
        raise error
    flow = json.loads(runtime.open(request, "flow_sealed") or "{}")
    tenant_id = str(flow.pop("m365sync_tenant_id", "")) or None
    organizations = OrganizationRepository(session)
    organization = organizations.get(request.organization_id)
    member = organizations.member(request.organization_id, request.member_id)
    if organization is None or member is None:
        raise NotFound(
            "The member who started this sign-in no longer exists.",
            fix="Ask an admin to add you to the organization again, then connect again.",
        )
    domain = _connectable_domain(session, organization, member)
    connection = UserConnection(
        id=new_id(),
        organization_id=request.organization_id,
        member_id=member.id,
        kind=ConnectionKind.OFFICE365,
        tenant_id=tenant_id,
    )
    connection.updated_at = utcnow()
    auth = await asyncio.to_thread(
        runtime.delegated_auth, connection, tenant_id=tenant_id, fresh=True
    )
    result = await asyncio.to_thread(auth.finish, flow, auth_response)
    claims = result.get("id_token_claims") or {}
    account = str(claims.get("preferred_username") or claims.get("upn") or member.email)
    token_tenant = str(claims.get("tid") or "") or None
    expected = domain.tenant_id or tenant_id
    if token_tenant is None or token_tenant != expected:
        runtime.forget(connection.id)
        where = "is verified in" if domain.tenant_id else "belongs to"
        raise WrongTenant(
            f"Microsoft signed in {account}, an account of another Microsoft 365 tenant than "
            f"the one {domain.name} {where}; nothing was connected.",
            fix=f"Connect again and sign in with your work account of {domain.name} "
            f"({member.email}).",
        )
    if domain.verified_at is None or domain.tenant_id is None:
        others = [d for d in organizations.domains(organization.id) if d.tenant_id is None]
        resolved = await _resolved_tenants(
            runtime, others if member.role == Role.ADMIN else [], {domain.name: tenant_id}
        )
        orgs.verify_domains_in_tenant(
            session,
            organization,
            token_tenant,
            resolved,
            method=DomainProof.MICROSOFT_SIGN_IN,
            actor=member.email,
        )
    existing = repo.user_connection(request.organization_id, member.id)
    if existing is not None:
        repo.delete_user_connection(existing)
        runtime.forget(existing.id)
    connection.account_username = account
    connection.home_account_id = auth.home_account_id
    connection.tenant_id = token_tenant
    connection.granted_scopes = sorted(str(result.get("scope") or "").split())
    connection.status = ConnectionStatus.ACTIVE
    connection.connected_at = utcnow()
    runtime.seal(connection, "token_cache_sealed", auth.cache.serialize())
    auth.cache.has_state_changed = False
    repo.add_user_connection(connection)
    audit.record(
        session,
        request.organization_id,
        member.email,
        "user_connection.connect",
        member.email,
        scopes=connection.granted_scopes,
    )
    return connection


async def refresh_user_connection(
    session: Session, runtime: ConnectionRuntime, connection: UserConnection
) -> None:
    """Acquire a token silently (MSAL refreshes as needed); a revoked or expired refresh
    token marks the connection "reconnect needed"."""
    if connection.kind != ConnectionKind.OFFICE365:
        return
    try:
        auth = await asyncio.to_thread(runtime.delegated_auth, connection)
        await asyncio.to_thread(auth.acquire, force_refresh=True)
    except (ms.AuthRevoked, ms.CredentialError, ms.ConsentMissing) as error:
        mark_needs_reconnect(connection, error)
        session.flush()
        return
    runtime.save_token_caches(session)
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        connection.status = ConnectionStatus.ACTIVE


def take_notice(connection: UserConnection) -> str | None:
    """The "reconnect needed" notice, the first time only (until the connection recovers)."""
    if (
        connection.status != ConnectionStatus.NEEDS_RECONNECT
        or connection.status_notified_at is not None
    ):
        return None
    connection.status_notified_at = utcnow()
    return f"{connection.status_detail} {connection.status_fix}".strip()


def get_user_connection(
    session: Session, organization: Organization, member: Member
) -> UserConnection | None:
    return ConnectionRepository(session).user_connection(organization.id, member.id)


def list_user_connections(session: Session, organization: Organization) -> list[UserConnection]:
    return ConnectionRepository(session).user_connections(organization.id)


def disconnect(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    member: Member,
    *,
    actor: str | None = None,
) -> bool:
    """Delete the member's connection and its tokens. Returns False if there was none."""
    repo = ConnectionRepository(session)
    connection = repo.user_connection(organization.id, member.id)
    if connection is None:
        return False
    repo.delete_user_connection(connection)
    runtime.forget(connection.id)
    audit.record(
        session, organization.id, actor or member.email, "user_connection.disconnect", member.email
    )
    return True


def user_connection_view(
    connection: UserConnection, covered_by_service_account: bool = False
) -> dict[str, Any]:
    matrix = (
        delegated_feature_matrix(connection.granted_scopes)
        if connection.kind == ConnectionKind.OFFICE365
        else None
    )
    return {
        "id": connection.id,
        "member_id": connection.member_id,
        "kind": connection.kind.value,
        "status": connection.status.value,
        "status_detail": connection.status_detail,
        "status_fix": connection.status_fix,
        "account": connection.account_username or connection.username,
        "granted_scopes": connection.granted_scopes,
        "features": sorted(f.value for f in matrix.enabled) if matrix else [],
        "ews_url": connection.ews_url,
        "migration": migration_guidance(connection),
        "covered_by_service_account": covered_by_service_account,
        "connected_at": connection.connected_at.isoformat() if connection.connected_at else None,
    }


# -- who is connected how --------------------------------------------------------------------


@dataclass(frozen=True)
class MemberConnections:
    """How one member's mailbox is connected: whether it is in a verified domain to sync,
    the service accounts that serve it, and the member's own connection (if any)."""

    member: Member
    synced_domain: bool
    service_accounts: list[ServiceAccount]
    connection: UserConnection | None


def connection_overview(session: Session, organization: Organization) -> list[MemberConnections]:
    """Every member, with what serves their mailbox. A service account serves the members
    of the verified domains of its tenant once Run Test has turned features on (as the sync
    engine picks it); a parked one serves no one until it is fixed."""
    domains = {d.name: d for d in orgs.list_domains(session, organization) if d.verified}
    usable = [
        account
        for account in list_service_accounts(session, organization)
        if account.kind == ConnectionKind.OFFICE365
        and account.enabled_features
        and account.status in (ConnectionStatus.ACTIVE, ConnectionStatus.PARTIAL)
    ]
    connections = {c.member_id: c for c in list_user_connections(session, organization)}
    overview = []
    for member in orgs.list_members(session, organization):
        domain = domains.get(member.domain)
        serving = [
            account
            for account in usable
            if domain is not None
            and (
                not domain.tenant_id
                or not account.tenant_id
                or domain.tenant_id == account.tenant_id
            )
        ]
        overview.append(
            MemberConnections(member, domain is not None, serving, connections.get(member.id))
        )
    return overview
