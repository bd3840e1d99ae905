"""Admin → My Organization → Authentication → Service Accounts: the list; the side panel
(Add → "Connect using Office 365" with Run Test and Save, or "Connect using Exchange";
Edit; Rotate secret); remove; and the "Limit access" page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response

from m365sync.errors import M365SyncError
from m365sync.web.dependencies import AdminForm, DbSession, Runtime, SignedInAdmin, Workers
from m365sync.web.pages import services
from m365sync.web.pages.rendering import PageRoute, is_fragment_request, redirect, render

router = APIRouter(prefix="/admin/service-accounts", route_class=PageRoute)

PANELS = {"add", "office365", "exchange", "edit", "rotate"}
NOTICES = {
    "saved": "Service account saved. Its mailboxes start syncing now.",
    "exchange-saved": "Exchange service account saved.",
    "edited": "Service account tested and saved.",
    "rotated": "New client secret tested and saved; the old one is no longer used.",
    "removed": "Service account removed.",
}

TextField = Annotated[str, Form()]


def _draft(
    name: str,
    client_id: str,
    client_secret: str,
    test_mailbox: str,
    secret_expires_on: str,
    tenant_id: str,
) -> services.ServiceAccountDraft:
    return services.ServiceAccountDraft(
        name=name.strip() or "Office 365 service account",
        client_id=client_id.strip(),
        client_secret=client_secret.strip(),
        test_mailbox=test_mailbox.strip(),
        secret_expires_on=secret_expires_on.strip(),
        tenant_id=tenant_id.strip(),
    )


def _refused(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    error: M365SyncError,
    *,
    panel: str,
    account_id: str = "",
    draft: Any = None,
) -> Response:
    """The panel again, with why saving was refused and, when Run Test was the reason, its
    checks (the panel then offers to save with only some features)."""
    checks = None
    if isinstance(error, services.RunTestFailed):
        checks = services.check_views(error.report)
    return _list_page(
        request,
        db,
        me,
        panel=panel,
        account_id=account_id,
        status_code=error.status,
        error=error,
        draft=draft,
        checks=checks,
    )


def _list_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    *,
    panel: str = "",
    account_id: str = "",
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
    draft: Any = None,
    checks: list[services.CheckView] | None = None,
) -> Response:
    panel = panel if panel in PANELS else ""
    account = None
    if panel in ("edit", "rotate"):
        account = services.service_account_view(db, me.organization_id, account_id)
    return render(
        request,
        "admin/service_accounts.html",
        status_code=status_code,
        title="Service Accounts",
        area="admin",
        nav="service-accounts",
        accounts=services.list_service_accounts(db, me.organization_id),
        feature_names=services.FEATURE_NAMES,
        has_domains=bool(services.list_domains(db, me.organization_id)),
        panel=panel,
        account=account,
        error=error,
        notice=notice,
        draft=draft,
        checks=checks,
        can_save_partial=error is not None and isinstance(error, services.RunTestFailed),
    )


@router.get("", include_in_schema=False)
def service_accounts_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    panel: str = "",
    account: str = "",
    notice: str = "",
) -> Response:
    return _list_page(request, db, me, panel=panel, account_id=account, notice=NOTICES.get(notice))


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
    draft = _draft(name, client_id, client_secret, test_mailbox, secret_expires_on, tenant_id)
    try:
        checks = await services.run_service_account_test(db, runtime, me, draft)
    except M365SyncError as error:
        if is_fragment_request(request):
            return render(request, "partials/error.html", status_code=error.status, error=error)
        return _list_page(
            request, db, me, panel="office365", status_code=error.status, error=error, draft=draft
        )
    if is_fragment_request(request):
        return render(request, "admin/_test_results.html", checks=checks)
    return _list_page(request, db, me, panel="office365", draft=draft, checks=checks)


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
    draft = _draft(name, client_id, client_secret, test_mailbox, secret_expires_on, tenant_id)
    try:
        await services.save_service_account(
            db, runtime, me, draft, accept_partial=accept_partial == "yes"
        )
    except M365SyncError as error:
        return _refused(request, db, me, error, panel="office365", draft=draft)
    # After the response, i.e. after this request's transaction has committed.
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=saved")


@router.post("/exchange", include_in_schema=False)
def save_exchange(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    name: TextField = "",
    server_url: TextField = "",
    username: TextField = "",
    password: TextField = "",
) -> Response:
    draft = services.ExchangeDraft(
        name=name.strip() or "Exchange service account",
        server_url=server_url.strip(),
        username=username.strip(),
        password=password,
    )
    try:
        services.save_exchange_service_account(db, runtime, me, draft)
    except M365SyncError as error:
        return _list_page(
            request, db, me, panel="exchange", status_code=error.status, error=error, draft=draft
        )
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
    try:
        await services.edit_service_account(
            db,
            runtime,
            me,
            account_id,
            name=name,
            test_mailbox=test_mailbox,
            accept_partial=accept_partial == "yes",
        )
    except M365SyncError as error:
        db.rollback()
        return _refused(request, db, me, error, panel="edit", account_id=account_id)
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
    try:
        await services.rotate_secret(
            db,
            runtime,
            me,
            account_id,
            secret=client_secret,
            secret_expires_on=secret_expires_on,
            accept_partial=accept_partial == "yes",
        )
    except M365SyncError as error:
        db.rollback()
        return _refused(request, db, me, error, panel="rotate", account_id=account_id)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/admin/service-accounts?notice=rotated")


@router.post("/{account_id}/remove", include_in_schema=False)
def remove(db: DbSession, me: AdminForm, runtime: Runtime, account_id: str) -> Response:
    services.remove_service_account(db, runtime, me, account_id)
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
    account = services.service_account_view(db, me.organization_id, account_id)
    commands = None
    error: M365SyncError | None = None
    if group:
        try:
            commands = await services.access_policy_commands(db, runtime, me, account_id, group)
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
    rows = await services.mailbox_reachability(db, runtime, me, account_id)
    if is_fragment_request(request):
        return render(request, "admin/_mailbox_reach.html", rows=rows)
    account = services.service_account_view(db, me.organization_id, account_id)
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
