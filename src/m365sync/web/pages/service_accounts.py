"""Admin → My Organization → Authentication → Service Accounts: the list; the side panel
(Add → "Set up for me", "Connect using Office 365" with Run Test and Save, or "Connect using
Exchange"; Edit; Rotate secret); remove; and the "Limit access" page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response

from m365sync.connections import access_policy, service_accounts, setup
from m365sync.connections.errors import RunTestFailed, SetupFailed
from m365sync.connections.features import APPLICATION_PERMISSIONS, FEATURE_TITLES
from m365sync.connections.run_test import ServiceAccountDraft, TestReport
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.errors import M365SyncError
from m365sync.microsoft.auth import ClientSecret
from m365sync.organizations import service as organizations
from m365sync.web.dependencies import (
    AdminForm,
    DbSession,
    Runtime,
    SignedInAdmin,
    Workers,
    member_of,
    organization_of,
)
from m365sync.web.pages._views import FEATURE_NAMES
from m365sync.web.pages.rendering import PageRoute, is_fragment_request, redirect, render

router = APIRouter(prefix="/admin/service-accounts", route_class=PageRoute)

PANELS = {"add", "setup", "office365", "exchange", "edit", "rotate"}
NOTICES = {
    "saved": "Service account saved. Its mailboxes start syncing now.",
    "set-up": "Set up: m365sync registered its app in your Microsoft Entra ID, granted its "
    "permissions, tested it and saved the service account. Its mailboxes start syncing now.",
    "set-up-with-problem": "The app is registered and the service account saved, but Run Test "
    "found a problem: the account's health below says what to fix.",
    "exchange-saved": "Exchange service account saved.",
    "edited": "Service account tested and saved.",
    "rotated": "New client secret tested and saved; the old one is no longer used.",
    "removed": "Service account removed.",
}

REACH_LABELS = {
    access_policy.Reach.REACHABLE: "Reachable",
    access_policy.Reach.BLOCKED_BY_POLICY: "Blocked by policy",
    access_policy.Reach.NOT_ENABLED: "Unlicensed or on-premises",
    access_policy.Reach.NOT_FOUND: "Not found",
    access_policy.Reach.MAILBOX_FULL: "Mailbox full",
    access_policy.Reach.NOT_VERIFIED: "Not verified",
    access_policy.Reach.ERROR: "Error",
}

TextField = Annotated[str, Form()]


@dataclass(frozen=True)
class CheckView:
    title: str
    outcome: str  # "passed" | "failed" | "skipped" | "warning"
    explanation: str
    fix: str = ""


@dataclass(frozen=True)
class TestResultsView:
    """Run Test as the panel shows it: the verdict on top, then the checks, failures first."""

    verdict: str
    outcome: str  # "failed" | "warning" | "passed"
    checks: list[CheckView]

    __test__ = False  # not a pytest class


def _test_results(report: TestReport) -> TestResultsView:
    return TestResultsView(
        verdict=report.verdict,
        outcome=str(report.overall),
        checks=[
            CheckView(title=c.title, outcome=str(c.outcome), explanation=c.message, fix=c.fix or "")
            for c in report.worst_first()
        ],
    )


@dataclass(frozen=True)
class ReachRow:
    email: str
    reach: str
    label: str
    message: str
    fix: str


def _entered(**fields: str) -> dict[str, str]:
    """What the panel's form held, shown again with the answer (never the secret)."""
    return {name: value.strip() for name, value in fields.items()}


def _office365_draft(entered: dict[str, str], client_secret: str) -> ServiceAccountDraft:
    secret = client_secret.strip()
    return ServiceAccountDraft(
        client_id=entered["client_id"],
        credential=ClientSecret(secret) if secret else None,
        test_mailbox=entered["test_mailbox"],
        tenant_id=entered["tenant_id"] or None,
        name=entered["name"],
        secret_expires_at=service_accounts.parse_secret_expiry(entered["secret_expires_on"]),
    )


def _account_view(runtime: ConnectionRuntime, account: Any) -> dict[str, Any]:
    """What people may see of the account (never a secret), its expiry warned about as the
    server's settings say."""
    warn = runtime.settings.secret_expiry_warning_days
    return service_accounts.service_account_view(account, datetime.now(UTC), warn)


def _refused(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: ConnectionRuntime,
    error: M365SyncError,
    *,
    panel: str,
    account_id: str = "",
    entered: dict[str, str] | None = None,
) -> Response:
    """The panel again, with why saving was refused and, when Run Test was the reason, its
    checks (the panel then offers to save with only some features)."""
    results = None
    if isinstance(error, RunTestFailed):
        results = _test_results(error.report)
    return _list_page(
        request,
        db,
        me,
        runtime,
        panel=panel,
        account_id=account_id,
        status_code=error.status,
        error=error,
        entered=entered,
        results=results,
    )


def _list_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: ConnectionRuntime,
    *,
    panel: str = "",
    account_id: str = "",
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
    entered: dict[str, str] | None = None,
    results: TestResultsView | None = None,
) -> Response:
    panel = panel if panel in PANELS else ""
    organization = organization_of(db, me)
    account = None
    if panel in ("edit", "rotate"):
        stored = service_accounts.get_service_account(db, organization, account_id)
        account = _account_view(runtime, stored)
    return render(
        request,
        "admin/service_accounts.html",
        status_code=status_code,
        title="Service Accounts",
        area="admin",
        nav="service-accounts",
        accounts=[
            _account_view(runtime, a)
            for a in service_accounts.list_service_accounts(db, organization)
        ],
        feature_names=FEATURE_NAMES,
        permission_checklist=[
            (FEATURE_TITLES[feature], permissions)
            for feature, permissions in APPLICATION_PERMISSIONS.items()
        ],
        has_domains=bool(organizations.list_domains(db, organization)),
        panel=panel,
        account=account,
        error=error,
        notice=notice,
        entered=entered,
        checks=results.checks if results else None,
        results=results,
        can_save_partial=isinstance(error, RunTestFailed),
    )


@router.get("", include_in_schema=False)
def service_accounts_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    panel: str = "",
    account: str = "",
    notice: str = "",
) -> Response:
    return _list_page(
        request, db, me, runtime, panel=panel, account_id=account, notice=NOTICES.get(notice)
    )


@router.post("/test", include_in_schema=False)
async def run_test(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    name: TextField = "",
    client_id: TextField = "",
    client_secret: TextField = "",
    test_mailbox: TextField = "",
    secret_expires_on: TextField = "",
    tenant_id: TextField = "",
) -> Response:
    entered = _entered(
        name=name.strip() or "Office 365 service account",
        client_id=client_id,
        test_mailbox=test_mailbox,
        secret_expires_on=secret_expires_on,
        tenant_id=tenant_id,
    )
    try:
        draft = _office365_draft(entered, client_secret)
        report = await service_accounts.test_draft(db, runtime, organization_of(db, me), draft)
    except M365SyncError as error:
        if is_fragment_request(request):
            return render(request, "partials/error.html", status_code=error.status, error=error)
        return _list_page(
            request,
            db,
            me,
            runtime,
            panel="office365",
            status_code=error.status,
            error=error,
            entered=entered,
        )
    results = _test_results(report)
    if is_fragment_request(request):
        return render(request, "admin/_test_results.html", results=results)
    return _list_page(request, db, me, runtime, panel="office365", entered=entered, results=results)


@router.post("", include_in_schema=False)
async def save(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    workers: Workers,
    name: TextField = "",
    client_id: TextField = "",
    client_secret: TextField = "",
    test_mailbox: TextField = "",
    secret_expires_on: TextField = "",
    tenant_id: TextField = "",
    accept_partial: TextField = "",
) -> Response:
    entered = _entered(
        name=name.strip() or "Office 365 service account",
        client_id=client_id,
        test_mailbox=test_mailbox,
        secret_expires_on=secret_expires_on,
        tenant_id=tenant_id,
    )
    try:
        await service_accounts.add_service_account(
            db,
            runtime,
            organization_of(db, me),
            _office365_draft(entered, client_secret),
            partial=accept_partial == "yes",
            actor=me.email,
        )
    except M365SyncError as error:
        return _refused(request, db, me, runtime, error, panel="office365", entered=entered)
    # After the response, i.e. after this request's transaction has committed.
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=saved")


@router.post("/setup", include_in_schema=False)
async def begin_setup(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    features: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies the default)
    test_mailbox: TextField = "",
    name: TextField = "",
) -> Response:
    """Set up for me: off to Microsoft's sign-in (an administrator consents to the management
    permissions for this one step)."""
    entered = _entered(test_mailbox=test_mailbox, name=name, features=" ".join(features))
    try:
        url = await setup.begin_setup(
            db,
            runtime,
            organization_of(db, me),
            member_of(db, me),
            features=features,
            test_mailbox=test_mailbox,
            name=name,
            redirect=str(request.url_for("service_account_setup_callback")),
        )
    except M365SyncError as error:
        return _list_page(
            request,
            db,
            me,
            runtime,
            panel="setup",
            status_code=error.status,
            error=error,
            entered=entered,
        )
    return redirect(url)


@router.get("/setup/callback", name="service_account_setup_callback", include_in_schema=False)
async def setup_callback(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    workers: Workers,
) -> Response:
    """Microsoft sends the admin back here: the app is registered, consented, tested, saved."""
    try:
        result = await setup.complete_setup(
            db,
            runtime,
            dict(request.query_params),
            organization_id=me.organization_id,
            member_id=me.member_id,
        )
    except M365SyncError as error:
        if not isinstance(error, SetupFailed):
            db.rollback()
        # A failed setup's audit entries (and an account waiting for Entra ID) are kept.
        return _list_page(
            request, db, me, runtime, panel="setup", status_code=error.status, error=error
        )
    background.add_task(workers.sync_organization_now, me.organization_id)
    notice = "set-up" if result.report.ok else "set-up-with-problem"
    return redirect(f"/admin/service-accounts?notice={notice}")


@router.post("/exchange", include_in_schema=False)
async def save_exchange(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    workers: Workers,
    name: TextField = "",
    server_url: TextField = "",
    username: TextField = "",
    password: TextField = "",
    test_mailbox: TextField = "",
    accept_partial: TextField = "",
) -> Response:
    """Run Test for Exchange, then save: refused with the checks (nothing saved) while one
    fails, unless the admin chose to save with the failing features off."""
    entered = _entered(
        name=name.strip() or "Exchange service account",
        server_url=server_url,
        username=username,
        test_mailbox=test_mailbox,
    )
    try:
        await service_accounts.add_exchange_service_account(
            db,
            runtime,
            organization_of(db, me),
            name=entered["name"],
            server_url=entered["server_url"],
            username=entered["username"],
            password=password,
            test_mailbox=entered["test_mailbox"],
            partial=accept_partial == "yes",
            actor=me.email,
        )
    except M365SyncError as error:
        return _refused(request, db, me, runtime, error, panel="exchange", entered=entered)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=exchange-saved")


@router.post("/{account_id}/edit", include_in_schema=False)
async def edit(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    workers: Workers,
    account_id: str,
    name: TextField = "",
    test_mailbox: TextField = "",
    accept_partial: TextField = "",
) -> Response:
    organization = organization_of(db, me)
    account = service_accounts.get_service_account(db, organization, account_id)
    try:
        await service_accounts.edit_service_account(
            db,
            runtime,
            organization,
            account,
            name=name,
            test_mailbox=test_mailbox,
            partial=accept_partial == "yes",
            actor=me.email,
        )
    except M365SyncError as error:
        db.rollback()
        return _refused(request, db, me, runtime, error, panel="edit", account_id=account_id)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=edited")


@router.post("/{account_id}/rotate-secret", include_in_schema=False)
async def rotate_secret(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    workers: Workers,
    account_id: str,
    client_secret: TextField = "",
    secret_expires_on: TextField = "",
    accept_partial: TextField = "",
) -> Response:
    organization = organization_of(db, me)
    account = service_accounts.get_service_account(db, organization, account_id)
    try:
        await service_accounts.replace_secret(
            db,
            runtime,
            organization,
            account,
            secret=client_secret,
            secret_expires_at=service_accounts.parse_secret_expiry(secret_expires_on),
            partial=accept_partial == "yes",
            actor=me.email,
        )
    except M365SyncError as error:
        db.rollback()
        return _refused(request, db, me, runtime, error, panel="rotate", account_id=account_id)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=rotated")


@router.post("/{account_id}/remove", include_in_schema=False)
def remove(db: DbSession, me: AdminForm, runtime: Runtime, account_id: str) -> Response:
    organization = organization_of(db, me)
    account = service_accounts.get_service_account(db, organization, account_id)
    service_accounts.remove_service_account(db, runtime, organization, account, actor=me.email)
    return redirect("/admin/service-accounts?notice=removed")


# --- Limit access -----------------------------------------------------------------------------


@router.get("/{account_id}/limit-access", include_in_schema=False)
async def limit_access_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    account_id: str,
    group: str = "",
) -> Response:
    stored = service_accounts.get_service_account(db, organization_of(db, me), account_id)
    account = _account_view(runtime, stored)
    commands = None
    error: M365SyncError | None = None
    if group:
        try:
            commands = await access_policy.access_policy_commands(runtime, stored, group)
        except M365SyncError as problem:
            error = problem
    return render(
        request,
        "admin/limit_access.html",
        status_code=error.status if error else 200,
        title=f"Limit access · {account['name']}",
        area="admin",
        nav="service-accounts",
        account=account,
        group=group,
        commands=commands,
        error=error,
    )


@router.post("/{account_id}/limit-access/mailboxes", include_in_schema=False)
async def mailbox_reachability(
    request: Request, db: DbSession, me: AdminForm, runtime: Runtime, account_id: str
) -> Response:
    """Probe every synced member's mailbox (read-only). Fetched in the background by the
    page's script, which shows progress meanwhile; works as a plain form post too."""
    organization = organization_of(db, me)
    stored = service_accounts.get_service_account(db, organization, account_id)
    results = await access_policy.reachability(db, runtime, organization, stored)
    rows = [
        ReachRow(r.email, r.reach.value, REACH_LABELS.get(r.reach, r.reach.value), r.message, r.fix)
        for r in results
    ]
    if is_fragment_request(request):
        return render(request, "admin/_mailbox_reach.html", rows=rows)
    account = _account_view(runtime, stored)
    return render(
        request,
        "admin/limit_access.html",
        title=f"Limit access · {account['name']}",
        area="admin",
        nav="service-accounts",
        account=account,
        group="",
        commands=None,
        rows=rows,
    )
