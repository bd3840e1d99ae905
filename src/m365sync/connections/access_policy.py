"""Limiting a service account to some mailboxes, and reporting which ones it can reach.

Exchange Online offers two ways, both scoped to a mail-enabled security group: an
Application Access Policy (``New-ApplicationAccessPolicy -AccessRight RestrictAccess``)
and its successor, RBAC for Applications (a management scope plus role assignments to the
app's service principal). ``policy_commands`` writes the exact Exchange Online PowerShell
for both; ``reachability`` probes every synced member's mailbox read-only and reports
reachable / blocked by policy / unlicensed or on-premises / not found.
"""

from __future__ import annotations

import asyncio
import enum
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from m365sync.connections.errors import NoConnection
from m365sync.connections.models import ConnectionKind, Feature, ServiceAccount
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.errors import ValidationFailed
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import read_claims
from m365sync.microsoft.graph import GraphClient, user_path
from m365sync.organizations.models import Organization
from m365sync.organizations.repository import OrganizationRepository

GUID_RE = re.compile(r"^[0-9a-fA-F-]{36}$")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")

RBAC_ROLES = {
    Feature.EMAIL: ("Application Mail.Read", "Application Mail.ReadWrite"),
    Feature.CALENDAR: ("Application Calendars.Read", "Application Calendars.ReadWrite"),
}


def _quote(value: str) -> str:
    """A PowerShell single-quoted string."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class PolicyCommands:
    application_access_policy: str
    rbac_for_applications: str
    notes: list[str]


def policy_commands(
    account: ServiceAccount,
    group: str,
    *,
    admin_upn: str | None = None,
    test_mailbox: str | None = None,
    service_principal_id: str | None = None,
    features: list[Feature] | None = None,
) -> PolicyCommands:
    """Exchange Online PowerShell restricting ``account`` to the members of ``group``
    (the mail-enabled security group's address)."""
    if not account.client_id or not GUID_RE.match(account.client_id):
        raise ValidationFailed(
            "The service account has no Application (client) ID yet.",
            fix="Save the service account first.",
        )
    if not ADDRESS_RE.match(group):
        raise ValidationFailed(
            f"'{group}' is not the email address of a mail-enabled security group.",
            fix="Create one in the Exchange admin center (Recipients → Groups → Mail-enabled "
            "security) and give its address, e.g. crm-sync@contoso.com.",
        )
    app_id = account.client_id
    probe = test_mailbox or account.test_mailbox or group
    connect = (
        f"Connect-ExchangeOnline -UserPrincipalName {_quote(admin_upn)}"
        if admin_upn
        else "Connect-ExchangeOnline"
    )
    aap = "\n".join(
        [
            "# Exchange Online PowerShell (Install-Module ExchangeOnlineManagement), as an "
            "Exchange admin:",
            connect,
            f"New-ApplicationAccessPolicy -AppId {_quote(app_id)} -PolicyScopeGroupId "
            f"{_quote(group)} "
            f"-AccessRight RestrictAccess -Description "
            f"{_quote(f'Restrict {account.name} to members of {group}')}",
            "# Check: 'Granted' for a member of the group, 'Denied' for anyone else",
            f"Test-ApplicationAccessPolicy -Identity {_quote(probe)} -AppId {_quote(app_id)}",
        ]
    )
    wanted = features or [
        Feature(f) for f in account.enabled_features if f in ("email", "calendar")
    ]
    roles = [
        role
        for feature in (wanted or [Feature.EMAIL, Feature.CALENDAR])
        for role in RBAC_ROLES.get(feature, ())
    ]
    scope_name = f"{account.name} mailboxes"
    sp_object_id = service_principal_id or "<Object ID of the app in Enterprise applications>"
    rbac_lines = [
        "# Exchange Online PowerShell, as an Exchange admin:",
        connect,
        "# 1. Point Exchange at the app's service principal (Enterprise applications → the app → "
        "Object ID)",
        f"New-ServicePrincipal -AppId {_quote(app_id)} -ObjectId {_quote(sp_object_id)} "
        f"-DisplayName {_quote(account.name)}",
        "# 2. A management scope holding the group's members",
        f"$group = Get-Recipient -Identity {_quote(group)}",
        f"New-ManagementScope -Name {_quote(scope_name)} "
        "-RecipientRestrictionFilter \"MemberOfGroup -eq '$($group.DistinguishedName)'\"",
        "# 3. The app's roles, limited to that scope",
        *[
            f"New-ManagementRoleAssignment -App {_quote(app_id)} -Role {_quote(role)} "
            f"-CustomResourceScope {_quote(scope_name)}"
            for role in roles
        ],
        "# Check: InScope True for a member of the group",
        f"Test-ServicePrincipalAuthorization -Identity {_quote(app_id)} -Resource {_quote(probe)}",
    ]
    notes = [
        "Changes take effect after up to an hour (Exchange caches permissions); run the "
        "reachability "
        "report again then.",
        "With RBAC for Applications, remove the unscoped Mail.* and Calendars.* application "
        "permissions "
        "from the app registration in Entra ID: they would otherwise still grant every mailbox.",
        "Application Access Policies are being replaced by RBAC for Applications; prefer RBAC for "
        "new setups.",
    ]
    return PolicyCommands(aap, "\n".join(rbac_lines), notes)


class Reach(enum.StrEnum):
    REACHABLE = "reachable"
    BLOCKED_BY_POLICY = "blocked_by_policy"
    NOT_ENABLED = "mailbox_not_enabled"  # unlicensed, soft-deleted, on-premises
    NOT_FOUND = "not_found"
    MAILBOX_FULL = "mailbox_full"
    NOT_VERIFIED = "not_verified"  # throttled or transient: try again
    ERROR = "error"


@dataclass
class MailboxReach:
    email: str
    reach: Reach
    message: str
    fix: str = ""


async def reachability(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    account: ServiceAccount,
) -> list[MailboxReach]:
    """For each member in the domains to sync: can this service account read their mailbox?
    Read-only (one message id or one event id)."""
    if account.kind != ConnectionKind.OFFICE365 or not account.enabled_features:
        raise NoConnection(
            f"The service account '{account.name}' has no working Office 365 features to check.",
            fix="Run Test and save it first.",
        )
    repo = OrganizationRepository(session)
    domains = {d.name for d in repo.domains(organization.id)}
    members = [m for m in repo.members(organization.id) if m.domain in domains]
    auth = await asyncio.to_thread(runtime.app_only_auth, account)  # MSAL may discover the tenant
    params: dict[str, str | int] = {"$top": 1, "$select": "id"}
    if "email" in account.enabled_features:
        suffix = "/mailFolders/inbox/messages"
    else:
        suffix = "/calendar/events"
    limit = asyncio.Semaphore(8)

    async def probe(graph: GraphClient, email: str) -> MailboxReach:
        async with limit:
            try:
                await graph.get_json(user_path(email) + suffix, params=params)
            except ms.AccessDeniedByPolicy as error:
                return MailboxReach(email, Reach.BLOCKED_BY_POLICY, error.message, error.fix or "")
            except ms.MailboxNotEnabled as error:
                return MailboxReach(email, Reach.NOT_ENABLED, error.message, error.fix or "")
            except ms.UserNotFound as error:
                return MailboxReach(email, Reach.NOT_FOUND, error.message, error.fix or "")
            except ms.QuotaExceeded as error:
                return MailboxReach(email, Reach.MAILBOX_FULL, error.message, error.fix or "")
            except (ms.Throttled, ms.Transient) as error:
                return MailboxReach(
                    email, Reach.NOT_VERIFIED, error.message, "Run the report again later."
                )
            except ms.MicrosoftError as error:
                return MailboxReach(email, Reach.ERROR, error.message, error.fix or "")
            return MailboxReach(
                email, Reach.REACHABLE, "The service account can read this mailbox."
            )

    async with GraphClient(runtime.settings, auth, transport=runtime.graph_transport) as graph:
        results = await asyncio.gather(*(probe(graph, m.email) for m in members))
    runtime.save_token_caches(session)
    return list(results)


async def service_principal_id(runtime: ConnectionRuntime, account: ServiceAccount) -> str | None:
    """The app's service principal object id in the tenant (the ``oid`` of its token)."""
    try:
        auth = await asyncio.to_thread(runtime.app_only_auth, account)  # may discover the tenant
        token = await asyncio.to_thread(auth.acquire)
    except ms.MicrosoftError:
        return None
    return str(read_claims(token.token).get("oid") or "") or None


async def access_policy_commands(
    runtime: ConnectionRuntime,
    account: ServiceAccount,
    group: str,
    *,
    admin_upn: str | None = None,
) -> PolicyCommands:
    """``policy_commands`` for the group's address, with the app's service principal looked
    up in the tenant when the account works (otherwise the commands say where to find it)."""
    group = group.strip().lower()
    if not group:
        raise ValidationFailed(
            "The address of the mail-enabled security group is missing.",
            fix="Create one in the Exchange admin center (Recipients → Groups → Mail-enabled "
            "security), add the mailboxes to sync, and give its address, e.g. "
            "crm-sync@contoso.com.",
        )
    principal = await service_principal_id(runtime, account) if account.enabled_features else None
    return policy_commands(account, group, admin_upn=admin_upn, service_principal_id=principal)
