"""Set up for me: m365sync registers the service account's app in the organization's
Microsoft Entra ID itself, so no administrator copies a secret or comes back before it
expires.

``begin_setup`` takes what the admin chose (the features, a test account, a name) and returns
the Microsoft sign-in to send them to: the server's user-connections app, in the tenant of
the organization's domains, asking for the delegated management permissions
(``Application.ReadWrite.All`` and ``AppRoleAssignment.ReadWrite.All``, which need an
administrator's consent) with MSAL's authorization code flow and PKCE. The sign-in in
progress is kept sealed until Microsoft sends the admin back.

``complete_setup`` is that return. With the administrator's token, held in memory for this
one call and dropped after it (never stored), it looks Microsoft Graph's permission ids up,
registers a single-tenant app whose ``requiredResourceAccess`` asks for the chosen features'
application permissions and whose first credential is a certificate m365sync generated (its
private key is sealed here and never leaves), creates the app's service principal, and
grants admin consent to each permission (``appRoleAssignedTo``). Then, with the app's own
certificate only, it waits for Entra ID to replicate the new app (bounded:
``setup_replication_timeout_seconds``), runs Run Test and saves the service account.

Every object created or removed in the tenant is audited (``entra.*`` actions). How each
failure ends:

- the account that signed in may not register apps or grant application permissions (a
  Global Administrator or Privileged Role Administrator may): ``AdminRoleMissing``; an app
  registered before the refusal is deleted again;
- the permissions were declined on Microsoft's consent page: ``SetupConsentDeclined``,
  nothing created;
- Entra ID takes longer than the wait to replicate: the account is saved waiting
  (``pending``, with the cause and the fix) and ``ReplicationSlow`` raised; running its test
  again later finishes it;
- Microsoft fails otherwise midway: ``SetupInterrupted``, with the app deleted again if it
  can be.

A permission removed later in Entra is what Run Test and the account's status already report
(the feature turns off, naming the permission to add back).

Callers pass a ``Session`` and commit at their boundary, also when ``SetupFailed`` is raised
(the audit entries of what happened in the tenant must stay). The database is only read until
Microsoft's work is done, and written at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections import service_accounts
from m365sync.connections.errors import (
    AdminRoleMissing,
    AuthorizationExpired,
    NoDomains,
    ReplicationSlow,
    SetupConsentDeclined,
    SetupFailed,
    SetupInterrupted,
    WrongTenant,
)
from m365sync.connections.features import (
    APPLICATION_PERMISSIONS,
    FEATURE_TITLES,
    SETUP_EXTRA_PERMISSIONS,
)
from m365sync.connections.models import (
    AuthorizationRequest,
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    Feature,
    ServiceAccount,
)
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.run_test import ServiceAccountDraft, TestReport
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.base import new_id, utcnow
from m365sync.errors import M365SyncError, NotFound, ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.microsoft.applications import (
    MANAGEMENT_SCOPES,
    ApplicationsClient,
    KeyCredential,
    NotReplicatedYet,
    RegisteredApp,
    certificate_expiry,
    sign_in_when_replicated,
)
from m365sync.microsoft.auth import (
    ClientCertificate,
    ClientSecret,
    DelegatedAuth,
    discover_tenant,
    generate_certificate,
)
from m365sync.organizations.models import Member, Organization
from m365sync.organizations.repository import OrganizationRepository

__all__ = [
    "DEFAULT_NAME",
    "SETUP_FEATURES",
    "SetupResult",
    "begin_setup",
    "complete_setup",
    "parse_features",
    "permissions_for",
    "setup_redirect_uri",
]

DEFAULT_NAME = "m365sync service account"
SETUP_FEATURES = (Feature.EMAIL, Feature.CALENDAR, Feature.SCHEDULING)
"""What a service account can do (Task Sync can't: Microsoft To Do has no application
permission)."""
SIGN_IN_LIFETIME = timedelta(minutes=15)
_SETUP_KEY = "m365sync_setup"  # in the sealed flow: what the admin chose, and the tenant

ADMIN_ROLE_FIX = (
    "Sign in to Microsoft as a Global Administrator or Privileged Role Administrator of your "
    "Microsoft 365 tenant (or ask one to do it), then start Set up for me again."
)


def setup_redirect_uri(runtime: ConnectionRuntime) -> str:
    """Where Microsoft sends the admin back (a Redirect URI of the user-connections app)."""
    return f"{runtime.settings.public_url.rstrip('/')}/admin/service-accounts/setup/callback"


def parse_features(values: Iterable[str | Feature]) -> list[Feature]:
    """The features chosen, in their usual order; refused when none, or one a service
    account can't serve, is chosen."""
    chosen: set[Feature] = set()
    for value in values:
        text = str(value).strip().lower()
        if not text:
            continue
        try:
            feature = Feature(text)
        except ValueError:
            raise ValidationFailed(
                f"'{value}' is not a feature.",
                fix="Choose among Email Sync, Calendar Sync and Calendar Scheduling.",
            ) from None
        if feature not in SETUP_FEATURES:
            raise ValidationFailed(
                f"{FEATURE_TITLES[feature]} can't be set up for a service account: Microsoft To "
                "Do has no application permission.",
                fix="Choose among Email Sync, Calendar Sync and Calendar Scheduling; each user "
                "turns Task Sync on with their own connection (Connect your Office 365).",
            )
        chosen.add(feature)
    if not chosen:
        raise ValidationFailed(
            "No feature was chosen.",
            fix="Choose at least one of Email Sync, Calendar Sync and Calendar Scheduling.",
        )
    return [f for f in SETUP_FEATURES if f in chosen]


def permissions_for(features: Iterable[Feature]) -> list[str]:
    """The Microsoft Graph application permissions the features need (DESIGN's table), and
    Place.Read.All with Calendar Scheduling (for meeting types that book a room)."""
    wanted: list[str] = []
    for feature in features:
        for permission in APPLICATION_PERMISSIONS[feature] + SETUP_EXTRA_PERMISSIONS.get(
            feature, ()
        ):
            if permission not in wanted:
                wanted.append(permission)
    return wanted


async def begin_setup(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    admin: Member,
    *,
    features: Iterable[str | Feature],
    test_mailbox: str,
    name: str = "",
    redirect: str | None = None,
) -> str:
    """The Microsoft sign-in URL to send the admin to (see the module docstring)."""
    chosen = parse_features(features)
    mailbox = test_mailbox.strip().lower()
    repo = OrganizationRepository(session)
    domains = repo.domains(organization.id)
    if not domains:
        raise NoDomains()
    names = [d.name for d in domains]
    domain_name = mailbox.rsplit("@", 1)[-1] if "@" in mailbox else ""
    if not mailbox:
        raise ValidationFailed(
            "No test account was given.",
            fix="Enter the address of a mailbox the service account should sync (Run Test only "
            "reads from it).",
        )
    if domain_name not in names:
        raise ValidationFailed(
            f"{mailbox} is outside the domains to sync ({', '.join(names)}).",
            fix="Use a test account in one of your domains, or add its domain to the domains "
            "to sync first.",
        )
    client_id, secret = runtime.user_app_credentials()
    domain = repo.domain(organization.id, domain_name)
    tenant_id = (domain.tenant_id if domain else None) or await discover_tenant(
        runtime.settings, domain_name
    )
    auth = DelegatedAuth(
        runtime.settings,
        client_id=client_id,
        tenant_id=tenant_id,
        credential=ClientSecret(secret),
        cache_blob=None,
        on_cache_change=None,
        scopes=list(MANAGEMENT_SCOPES),
    )
    flow = await asyncio.to_thread(  # asks Entra ID for the tenant's configuration
        auth.start, redirect or setup_redirect_uri(runtime), login_hint=admin.email
    )
    flow[_SETUP_KEY] = {
        "tenant_id": tenant_id,
        "features": [f.value for f in chosen],
        "test_mailbox": mailbox,
        "name": name.strip() or DEFAULT_NAME,
    }
    request = AuthorizationRequest(
        id=new_id(), state=str(flow["state"]), organization_id=organization.id, member_id=admin.id
    )
    runtime.seal(request, "flow_sealed", json.dumps(flow))
    connections = ConnectionRepository(session)
    connections.purge_authorizations(utcnow() - SIGN_IN_LIFETIME)
    connections.add_authorization(request)
    return str(flow["auth_uri"])


@dataclass
class SetupResult:
    """The saved service account and its Run Test (``report.ok`` False: saved with the
    failing check as its status)."""

    account: ServiceAccount
    report: TestReport
    app: RegisteredApp


@dataclass
class _Changes:
    """What was done in the tenant, audited when the setup ends (however it ends)."""

    organization_id: str
    actor: str
    done: list[tuple[datetime, str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, action: str, target: str, **detail: Any) -> None:
        self.done.append((utcnow(), action, target, detail))

    def record(self, session: Session) -> None:
        for at, action, target, detail in self.done:
            audit.record(session, self.organization_id, self.actor, action, target, at=at, **detail)
        self.done.clear()


@dataclass(frozen=True)
class _Choice:
    tenant_id: str
    features: list[Feature]
    test_mailbox: str
    name: str


async def complete_setup(
    session: Session,
    runtime: ConnectionRuntime,
    auth_response: dict[str, str],
    *,
    organization_id: str,
    member_id: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SetupResult:
    """Microsoft's redirect back (its query parameters): see the module docstring. With
    ``member_id``, only the sign-in that member started is accepted."""
    state = auth_response.get("state", "")
    connections = ConnectionRepository(session)
    request = connections.authorization(state) if state else None
    if (
        request is None
        or request.organization_id != organization_id
        or request.created_at < utcnow() - SIGN_IN_LIFETIME
    ):
        raise AuthorizationExpired(
            "This Set up for me sign-in is unknown or took too long.",
            fix="Start Set up for me again.",
        )
    if member_id is not None and request.member_id != member_id:
        raise NotFound(
            "This Set up for me sign-in was started by someone else.",
            fix="Start Set up for me again.",
        )
    flow: dict[str, Any] = json.loads(runtime.open(request, "flow_sealed") or "{}")
    choice = _read_choice(flow.pop(_SETUP_KEY, None))
    organizations = OrganizationRepository(session)
    organization = organizations.get(request.organization_id)
    admin = organizations.member(request.organization_id, request.member_id)
    if organization is None or admin is None:
        raise NotFound(
            "The admin who started this Set up for me no longer exists.",
            fix="Sign in again and start Set up for me again.",
        )
    changes = _Changes(organization.id, admin.email)

    def consumed(error: SetupFailed) -> SetupFailed:
        connections.take_authorization(state)
        changes.record(session)
        return error

    if "error" in auth_response:
        raise consumed(_declined(auth_response))
    auth, signed_in_as = await _redeem(runtime, flow, auth_response, choice, consumed)
    try:
        registered, certificate, key = await _register(
            runtime, auth, organization, choice, changes, consumed, signed_in_as=signed_in_as
        )
    finally:
        auth.forget_tokens()  # the administrator's token ends with this step
    permissions = permissions_for(choice.features)
    try:
        await sign_in_when_replicated(
            runtime.settings,
            client_id=registered.app_id,
            tenant_id=choice.tenant_id,
            certificate=certificate,
            permissions=permissions,
            timeout_seconds=runtime.settings.setup_replication_timeout_seconds,
            poll_seconds=runtime.settings.setup_replication_poll_seconds,
            sleep=sleep,
            clock=clock,
        )
    except ms.MicrosoftError as error:
        _keep_waiting(session, runtime, changes, choice, registered, certificate, key, error)
        if isinstance(error, NotReplicatedYet):
            raise consumed(
                ReplicationSlow(
                    f"{error.message} The app '{registered.display_name}' is registered, with "
                    "its certificate and the consented permissions; the service account is "
                    "saved, waiting for its test.",
                    fix="Nothing is wrong with the app: wait a few minutes, then run the "
                    "service account's test again and save it.",
                )
            ) from error
        raise consumed(
            SetupInterrupted(
                f"The new app '{registered.display_name}' could not sign in yet: {error.message} "
                "The service account is saved, waiting for its test.",
                fix=(error.fix + " " if error.fix else "")
                + "Then run the service account's test again and save it.",
            )
        ) from error
    try:
        account, report = await service_accounts.add_service_account(
            session,
            runtime,
            organization,
            ServiceAccountDraft(
                client_id=registered.app_id,
                credential=certificate,
                test_mailbox=choice.test_mailbox,
                tenant_id=choice.tenant_id,
                name=choice.name,
            ),
            partial=True,  # everything is in place in Entra ID: keep it, with the test's verdict
            actor=admin.email,
        )
    except M365SyncError as error:
        raise consumed(
            SetupInterrupted(
                f"The app '{registered.display_name}' ({registered.app_id}) is registered and "
                f"consented in your tenant, but the service account was not saved: "
                f"{error.message}",
                fix=(error.fix + " " if error.fix else "")
                + "Then start Set up for me again, and delete the unused app under App "
                "registrations in the Microsoft Entra admin center.",
            )
        ) from error
    account.application_object_id = registered.object_id
    account.certificate_key_id = key.key_id if key else None
    connections.take_authorization(state)
    changes.record(session)
    session.flush()
    return SetupResult(account=account, report=report, app=registered)


def _read_choice(value: Any) -> _Choice:
    if not isinstance(value, dict):
        raise AuthorizationExpired(
            "This sign-in was not started by Set up for me.",
            fix="Start Set up for me again.",
        )
    return _Choice(
        tenant_id=str(value["tenant_id"]),
        features=[Feature(f) for f in value["features"]],
        test_mailbox=str(value["test_mailbox"]),
        name=str(value["name"]),
    )


def _declined(auth_response: dict[str, str]) -> SetupFailed:
    """Microsoft sent the admin back with an error instead of a code: nothing was created."""
    error = ms.classify_aad_error(
        {
            "error": auth_response.get("error"),
            "error_description": auth_response.get("error_description", ""),
        }
    )
    if isinstance(error, ms.ConsentDeclined):
        return SetupConsentDeclined(
            "The permissions Set up for me asked for were declined on Microsoft's consent page, "
            "so nothing was created in your tenant.",
            fix="Start Set up for me again and click Accept. The permissions (register an app "
            "and grant it its permissions) serve this one step: m365sync doesn't keep the "
            "token.",
        )
    if isinstance(error, ms.ConsentMissing):
        return AdminRoleMissing(
            "Microsoft asked for an administrator's approval: the account that signed in may "
            "not consent to registering apps and granting permissions for your organization, "
            "so nothing was created.",
            fix=ADMIN_ROLE_FIX,
        )
    return SetupInterrupted(
        f"Microsoft did not sign the admin in: {error.message} Nothing was created.",
        fix=error.fix or "Start Set up for me again.",
    )


async def _redeem(
    runtime: ConnectionRuntime,
    flow: dict[str, Any],
    auth_response: dict[str, str],
    choice: _Choice,
    consumed: Callable[[SetupFailed], SetupFailed],
) -> tuple[DelegatedAuth, str]:
    """Redeem the code (PKCE): the administrator's token, in memory, for this tenant only,
    and the account Microsoft signed in."""
    client_id, secret = runtime.user_app_credentials()
    auth = DelegatedAuth(
        runtime.settings,
        client_id=client_id,
        tenant_id=choice.tenant_id,
        credential=ClientSecret(secret),
        cache_blob=None,
        on_cache_change=None,
        scopes=list(MANAGEMENT_SCOPES),
    )
    try:
        result = await asyncio.to_thread(auth.finish, flow, auth_response)
    except ms.ConsentMissing as error:
        raise consumed(AdminRoleMissing(error.message, fix=ADMIN_ROLE_FIX)) from error
    except ms.MicrosoftError as error:
        raise consumed(
            SetupInterrupted(
                f"Microsoft did not sign the admin in: {error.message} Nothing was created.",
                fix=error.fix or "Start Set up for me again.",
            )
        ) from error
    claims = result.get("id_token_claims") or {}
    account = str(claims.get("preferred_username") or claims.get("upn") or "")
    if str(claims.get("tid") or "") != choice.tenant_id:
        auth.forget_tokens()
        raise WrongTenant(
            f"{account or 'The account that signed in'} belongs to another Microsoft 365 "
            "tenant than your domains to sync; nothing was created.",
            fix="Start Set up for me again and sign in with an administrator account of your "
            "organization's tenant.",
        )
    return auth, account


async def _register(
    runtime: ConnectionRuntime,
    auth: DelegatedAuth,
    organization: Organization,
    choice: _Choice,
    changes: _Changes,
    consumed: Callable[[SetupFailed], SetupFailed],
    *,
    signed_in_as: str,
) -> tuple[RegisteredApp, ClientCertificate, KeyCredential | None]:
    """Register the app with its certificate, create its service principal and grant each
    permission, with the administrator's token. On a failure, the app (if any) is deleted
    again."""
    settings = runtime.settings
    permissions = permissions_for(choice.features)
    certificate = generate_certificate(
        f"m365sync {organization.slug}", days=settings.certificate_lifetime_days
    )
    certificate_name = f"m365sync {utcnow():%Y-%m-%d}"
    registered: RegisteredApp | None = None
    async with ApplicationsClient(settings, auth, transport=runtime.graph_transport) as entra:
        try:
            graph = await entra.graph_permissions()
            registered = await entra.register_application(
                choice.name,
                graph=graph,
                permissions=permissions,
                certificate=certificate,
                certificate_name=certificate_name,
            )
            changes.add(
                "entra.application.create",
                registered.display_name,
                app_id=registered.app_id,
                object_id=registered.object_id,
                sign_in_audience="single tenant",
                requested_permissions=permissions,
                signed_in_at_microsoft_as=signed_in_as,
            )
            key = next(
                (k for k in registered.key_credentials if k.thumbprint == certificate.thumbprint),
                None,
            )
            changes.add(
                "entra.certificate.add",
                registered.display_name,
                app_id=registered.app_id,
                key_id=key.key_id if key else None,
                thumbprint=certificate.thumbprint,
                expires=certificate_expiry(certificate.certificate_pem).isoformat(),
            )
            principal_id = await entra.create_service_principal(registered.app_id)
            changes.add(
                "entra.service_principal.create",
                registered.display_name,
                app_id=registered.app_id,
                service_principal_id=principal_id,
            )
            for permission in permissions:
                assignment = await entra.grant_application_permission(
                    principal_id, graph, permission
                )
                changes.add(
                    "entra.permission.grant",
                    permission,
                    app_id=registered.app_id,
                    kind="application",
                    assignment_id=assignment,
                )
        except ms.MicrosoftError as error:
            left_behind = await _undo(entra, registered, error, changes)
            raise consumed(_registration_error(error, registered, left_behind)) from error
    return registered, certificate, key


async def _undo(
    entra: ApplicationsClient,
    registered: RegisteredApp | None,
    error: ms.MicrosoftError,
    changes: _Changes,
) -> bool:
    """Delete the half-made app again; True when it is still there."""
    if registered is None:
        return False
    try:
        await entra.delete_application(registered.object_id)
    except ms.MicrosoftError:
        return True
    changes.add(
        "entra.application.delete",
        registered.display_name,
        app_id=registered.app_id,
        object_id=registered.object_id,
        reason=f"Set up for me stopped: {error.message}",
    )
    return False


def _registration_error(
    error: ms.MicrosoftError, registered: RegisteredApp | None, left_behind: bool
) -> SetupFailed:
    if registered is None:
        aftermath = "Nothing was created in your tenant."
    elif left_behind:
        aftermath = (
            f"The app '{registered.display_name}' ({registered.app_id}) m365sync had registered "
            "could not be deleted again: delete it under App registrations in the Microsoft "
            "Entra admin center."
        )
    else:
        aftermath = "The app m365sync had registered was deleted again: nothing is left behind."
    if isinstance(error, ms.DirectoryAccessDenied):
        what = (
            "register the app"
            if registered is None
            else "grant the app its permissions (admin consent)"
        )
        return AdminRoleMissing(
            f"The account that signed in may not {what}. {error.message} {aftermath}",
            fix=ADMIN_ROLE_FIX,
        )
    return SetupInterrupted(
        f"Set up for me stopped: {error.message} {aftermath}",
        fix=(error.fix + " " if error.fix else "") + "Then start Set up for me again.",
    )


def _keep_waiting(
    session: Session,
    runtime: ConnectionRuntime,
    changes: _Changes,
    choice: _Choice,
    registered: RegisteredApp,
    certificate: ClientCertificate,
    key: KeyCredential | None,
    error: ms.MicrosoftError,
) -> ServiceAccount:
    """The registered app as a service account waiting for its test: nothing in Entra ID is
    lost, and running the test later (it reads the stored certificate) finishes it."""
    account = ServiceAccount(
        id=new_id(),
        organization_id=changes.organization_id,
        name=choice.name,
        kind=ConnectionKind.OFFICE365,
        credential_type=CredentialType.CERTIFICATE,
        client_id=registered.app_id,
        tenant_id=choice.tenant_id,
        test_mailbox=choice.test_mailbox,
        certificate_pem=certificate.certificate_pem,
        certificate_thumbprint=certificate.thumbprint,
        application_object_id=registered.object_id,
        certificate_key_id=key.key_id if key else None,
        status=ConnectionStatus.PENDING,
        status_detail=f"Waiting for Microsoft Entra ID: {error.message}",
        status_fix="Run the test again in a few minutes and save the service account.",
    )
    runtime.seal(account, "private_key_sealed", certificate.private_key_pem)
    ConnectionRepository(session).add_service_account(account)
    audit.record(
        session,
        changes.organization_id,
        changes.actor,
        "service_account.add",
        account.name,
        account_id=account.id,
        client_id=account.client_id,
        credential=account.credential_type.value,
        waiting_for_replication=True,
    )
    return account
