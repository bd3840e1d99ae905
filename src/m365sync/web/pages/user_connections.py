"""User → Manage mailbox and CRM connections: the member's own connection, Connect your
Office 365 (through the tenant's sign-in and consent pages), Disconnect, features, status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlalchemy.orm import Session

from m365sync.auth.service import SignedIn
from m365sync.connections import service_accounts, user_connections
from m365sync.connections.models import ServiceAccount, UserConnection
from m365sync.errors import M365SyncError, NotFound
from m365sync.organizations import models
from m365sync.sync import service as sync
from m365sync.web.dependencies import (
    DbSession,
    MemberForm,
    Runtime,
    SignedInMember,
    Workers,
    member_of,
    organization_of,
)
from m365sync.web.pages._charts import CHART_HOURS, HealthCharts, health_charts
from m365sync.web.pages._views import FEATURE_NAMES, UnitView, unit_view
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(route_class=PageRoute)

NOTICES = {
    "connected": "Your Office 365 mailbox is connected.",
    "disconnected": "Disconnected. Your tokens were deleted.",
}


@dataclass
class FeatureView:
    key: str
    name: str
    enabled: bool
    via: str  # "your Office 365 connection" | "the service account" | ""
    why_not: str = ""


@dataclass
class MyConnectionsView:
    member: models.Member
    connection: UserConnection | None
    connection_view: dict[str, Any] | None
    service_accounts: list[ServiceAccount]
    features: list[FeatureView]
    sync_units: list[UnitView]
    migration: str | None
    health_charts: HealthCharts


def _feature_view(key: str, name: str, by_account: bool, by_own: bool) -> FeatureView:
    why_not = ""
    if not (by_account or by_own):
        why_not = (
            "Task Sync works only through your own Office 365 connection: "
            "click Connect your Office 365."
            if key == "tasks"
            else "Connect your Office 365, or ask your admin to add a service account."
        )
    via = "the service account" if by_account else "your Office 365 connection" if by_own else ""
    return FeatureView(key, name, by_account or by_own, via, why_not)


def _my_connections(db: Session, me: SignedIn) -> MyConnectionsView:
    """The member's connection (``user_connections``' view of it), the service accounts
    covering their domain, the features each enables, their sync."""
    organization = organization_of(db, me)
    member = member_of(db, me)
    connection = user_connections.get_user_connection(db, organization, member)
    accounts = service_accounts.accounts_covering(db, organization, member.domain)
    view = user_connections.user_connection_view(connection, bool(accounts)) if connection else None
    own = (
        set(view["features"])
        if view and view["kind"] == "office365" and view["status"] == "active"
        else set()
    )
    features = [
        _feature_view(
            key,
            name,
            by_account=key != "tasks" and any(key in a.enabled_features for a in accounts),
            by_own=key in own,
        )
        for key, name in FEATURE_NAMES.items()
    ]
    overview = sync.mailbox_overview(db, organization.id, [member.id])
    units = [unit_view(u, overview.held) for u in overview.units]
    return MyConnectionsView(
        member=member,
        connection=connection,
        connection_view=view,
        service_accounts=accounts,
        features=features,
        sync_units=units,
        migration=view["migration"] if view else None,
        health_charts=health_charts(
            sync.health_history(db, organization.id, member.id, hours=CHART_HOURS),
            hours=CHART_HOURS,
        ),
    )


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
        view=_my_connections(db, me),
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
    return render(request, "user/_sync_status.html", view=_my_connections(db, me))


@router.post("/me/connections/office365", include_in_schema=False)
async def connect_office365(
    request: Request, db: DbSession, me: MemberForm, runtime: Runtime
) -> Response:
    callback = str(request.url_for("office365_connection_callback"))
    try:
        url = await user_connections.start_office365_connection(
            db, runtime, organization_of(db, me), member_of(db, me), redirect=callback
        )
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
        await user_connections.complete_office365_connection(
            db,
            runtime,
            dict(request.query_params),
            member_id=me.member_id,
        )
    except M365SyncError as error:
        return _page(request, db, me, status_code=error.status, error=error)
    background.add_task(workers.sync_organization_now, me.organization_id)
    return redirect("/me/connections?notice=connected")


@router.post("/me/connections/disconnect", include_in_schema=False)
def disconnect(db: DbSession, me: MemberForm, runtime: Runtime) -> Response:
    if not sync.disconnect_member(
        db, runtime, organization_of(db, me), member_of(db, me), actor=me.email
    ):
        raise NotFound("You have no connection to disconnect.", fix="Reload the page.")
    return redirect("/me/connections?notice=disconnected")
