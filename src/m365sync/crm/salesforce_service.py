"""Salesforce as the organization's CRM: connecting (JWT bearer, client credentials, or
Connect Salesforce with PKCE), Run Test for Salesforce, disconnecting, members ↔ Salesforce
users, the API share, and the overview doors show.

Service functions take the caller's session (the request or job boundary commits), the
secret box that seals the connection's secrets, and the settings. The writer
(``crm.salesforce_writer.drain_salesforce``) and the mirror
(``crm.salesforce_mirror.refresh_salesforce_people``) are the worker-side services.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping
from datetime import timedelta

import requests
from sqlalchemy.orm import Session

from m365sync.crm.errors import (
    SalesforceNotConnected,
    SalesforceSignInUnknown,
    SalesforceUserNotFound,
)
from m365sync.crm.models import (
    SalesforceAuthKind,
    SalesforceConnection,
    SalesforceStatus,
    UserMatch,
)
from m365sync.crm.salesforce_access import (
    ConnectionSecrets,
    open_client,
    remember,
    seal,
    unseal,
)
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_run_test import FEATURES, run_salesforce_checks
from m365sync.crm.salesforce_schemas import (
    BacklogItem,
    MemberUser,
    SalesforceCheck,
    SalesforceOverview,
    SalesforceTestReport,
)
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.errors import ValidationFailed
from m365sync.salesforce import (
    AuthorizationRequest,
    ConsumerSecret,
    JwtSigningKey,
    SalesforceClient,
    SalesforceError,
    WebServerFlow,
    normalize_login_url,
    revoke,
)
from m365sync.settings import Settings

__all__ = [
    "begin_connect_salesforce",
    "complete_connect_salesforce",
    "connect_with_client_credentials",
    "connect_with_jwt",
    "disconnect_salesforce",
    "forget_salesforce_org",
    "link_member_to_salesforce_user",
    "match_salesforce_users",
    "retry_parked_salesforce_records",
    "run_salesforce_test",
    "salesforce_backlog",
    "salesforce_members",
    "salesforce_overview",
    "salesforce_record_links",
    "salesforce_record_url",
    "set_salesforce_api_share",
    "unlink_member_from_salesforce_user",
]

CALLBACK_PATH = "/salesforce/callback"
PENDING_SIGN_IN = timedelta(minutes=30)
USER_FIELDS = ("Id", "Username", "Name", "Email", "IsActive")


# -- connecting -----------------------------------------------------------------------------


def _required(value: str | None, what: str, fix: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(f"The {what} is missing.", fix=fix)
    return text


def _consumer_key(value: str | None) -> str:
    return _required(
        value,
        "connected app's consumer key",
        "Copy the Consumer Key from Setup → App Manager → your connected app ▾ View → Manage "
        "Consumer Details.",
    )


def _consumer_secret(value: str | None) -> str:
    return _required(
        value,
        "connected app's consumer secret",
        "Copy the Consumer Secret from Setup → App Manager → your connected app ▾ View → "
        "Manage Consumer Details.",
    )


def connect_with_jwt(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    consumer_key: str,
    username: str,
    private_key_pem: str,
    certificate_pem: str | None = None,
    login_url: str | None = None,
    features: Collection[str] = FEATURES,
    http: requests.Session | None = None,
) -> SalesforceTestReport:
    """Connect the organization's Salesforce org server to server: the JWT bearer flow
    signs in as the integration user ``username`` with ``private_key_pem`` (the connected
    app holds its certificate). Runs Run Test for Salesforce; saved only if the sign-in
    works (the report says what else to fix)."""
    key = JwtSigningKey(private_key_pem.strip() + "\n", certificate_pem)
    secrets = ConnectionSecrets(
        organization_id=organization_id,
        auth_kind=SalesforceAuthKind.JWT_BEARER,
        login_url=normalize_login_url(login_url or settings.salesforce_login_url),
        consumer_key=_consumer_key(consumer_key),
        username=_required(
            username,
            "integration user's Salesforce username",
            "Enter the username the integration user signs in to Salesforce with (a "
            "sandbox's usernames end with the sandbox's name).",
        ),
        private_key_pem=key.private_key_pem,
    )
    return _connect(session, box, settings, secrets, certificate_pem, features, http)


def connect_with_client_credentials(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    login_url: str | None = None,
    features: Collection[str] = FEATURES,
    http: requests.Session | None = None,
) -> SalesforceTestReport:
    """Connect with the client credentials flow (the connected app's Run As user; the login
    URL must be the org's My Domain). Saved only if the sign-in works."""
    secrets = ConnectionSecrets(
        organization_id=organization_id,
        auth_kind=SalesforceAuthKind.CLIENT_CREDENTIALS,
        login_url=normalize_login_url(login_url or settings.salesforce_login_url),
        consumer_key=_consumer_key(consumer_key),
        consumer_secret=_consumer_secret(consumer_secret),
    )
    return _connect(session, box, settings, secrets, None, features, http)


def _connect(
    session: Session,
    box: SecretBox,
    settings: Settings,
    secrets: ConnectionSecrets,
    certificate_pem: str | None,
    features: Collection[str],
    http: requests.Session | None,
) -> SalesforceTestReport:
    repo = SalesforceRepository(session, secrets.organization_id)
    row = repo.connection()
    share = row.api_share if row is not None and row.api_share else settings.salesforce_api_share
    with open_client(secrets, settings, http=http, budget=False) as client:
        report = run_salesforce_checks(client, features=features, share=share)
        if not report.signed_in:
            return report
        row = _store(repo, box, secrets, row)
        row.certificate_pem = certificate_pem
        _identify(row, client)
        _apply_report(row, report)
        remember(row, client)
        fresh = row.connected_at is None
        row.connected_at = row.connected_at or utcnow()
        match_members_to_users(repo, row, client)
    if fresh:
        repo.queue_everything()
    session.flush()
    return report


def _store(
    repo: SalesforceRepository,
    box: SecretBox,
    secrets: ConnectionSecrets,
    row: SalesforceConnection | None,
) -> SalesforceConnection:
    """The connection row holding ``secrets`` (sealed), created or replaced."""
    if row is None:
        row = repo.add(
            SalesforceConnection(
                organization_id=secrets.organization_id,
                login_url=secrets.login_url,
                auth_kind=secrets.auth_kind,
                consumer_key=secrets.consumer_key,
            )
        )
    elif row.status == SalesforceStatus.DISCONNECTED:
        row.connected_at = None
    row.login_url = secrets.login_url
    row.auth_kind = secrets.auth_kind
    row.consumer_key = secrets.consumer_key
    row.username = secrets.username
    seal(box, row, "consumer_secret_sealed", secrets.consumer_secret)
    seal(box, row, "private_key_sealed", secrets.private_key_pem)
    seal(box, row, "refresh_token_sealed", secrets.refresh_token)
    row.writer_paused_until = None
    row.writer_pause_reason = ""
    row.updated_at = utcnow()
    return row


def _identify(row: SalesforceConnection, client: SalesforceClient) -> None:
    token = client.token
    row.instance_url = token.instance_url
    row.salesforce_org_id = token.org_id or None
    row.integration_user_id = token.user_id or None


def _apply_report(row: SalesforceConnection, report: SalesforceTestReport) -> None:
    row.test_report = [c.as_json() for c in report.checks]
    row.last_tested_at = utcnow()
    if report.email_target is not None:
        row.email_target = report.email_target
    if report.username:
        row.integration_username = report.username[:320]
    failures = report.failures()
    if not report.signed_in:
        first = failures[0] if failures else None
        row.status = SalesforceStatus.NEEDS_RECONNECT
        row.status_detail = first.message if first else "Salesforce refused to sign in."
        row.status_fix = first.fix if first else ""
    elif failures:
        row.status = SalesforceStatus.NEEDS_SETUP
        row.status_detail = " ".join(f.message for f in failures)
        row.status_fix = " ".join(dict.fromkeys(f.fix for f in failures if f.fix))
    else:
        row.status = SalesforceStatus.ACTIVE
        row.status_detail = ""
        row.status_fix = ""


def begin_connect_salesforce(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    consumer_key: str,
    consumer_secret: str | None = None,
    login_url: str | None = None,
    redirect_uri: str | None = None,
    login_hint: str | None = None,
) -> str:
    """Connect Salesforce: where to send the admin (Salesforce's login page, with PKCE and
    a ``state``). The sign-in started is kept sealed until ``complete_connect_salesforce``;
    a connection that already works is left alone until then."""
    login = normalize_login_url(login_url or settings.salesforce_login_url)
    callback = redirect_uri or settings.public_url.rstrip("/") + CALLBACK_PATH
    key = _consumer_key(consumer_key)
    secret = (consumer_secret or "").strip() or None
    flow = WebServerFlow(
        settings,
        consumer_key=key,
        consumer_secret=ConsumerSecret(secret) if secret else None,
        redirect_uri=callback,
        login_url=login,
    )
    started = flow.start(login_hint=login_hint)
    repo = SalesforceRepository(session, organization_id)
    row = repo.connection()
    if row is None:
        row = repo.add(
            SalesforceConnection(
                organization_id=organization_id,
                login_url=login,
                auth_kind=SalesforceAuthKind.WEB_SERVER,
                consumer_key=key,
                status=SalesforceStatus.PENDING,
            )
        )
    row.pending_state = started.state
    row.pending_since = utcnow()
    seal(
        box,
        row,
        "pending_flow_sealed",
        json.dumps(
            {
                "verifier": started.code_verifier,
                "consumer_key": key,
                "consumer_secret": secret,
                "login_url": login,
                "redirect_uri": callback,
            }
        ),
    )
    session.flush()
    return started.url


def complete_connect_salesforce(
    session: Session,
    box: SecretBox,
    settings: Settings,
    callback: Mapping[str, str],
    *,
    features: Collection[str] = FEATURES,
    http: requests.Session | None = None,
) -> tuple[str, SalesforceTestReport]:
    """Salesforce sent the admin back (``callback``: the query parameters): redeem the code
    for a refresh token, save the connection, Run Test. Returns the organization's id and
    the report. A refusal (the admin denied access, a code used twice...) is raised in
    words, and the working connection, if any, stays as it was."""
    row = SalesforceRepository.connection_by_state(session, str(callback.get("state") or ""))
    if row is None or row.pending_since is None:
        raise SalesforceSignInUnknown()
    pending = json.loads(unseal(box, row, "pending_flow_sealed") or "{}")
    expired = utcnow() - row.pending_since > PENDING_SIGN_IN
    row.pending_state = None
    row.pending_since = None
    seal(box, row, "pending_flow_sealed", None)
    if row.status == SalesforceStatus.PENDING and row.connected_at is None:
        row.status_detail = "Connect Salesforce did not complete."
    session.flush()
    if expired:
        raise SalesforceSignInUnknown()
    secret = pending.get("consumer_secret")
    flow = WebServerFlow(
        settings,
        consumer_key=pending["consumer_key"],
        consumer_secret=ConsumerSecret(secret) if secret else None,
        redirect_uri=pending["redirect_uri"],
        login_url=pending["login_url"],
        http=http,
    )
    request = AuthorizationRequest(
        url="",
        state=str(callback.get("state")),
        redirect_uri=pending["redirect_uri"],
        code_verifier=pending["verifier"],
    )
    token = flow.finish(request, callback)
    secrets = ConnectionSecrets(
        organization_id=row.organization_id,
        auth_kind=SalesforceAuthKind.WEB_SERVER,
        login_url=pending["login_url"],
        consumer_key=pending["consumer_key"],
        consumer_secret=secret,
        refresh_token=token.refresh_token,
    )
    repo = SalesforceRepository(session, row.organization_id)
    share = row.api_share or settings.salesforce_api_share
    with open_client(secrets, settings, http=http, budget=False, token=token) as client:
        report = run_salesforce_checks(client, features=features, share=share)
        row = _store(repo, box, secrets, row)
        row.certificate_pem = None
        _identify(row, client)
        _apply_report(row, report)
        remember(row, client, box)
        fresh = row.connected_at is None
        row.connected_at = row.connected_at or utcnow()
        match_members_to_users(repo, row, client)
    if fresh:
        repo.queue_everything()
    session.flush()
    return row.organization_id, report


def disconnect_salesforce(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    http: requests.Session | None = None,
) -> None:
    """Stop writing to Salesforce and forget the secrets. A refresh token is revoked (which
    ends its sessions); the ledger and the mirror stay, so connecting again resumes."""
    repo = SalesforceRepository(session, organization_id)
    row = repo.connection()
    if row is None:
        raise SalesforceNotConnected()
    refresh_token = unseal(box, row, "refresh_token_sealed")
    if refresh_token:
        # Unreachable or already revoked: the secret is forgotten either way.
        with contextlib.suppress(SalesforceError):
            revoke(settings, refresh_token, login_url=row.login_url, http=http)
    for column in (
        "consumer_secret_sealed",
        "private_key_sealed",
        "refresh_token_sealed",
        "pending_flow_sealed",
    ):
        seal(box, row, column, None)
    row.pending_state = None
    row.status = SalesforceStatus.DISCONNECTED
    row.status_detail = "Salesforce was disconnected by an admin."
    row.status_fix = "Connect Salesforce again to resume writing to it."
    row.connected_at = None
    row.updated_at = utcnow()
    session.flush()


def forget_salesforce_org(session: Session, organization_id: str) -> int:
    """The connection now reaches another org than the one m365sync wrote to (a refreshed
    sandbox, the demo's new org): forget what was written there and what the mirror read,
    so every activity is written again and the people are read afresh. Returns how many
    activities are queued again."""
    repo = SalesforceRepository(session, organization_id)
    count = repo.forget_writes()
    session.flush()
    return count


def _connected(repo: SalesforceRepository) -> SalesforceConnection:
    row = repo.connection()
    if row is None or row.status in (SalesforceStatus.PENDING, SalesforceStatus.DISCONNECTED):
        raise SalesforceNotConnected()
    return row


def run_salesforce_test(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    features: Collection[str] = FEATURES,
    http: requests.Session | None = None,
) -> SalesforceTestReport:
    """Run Test for Salesforce on the saved connection: each check with its cause and fix;
    the connection's status follows (a failed sign-in: reconnect needed)."""
    repo = SalesforceRepository(session, organization_id)
    row = _connected(repo)
    secrets = ConnectionSecrets.of(row, box)
    share = row.api_share or settings.salesforce_api_share
    with open_client(secrets, settings, http=http, budget=False) as client:
        report = run_salesforce_checks(client, features=features, share=share)
        _apply_report(row, report)
        if report.signed_in:
            _identify(row, client)
            remember(row, client, box)
            match_members_to_users(repo, row, client)
    session.flush()
    return report


# -- members and their Salesforce users -----------------------------------------------------


def _member_users(repo: SalesforceRepository) -> list[MemberUser]:
    links = repo.user_links()
    found = []
    for member in repo.members():
        link = links.get(member.id)
        found.append(
            MemberUser(
                member_id=member.id,
                email=member.email,
                name=member.name,
                salesforce_user_id=link.salesforce_user_id if link else None,
                salesforce_username=link.salesforce_username if link else "",
                salesforce_name=link.salesforce_name if link else "",
                matched_by=link.matched_by.value if link else None,
            )
        )
    return found


def salesforce_members(session: Session, organization_id: str) -> list[MemberUser]:
    """Each member and the Salesforce user their activities belong to (if any)."""
    return _member_users(SalesforceRepository(session, organization_id))


def _pick(users: list[dict[str, object]], email: str) -> dict[str, object] | None:
    """Of the active users with this address, the one whose username is the address, else
    the oldest id: the same choice every time."""
    if not users:
        return None
    users = sorted(users, key=lambda u: str(u.get("Id")))
    exact = [u for u in users if str(u.get("Username") or "").lower() == email]
    return (exact or users)[0]


def match_members_to_users(
    repo: SalesforceRepository, row: SalesforceConnection, client: SalesforceClient
) -> None:
    """Match members without an admin's choice to active Salesforce users by address (one
    query per few hundred members). Also run by the mirror, hourly."""
    links = repo.user_links()
    members = [
        m
        for m in repo.members()
        if links.get(m.id) is None or links[m.id].matched_by == UserMatch.EMAIL
    ]
    emails = sorted({m.email.lower() for m in members})
    users = (
        client.find_by("User", "Email", emails, select=USER_FIELDS, where="IsActive = true")
        if emails
        else []
    )
    by_email: dict[str, list[dict[str, object]]] = {}
    for user in users:
        by_email.setdefault(str(user.get("Email") or "").lower(), []).append(user)
    for member in members:
        email = member.email.lower()
        chosen = _pick(by_email.get(email, []), email)
        if chosen is None:
            if member.id in links:
                repo.drop_user_link(member.id)
        else:
            repo.save_user_link(member.id, dict(chosen), UserMatch.EMAIL)
    row.users_matched_at = utcnow()


def match_salesforce_users(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    *,
    http: requests.Session | None = None,
) -> list[MemberUser]:
    """Match members to Salesforce users by address now (an admin's choices are kept)."""
    repo = SalesforceRepository(session, organization_id)
    row = _connected(repo)
    with open_client(ConnectionSecrets.of(row, box), settings, http=http) as client:
        match_members_to_users(repo, row, client)
        remember(row, client, box)
    session.flush()
    return _member_users(repo)


def link_member_to_salesforce_user(
    session: Session,
    box: SecretBox,
    settings: Settings,
    organization_id: str,
    member_id: str,
    user: str,
    *,
    http: requests.Session | None = None,
) -> MemberUser:
    """An admin's choice: ``member_id``'s activities belong to the Salesforce user ``user``
    (its id, username or email address), whatever the addresses say."""
    repo = SalesforceRepository(session, organization_id)
    row = _connected(repo)
    member = repo.member(member_id)
    if member is None:
        raise SalesforceUserNotFound(
            "That member is not in this organization.", fix="Pick a member from the list."
        )
    wanted = (user or "").strip()
    field = "Id" if len(wanted) in (15, 18) and wanted[:3] == "005" else "Username"
    with open_client(ConnectionSecrets.of(row, box), settings, http=http) as client:
        found = client.find_by("User", field, [wanted], select=USER_FIELDS, where="IsActive = true")
        if not found and "@" in wanted:
            found = client.find_by(
                "User", "Email", [wanted], select=USER_FIELDS, where="IsActive = true"
            )
        remember(row, client, box)
    if not found:
        raise SalesforceUserNotFound(
            f"Salesforce has no active user {wanted!r}.",
            fix="Enter the Salesforce user's id, username or email address (Setup → Users), "
            "and check that the user is active.",
        )
    repo.save_user_link(member.id, dict(found[0]), UserMatch.ADMIN)
    session.flush()
    return next(m for m in _member_users(repo) if m.member_id == member.id)


def unlink_member_from_salesforce_user(
    session: Session, organization_id: str, member_id: str
) -> None:
    """Forget an admin's choice: the member is matched by address again on the next run."""
    SalesforceRepository(session, organization_id).drop_user_link(member_id)
    session.flush()


# -- the API share, parked records, the overview --------------------------------------------


def set_salesforce_api_share(session: Session, organization_id: str, share: float | None) -> None:
    """How much of the org's daily API requests m365sync may use (None: the server's
    setting, half by default)."""
    if share is not None and not 0 < share <= 1:
        raise ValidationFailed(
            "The Salesforce API share must be more than 0 % and at most 100 %.",
            fix="Choose a share such as 50 %: m365sync then leaves half of the org's daily API "
            "requests to its other users and integrations.",
        )
    repo = SalesforceRepository(session, organization_id)
    row = _connected(repo)
    row.api_share = share
    row.writer_paused_until = None
    row.writer_pause_reason = ""
    session.flush()


def set_salesforce_lead_creation(session: Session, organization_id: str, enabled: bool) -> None:
    """Whether a meeting whose person m365sync added as a lead (a booked meeting's unknown
    invitee) creates that Lead in Salesforce; off by default. Meetings that waited as
    unmatched are written again when it is switched on."""
    repo = SalesforceRepository(session, organization_id)
    row = _connected(repo)
    row.create_leads = enabled
    if enabled:
        repo.retry_unmatched_events()
    session.flush()


def retry_parked_salesforce_records(
    session: Session, organization_id: str, activity_ids: Collection[str] | None = None
) -> int:
    """Write the parked records again (after the rule or field was fixed in Salesforce):
    all of them, or those of ``activity_ids``. Returns how many go back to the queue."""
    repo = SalesforceRepository(session, organization_id)
    _connected(repo)
    count = repo.retry_parked(activity_ids)
    session.flush()
    return count


def salesforce_backlog(
    session: Session, organization_id: str, *, member_id: str | None = None, limit: int = 200
) -> list[BacklogItem]:
    """What waits for a person (parked) or for a retry, newest first, each with the plain
    reason and the fix; ``member_id``: only that member's activities."""
    repo = SalesforceRepository(session, organization_id)
    members = {m.id: m.email for m in repo.members()}
    waiting = repo.waiting(limit if member_id is None else limit * 10)
    holders = repo.holders([activity.id for _, activity in waiting])
    found = []
    for record, activity in waiting:
        owner = activity.owner_member_id
        if owner is None:
            owner = min(holders.get(activity.id, set()), default=None)
        if member_id is not None and owner != member_id:
            continue
        found.append(
            BacklogItem(
                activity_id=activity.id,
                kind=activity.kind.value,
                subject=activity.subject,
                occurred_at=activity.occurred_at or activity.starts_at,
                member_email=members.get(owner or "", ""),
                state=record.state.value,
                reason=record.reason,
                fix=record.fix,
                attempts=record.attempts,
                next_attempt_at=record.next_attempt_at,
                sobject=record.sobject,
                salesforce_id=record.salesforce_id,
            )
        )
    return found[:limit]


def salesforce_record_url(instance_url: str, sobject: str, record_id: str) -> str:
    """Where a person opens a record in Salesforce (Lightning Experience)."""
    return f"{instance_url.rstrip('/')}/lightning/r/{sobject}/{record_id}/view"


def salesforce_record_links(
    session: Session, organization_id: str, activity_ids: Collection[str]
) -> dict[str, str]:
    """Activity id → the address of its Salesforce record, for those Salesforce holds
    (none while the organization has no working connection)."""
    repo = SalesforceRepository(session, organization_id)
    row = repo.connection()
    if row is None or not row.instance_url or row.status == SalesforceStatus.DISCONNECTED:
        return {}
    return {
        aid: salesforce_record_url(row.instance_url, sobject, sid)
        for aid, (sobject, sid) in repo.written(activity_ids).items()
    }


def salesforce_overview(session: Session, organization_id: str) -> SalesforceOverview:
    repo = SalesforceRepository(session, organization_id)
    row = repo.connection()
    if row is None:
        return SalesforceOverview(connected=False)
    return SalesforceOverview(
        connected=row.status not in (SalesforceStatus.PENDING, SalesforceStatus.DISCONNECTED),
        status=row.status,
        detail=row.status_detail,
        fix=row.status_fix,
        auth_kind=row.auth_kind,
        login_url=row.login_url,
        instance_url=row.instance_url or "",
        salesforce_org_id=row.salesforce_org_id or "",
        integration_username=row.integration_username or "",
        email_target=row.email_target,
        api_used=row.api_used,
        api_limit=row.api_limit,
        api_share=row.api_share,
        create_leads=row.create_leads,
        paused_until=row.writer_paused_until,
        pause_reason=row.writer_pause_reason,
        records={state.value: count for state, count in repo.ledger_counts().items()},
        members=_member_users(repo),
        last_test=[SalesforceCheck.from_json(c) for c in row.test_report or []],
        last_tested_at=row.last_tested_at,
    )
