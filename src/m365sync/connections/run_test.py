"""Run Test: diagnose a service account against a test mailbox, before it is saved.

``run_connection_test`` returns an ordered list of checks, each passed / failed / warning /
skipped, with a plain-language explanation and the fix. It only reads: tenant discovery,
a client-credentials token, ``GET /users/{upn}``, one message id from the Inbox and one event
id from the calendar. It never modifies a mailbox.

A check is *required* when saving an account that fails it would leave nothing working or
the cause unknown; ``TestReport.ok`` is False while any required check fails, and Save is
then refused unless the admin saves a partially working account on purpose.
Throttling and transient errors are retried by the Graph client; if they persist, the
check is a warning ("try again"), never a failure of the account.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from m365sync.connections.features import FEATURE_TITLES, FeatureMatrix, app_feature_matrix
from m365sync.connections.models import Feature
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import (
    AccessToken,
    AppOnlyAuth,
    ClientSecret,
    Credential,
    discover_tenant,
)
from m365sync.microsoft.graph import GraphClient, page_size_preference, user_path
from m365sync.organizations.models import Organization
from m365sync.organizations.repository import OrganizationRepository
from m365sync.settings import Settings


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    SKIPPED = "skipped"


@dataclass
class Check:
    key: str
    title: str
    outcome: Outcome
    message: str
    fix: str = ""
    required: bool = True
    code: str | None = None  # Microsoft's error code, when Microsoft gave one

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "outcome": self.outcome.value,
            "message": self.message,
            "fix": self.fix,
            "required": self.required,
            "code": self.code,
        }


@dataclass
class ServiceAccountDraft:
    """What the admin entered: never stored by Run Test."""

    client_id: str
    credential: Credential
    tenant_id: str | None = None  # optional override of the discovered tenant

    def __repr__(self) -> str:
        return f"ServiceAccountDraft(client_id={self.client_id!r}, tenant_id={self.tenant_id!r})"


@dataclass
class TestReport:
    checks: list[Check] = field(default_factory=list)
    tenant_id: str | None = None
    # The tenant Microsoft Entra ID resolves each domain to (None: no tenant verified it).
    domain_tenants: dict[str, str | None] = field(default_factory=dict)
    # The tenant of the app-only token Entra issued (its ``tid``): with permissions in the
    # token, an admin of that tenant consented, which proves the domains resolved to it.
    token_tenant_id: str | None = None
    granted_permissions: list[str] = field(default_factory=list)
    matrix: FeatureMatrix | None = None
    service_principal_id: str | None = None
    token_cache: str | None = field(default=None, repr=False)

    __test__ = False  # not a pytest class

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def check(self, key: str) -> Check | None:
        return next((c for c in self.checks if c.key == key), None)

    def outcome(self, key: str) -> Outcome | None:
        check = self.check(key)
        return check.outcome if check else None

    def required_failures(self) -> list[Check]:
        return [c for c in self.checks if c.required and c.outcome == Outcome.FAILED]

    @property
    def ok(self) -> bool:
        return not self.required_failures()

    @property
    def signed_in(self) -> bool:
        check = self.check("sign_in")
        return check is not None and check.outcome == Outcome.PASSED

    @property
    def consented_tenant_id(self) -> str | None:
        """The tenant whose admin consented to the app (a token carrying permissions was
        issued there), or None."""
        return self.token_tenant_id if self.signed_in and self.granted_permissions else None

    @property
    def enabled_features(self) -> list[Feature]:
        if self.matrix is None:
            return []
        return [f for f in Feature if f in self.matrix.enabled]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tenant_id": self.tenant_id,
            "granted_permissions": self.granted_permissions,
            "enabled_features": [f.value for f in self.enabled_features],
            "missing_permissions": self.matrix.missing_as_json() if self.matrix else {},
            "checks": [c.as_json() for c in self.checks],
        }


def _failed(key: str, title: str, error: ms.MicrosoftError, *, required: bool = True) -> Check:
    return Check(key, title, Outcome.FAILED, error.message, error.fix or "", required, error.code)


def _skip_rest(report: TestReport, keys: list[tuple[str, str]], reason: str) -> None:
    for key, title in keys:
        report.add(Check(key, title, Outcome.SKIPPED, reason, required=False))


LATER_CHECKS = [
    ("tenant", "Tenant"),
    ("secret_format", "Client secret"),
    ("sign_in", "Sign-in with the app's credentials"),
    ("consent", "Admin consent"),
    ("permissions", "Permissions"),
    ("mailbox", "Test account"),
    ("mail_access", "Read the test account's mail"),
    ("calendar_access", "Read the test account's calendar"),
]


async def run_connection_test(
    session: Session,
    settings: Settings,
    organization: Organization,
    draft: ServiceAccountDraft,
    test_mailbox: str,
    *,
    cache_blob: str | None = None,
    graph_transport: Any = None,
    sleep: Callable[[float], Any] | None = None,
) -> TestReport:
    """Diagnose ``draft`` against ``test_mailbox``; see the module docstring."""
    report = TestReport()
    domains = OrganizationRepository(session).domains(organization.id)
    if not domains:
        report.add(
            Check(
                "domains",
                "Domains to sync",
                Outcome.FAILED,
                "No domains to sync are defined, so the service account can't be authorized: its "
                "tenant is found from your domains, and only users in them are synced.",
                "Add your domains first (Admin → My Organization → Domains, or "
                "m365sync domains add contoso.com), then run the test again.",
            )
        )
        _skip_rest(
            report,
            [("test_mailbox_domain", "Test account's domain"), *LATER_CHECKS],
            "Skipped: no domains.",
        )
        return report
    domain_names = [d.name for d in domains]
    report.add(
        Check(
            "domains",
            "Domains to sync",
            Outcome.PASSED,
            f"Domains to sync: {', '.join(domain_names)}.",
        )
    )

    mailbox = test_mailbox.strip().lower()
    mailbox_domain = mailbox.rsplit("@", 1)[-1] if "@" in mailbox else ""
    if not mailbox or "@" not in mailbox:
        report.add(
            Check(
                "test_mailbox_domain",
                "Test account's domain",
                Outcome.FAILED,
                "No test account was given.",
                "Enter the address of a mailbox the service account should sync, e.g. one of your "
                "sales reps.",
            )
        )
    elif mailbox_domain not in domain_names:
        report.add(
            Check(
                "test_mailbox_domain",
                "Test account's domain",
                Outcome.FAILED,
                f"{mailbox} is outside the domains to sync ({', '.join(domain_names)}), so it "
                "would never be synced.",
                f"Use a test account in one of your domains, or add {mailbox_domain} to the "
                "domains to sync.",
            )
        )
    else:
        report.add(
            Check(
                "test_mailbox_domain",
                "Test account's domain",
                Outcome.PASSED,
                f"{mailbox} is in {mailbox_domain}.",
            )
        )

    # Tenant: discovered from the domains (an explicit tenant id overrides).
    unanswered: dict[str, ms.MicrosoftError] = {}
    for name in domain_names:
        try:
            report.domain_tenants[name] = await discover_tenant(settings, name)
        except ms.TenantNotFound:
            report.domain_tenants[name] = None
        except ms.MicrosoftError as unwell:  # Entra ID unwell: not an unknown domain
            report.domain_tenants[name] = None
            unanswered[name] = unwell
    home_domain = mailbox_domain if mailbox_domain in domain_names else domain_names[0]
    tenant_id = draft.tenant_id or report.domain_tenants.get(home_domain)
    if tenant_id is None:
        error = unanswered.get(home_domain) or ms.TenantNotFound(
            f"Microsoft knows no tenant for the domain {home_domain}."
        )
        report.add(_failed("tenant", "Tenant", error))
        reason = (
            "Skipped: Microsoft did not say which tenant this is."
            if home_domain in unanswered
            else "Skipped: the tenant is unknown."
        )
        _skip_rest(report, LATER_CHECKS[1:], reason)
        return report
    report.tenant_id = tenant_id
    elsewhere = [d for d, t in report.domain_tenants.items() if t != tenant_id]
    report.add(
        Check(
            "tenant",
            "Tenant",
            Outcome.WARNING if elsewhere else Outcome.PASSED,
            f"Tenant {tenant_id} (from {home_domain})."
            + (
                f" Not in this tenant, so not synced by this account: {', '.join(elsewhere)}."
                if elsewhere
                else ""
            ),
            "Remove domains that belong to no tenant, or add a service account for the other "
            "tenant."
            if elsewhere
            else "",
            required=False,
        )
    )

    # The secret: a GUID is the secret's ID, caught before Entra is even asked.
    if isinstance(draft.credential, ClientSecret):
        if ms.looks_like_secret_id(draft.credential.value):
            report.add(_failed("secret_format", "Client secret", ms.SecretIdGiven()))
            _skip_rest(report, LATER_CHECKS[2:], "Skipped: the secret's value is needed.")
            return report
        if not draft.credential.value.strip():
            report.add(
                Check(
                    "secret_format",
                    "Client secret",
                    Outcome.FAILED,
                    "No client secret was given.",
                    ms.SECRET_STEPS,
                )
            )
            _skip_rest(report, LATER_CHECKS[2:], "Skipped: the secret's value is needed.")
            return report
        report.add(
            Check(
                "secret_format",
                "Client secret",
                Outcome.PASSED,
                "The secret looks like a secret value.",
            )
        )
    else:
        report.add(
            Check(
                "secret_format",
                "Certificate",
                Outcome.PASSED,
                f"Certificate with thumbprint {draft.credential.thumbprint}.",
            )
        )

    # Sign in (client credentials through MSAL).
    captured: dict[str, str] = {}
    try:
        auth = await asyncio.to_thread(
            AppOnlyAuth,
            settings,
            client_id=draft.client_id.strip(),
            tenant_id=tenant_id,
            credential=draft.credential,
            cache_blob=cache_blob,
            on_cache_change=lambda blob: captured.__setitem__("cache", blob),
        )
        # Always a fresh token: the credentials are what is being tested, not the cache.
        token: AccessToken = await asyncio.to_thread(auth.acquire, force_refresh=True)
    except ms.MicrosoftError as error:
        report.add(_failed("sign_in", "Sign-in with the app's credentials", error))
        _skip_rest(report, LATER_CHECKS[3:], "Skipped: the app could not sign in.")
        return report
    report.token_cache = captured.get("cache")
    report.service_principal_id = str(token.claims.get("oid") or "") or None
    report.token_tenant_id = str(token.claims.get("tid") or "") or None
    report.add(
        Check(
            "sign_in",
            "Sign-in with the app's credentials",
            Outcome.PASSED,
            "Microsoft Entra ID issued a token.",
        )
    )

    # Consent and the feature matrix, from the token's roles.
    report.granted_permissions = sorted(token.roles)
    if not token.roles:
        report.add(
            Check(
                "consent",
                "Admin consent",
                Outcome.FAILED,
                "Admin consent has not been granted: the app's token carries no permissions.",
                "In the Microsoft Entra admin center open App registrations → your app → API "
                "permissions "
                f"and click 'Grant admin consent for {tenant_label(domain_names)}'.",
            )
        )
        report.matrix = app_feature_matrix([])
        _skip_rest(report, LATER_CHECKS[4:], "Skipped: no permissions are granted.")
        return report
    report.add(
        Check(
            "consent",
            "Admin consent",
            Outcome.PASSED,
            f"Granted: {', '.join(report.granted_permissions)}.",
        )
    )
    matrix = report.matrix = app_feature_matrix(token.roles)
    for feature in (Feature.EMAIL, Feature.CALENDAR, Feature.SCHEDULING):
        title = FEATURE_TITLES[feature]
        if feature in matrix.enabled:
            report.add(
                Check(
                    f"feature:{feature.value}",
                    title,
                    Outcome.PASSED,
                    f"{title} can be enabled.",
                    required=False,
                )
            )
        else:
            missing = ", ".join(matrix.missing[feature])
            report.add(
                Check(
                    f"feature:{feature.value}",
                    title,
                    Outcome.FAILED,
                    f"{title} is off: the app lacks {missing}.",
                    f"Add {missing} under API permissions → Add a permission → Microsoft Graph → "
                    "Application permissions, then grant admin consent.",
                    required=False,
                )
            )
    report.add(
        Check(
            "feature:tasks",
            FEATURE_TITLES[Feature.TASKS],
            Outcome.SKIPPED,
            matrix.notes[Feature.TASKS],
            required=False,
        )
    )
    if not matrix.enabled:
        report.add(
            Check(
                "permissions",
                "Permissions",
                Outcome.FAILED,
                "None of Email Sync, Calendar Sync or Calendar Scheduling can work with the "
                "granted permissions.",
                "Add Mail.Read and Mail.ReadWrite (Email Sync) and/or Calendars.Read and "
                "Calendars.ReadWrite (Calendar Sync), then grant admin consent.",
            )
        )
    else:
        report.add(
            Check(
                "permissions", "Permissions", Outcome.PASSED, "At least one feature can be enabled."
            )
        )

    if report.outcome("test_mailbox_domain") == Outcome.FAILED:
        _skip_rest(report, LATER_CHECKS[5:], "Skipped: no usable test account.")
        return report

    # Read probes against the test mailbox.
    async with GraphClient(
        settings, auth, transport=graph_transport, **({"sleep": sleep} if sleep else {})
    ) as graph:
        base = user_path(mailbox)
        report.add(await _probe_user(graph, base, mailbox))
        if report.outcome("mailbox") == Outcome.FAILED:
            _skip_rest(report, LATER_CHECKS[6:], "Skipped: the test account was not found.")
            return report
        if Feature.EMAIL in matrix.enabled:
            report.add(
                await _probe(
                    graph,
                    "mail_access",
                    "Read the test account's mail",
                    f"{base}/mailFolders/inbox/messages",
                    {"$top": 1, "$select": "id"},
                    mailbox,
                    delta_path=f"{base}/mailFolders/inbox/messages/delta",
                )
            )
        else:
            report.add(
                Check(
                    "mail_access",
                    "Read the test account's mail",
                    Outcome.SKIPPED,
                    "Email Sync is off.",
                    required=False,
                )
            )
        if Feature.CALENDAR in matrix.enabled:
            report.add(
                await _probe(
                    graph,
                    "calendar_access",
                    "Read the test account's calendar",
                    f"{base}/calendar/events",
                    {"$top": 1, "$select": "id"},
                    mailbox,
                )
            )
        else:
            report.add(
                Check(
                    "calendar_access",
                    "Read the test account's calendar",
                    Outcome.SKIPPED,
                    "Calendar Sync is off.",
                    required=False,
                )
            )
    if auth.cache.has_state_changed:
        report.token_cache = auth.cache.serialize()
    return report


def tenant_label(domain_names: list[str]) -> str:
    return f"your tenant ({domain_names[0]})" if domain_names else "your tenant"


async def _probe_user(graph: GraphClient, base: str, mailbox: str) -> Check:
    title = "Test account"
    try:
        data = await graph.get_json(
            base, params={"$select": "id,userPrincipalName,mail,accountEnabled"}
        )
    except ms.UserNotFound:
        return Check(
            "mailbox",
            title,
            Outcome.FAILED,
            f"{mailbox} does not exist in the tenant.",
            "Check the address: use the user's primary email address or user principal name.",
        )
    except (ms.PermissionMissing, ms.ItemNotFound):
        return Check(
            "mailbox",
            title,
            Outcome.SKIPPED,
            "The user could not be looked up (the optional User.Read.All permission is not "
            "granted, "
            "or the directory did not answer); "
            "the mailbox checks below still tell whether it can be synced.",
            required=False,
        )
    except (ms.Throttled, ms.Transient) as error:
        return Check(
            "mailbox",
            title,
            Outcome.WARNING,
            error.message,
            "Run the test again in a few minutes.",
            False,
            error.code,
        )
    except ms.MicrosoftError as error:
        return _failed("mailbox", title, error)
    if data.get("accountEnabled") is False:
        return Check(
            "mailbox",
            title,
            Outcome.WARNING,
            f"{mailbox} exists but its account is disabled.",
            "Choose an active user as the test account.",
            required=False,
        )
    return Check(
        "mailbox", title, Outcome.PASSED, f"Found {data.get('userPrincipalName') or mailbox}."
    )


async def _probe(
    graph: GraphClient,
    key: str,
    title: str,
    path: str,
    params: dict[str, str | int],
    mailbox: str,
    delta_path: str | None = None,
) -> Check:
    try:
        await graph.get_json(path, params=params)
        if delta_path is not None:
            # Delta keeps its sync state in the mailbox, so a full mailbox refuses it (a plain
            # read does not): the first page of one id tells Email Sync will work.
            await graph.get_json(
                delta_path, params={"$select": "id"}, prefer=[page_size_preference(1)]
            )
    except ms.AccessDeniedByPolicy as error:
        return Check(
            key,
            title,
            Outcome.FAILED,
            f"{mailbox} is blocked by an Application Access Policy (or RBAC for Applications "
            "scope): "
            "Exchange Online answered 'Access to OData is disabled.'",
            "Add the mailbox to the mail-enabled security group the policy allows, or test with a "
            "mailbox "
            "inside it (m365sync access-policy shows the commands and which mailboxes are "
            "reachable).",
            code=error.code,
        )
    except ms.MailboxNotEnabled as error:
        return Check(
            key,
            title,
            Outcome.FAILED,
            f"{mailbox}: {error.message}",
            error.fix or "",
            code=error.code,
        )
    except ms.QuotaExceeded as error:
        return Check(
            key,
            title,
            Outcome.WARNING,
            f"{mailbox}: {error.message}",
            error.fix or "",
            False,
            error.code,
        )
    except (ms.Throttled, ms.Transient) as error:
        return Check(
            key,
            title,
            Outcome.WARNING,
            f"Not verified: {error.message}",
            "This is not a problem with the account: run the test again in a few minutes.",
            False,
            error.code,
        )
    except ms.MicrosoftError as error:
        return _failed(key, title, error)
    return Check(key, title, Outcome.PASSED, f"{title.replace('Read', 'Read access to')}: OK.")
