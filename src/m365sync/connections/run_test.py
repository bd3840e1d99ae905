"""Run Test: diagnose a service account against a test mailbox, before it is saved.

``run_connection_test`` runs ``CHECKS`` in order, each a small function that records its
outcome (passed / failed / warning / skipped, a plain-language explanation and the fix) and
says when the checks after it can't run. It only reads: tenant discovery,
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
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from m365sync.connections.features import (
    FEATURE_TITLES,
    ROOM_PERMISSION,
    FeatureMatrix,
    app_feature_matrix,
)
from m365sync.connections.models import Feature
from m365sync.connections.repository import ConnectionRepository
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import (
    AccessToken,
    AppOnlyAuth,
    ClientCertificate,
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


@dataclass(frozen=True)
class ServiceAccountDraft:
    """An Office 365 service account as an admin entered it, before it is saved: Run Test
    tries it (storing nothing) and ``service_accounts.add_service_account`` saves it. The
    credential stays in memory and out of ``repr``; None means none was given."""

    client_id: str
    credential: Credential | None
    test_mailbox: str = ""
    tenant_id: str | None = None  # optional override of the discovered tenant
    name: str = ""
    secret_expires_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"ServiceAccountDraft(client_id={self.client_id!r}, tenant_id={self.tenant_id!r}, "
            f"test_mailbox={self.test_mailbox!r})"
        )


_READING_ORDER = {Outcome.FAILED: 0, Outcome.WARNING: 1, Outcome.SKIPPED: 2, Outcome.PASSED: 3}


def _and(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


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

    def worst_first(self) -> list[Check]:
        """The checks in the order a person should read them: failures, warnings, those
        that could not run, then the passes (each kind in the order it ran)."""
        return sorted(self.checks, key=lambda c: _READING_ORDER[c.outcome])

    @property
    def overall(self) -> Outcome:
        """FAILED while a required check fails, WARNING while any other check failed or
        warned, else PASSED."""
        if not self.ok:
            return Outcome.FAILED
        if any(c.outcome in (Outcome.FAILED, Outcome.WARNING) for c in self.checks):
            return Outcome.WARNING
        return Outcome.PASSED

    @property
    def verdict(self) -> str:
        """The test in one line, read before its checks."""
        problems = [c for c in self.checks if c.outcome in (Outcome.FAILED, Outcome.WARNING)]
        titles = ", ".join(c.title for c in problems)
        features = _and([FEATURE_TITLES[f] for f in self.enabled_features])
        enabled = f"{features} can be enabled" if features else "no feature can be enabled yet"
        if not self.ok:
            failed = [c for c in self.checks if c.outcome == Outcome.FAILED]
            return (
                f"Test failed: {len(failed)} of {len(self.checks)} checks failed "
                f"({', '.join(c.title for c in failed)})."
            )
        if problems:
            count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
            return f"Test passed with {count} ({titles}): {enabled}."
        return f"Test passed: {enabled}."

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
            "verdict": self.verdict,
            "tenant_id": self.tenant_id,
            "granted_permissions": self.granted_permissions,
            "enabled_features": [f.value for f in self.enabled_features],
            "missing_permissions": self.matrix.missing_as_json() if self.matrix else {},
            "checks": [c.as_json() for c in self.checks],
        }


def failed_check(key: str, title: str, error: ms.MicrosoftError, *, required: bool = True) -> Check:
    """A failed check in the words of Microsoft's error: its cause and its fix."""
    return Check(key, title, Outcome.FAILED, error.message, error.fix or "", required, error.code)


def not_verified_check(key: str, title: str, error: ms.MicrosoftError) -> Check:
    """Microsoft was busy or unwell (throttled, a temporary failure): a warning, never a
    failure of the account."""
    return Check(
        key,
        title,
        Outcome.WARNING,
        f"Not verified: {error.message}",
        "This is not a problem with the account: run the test again in a few minutes.",
        False,
        error.code,
    )


def skipped_check(key: str, title: str, reason: str) -> Check:
    return Check(key, title, Outcome.SKIPPED, reason, required=False)


ALL_FEATURES = frozenset(Feature)


@dataclass
class _Trial:
    """One run of Run Test: what was entered, what the checks so far found, and the report
    they write to. Later checks read what earlier ones learned (the tenant, the token)."""

    settings: Settings
    draft: ServiceAccountDraft
    domain_names: list[str]
    cache_blob: str | None
    graph_transport: Any
    sleep: Callable[[float], Any] | None
    report: TestReport = field(default_factory=TestReport)
    auth: AppOnlyAuth | None = None
    token: AccessToken | None = None
    exits: AsyncExitStack = field(default_factory=AsyncExitStack)
    graph_client: GraphClient | None = None
    books_rooms: bool = False  # some meeting type of the organization books a room

    @property
    def mailbox(self) -> str:
        return self.draft.test_mailbox.strip().lower()

    @property
    def mailbox_domain(self) -> str:
        return self.mailbox.rsplit("@", 1)[-1] if "@" in self.mailbox else ""

    @property
    def matrix(self) -> FeatureMatrix:
        assert self.report.matrix is not None, "the consent check sets the feature matrix"
        return self.report.matrix

    async def graph(self) -> GraphClient:
        """The Graph client of the read probes, opened on first use (closed with ``exits``)."""
        if self.graph_client is None:
            assert self.auth is not None, "the probes run after sign-in"
            client = GraphClient(
                self.settings,
                self.auth,
                transport=self.graph_transport,
                sleep=self.sleep or asyncio.sleep,
            )
            self.graph_client = await self.exits.enter_async_context(client)
        return self.graph_client


@dataclass(frozen=True)
class CheckStep:
    """One check of Run Test: its key and title (as the report names it), the features whose
    verdict depends on it, and what it does. ``run`` records its outcome in the report and
    returns why the checks after it can't run (they are then reported as skipped), or None.
    A step ``shown_when_skipped`` False leaves no line in the report when skipped."""

    key: str
    title: str
    features: frozenset[Feature]
    run: Callable[[_Trial], Awaitable[str | None]]
    shown_when_skipped: bool = True


def domains_check(domain_names: list[str]) -> Check:
    """Whether domains to sync are defined (a service account of either kind needs them)."""
    if not domain_names:
        return Check(
            "domains",
            "Domains to sync",
            Outcome.FAILED,
            "No domains to sync are defined, so the service account can't be authorized: its "
            "tenant is found from your domains, and only users in them are synced.",
            "Add your domains to sync first (such as contoso.com), then run the test again.",
        )
    return Check(
        "domains", "Domains to sync", Outcome.PASSED, f"Domains to sync: {', '.join(domain_names)}."
    )


def test_mailbox_domain_check(mailbox: str, names: list[str]) -> Check:
    """Whether the test account is an address in the domains to sync."""
    domain = mailbox.rsplit("@", 1)[-1] if "@" in mailbox else ""
    title = "Test account's domain"
    if not mailbox or "@" not in mailbox:
        return Check(
            "test_mailbox_domain",
            title,
            Outcome.FAILED,
            "No test account was given.",
            "Enter the address of a mailbox the service account should sync, e.g. one of your "
            "sales reps.",
        )
    if domain not in names:
        return Check(
            "test_mailbox_domain",
            title,
            Outcome.FAILED,
            f"{mailbox} is outside the domains to sync ({', '.join(names)}), so it "
            "would never be synced.",
            f"Use a test account in one of your domains, or add {domain} to the domains to sync.",
        )
    return Check("test_mailbox_domain", title, Outcome.PASSED, f"{mailbox} is in {domain}.")


async def _domains(trial: _Trial) -> str | None:
    check = trial.report.add(domains_check(trial.domain_names))
    return "Skipped: no domains." if check.outcome == Outcome.FAILED else None


async def _test_mailbox_domain(trial: _Trial) -> str | None:
    """A test account outside the domains fails here, but the checks of the app itself still
    run: only the mailbox probes need it."""
    trial.report.add(test_mailbox_domain_check(trial.mailbox, trial.domain_names))
    return None


async def _tenant(trial: _Trial) -> str | None:
    """Discovered from the domains (an explicit tenant id overrides)."""
    report = trial.report
    unanswered: dict[str, ms.MicrosoftError] = {}
    for name in trial.domain_names:
        try:
            report.domain_tenants[name] = await discover_tenant(trial.settings, name)
        except ms.TenantNotFound:
            report.domain_tenants[name] = None
        except ms.MicrosoftError as unwell:  # Entra ID unwell: not an unknown domain
            report.domain_tenants[name] = None
            unanswered[name] = unwell
    home = trial.mailbox_domain if trial.mailbox_domain in trial.domain_names else None
    home_domain = home or trial.domain_names[0]
    tenant_id = trial.draft.tenant_id or report.domain_tenants.get(home_domain)
    if tenant_id is None:
        error = unanswered.get(home_domain) or ms.TenantNotFound(
            f"Microsoft knows no tenant for the domain {home_domain}."
        )
        report.add(failed_check("tenant", "Tenant", error))
        if home_domain in unanswered:
            return "Skipped: Microsoft did not say which tenant this is."
        return "Skipped: the tenant is unknown."
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
    return None


async def _secret_format(trial: _Trial) -> str | None:
    """A GUID is the secret's ID, caught before Entra is even asked."""
    credential = trial.draft.credential
    if isinstance(credential, ClientCertificate):
        trial.report.add(
            Check(
                "secret_format",
                "Certificate",
                Outcome.PASSED,
                f"Certificate with thumbprint {credential.thumbprint}.",
            )
        )
        return None
    value = credential.value if isinstance(credential, ClientSecret) else ""
    if ms.looks_like_secret_id(value):
        trial.report.add(failed_check("secret_format", "Client secret", ms.SecretIdGiven()))
        return "Skipped: the secret's value is needed."
    if not value.strip():
        trial.report.add(
            Check(
                "secret_format",
                "Client secret",
                Outcome.FAILED,
                "No client secret was given.",
                ms.SECRET_STEPS,
            )
        )
        return "Skipped: the secret's value is needed."
    trial.report.add(
        Check(
            "secret_format",
            "Client secret",
            Outcome.PASSED,
            "The secret looks like a secret value.",
        )
    )
    return None


async def _sign_in(trial: _Trial) -> str | None:
    """Client credentials through MSAL, always for a fresh token: the credentials are what
    is being tested, not the cache."""
    title = "Sign-in with the app's credentials"
    report, credential = trial.report, trial.draft.credential
    assert credential is not None and report.tenant_id is not None
    captured: dict[str, str] = {}
    try:
        trial.auth = await asyncio.to_thread(
            AppOnlyAuth,
            trial.settings,
            client_id=trial.draft.client_id.strip(),
            tenant_id=report.tenant_id,
            credential=credential,
            cache_blob=trial.cache_blob,
            on_cache_change=lambda blob: captured.__setitem__("cache", blob),
        )
        token = trial.token = await asyncio.to_thread(trial.auth.acquire, force_refresh=True)
    except ms.MicrosoftError as error:
        report.add(failed_check("sign_in", title, error))
        return "Skipped: the app could not sign in."
    report.token_cache = captured.get("cache")
    report.service_principal_id = str(token.claims.get("oid") or "") or None
    report.token_tenant_id = str(token.claims.get("tid") or "") or None
    report.add(Check("sign_in", title, Outcome.PASSED, "Microsoft Entra ID issued a token."))
    return None


async def _consent(trial: _Trial) -> str | None:
    """Consent and the feature matrix, from the token's roles."""
    report, token = trial.report, trial.token
    assert token is not None
    report.granted_permissions = sorted(token.roles)
    report.matrix = app_feature_matrix(token.roles)
    if not token.roles:
        report.add(
            Check(
                "consent",
                "Admin consent",
                Outcome.FAILED,
                "Admin consent has not been granted: the app's token carries no permissions.",
                "In the Microsoft Entra admin center open App registrations → your app → API "
                "permissions "
                f"and click 'Grant admin consent for {tenant_label(trial.domain_names)}'.",
            )
        )
        return "Skipped: no permissions are granted."
    report.add(
        Check(
            "consent",
            "Admin consent",
            Outcome.PASSED,
            f"Granted: {', '.join(report.granted_permissions)}.",
        )
    )
    return None


def _feature_step(feature: Feature) -> CheckStep:
    """Whether the granted permissions turn ``feature`` on (information: not required)."""
    title = FEATURE_TITLES[feature]
    key = f"feature:{feature.value}"

    async def run(trial: _Trial) -> str | None:
        matrix = trial.matrix
        if feature in matrix.enabled:
            check = Check(key, title, Outcome.PASSED, f"{title} can be enabled.", required=False)
        else:
            missing = ", ".join(matrix.missing[feature])
            check = Check(
                key,
                title,
                Outcome.FAILED,
                f"{title} is off: the app lacks {missing}.",
                f"Add {missing} under API permissions → Add a permission → Microsoft Graph → "
                "Application permissions, then grant admin consent.",
                required=False,
            )
        trial.report.add(check)
        return None

    return CheckStep(key, title, frozenset({feature}), run, shown_when_skipped=False)


async def _tasks(trial: _Trial) -> str | None:
    """Task Sync never runs through a service account; the report says why."""
    trial.report.add(
        skipped_check(
            "feature:tasks", FEATURE_TITLES[Feature.TASKS], trial.matrix.notes[Feature.TASKS]
        )
    )
    return None


async def _rooms(trial: _Trial) -> str | None:
    """Place.Read.All, when a meeting type books a room (nothing to report otherwise)."""
    if not trial.books_rooms or Feature.SCHEDULING not in trial.matrix.enabled:
        return None
    title = "Meeting rooms"
    granted = {p.lower() for p in trial.report.granted_permissions}
    if ROOM_PERMISSION.lower() in granted:
        check = Check(
            "rooms", title, Outcome.PASSED, "Meeting rooms can be looked up.", required=False
        )
    else:
        check = Check(
            "rooms",
            title,
            Outcome.WARNING,
            f"A meeting type books a meeting room, but the app lacks {ROOM_PERMISSION}: its "
            "bookings fail, as the rooms can't be looked up.",
            f"Add {ROOM_PERMISSION} under API permissions → Add a permission → Microsoft Graph "
            "→ Application permissions, then grant admin consent (or turn room booking off "
            "for those meeting types).",
            required=False,
        )
    trial.report.add(check)
    return None


async def _permissions(trial: _Trial) -> str | None:
    if not trial.matrix.enabled:
        trial.report.add(
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
        trial.report.add(
            Check(
                "permissions", "Permissions", Outcome.PASSED, "At least one feature can be enabled."
            )
        )
    return None


async def _mailbox(trial: _Trial) -> str | None:
    """The test account exists (and is enabled) in the tenant."""
    if trial.report.outcome("test_mailbox_domain") == Outcome.FAILED:
        reason = "Skipped: no usable test account."
        trial.report.add(skipped_check("mailbox", "Test account", reason))
        return reason
    check = trial.report.add(
        await _probe_user(await trial.graph(), user_path(trial.mailbox), trial.mailbox)
    )
    return "Skipped: the test account was not found." if check.outcome == Outcome.FAILED else None


async def _mail_access(trial: _Trial) -> str | None:
    key, title = "mail_access", "Read the test account's mail"
    if Feature.EMAIL not in trial.matrix.enabled:
        trial.report.add(skipped_check(key, title, "Email Sync is off."))
        return None
    base = user_path(trial.mailbox)
    trial.report.add(
        await _probe(
            await trial.graph(),
            key,
            title,
            f"{base}/mailFolders/inbox/messages",
            {"$top": 1, "$select": "id"},
            trial.mailbox,
            delta_path=f"{base}/mailFolders/inbox/messages/delta",
        )
    )
    return None


async def _calendar_access(trial: _Trial) -> str | None:
    key, title = "calendar_access", "Read the test account's calendar"
    if Feature.CALENDAR not in trial.matrix.enabled:
        trial.report.add(skipped_check(key, title, "Calendar Sync is off."))
        return None
    trial.report.add(
        await _probe(
            await trial.graph(),
            key,
            title,
            f"{user_path(trial.mailbox)}/calendar/events",
            {"$top": 1, "$select": "id"},
            trial.mailbox,
        )
    )
    return None


MAILBOX_FEATURES = frozenset({Feature.EMAIL, Feature.CALENDAR, Feature.SCHEDULING})

# Run Test's checks, in order. The first that can't let the others run (no domains, no
# tenant, no usable secret, no sign-in, no consent, no test account) has the rest reported
# as skipped, with its reason.
CHECKS: tuple[CheckStep, ...] = (
    CheckStep("domains", "Domains to sync", ALL_FEATURES, _domains),
    CheckStep(
        "test_mailbox_domain", "Test account's domain", MAILBOX_FEATURES, _test_mailbox_domain
    ),
    CheckStep("tenant", "Tenant", ALL_FEATURES, _tenant),
    CheckStep("secret_format", "Client secret", ALL_FEATURES, _secret_format),
    CheckStep("sign_in", "Sign-in with the app's credentials", ALL_FEATURES, _sign_in),
    CheckStep("consent", "Admin consent", ALL_FEATURES, _consent),
    _feature_step(Feature.EMAIL),
    _feature_step(Feature.CALENDAR),
    _feature_step(Feature.SCHEDULING),
    CheckStep(
        "rooms", "Meeting rooms", frozenset({Feature.SCHEDULING}), _rooms, shown_when_skipped=False
    ),
    CheckStep(
        "feature:tasks",
        FEATURE_TITLES[Feature.TASKS],
        frozenset({Feature.TASKS}),
        _tasks,
        shown_when_skipped=False,
    ),
    CheckStep("permissions", "Permissions", ALL_FEATURES, _permissions),
    CheckStep("mailbox", "Test account", MAILBOX_FEATURES, _mailbox),
    CheckStep(
        "mail_access", "Read the test account's mail", frozenset({Feature.EMAIL}), _mail_access
    ),
    CheckStep(
        "calendar_access",
        "Read the test account's calendar",
        frozenset({Feature.CALENDAR}),
        _calendar_access,
    ),
)


async def run_connection_test(
    session: Session,
    settings: Settings,
    organization: Organization,
    draft: ServiceAccountDraft,
    *,
    cache_blob: str | None = None,
    graph_transport: Any = None,
    sleep: Callable[[float], Any] | None = None,
) -> TestReport:
    """Diagnose ``draft`` against its test mailbox: each of ``CHECKS`` in turn; see the
    module docstring."""
    domains = OrganizationRepository(session).domains(organization.id)
    trial = _Trial(
        settings=settings,
        draft=draft,
        domain_names=[d.name for d in domains],
        cache_blob=cache_blob,
        graph_transport=graph_transport,
        sleep=sleep,
        books_rooms=ConnectionRepository(session).books_rooms(organization.id),
    )
    async with trial.exits:
        for index, step in enumerate(CHECKS):
            reason = await step.run(trial)
            if reason is not None:
                for later in CHECKS[index + 1 :]:
                    if later.shown_when_skipped:
                        trial.report.add(skipped_check(later.key, later.title, reason))
                break
    if trial.auth is not None and trial.auth.cache.has_state_changed:
        trial.report.token_cache = trial.auth.cache.serialize()
    return trial.report


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
        return failed_check("mailbox", title, error)
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
            "inside it (the service account's access policy commands and mailbox reachability "
            "report show both).",
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
        return not_verified_check(key, title, error)
    except ms.MicrosoftError as error:
        return failed_check(key, title, error)
    return Check(key, title, Outcome.PASSED, f"{title.replace('Read', 'Read access to')}: OK.")
