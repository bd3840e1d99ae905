"""Every call the dashboard makes into the product's services, in one place.

Routes parse a form, call one function here, and render. Each function forwards to the
package that owns the rule: ``organizations`` (domains, members, roles, CSV import, API
tokens),
``connections`` (service accounts, Run Test, access policy, user connections), ``sync``
(mailbox status, resync, sync settings), ``scheduling`` (its settings), ``audit`` and
``crm`` (activity search, re-exported as is). Every function takes the signed-in member
first (or their organization id) and never reads another organization's rows.

Nothing here queries the database: what a page shows is shaped here (labels, views),
the rules and the rows stay with their package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.audit.models import AuditEvent
from m365sync.connections import access_policy
from m365sync.connections import service as connections
from m365sync.connections.errors import RunTestFailed
from m365sync.connections.models import ConnectionKind, ServiceAccount, UserConnection
from m365sync.connections.run_test import ServiceAccountDraft as TestDraft
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.service import ACTIVITY_KINDS, UPCOMING_DAYS, get_activity, search_activities
from m365sync.errors import NotFound, ValidationFailed
from m365sync.microsoft.auth import ClientSecret
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Domain, DomainProof, Member, Organization, Role
from m365sync.scheduling import service as scheduling
from m365sync.sync import service as sync
from m365sync.sync.models import SyncFeature, SyncSettings, SyncUnit, UnitStage, UnitStatus
from m365sync.sync.schemas import SyncRules
from m365sync.sync.service import HealthSummary
from m365sync.web.auth import set_password
from m365sync.web.auth.service import SignedIn

__all__ = [
    "ACTIVITY_KINDS",
    "UPCOMING_DAYS",
    "NotFound",
    "RunTestFailed",
    "SyncRules",
    "ValidationFailed",
    "get_activity",
    "search_activities",
]


def _organization(db: Session, organization_id: str) -> Organization:
    return organizations.get_organization(db, organization_id)


def _member(db: Session, organization_id: str, member_id: str) -> Member:
    try:
        return organizations.get_member(db, _organization(db, organization_id), member_id)
    except NotFound as error:
        raise NotFound(
            "That member is not in your organization.", fix="Reload the page."
        ) from error


# --- Domains ---------------------------------------------------------------------------


def list_domains(db: Session, organization_id: str) -> list[Domain]:
    return organizations.list_domains(db, _organization(db, organization_id))


PROOF_LABELS = {
    DomainProof.SERVICE_ACCOUNT: "its Microsoft 365 tenant (service account consent)",
    DomainProof.MICROSOFT_SIGN_IN: "its Microsoft 365 tenant (an admin's Microsoft sign-in)",
    DomainProof.DNS_TXT: "its DNS TXT record",
    DomainProof.OPERATOR: "the server's operator",
}


@dataclass(frozen=True)
class DomainView:
    """A row of the Domains page: the domain, whether and how it is proven, and the DNS TXT
    record that would prove it."""

    domain: Domain
    proof: str  # "" while unverified
    txt_host: str
    txt_value: str
    waiting: str  # why its mailboxes wait, while unverified
    waiting_fix: str


def domain_views(db: Session, organization_id: str) -> list[DomainView]:
    views = []
    for domain in list_domains(db, organization_id):
        record = organizations.dns_record(domain)
        waiting, fix = ("", "") if domain.verified else organizations.unverified_reason(domain.name)
        method = domain.verification_method
        views.append(
            DomainView(
                domain=domain,
                proof=PROOF_LABELS.get(method, method.value) if method else "",
                txt_host=record.host,
                txt_value=record.value,
                waiting=waiting,
                waiting_fix=fix,
            )
        )
    return views


def verify_domain_by_dns(
    db: Session, actor: SignedIn, domain_id: str, lookup: organizations.TxtLookup | None
) -> Domain:
    organization = _organization(db, actor.organization_id)
    domain = next(
        (d for d in organizations.list_domains(db, organization) if d.id == domain_id), None
    )
    if domain is None:
        raise NotFound("That domain is not in your organization.", fix="Reload the page.")
    return organizations.verify_domain_by_dns(
        db, organization, domain.name, lookup=lookup, actor=actor.email
    )


def add_domain(db: Session, actor: SignedIn, name: str) -> Domain:
    return organizations.add_domain(
        db, _organization(db, actor.organization_id), name, actor=actor.email
    )


def remove_domain(db: Session, actor: SignedIn, domain_id: str) -> str:
    organization = _organization(db, actor.organization_id)
    domain = next(
        (d for d in organizations.list_domains(db, organization) if d.id == domain_id), None
    )
    if domain is None:
        raise NotFound("That domain is not in your organization.", fix="Reload the page.")
    organizations.remove_domain(db, organization, domain.name, actor=actor.email)
    return domain.name


# --- Members -----------------------------------------------------------------------------


def list_members(db: Session, organization_id: str) -> list[Member]:
    return organizations.list_members(db, _organization(db, organization_id))


def add_member(db: Session, actor: SignedIn, email: str, name: str, role: str) -> Member:
    return organizations.add_member(
        db, _organization(db, actor.organization_id), email, name=name, role=role, actor=actor.email
    )


@dataclass(frozen=True)
class ImportOutcome:
    """What a CSV import did, in words: applied rows, and each rejected row with its fix."""

    summary: str
    rejected: list[str]


def import_members_csv(db: Session, actor: SignedIn, text: str) -> ImportOutcome:
    result = organizations.import_members_csv(
        db, _organization(db, actor.organization_id), text, actor=actor.email
    )
    summary = f"{len(result.created)} added, {len(result.updated)} updated"
    if result.errors:
        summary += f"; {len(result.errors)} rows not imported (fix them and import the file again)"
    return ImportOutcome(summary=summary + ".", rejected=list(result.errors))


def set_member_role(db: Session, actor: SignedIn, member_id: str, role: str) -> Member:
    member = _member(db, actor.organization_id, member_id)
    if member.id == actor.member_id and role != Role.ADMIN:
        raise ValidationFailed(
            "You can't remove your own admin role.", fix="Ask another admin to change your role."
        )
    return organizations.update_member(
        db, _organization(db, actor.organization_id), member, role=role, actor=actor.email
    )


def set_member_password(
    db: Session, actor: SignedIn, member_id: str, password: str, repeated: str
) -> Member:
    """A local sign-in password for a member (their other sessions end)."""
    member = _member(db, actor.organization_id, member_id)
    if password != repeated:
        raise ValidationFailed(
            "The two passwords are different.", fix="Type the same password in both fields."
        )
    set_password(db, member, password)
    audit.record(db, actor.organization_id, actor.email, "member.password_set", member.email)
    return member


# --- API tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTokenView:
    """One API token as the list shows it: never the token, only its first characters."""

    id: str
    name: str
    prefix: str
    admin: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def list_api_tokens(db: Session, organization_id: str) -> list[ApiTokenView]:
    return [
        ApiTokenView(
            id=t.id,
            name=t.name,
            prefix=t.prefix,
            admin=t.member.email,
            created_at=t.created_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )
        for t in organizations.list_api_tokens(db, _organization(db, organization_id))
    ]


def revoke_api_token(db: Session, actor: SignedIn, token_id: str) -> None:
    try:
        organizations.revoke_api_token(
            db, _organization(db, actor.organization_id), token_id, actor=actor.email
        )
    except NotFound as error:
        raise NotFound(
            "That API token is not in your organization.", fix="Reload the page."
        ) from error


# --- Service accounts -----------------------------------------------------------------------


def list_service_accounts(db: Session, organization_id: str) -> list[dict[str, Any]]:
    """What the list shows about each account (``connections.service_account_view``: never a
    secret)."""
    now = datetime.now(UTC)
    return [
        connections.service_account_view(account, now)
        for account in connections.list_service_accounts(db, _organization(db, organization_id))
    ]


def get_service_account(db: Session, organization_id: str, account_id: str) -> ServiceAccount:
    try:
        return connections.get_service_account(db, _organization(db, organization_id), account_id)
    except NotFound as error:
        raise NotFound(
            "That service account is not in your organization.", fix="Reload the page."
        ) from error


def service_account_view(db: Session, organization_id: str, account_id: str) -> dict[str, Any]:
    account = get_service_account(db, organization_id, account_id)
    return connections.service_account_view(account, datetime.now(UTC))


def user_connection(db: Session, organization_id: str, member_id: str) -> UserConnection | None:
    member = _member(db, organization_id, member_id)
    return connections.get_user_connection(db, _organization(db, organization_id), member)


# --- Audit log -----------------------------------------------------------------------------


def audit_events(db: Session, organization_id: str, limit: int = 200) -> list[AuditEvent]:
    return audit.list_events(db, organization_id, limit)


# --- Run Test, save, edit, rotate secret, remove (connections service) ------------------------


@dataclass(frozen=True)
class ServiceAccountDraft:
    """What the Add/Edit panel submitted. The secret stays in memory for this request only."""

    name: str
    client_id: str
    client_secret: str
    test_mailbox: str
    secret_expires_on: str = ""
    tenant_id: str = ""


@dataclass(frozen=True)
class CheckView:
    title: str
    outcome: str  # "passed" | "failed" | "skipped" | "warning"
    explanation: str
    fix: str = ""


def check_views(report: Any) -> list[CheckView]:
    """Run Test's checks as the panel shows them."""
    return [
        CheckView(title=c.title, outcome=str(c.outcome), explanation=c.message, fix=c.fix or "")
        for c in report.checks
    ]


def _expiry(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as error:
        raise ValidationFailed(
            "The secret's expiry date is not a date.",
            fix="Pick the date shown in the Expires column of Certificates & secrets.",
        ) from error


async def run_service_account_test(
    db: Session, runtime: ConnectionRuntime, actor: SignedIn, draft: ServiceAccountDraft
) -> list[CheckView]:
    missing = [
        label
        for label, value in (
            ("Client ID", draft.client_id),
            ("Client Secret Value", draft.client_secret),
            ("Test Account", draft.test_mailbox),
        )
        if not value
    ]
    if missing:
        raise ValidationFailed(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed to run "
            "the test.",
            fix="Fill in the empty fields, then click Run Test again.",
        )
    report = await connections.test_draft(
        db,
        runtime,
        _organization(db, actor.organization_id),
        TestDraft(
            client_id=draft.client_id,
            credential=ClientSecret(draft.client_secret),
            tenant_id=draft.tenant_id or None,
        ),
        draft.test_mailbox,
    )
    return check_views(report)


async def save_service_account(
    db: Session,
    runtime: ConnectionRuntime,
    actor: SignedIn,
    draft: ServiceAccountDraft,
    *,
    accept_partial: bool,
) -> ServiceAccount:
    account: ServiceAccount
    account, _report = await connections.add_service_account(
        db,
        runtime,
        _organization(db, actor.organization_id),
        name=draft.name,
        client_id=draft.client_id,
        test_mailbox=draft.test_mailbox,
        secret=draft.client_secret or None,
        tenant_id=draft.tenant_id or None,
        secret_expires_at=_expiry(draft.secret_expires_on),
        partial=accept_partial,
        actor=actor.email,
    )
    return account


async def edit_service_account(
    db: Session,
    runtime: ConnectionRuntime,
    actor: SignedIn,
    account_id: str,
    *,
    name: str,
    test_mailbox: str,
    accept_partial: bool,
) -> list[CheckView]:
    """Rename, change the test mailbox, and test and save again with the stored
    credentials. An Exchange account has only its name to change."""
    organization = _organization(db, actor.organization_id)
    account = get_service_account(db, actor.organization_id, account_id)
    if not name.strip():
        raise ValidationFailed("A service account needs a name.", fix="Enter a name.")
    if account.kind == ConnectionKind.EXCHANGE:
        connections.rename_service_account(db, organization, account, name, actor=actor.email)
        return []
    if not test_mailbox.strip():
        raise ValidationFailed(
            "Test Account is needed.", fix="Enter a mailbox in your domains; the test only reads."
        )
    report = await connections.retest_service_account(
        db,
        runtime,
        organization,
        account,
        test_mailbox=test_mailbox,
        partial=accept_partial,
        save=True,
        actor=actor.email,
    )
    connections.rename_service_account(db, organization, account, name, actor=actor.email)
    return check_views(report)


async def rotate_secret(
    db: Session,
    runtime: ConnectionRuntime,
    actor: SignedIn,
    account_id: str,
    *,
    secret: str,
    secret_expires_on: str,
    accept_partial: bool,
) -> list[CheckView]:
    """A new client secret, tested before it replaces the old one."""
    account = get_service_account(db, actor.organization_id, account_id)
    if account.kind != ConnectionKind.OFFICE365:
        raise ValidationFailed(
            "Only Office 365 service accounts have a client secret.",
            fix="For an Exchange account, remove it and add it again with the new password.",
        )
    if not secret.strip():
        raise ValidationFailed(
            "Enter the new Client Secret Value.",
            fix="Certificates & secrets → New client secret, then copy its Value column.",
        )
    report = await connections.replace_secret(
        db,
        runtime,
        _organization(db, actor.organization_id),
        account,
        secret=secret.strip(),
        secret_expires_at=_expiry(secret_expires_on),
        partial=accept_partial,
        actor=actor.email,
    )
    return check_views(report)


@dataclass(frozen=True)
class ExchangeDraft:
    """What the "Connect using Exchange" panel submitted (the password stays in memory)."""

    name: str
    server_url: str
    username: str
    password: str


def save_exchange_service_account(
    db: Session, runtime: ConnectionRuntime, actor: SignedIn, draft: ExchangeDraft
) -> ServiceAccount:
    missing = [
        label
        for label, value in (
            ("Server URL", draft.server_url),
            ("Username", draft.username),
            ("Password", draft.password),
        )
        if not value
    ]
    if missing:
        raise ValidationFailed(
            f"{', '.join(missing)}: required.",
            fix="Fill in the empty fields (the impersonation account's username and password).",
        )
    return connections.add_exchange_service_account(
        db,
        runtime,
        _organization(db, actor.organization_id),
        name=draft.name,
        server_url=draft.server_url,
        username=draft.username,
        password=draft.password,
        actor=actor.email,
    )


def remove_service_account(
    db: Session, runtime: ConnectionRuntime, actor: SignedIn, account_id: str
) -> str:
    account = get_service_account(db, actor.organization_id, account_id)
    connections.remove_service_account(
        db, runtime, _organization(db, actor.organization_id), account, actor=actor.email
    )
    return account.name


# --- Limit access (Application Access Policy / RBAC for Applications) ---------------------------

REACH_LABELS = {
    access_policy.Reach.REACHABLE: "Reachable",
    access_policy.Reach.BLOCKED_BY_POLICY: "Blocked by policy",
    access_policy.Reach.NOT_ENABLED: "Unlicensed or on-premises",
    access_policy.Reach.NOT_FOUND: "Not found",
    access_policy.Reach.MAILBOX_FULL: "Mailbox full",
    access_policy.Reach.NOT_VERIFIED: "Not verified",
    access_policy.Reach.ERROR: "Error",
}


async def access_policy_commands(
    db: Session,
    runtime: ConnectionRuntime,
    actor: SignedIn,
    account_id: str,
    group: str,
) -> access_policy.PolicyCommands:
    account = get_service_account(db, actor.organization_id, account_id)
    if not group.strip():
        raise ValidationFailed(
            "Enter the address of the mail-enabled security group.",
            fix="Create one in the Exchange admin center (Recipients → Groups → Mail-enabled "
            "security), add the mailboxes to sync, and give its address, e.g. "
            "crm-sync@contoso.com.",
        )
    principal = (
        await access_policy.service_principal_id(runtime, account)
        if account.enabled_features
        else None
    )
    return access_policy.policy_commands(
        account, group.strip().lower(), service_principal_id=principal
    )


@dataclass(frozen=True)
class ReachRow:
    email: str
    reach: str
    label: str
    message: str
    fix: str


async def mailbox_reachability(
    db: Session, runtime: ConnectionRuntime, actor: SignedIn, account_id: str
) -> list[ReachRow]:
    account = get_service_account(db, actor.organization_id, account_id)
    results = await access_policy.reachability(
        db, runtime, _organization(db, actor.organization_id), account
    )
    return [
        ReachRow(r.email, r.reach.value, REACH_LABELS.get(r.reach, r.reach.value), r.message, r.fix)
        for r in results
    ]


# --- Mailbox sync status (sync engine) ----------------------------------------------------------

FEATURE_NAMES = {
    "email": "Email Sync",
    "calendar": "Calendar Sync",
    "scheduling": "Calendar Scheduling",
    "tasks": "Task Sync",
}
STAGE_NAMES = {
    "idle": "Idle",
    "queued": "Queued",
    "initial_sync": "First sync",
    "incremental": "Incremental",
    "pushing": "Writing to Outlook",
}


@dataclass(frozen=True)
class UnitView:
    """One mailbox feature's sync, in words."""

    feature: str
    feature_name: str
    status: str
    stage: str
    last_sync: datetime | None
    synced: str
    last_error: str
    last_error_fix: str


def _unit_view(unit: SyncUnit) -> UnitView:
    counts = unit.counts or {}
    items, logged = int(counts.get("total_items", 0)), int(counts.get("total_logged", 0))
    synced = f"{items} items, {logged} logged" if counts else "—"
    feature = SyncFeature(unit.feature).value
    return UnitView(
        feature=feature,
        feature_name=FEATURE_NAMES.get(feature, feature),
        status=UnitStatus(unit.status).value,
        stage=STAGE_NAMES.get(UnitStage(unit.stage).value, str(unit.stage)),
        last_sync=unit.last_success_at,
        synced=synced,
        last_error=unit.last_error,
        last_error_fix=unit.last_error_fix,
    )


@dataclass
class MailboxRow:
    member: Member
    units: list[UnitView]


def mailbox_rows(db: Session, organization_id: str) -> tuple[list[MailboxRow], HealthSummary]:
    """Per member, each feature's sync, and the organization's health."""
    members = list_members(db, organization_id)
    units = sync.mailbox_units(db, organization_id)
    by_member: dict[str, list[UnitView]] = {}
    for unit in units:
        by_member.setdefault(unit.member_id, []).append(_unit_view(unit))
    rows = [MailboxRow(member=m, units=by_member.get(m.id, [])) for m in members]
    return rows, sync.health(units)


def request_resync(db: Session, actor: SignedIn, member_id: str, feature: str) -> str:
    """Returns the unit's id so the route can wake the workers once the request commits."""
    member = _member(db, actor.organization_id, member_id)
    return sync.request_resync(db, member, feature, actor=actor.email)


@dataclass(frozen=True)
class SyncSettingsView:
    sync: SyncSettings
    scheduling_create_leads: bool


def sync_settings(db: Session, organization_id: str) -> SyncSettingsView:
    return SyncSettingsView(
        sync=sync.sync_settings(db, organization_id),
        scheduling_create_leads=scheduling.creates_leads(db, organization_id),
    )


def update_sync_settings(
    db: Session, actor: SignedIn, rules: SyncRules, *, scheduling_create_leads: bool
) -> None:
    """The Sync settings page saves the sync engine's rules and scheduling's "create a lead
    for an unknown invitee" together; nothing changes if the rules are refused."""
    sync.update_sync_settings(db, actor.organization_id, rules, actor=actor.email)
    scheduling.set_creates_leads(db, actor.organization_id, scheduling_create_leads)


# --- The user's own connection ----------------------------------------------------------------


@dataclass
class FeatureView:
    key: str
    name: str
    enabled: bool
    via: str  # "your Office 365 connection" | "the service account" | ""
    why_not: str = ""


@dataclass
class MyConnectionsView:
    member: Member
    connection: UserConnection | None
    connection_view: dict[str, Any] | None
    service_accounts: list[ServiceAccount]
    features: list[FeatureView]
    sync_units: list[UnitView]
    migration: str | None


def my_connections(db: Session, me: SignedIn) -> MyConnectionsView:
    """What the user portal shows: the member's connection (``connections``' view of it),
    the service accounts covering their domain, the features each enables, their sync."""
    organization = _organization(db, me.organization_id)
    member = _member(db, me.organization_id, me.member_id)
    connection = connections.get_user_connection(db, organization, member)
    covered = member.domain in organizations.verified_domain_names(db, organization.id)
    accounts = [
        a
        for a in connections.list_service_accounts(db, organization)
        if covered and a.kind == ConnectionKind.OFFICE365 and a.status in ("active", "partial")
    ]
    view = connections.user_connection_view(connection, bool(accounts)) if connection else None
    own = (
        set(view["features"])
        if view and view["kind"] == "office365" and view["status"] == "active"
        else set()
    )
    features = []
    for key, name in FEATURE_NAMES.items():
        by_account = key != "tasks" and any(key in a.enabled_features for a in accounts)
        by_own = key in own
        why_not = ""
        if not (by_account or by_own):
            why_not = (
                "Task Sync works only through your own Office 365 connection: "
                "click Connect your Office 365."
                if key == "tasks"
                else "Connect your Office 365, or ask your admin to add a service account."
            )
        features.append(
            FeatureView(
                key=key,
                name=name,
                enabled=by_account or by_own,
                via="the service account"
                if by_account
                else ("your Office 365 connection" if by_own else ""),
                why_not=why_not,
            )
        )
    units = [_unit_view(u) for u in sync.mailbox_units(db, organization.id, [member.id])]
    return MyConnectionsView(
        member=member,
        connection=connection,
        connection_view=view,
        service_accounts=accounts,
        features=features,
        sync_units=units,
        migration=view["migration"] if view else None,
    )


async def begin_office365_connection(
    db: Session, runtime: ConnectionRuntime, me: SignedIn, redirect_uri: str
) -> str:
    """The Microsoft sign-in URL that starts "Connect your Office 365"."""
    return await connections.start_office365_connection(
        db,
        runtime,
        _organization(db, me.organization_id),
        _member(db, me.organization_id, me.member_id),
        redirect=redirect_uri,
    )


async def complete_office365_connection(
    db: Session, runtime: ConnectionRuntime, me: SignedIn, query: dict[str, str]
) -> None:
    connection = await connections.complete_office365_connection(db, runtime, query)
    if connection.member_id != me.member_id:
        raise NotFound(
            "This sign-in was started by someone else.",
            fix="Start again with Connect your Office 365.",
        )


def disconnect(db: Session, runtime: ConnectionRuntime, me: SignedIn) -> None:
    if not connections.disconnect(
        db,
        runtime,
        _organization(db, me.organization_id),
        _member(db, me.organization_id, me.member_id),
        actor=me.email,
    ):
        raise NotFound("You have no connection to disconnect.", fix="Reload the page.")
