"""Admin → Members and mailboxes (members, CSV import, roles, per-mailbox sync status with
Resync, organization-wide health) and Admin → Sync settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, Response, UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from m365sync.auth import set_password as set_local_password
from m365sync.auth.service import SignedIn
from m365sync.errors import M365SyncError, ValidationFailed
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Member, Organization
from m365sync.scheduling import service as scheduling
from m365sync.sync import service as sync
from m365sync.sync.models import SyncSettings
from m365sync.sync.schemas import SyncRules
from m365sync.sync.service import HealthSummary
from m365sync.web.dependencies import AdminForm, DbSession, SignedInAdmin, Workers, organization_of
from m365sync.web.pages._charts import CHART_HOURS, HealthCharts, health_charts
from m365sync.web.pages._views import UnitView, unit_view
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/admin", route_class=PageRoute)

NOTICES = {
    "added": "Member added.",
    "imported": "Members imported.",
    "role": "Role changed.",
    "password": "Password set: the member can sign in with it; their other sessions ended.",
    "resync": "Full resync requested: it starts within a few seconds.",
    "saved": "Sync settings saved.",
}


@dataclass
class MailboxRow:
    member: Member
    units: list[UnitView]


def _mailbox_rows(
    db: Session, organization: Organization
) -> tuple[list[MailboxRow], HealthSummary, HealthCharts]:
    """Per member, each feature's sync, and the organization's health: now, and over time."""
    overview = sync.mailbox_overview(db, organization.id)
    by_member: dict[str, list[UnitView]] = {}
    for unit in overview.units:
        by_member.setdefault(unit.member_id, []).append(unit_view(unit, overview.held))
    members = organizations.list_members(db, organization)
    rows = [MailboxRow(member=m, units=by_member.get(m.id, [])) for m in members]
    history = sync.health_history(db, organization.id, hours=CHART_HOURS)
    return rows, overview.health, health_charts(history, hours=CHART_HOURS)


@dataclass(frozen=True)
class SyncSettingsView:
    sync: SyncSettings
    scheduling_create_leads: bool


def _members_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    *,
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
    rejected: list[str] | None = None,
    role_change: RoleChange | None = None,
) -> Response:
    rows, health, charts = _mailbox_rows(db, organization_of(db, me))
    return render(
        request,
        "admin/members.html",
        status_code=status_code,
        title="Members and mailboxes",
        area="admin",
        nav="members",
        rows=rows,
        health=health,
        health_charts=charts,
        error=error,
        notice=notice,
        rejected=rejected or [],
        role_change=role_change,
    )


@router.get("/members", include_in_schema=False)
def members_page(request: Request, db: DbSession, me: SignedInAdmin, notice: str = "") -> Response:
    return _members_page(request, db, me, notice=NOTICES.get(notice))


@router.get("/members/status", include_in_schema=False)
def mailbox_status_fragment(request: Request, db: DbSession, me: SignedInAdmin) -> Response:
    rows, health, charts = _mailbox_rows(db, organization_of(db, me))
    return render(
        request,
        "admin/_mailbox_status.html",
        rows=rows,
        health=health,
        health_charts=charts,
    )


@router.post("/members", include_in_schema=False)
def add_member(
    request: Request,
    db: DbSession,
    me: AdminForm,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "user",
) -> Response:
    try:
        organizations.add_member(
            db, organization_of(db, me), email, name=name, role=role, actor=me.email
        )
    except M365SyncError as error:
        return _members_page(request, db, me, status_code=error.status, error=error)
    return redirect("/admin/members?notice=added")


@router.post("/members/import", include_in_schema=False)
async def import_members(
    request: Request,
    db: DbSession,
    me: AdminForm,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        raw = await file.read() if file is not None else b""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValidationFailed(
                "The file is not UTF-8 text.",
                fix="Save the spreadsheet as 'CSV UTF-8' and upload it again.",
            ) from error
    except M365SyncError as error:
        return await run_in_threadpool(
            _members_page, request, db, me, status_code=error.status, error=error
        )

    def import_rows() -> Response:  # the database, off the event loop
        try:
            result = organizations.import_members_csv(
                db, organization_of(db, me), text, actor=me.email
            )
        except M365SyncError as error:
            db.rollback()
            return _members_page(request, db, me, status_code=error.status, error=error)
        if result.errors:
            db.commit()  # the good rows are applied; the page lists the others
            summary = (
                f"{len(result.created)} added, {len(result.updated)} updated; "
                f"{len(result.errors)} rows not imported (fix them and import the file again)."
            )
            return _members_page(
                request, db, me, notice=f"Import: {summary}", rejected=list(result.errors)
            )
        return redirect("/admin/members?notice=imported")

    return await run_in_threadpool(import_rows)


@dataclass(frozen=True)
class RoleChange:
    """A role change waiting for the admin's confirmation."""

    member: Member
    role: str


@router.get("/members/{member_id}/role", include_in_schema=False)
def confirm_role(
    request: Request, db: DbSession, me: SignedInAdmin, member_id: str, to: str = ""
) -> Response:
    """The second step of a role change: the members page asking "are you sure?", so no
    stray click or key press changes who administers the organization."""
    member = organizations.get_member(db, organization_of(db, me), member_id)
    role = "admin" if to == "admin" else "user"
    if member.role == role:
        return redirect("/admin/members")
    return _members_page(request, db, me, role_change=RoleChange(member, role))


@router.post("/members/{member_id}/role", include_in_schema=False)
def change_role(
    db: DbSession,
    me: AdminForm,
    member_id: str,
    role: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    organization = organization_of(db, me)
    member = organizations.get_member(db, organization, member_id)
    if confirmed != "yes":  # not confirmed yet: ask first
        return redirect(
            f"/admin/members/{member.id}/role?to={'admin' if role == 'admin' else 'user'}"
        )
    organizations.update_member(
        db, organization, member, role=role, acting_member_id=me.member_id, actor=me.email
    )
    return redirect("/admin/members?notice=role")


@router.post("/members/password", include_in_schema=False)
def set_password(
    request: Request,
    db: DbSession,
    me: AdminForm,
    member_id: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    repeat_password: Annotated[str, Form()] = "",
) -> Response:
    """A local sign-in password for a member (e.g. one who can't use Sign in with Microsoft)."""
    try:
        member = organizations.get_member(db, organization_of(db, me), member_id)
        if password != repeat_password:
            raise ValidationFailed(
                "The two passwords are different.", fix="Type the same password in both fields."
            )
        set_local_password(db, member, password, actor=me.email)
    except M365SyncError as error:
        db.rollback()
        return _members_page(request, db, me, status_code=error.status, error=error)
    return redirect("/admin/members?notice=password")


@router.post("/mailboxes/{member_id}/resync", include_in_schema=False)
def resync(
    background: BackgroundTasks,
    db: DbSession,
    me: AdminForm,
    workers: Workers,
    member_id: str,
    feature: Annotated[str, Form()] = "",
) -> Response:
    member = organizations.get_member(db, organization_of(db, me), member_id)
    unit_id = sync.request_resync(db, member, feature, actor=me.email)
    background.add_task(workers.dispatch, unit_id)  # once this request has committed
    return redirect("/admin/members?notice=resync")


def _settings_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    *,
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
) -> Response:
    return render(
        request,
        "admin/sync_settings.html",
        status_code=status_code,
        title="Sync settings",
        area="admin",
        nav="sync-settings",
        view=SyncSettingsView(
            sync=sync.sync_settings(db, me.organization_id),
            scheduling_create_leads=scheduling.creates_leads(db, me.organization_id),
        ),
        error=error,
        notice=notice,
    )


@router.get("/sync-settings", include_in_schema=False)
def sync_settings_page(
    request: Request, db: DbSession, me: SignedInAdmin, notice: str = ""
) -> Response:
    return _settings_page(request, db, me, notice=NOTICES.get(notice))


def _lines(text: str) -> list[str]:
    return [part.strip().lower() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


@router.post("/sync-settings", include_in_schema=False)
async def save_sync_settings(request: Request, db: DbSession, me: AdminForm) -> Response:
    form = await request.form()
    return await run_in_threadpool(_save_sync_settings, request, db, me, form)


def _save_sync_settings(request: Request, db: Session, me: SignedIn, form: FormData) -> Response:
    try:
        # Scheduling's "create a lead for an unknown invitee" is saved with the sync engine's
        # rules, after them: nothing changes if the rules are refused.
        sync.update_sync_settings(
            db,
            me.organization_id,
            SyncRules(
                mail_folders=[str(v) for v in form.getlist("mail_folders")],
                backfill_days=_days(str(form.get("backfill_days", ""))),
                log_internal=form.get("log_internal") == "on",
                excluded_addresses=_lines(str(form.get("excluded_addresses", ""))),
                excluded_domains=_lines(str(form.get("excluded_domains", ""))),
                headers_only=form.get("headers_only") == "on",
                log_unknown=form.get("log_unknown") == "on",
                create_leads=form.get("create_leads") == "on",
                delete_policy=str(form.get("delete_policy", "keep")),
                calendar_days_back=_days(str(form.get("calendar_days_back", ""))),
                calendar_days_ahead=_days(str(form.get("calendar_days_ahead", ""))),
            ),
            actor=me.email,
        )
        scheduling.set_creates_leads(
            db, me.organization_id, form.get("scheduling_create_leads") == "on"
        )
    except M365SyncError as error:
        db.rollback()
        return _settings_page(request, db, me, status_code=error.status, error=error)
    return redirect("/admin/sync-settings?notice=saved")
