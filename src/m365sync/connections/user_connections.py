"""User connections: a member's own mailbox connection. "Connect your Office 365" (Microsoft
sign-in with PKCE, checked against the tenant of the member's domain), a legacy on-premises
Exchange connection, token refresh, the "reconnect needed" notice, disconnect, and what
people may see of one.

Callers pass a ``Session`` and commit at their boundary. Tokens and passwords go in sealed
and never come out of this module except to MSAL.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections import service_accounts
from m365sync.connections._ews import ews_server_url
from m365sync.connections.errors import (
    AuthorizationExpired,
    DomainNotVerified,
    MemberNotSynced,
    RunTestFailed,
    WrongTenant,
)
from m365sync.connections.exchange_run_test import ExchangeDraft, run_exchange_test
from m365sync.connections.features import delegated_feature_matrix
from m365sync.connections.models import (
    AuthorizationRequest,
    ConnectionKind,
    ConnectionStatus,
    ServiceAccount,
    UserConnection,
)
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.run_test import TestReport
from m365sync.connections.runtime import ConnectionRuntime, mark_needs_reconnect
from m365sync.db.base import new_id, utcnow
from m365sync.errors import NotFound
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import discover_tenant
from m365sync.microsoft.ews import MIGRATION_STEPS, is_exchange_online
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Domain, DomainProof, Member, Organization, Role
from m365sync.organizations.repository import OrganizationRepository

AUTHORIZATION_LIFETIME = timedelta(minutes=15)


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
    member_id: str | None = None,
) -> UserConnection:
    """The redirect back from Microsoft: check ``state``, redeem the code (PKCE), check the
    account's tenant, store the sealed token cache and what was granted.

    The token's tenant must be the tenant the member's domain is verified in (or, before Entra
    has vouched for the domain, the tenant Entra resolves it to); otherwise nothing is stored.
    When an admin of the organization connects, Entra's answer proves the organization's
    domains resolved to that tenant; for other members it only records the tenant of a domain
    the organization already proved by DNS or the operator's word. With ``organization_id`` or
    ``member_id``, only a sign-in that organization or member started is accepted."""
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
    if member_id is not None and request.member_id != member_id:
        raise NotFound(
            "This sign-in was started by someone else.",
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
    if "m365sync_setup" in flow:  # an admin's Set up for me sign-in: never a mailbox connection
        raise AuthorizationExpired(
            "This sign-in was started by Set up for me, not by Connect your Office 365.",
            fix="Start again with Connect your Office 365.",
        )
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
    runtime.seal(connection, "token_cache_sealed", auth.serialize())
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


# -- Exchange (EWS, on premises) ----------------------------------------------------------------


async def connect_exchange(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    member: Member,
    *,
    server_url: str,
    username: str,
    password: str,
) -> UserConnection:
    """A member's legacy Exchange connection, for on-premises servers only: Run Test for
    Exchange (``test_exchange_connection``) first, and nothing is saved (an earlier
    connection stays) while one of its checks fails."""
    url = ews_server_url(server_url)
    report = await test_exchange_connection(
        runtime, member, server_url=url, username=username, password=password
    )
    if not report.ok:
        raise RunTestFailed(report, can_save_partial=False)
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
        username=username.strip() or member.email,
        status=ConnectionStatus.ACTIVE,
        connected_at=utcnow(),
    )
    runtime.seal(connection, "password_sealed", password)
    repo.add_user_connection(connection)
    audit.record(session, organization.id, member.email, "user_connection.exchange", member.email)
    return connection


async def test_exchange_connection(
    runtime: ConnectionRuntime,
    member: Member,
    *,
    server_url: str,
    username: str,
    password: str,
) -> TestReport:
    """Run Test for a member's own Exchange connection as entered (their own mailbox, no
    impersonation), storing nothing. An empty ``server_url`` finds the server by
    Autodiscover from the member's address."""
    draft = ExchangeDraft(
        server_url, username or member.email, password, member.email, impersonation=False
    )
    return await run_exchange_test(runtime.settings, draft)


async def retest_exchange_connection(
    session: Session, runtime: ConnectionRuntime, organization: Organization, member: Member
) -> TestReport:
    """Run Test with the member's stored Exchange connection; its status takes the outcome."""
    connection = ConnectionRepository(session).user_connection(organization.id, member.id)
    if connection is None or connection.kind != ConnectionKind.EXCHANGE:
        raise NotFound(
            f"{member.email} has no Exchange connection.",
            fix="Connect the mailbox with Exchange first.",
        )
    report = await test_exchange_connection(
        runtime,
        member,
        server_url=connection.ews_url or "",
        username=connection.username or "",
        password=runtime.open(connection, "password_sealed") or "",
    )
    if report.ok:
        connection.status = ConnectionStatus.ACTIVE
        connection.status_detail, connection.status_fix = "", ""
    else:
        failure = report.required_failures()[0]
        connection.status = (
            ConnectionStatus.INVALID_CREDENTIALS
            if failure.key == "sign_in"
            else ConnectionStatus.ERROR
        )
        connection.status_detail = f"{failure.title}: {failure.message}"
        connection.status_fix = failure.fix
    session.flush()
    audit.record(
        session, organization.id, member.email, "user_connection.test", member.email, ok=report.ok
    )
    return report


def migration_guidance(connection: UserConnection | ServiceAccount) -> str | None:
    """For a legacy Exchange connection that points at Exchange Online: how to switch."""
    if (
        connection.kind == ConnectionKind.EXCHANGE
        and connection.ews_url
        and is_exchange_online(connection.ews_url)
    ):
        return MIGRATION_STEPS
    return None


# -- who is connected how --------------------------------------------------------------------


@dataclass(frozen=True)
class MemberConnections:
    """How one member's mailbox is connected: whether it is in a verified domain to sync,
    the service accounts covering it, and the member's own connection (if any)."""

    member: Member
    synced_domain: bool
    service_accounts: list[ServiceAccount]
    connection: UserConnection | None


def connection_overview(session: Session, organization: Organization) -> list[MemberConnections]:
    """Every member, with what serves their mailbox: the service accounts covering their
    domain (``service_accounts.covers``, the rule the sync engine picks them by) and their
    own connection."""
    domains = {d.name: d for d in orgs.list_domains(session, organization) if d.verified}
    accounts = service_accounts.list_service_accounts(session, organization)
    connections = {c.member_id: c for c in list_user_connections(session, organization)}
    overview = []
    for member in orgs.list_members(session, organization):
        domain = domains.get(member.domain)
        covering = [account for account in accounts if service_accounts.covers(account, domain)]
        overview.append(
            MemberConnections(member, domain is not None, covering, connections.get(member.id))
        )
    return overview
