"""Admin → My Organization → Salesforce: the connection (status, who m365sync signs in as,
org, instance, API usage against its share), Run Test, Connect Salesforce (web server flow
with PKCE, back at ``/salesforce/callback``) or a server-to-server sign-in (JWT bearer with
an uploaded key, client credentials), Disconnect; the members ↔ Salesforce users mapping;
and the records waiting for a person or a retry, with Retry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from m365sync.crm import salesforce_service as salesforce
from m365sync.crm.salesforce_schemas import SalesforceOverview, SalesforceTestReport
from m365sync.errors import M365SyncError
from m365sync.web.dependencies import AdminForm, DbSession, Runtime, SignedInAdmin
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(route_class=PageRoute)

PAGE = "/admin/salesforce"
NOTICES = {
    "connected": "Salesforce is connected: Run Test's results are below. Emails, meetings and "
    "tasks go to Salesforce from now on.",
    "tested": "Run Test for Salesforce finished: the results are below.",
    "disconnected": "Salesforce is disconnected: m365sync no longer writes to it.",
    "share": "The API share is saved.",
    "leads_on": "An unknown person who books a meeting now becomes a Salesforce Lead.",
    "leads_off": "No Lead is created for people who book: their meetings wait unresolved.",
    "linked": "The member's Salesforce user is saved.",
    "unlinked": "The member is matched to a Salesforce user by email address again.",
    "retried": "The parked records will be written again in a moment.",
}
LOGIN_HOSTS = {
    "production": "https://login.salesforce.com",
    "sandbox": "https://test.salesforce.com",
}
TextField = Annotated[str, Form()]


@dataclass(frozen=True)
class CheckView:
    title: str
    outcome: str
    explanation: str
    fix: str


@dataclass(frozen=True)
class TestResultsView:
    """Run Test as the page shows it: the verdict on top, then the checks, failures first."""

    verdict: str
    outcome: str
    checks: list[CheckView]

    __test__ = False  # not a pytest class


def _results(report: SalesforceTestReport) -> TestResultsView | None:
    if not report.checks:
        return None
    return TestResultsView(
        verdict=report.verdict,
        outcome=report.outcome.value,
        checks=[
            CheckView(c.title, c.outcome.value, c.message, c.fix) for c in report.worst_first()
        ],
    )


def _login_url(login_host: str, my_domain: str) -> str | None:
    """The login URL the form's choice names (None: the server's default)."""
    if login_host == "my-domain":
        return my_domain.strip() or None
    return LOGIN_HOSTS.get(login_host)


def _page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    *,
    member: str = "",
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
    report: SalesforceTestReport | None = None,
) -> Response:
    found: SalesforceOverview = salesforce.salesforce_overview(db, me.organization_id)
    shown = report if report is not None else SalesforceTestReport(checks=found.last_test)
    share = found.api_share or runtime.settings.salesforce_api_share
    used_share = (
        found.api_used / found.api_limit if found.api_used is not None and found.api_limit else None
    )
    return render(
        request,
        "admin/salesforce.html",
        status_code=status_code,
        title="Salesforce",
        area="admin",
        nav="salesforce",
        sf=found,
        share_percent=round(share * 100),
        own_share=found.api_share is not None,
        used_percent=None if used_share is None else round(used_share * 100, 1),
        results=_results(shown),
        backlog=salesforce.salesforce_backlog(db, me.organization_id, member_id=member or None),
        member=member,
        default_login_url=runtime.settings.salesforce_login_url,
        callback_url=runtime.settings.public_url.rstrip("/") + salesforce.CALLBACK_PATH,
        error=error,
        notice=notice,
    )


@router.get(PAGE, include_in_schema=False)
def salesforce_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    notice: str = "",
    member: str = "",
) -> Response:
    return _page(request, db, me, runtime, member=member, notice=NOTICES.get(notice))


@router.post(PAGE + "/connect", include_in_schema=False)
def connect_salesforce(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    consumer_key: TextField = "",
    consumer_secret: TextField = "",
    login_host: TextField = "",
    my_domain: TextField = "",
) -> Response:
    """Connect Salesforce: off to Salesforce's sign-in page (PKCE), back at the callback."""
    try:
        url = salesforce.begin_connect_salesforce(
            db,
            runtime.box,
            runtime.settings,
            me.organization_id,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            login_url=_login_url(login_host, my_domain),
        )
    except M365SyncError as error:
        return _page(request, db, me, runtime, status_code=error.status, error=error)
    return redirect(url)


@router.get(salesforce.CALLBACK_PATH, include_in_schema=False)
def salesforce_callback(
    request: Request, db: DbSession, me: SignedInAdmin, runtime: Runtime
) -> Response:
    """Salesforce sent the admin back: finish connecting, show Run Test's results."""
    return _connect(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.complete_connect_salesforce(
            db, runtime.box, runtime.settings, dict(request.query_params)
        )[1],
    )


async def _pem(upload: UploadFile | None, pasted: str) -> str:
    """A PEM from an uploaded file, else from the text box."""
    if upload is not None and upload.filename:
        return (await upload.read()).decode("utf-8", errors="replace")
    return pasted


@router.post(PAGE + "/jwt", include_in_schema=False)
async def connect_with_jwt(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    consumer_key: TextField = "",
    username: TextField = "",
    private_key: TextField = "",
    private_key_file: Annotated[UploadFile | None, File()] = None,
    certificate_file: Annotated[UploadFile | None, File()] = None,
    login_host: TextField = "",
    my_domain: TextField = "",
) -> Response:
    key = await _pem(private_key_file, private_key)
    certificate = await _pem(certificate_file, "") or None
    return _connect(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.connect_with_jwt(
            db,
            runtime.box,
            runtime.settings,
            me.organization_id,
            consumer_key=consumer_key,
            username=username,
            private_key_pem=key,
            certificate_pem=certificate,
            login_url=_login_url(login_host, my_domain),
        ),
    )


@router.post(PAGE + "/client-credentials", include_in_schema=False)
def connect_with_client_credentials(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    consumer_key: TextField = "",
    consumer_secret: TextField = "",
    my_domain: TextField = "",
) -> Response:
    return _connect(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.connect_with_client_credentials(
            db,
            runtime.box,
            runtime.settings,
            me.organization_id,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            login_url=my_domain.strip() or None,
        ),
    )


@router.post(PAGE + "/test", include_in_schema=False)
def run_test(request: Request, db: DbSession, me: AdminForm, runtime: Runtime) -> Response:
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.run_salesforce_test(
            db, runtime.box, runtime.settings, me.organization_id
        ),
        "tested",
    )


@router.post(PAGE + "/disconnect", include_in_schema=False)
def disconnect(request: Request, db: DbSession, me: AdminForm, runtime: Runtime) -> Response:
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.disconnect_salesforce(
            db, runtime.box, runtime.settings, me.organization_id
        ),
        "disconnected",
    )


@router.post(PAGE + "/share", include_in_schema=False)
def set_share(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    share_percent: TextField = "",
) -> Response:
    text = share_percent.strip().rstrip("%").strip()
    try:
        share = float(text) / 100 if text else None
    except ValueError:
        share = -1.0  # the service says what a share must be
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.set_salesforce_api_share(db, me.organization_id, share),
        "share",
    )


@router.post(PAGE + "/create-leads", include_in_schema=False)
def set_create_leads(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    create_leads: TextField = "",
) -> Response:
    enabled = create_leads == "on"
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.set_salesforce_lead_creation(db, me.organization_id, enabled),
        "leads_on" if enabled else "leads_off",
    )


@router.post(PAGE + "/members/{member_id}/link", include_in_schema=False)
def link_member(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    member_id: str,
    user: TextField = "",
) -> Response:
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.link_member_to_salesforce_user(
            db, runtime.box, runtime.settings, me.organization_id, member_id, user
        ),
        "linked",
    )


@router.post(PAGE + "/members/{member_id}/unlink", include_in_schema=False)
def unlink_member(db: DbSession, me: AdminForm, member_id: str) -> Response:
    salesforce.unlink_member_from_salesforce_user(db, me.organization_id, member_id)
    return redirect(PAGE + "?notice=unlinked")


@router.post(PAGE + "/retry", include_in_schema=False)
def retry(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    activity_id: TextField = "",
) -> Response:
    return _act(
        request,
        db,
        me,
        runtime,
        lambda: salesforce.retry_parked_salesforce_records(
            db, me.organization_id, [activity_id] if activity_id else None
        ),
        "retried",
    )


def _act(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    action: Callable[[], object],
    notice: str,
) -> Response:
    """Run one service call: back to the page with ``notice``, or the page with its error."""
    try:
        action()
    except M365SyncError as error:
        return _page(request, db, me, runtime, status_code=error.status, error=error)
    return redirect(f"{PAGE}?notice={notice}")


def _connect(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    runtime: Runtime,
    connect: Callable[[], SalesforceTestReport],
) -> Response:
    """Run one way of connecting: back to the page when Salesforce let m365sync sign in (Run
    Test's results are shown there), else the page with the refusal and its fix."""
    try:
        report = connect()
    except M365SyncError as error:
        return _page(request, db, me, runtime, status_code=error.status, error=error)
    if not report.signed_in:
        return _page(request, db, me, runtime, report=report, status_code=422)
    return redirect(PAGE + "?notice=connected")
