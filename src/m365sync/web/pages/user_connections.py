"""User → Manage mailbox and CRM connections: the member's own connection, Connect your
Office 365 (through the tenant's sign-in and consent pages), Disconnect, features, status."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response

from m365sync.errors import M365SyncError
from m365sync.web.dependencies import DbSession, MemberForm, Runtime, SignedInMember, Workers
from m365sync.web.pages import services
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(route_class=PageRoute)

NOTICES = {
    "connected": "Your Office 365 mailbox is connected.",
    "disconnected": "Disconnected. Your tokens were deleted.",
}


def _page(
    request: Request,
    db: DbSession,
    me: SignedInMember,
    *,
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
) -> Response:
    return render(
        request,
        "user/connections.html",
        status_code=status_code,
        title="Mailbox and CRM connections",
        area="user",
        nav="connections",
        view=services.my_connections(db, me),
        error=error,
        notice=notice,
    )


@router.get("/me/connections", include_in_schema=False)
def connections_page(
    request: Request, db: DbSession, me: SignedInMember, notice: str = ""
) -> Response:
    return _page(request, db, me, notice=NOTICES.get(notice))


@router.get("/me/connections/status", include_in_schema=False)
def sync_status_fragment(request: Request, db: DbSession, me: SignedInMember) -> Response:
    """The sync status section, refreshed by the page's script while a first sync runs."""
    return render(request, "user/_sync_status.html", view=services.my_connections(db, me))


@router.post("/me/connections/office365", include_in_schema=False)
async def connect_office365(
    request: Request, db: DbSession, me: MemberForm, runtime: Runtime
) -> Response:
    callback = str(request.url_for("office365_connection_callback"))
    try:
        url = await services.begin_office365_connection(db, runtime, me, callback)
    except M365SyncError as error:
        return _page(request, db, me, status_code=error.status, error=error)
    return redirect(url)


@router.get(
    "/connections/office365/callback", name="office365_connection_callback", include_in_schema=False
)
async def office365_callback(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    me: SignedInMember,
    runtime: Runtime,
    workers: Workers,
) -> Response:
    try:
        await services.complete_office365_connection(db, runtime, me, dict(request.query_params))
    except M365SyncError as error:
        return _page(request, db, me, status_code=error.status, error=error)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/me/connections?notice=connected")


@router.post("/me/connections/disconnect", include_in_schema=False)
def disconnect(db: DbSession, me: MemberForm, runtime: Runtime) -> Response:
    services.disconnect(db, runtime, me)
    return redirect("/me/connections?notice=disconnected")
