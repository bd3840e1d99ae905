"""Admin → My Organization → Domains, and Admin → Audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from m365sync.errors import M365SyncError
from m365sync.organizations.service import TxtLookup
from m365sync.web.dependencies import AdminForm, DbSession, SignedInAdmin
from m365sync.web.pages import services
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/admin", route_class=PageRoute)

NOTICES = {
    "added": "Domain added. Verify it: until then its mailboxes wait.",
    "removed": "Domain removed.",
    "verified": "Domain verified.",
}


def _txt_lookup(request: Request) -> TxtLookup | None:
    """The DNS TXT lookup: the system's resolvers, unless the app was built with another
    (``app.state.txt_lookup``, as tests do)."""
    lookup: TxtLookup | None = getattr(request.app.state, "txt_lookup", None)
    return lookup


def _domains_page(
    request: Request,
    db: DbSession,
    me: SignedInAdmin,
    *,
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
    entered: str = "",
) -> Response:
    return render(
        request,
        "admin/domains.html",
        status_code=status_code,
        title="Domains",
        area="admin",
        nav="domains",
        domains=services.domain_views(db, me.organization_id),
        error=error,
        notice=notice,
        entered=entered,
    )


@router.get("/domains", include_in_schema=False)
def domains_page(request: Request, db: DbSession, me: SignedInAdmin, notice: str = "") -> Response:
    return _domains_page(request, db, me, notice=NOTICES.get(notice))


@router.post("/domains", include_in_schema=False)
def add_domain(
    request: Request, db: DbSession, me: AdminForm, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        services.add_domain(db, me, name)
    except M365SyncError as error:
        return _domains_page(request, db, me, status_code=error.status, error=error, entered=name)
    return redirect("/admin/domains?notice=added")


@router.post("/domains/{domain_id}/verify", include_in_schema=False)
def verify_domain(request: Request, db: DbSession, me: AdminForm, domain_id: str) -> Response:
    try:
        services.verify_domain_by_dns(db, me, domain_id, _txt_lookup(request))
    except M365SyncError as error:
        return _domains_page(request, db, me, status_code=error.status, error=error)
    return redirect("/admin/domains?notice=verified")


@router.post("/domains/{domain_id}/remove", include_in_schema=False)
def remove_domain(db: DbSession, me: AdminForm, domain_id: str) -> Response:
    services.remove_domain(db, me, domain_id)
    return redirect("/admin/domains?notice=removed")


@router.get("/audit-log", include_in_schema=False)
def audit_log_page(request: Request, db: DbSession, me: SignedInAdmin) -> Response:
    return render(
        request,
        "admin/audit_log.html",
        title="Audit log",
        area="admin",
        nav="audit-log",
        events=services.audit_events(db, me.organization_id),
    )
