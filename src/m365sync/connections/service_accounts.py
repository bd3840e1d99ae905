"""Service accounts: an organization's app registrations (Office 365) or impersonation
accounts (on-premises Exchange) that reach every synced mailbox. Add (Run Test, then save),
test again, replace the secret, rename, remove, and what people may see of one.

Callers pass a ``Session`` and commit at their boundary. Secrets go in sealed and never
come out of this module except to MSAL. Every admin action is audited without secret values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections._ews import ews_server_url
from m365sync.connections.errors import (
    DraftIncomplete,
    DuplicateServiceAccount,
    NoDomains,
    RunTestFailed,
)
from m365sync.connections.exchange_run_test import ExchangeDraft, run_exchange_test
from m365sync.connections.features import FEATURE_TITLES, TASKS_VIA_SERVICE_ACCOUNT
from m365sync.connections.models import (
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    Feature,
    ServiceAccount,
)
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.run_test import ServiceAccountDraft, TestReport, run_connection_test
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.base import new_id, utcnow
from m365sync.errors import NotFound, ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.microsoft.applications import certificate_expiry
from m365sync.microsoft.auth import ClientSecret, discover_tenant, generate_certificate
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Domain, DomainProof, Organization
from m365sync.organizations.repository import OrganizationRepository


@dataclass(frozen=True)
class AddedDomain:
    """A domain just added, and a warning when Microsoft 365 says the organization's tenant
    does not own it (a customer's or partner's domain typed by mistake, or a domain of
    another tenant that needs its own service account)."""

    domain: Domain
    warning: str | None = None
    warning_fix: str | None = None


async def add_domain_checked(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    name: str,
    *,
    actor: str = "cli",
) -> AddedDomain:
    """Add a domain to sync, then ask Entra ID which tenant owns it and compare with the
    tenants of the organization's service accounts. The domain is added either way (the
    admin may be about to add that tenant's account); without a service account, or while
    Entra ID can't be asked, there is nothing to compare and no warning."""
    domain = orgs.add_domain(session, organization, name, actor=actor)
    tenants = {
        account.tenant_id
        for account in ConnectionRepository(session).service_accounts(organization.id)
        if account.tenant_id and account.kind == ConnectionKind.OFFICE365
    }
    if not tenants:
        return AddedDomain(domain)
    try:
        owner = await discover_tenant(runtime.settings, domain.name)
    except ms.TenantNotFound:
        return AddedDomain(
            domain,
            f"Microsoft 365 knows no tenant for {domain.name}, so none of its mailboxes can "
            "sync through your service accounts.",
            "Check the spelling. If it is a customer's or partner's domain, remove it: only "
            "your own domains belong here.",
        )
    except ms.MicrosoftError:
        return AddedDomain(domain)
    if owner in tenants:
        return AddedDomain(domain)
    return AddedDomain(
        domain,
        f"{domain.name} belongs to another Microsoft 365 tenant ({owner}) than your service "
        "accounts', so none of its mailboxes can sync through them.",
        "If it is a customer's or partner's domain, remove it: only your own domains belong "
        "here. If it is yours in another tenant, add a service account for that tenant.",
    )


def list_service_accounts(session: Session, organization: Organization) -> list[ServiceAccount]:
    return ConnectionRepository(session).service_accounts(organization.id)


def get_service_account(
    session: Session, organization: Organization, account_id: str
) -> ServiceAccount:
    account = ConnectionRepository(session).service_account(organization.id, account_id)
    if account is None:
        raise NotFound(
            "That service account is not in your organization.",
            fix="Pick it from the organization's list of service accounts.",
        )
    return account


def covers(account: ServiceAccount, domain: Domain | None) -> bool:
    """Whether ``account`` syncs the mailboxes of ``domain``, as the sync engine picks it: the
    domain is verified, and the account is an Office 365 one that works (active, or saved
    partially working) with at least one feature on, in the tenant the domain is verified in
    (where both tenants are known). A parked account covers no one until it is fixed."""
    return (
        domain is not None
        and domain.verified
        and account.kind == ConnectionKind.OFFICE365
        and bool(account.enabled_features)
        and account.status in (ConnectionStatus.ACTIVE, ConnectionStatus.PARTIAL)
        and (not domain.tenant_id or not account.tenant_id or account.tenant_id == domain.tenant_id)
    )


def accounts_covering(
    session: Session, organization: Organization, domain_name: str
) -> list[ServiceAccount]:
    """The service accounts that sync mailboxes of ``domain_name`` (see ``covers``)."""
    domain = OrganizationRepository(session).domain(organization.id, domain_name)
    if domain is None or not domain.verified:
        return []
    return [a for a in list_service_accounts(session, organization) if covers(a, domain)]


def parse_secret_expiry(text: str) -> datetime | None:
    """The secret's expiry as given in words (``YYYY-MM-DD``, as Certificates & secrets shows
    it): midnight UTC of that day; None when none was given."""
    if not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError as error:
        raise ValidationFailed(
            f"The secret's expiry date '{text.strip()}' is not a date.",
            fix="Give the date shown in the Expires column of Certificates & secrets "
            "(year-month-day).",
        ) from error


def _require_domains(session: Session, organization: Organization) -> None:
    if not OrganizationRepository(session).domains(organization.id):
        raise NoDomains()


def _refuse_duplicate(
    session: Session, organization: Organization, client_id: str, tenant_id: str | None
) -> None:
    """One service account per app and tenant: the same client ID in the same tenant (or
    where either tenant is unknown yet) is refused, naming the account that has it."""
    for existing in ConnectionRepository(session).service_accounts(organization.id):
        if (
            existing.kind == ConnectionKind.OFFICE365
            and (existing.client_id or "").strip().lower() == client_id.strip().lower()
            and (not tenant_id or not existing.tenant_id or existing.tenant_id == tenant_id)
        ):
            raise DuplicateServiceAccount(client_id.strip(), existing.name, existing.id)


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


def _complete(draft: ServiceAccountDraft) -> ServiceAccountDraft:
    """The draft with its text trimmed, refused while the client ID, the credential or the
    test account is missing."""
    credential = draft.credential
    if isinstance(credential, ClientSecret):
        credential = ClientSecret(credential.value.strip()) if credential.value.strip() else None
    draft = replace(
        draft,
        client_id=draft.client_id.strip(),
        credential=credential,
        test_mailbox=draft.test_mailbox.strip(),
        tenant_id=(draft.tenant_id or "").strip() or None,
        name=draft.name.strip(),
    )
    missing = [
        key
        for key, given in (
            ("client_id", bool(draft.client_id)),
            ("credential", draft.credential is not None),
            ("test_mailbox", bool(draft.test_mailbox)),
        )
        if not given
    ]
    if missing:
        raise DraftIncomplete(missing)
    return draft


async def test_draft(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    draft: ServiceAccountDraft,
) -> TestReport:
    """Run Test on what the admin entered, storing nothing."""
    return await _run_test(session, runtime, organization, _complete(draft))


async def _run_test(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    draft: ServiceAccountDraft,
    *,
    cache_blob: str | None = None,
) -> TestReport:
    return await run_connection_test(
        session,
        runtime.settings,
        organization,
        draft,
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
    draft: ServiceAccountDraft,
    *,
    partial: bool = False,
    actor: str = "cli",
) -> tuple[ServiceAccount, TestReport]:
    """Run Test, then save an Office 365 service account (refused while a required check
    fails, unless ``partial``)."""
    _require_domains(session, organization)
    draft = _complete(draft)
    credential = draft.credential
    assert credential is not None
    report = await _run_test(session, runtime, organization, draft)
    _refuse_duplicate(session, organization, draft.client_id, report.tenant_id)
    if not report.ok and not partial:
        raise RunTestFailed(report)
    account = ServiceAccount(
        id=new_id(),
        organization_id=organization.id,
        name=draft.name.strip() or "Office 365 service account",
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.SECRET
        if isinstance(credential, ClientSecret)
        else CredentialType.CERTIFICATE,
        client_id=draft.client_id.strip(),
        test_mailbox=draft.test_mailbox.strip().lower(),
        secret_expires_at=draft.secret_expires_at,
    )
    if isinstance(credential, ClientSecret):
        runtime.seal(account, "secret_sealed", credential.value)
    else:
        runtime.seal(account, "private_key_sealed", credential.private_key_pem)
        account.certificate_pem = credential.certificate_pem
        account.certificate_thumbprint = credential.thumbprint
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
    if account.kind == ConnectionKind.EXCHANGE:
        return await _retest_exchange(
            session,
            runtime,
            organization,
            account,
            test_mailbox=test_mailbox,
            partial=partial,
            save=save,
            actor=actor,
        )
    if not account.client_id:
        raise ValidationFailed(
            f"The service account '{account.name}' can't be tested yet.",
            fix="Give its Client ID (Application ID) first.",
        )
    mailbox = test_mailbox or account.test_mailbox or ""
    draft = ServiceAccountDraft(
        client_id=account.client_id,
        credential=runtime.credential(account),
        test_mailbox=mailbox,
        tenant_id=tenant_id or None,
    )
    cache = runtime.open(account, "token_cache_sealed")
    report = await _run_test(session, runtime, organization, draft, cache_blob=cache)
    if save and not report.ok and not partial:
        raise RunTestFailed(report)
    account.test_mailbox = mailbox.strip().lower() or account.test_mailbox
    if report.token_cache:
        runtime.seal(account, "token_cache_sealed", report.token_cache)
    _prove_domains(session, organization, report, actor)
    _record_retest(
        session, runtime, organization, account, report, partial=partial, save=save, actor=actor
    )
    return report


def _record_retest(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    report: TestReport,
    *,
    partial: bool,
    save: bool,
    actor: str,
) -> None:
    """A saved account's new test: its outcome kept (as Save would with ``save``) and
    audited."""
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
    if account.kind != ConnectionKind.OFFICE365:
        raise ValidationFailed(
            "Only Office 365 service accounts have a client secret.",
            fix="For an Exchange account, remove it and add it again with the new password.",
        )
    secret = secret.strip()
    if not secret:
        raise ValidationFailed(
            "The new client secret's Value is missing.",
            fix="Certificates & secrets → New client secret, then copy its Value column.",
        )
    draft = ServiceAccountDraft(
        client_id=account.client_id or "",
        credential=ClientSecret(secret),
        test_mailbox=account.test_mailbox or "",
        tenant_id=account.tenant_id,
    )
    report = await _run_test(session, runtime, organization, draft)
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


async def edit_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    name: str,
    test_mailbox: str,
    partial: bool = False,
    actor: str = "cli",
) -> TestReport | None:
    """Rename, change the test account, then test and save again with the stored
    credentials (as ``retest_service_account`` with ``save``). An Exchange account without
    a test account (given or stored) is only renamed (and no test: None)."""
    if not name.strip():
        raise ValidationFailed("A service account needs a name.", fix="Enter a name.")
    if account.kind == ConnectionKind.EXCHANGE and not (
        test_mailbox.strip() or account.test_mailbox
    ):
        rename_service_account(session, organization, account, name, actor=actor)
        return None
    if account.kind == ConnectionKind.EXCHANGE:
        test_mailbox = test_mailbox.strip() or account.test_mailbox or ""
    if not test_mailbox.strip():
        raise DraftIncomplete(["test_mailbox"])
    report = await retest_service_account(
        session,
        runtime,
        organization,
        account,
        test_mailbox=test_mailbox,
        partial=partial,
        save=True,
        actor=actor,
    )
    rename_service_account(session, organization, account, name, actor=actor)
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
        "Create a new client secret before then and replace this one with it. " + ms.SECRET_STEPS,
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
        "certificate_expires_at": certificate_expiry(account.certificate_pem).isoformat()
        if account.certificate_pem
        else None,
        "set_up_by_m365sync": account.application_object_id is not None,
        "ews_url": account.ews_url,
        "username": account.username,
        "last_tested_at": account.last_tested_at.isoformat() if account.last_tested_at else None,
        "created_at": account.created_at.isoformat() if account.created_at else None,
    }


# -- Exchange (EWS, on premises) ----------------------------------------------------------------


async def add_exchange_service_account(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    name: str,
    server_url: str,
    username: str,
    password: str,
    test_mailbox: str,
    partial: bool = False,
    actor: str = "cli",
) -> tuple[ServiceAccount, TestReport]:
    """Run Test for Exchange (``test_exchange_draft``, impersonating ``test_mailbox``), then
    save an on-premises Exchange service account (EWS with impersonation). Refused, nothing
    stored, while a required check fails (the server does not answer, its certificate is not
    trusted, the sign-in or the impersonation is refused...), unless ``partial``."""
    missing = [
        label
        for label, value in (
            ("Server URL", server_url),
            ("Username", username),
            ("Password", password),
            ("Test mailbox", test_mailbox),
        )
        if not value.strip()
    ]
    if missing:
        raise ValidationFailed(
            f"{', '.join(missing)}: required.",
            fix="Give the Exchange server's EWS address, the impersonation account's "
            "username and password, and a mailbox it should sync to test with.",
        )
    _require_domains(session, organization)
    url = ews_server_url(server_url)
    report = await test_exchange_draft(
        session,
        runtime,
        organization,
        server_url=url,
        username=username,
        password=password,
        test_mailbox=test_mailbox,
    )
    if not report.ok and not partial:
        raise RunTestFailed(report)
    account = ServiceAccount(
        id=new_id(),
        organization_id=organization.id,
        name=name.strip() or "Exchange service account",
        kind=ConnectionKind.EXCHANGE,
        credential_type=CredentialType.PASSWORD,
        ews_url=url,
        username=username.strip(),
        test_mailbox=test_mailbox.strip().lower(),
        status=ConnectionStatus.PENDING,
    )
    runtime.seal(account, "password_sealed", password)
    _apply_report(account, report, partial=partial)
    ConnectionRepository(session).add_service_account(account)
    audit.record(
        session,
        organization.id,
        actor,
        "service_account.add",
        account.name,
        account_id=account.id,
        kind="exchange",
        ok=report.ok,
    )
    return account, report


async def test_exchange_draft(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    *,
    server_url: str,
    username: str,
    password: str,
    test_mailbox: str,
) -> TestReport:
    """Run Test for an Exchange service account as entered (impersonating ``test_mailbox``),
    storing nothing. An empty ``server_url`` finds the server by Autodiscover."""
    missing = [
        key
        for key, value in (
            ("username", username),
            ("password", password),
            ("test_mailbox", test_mailbox),
        )
        if not value.strip()
    ]
    if missing:
        raise DraftIncomplete(missing)
    draft = ExchangeDraft(server_url, username, password, test_mailbox, impersonation=True)
    domains = OrganizationRepository(session).domains(organization.id)
    return await run_exchange_test(runtime.settings, draft, domain_names=[d.name for d in domains])


async def _retest_exchange(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
    *,
    test_mailbox: str | None,
    partial: bool,
    save: bool,
    actor: str,
) -> TestReport:
    mailbox = (test_mailbox or account.test_mailbox or "").strip().lower()
    if not mailbox:
        raise DraftIncomplete(["test_mailbox"])
    report = await test_exchange_draft(
        session,
        runtime,
        organization,
        server_url=account.ews_url or "",
        username=account.username or "",
        password=runtime.open(account, "password_sealed") or "",
        test_mailbox=mailbox,
    )
    if save and not report.ok and not partial:
        raise RunTestFailed(report)
    account.test_mailbox = mailbox
    _record_retest(
        session, runtime, organization, account, report, partial=partial, save=save, actor=actor
    )
    return report
