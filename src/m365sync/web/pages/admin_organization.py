"""Admin → My Organization → Domains, and Admin → Audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections import service_accounts
from m365sync.errors import M365SyncError
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Domain, DomainProof, Organization
from m365sync.organizations.service import TxtLookup
from m365sync.web.dependencies import (
    AdminForm,
    DbSession,
    Runtime,
    SignedInAdmin,
    organization_of,
)
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/admin", route_class=PageRoute)

NOTICES = {
    "added": "Domain added. Verify it: until then its mailboxes wait.",
    "removed": "Domain removed.",
    "verified": "Domain verified.",
}

PROOF_LABELS = {
    DomainProof.SERVICE_ACCOUNT: "its Microsoft 365 tenant (service account consent)",
    DomainProof.MICROSOFT_SIGN_IN: "its Microsoft 365 tenant (an admin's Microsoft sign-in)",
    DomainProof.DNS_TXT: "its DNS TXT record",
    DomainProof.OPERATOR: "the server's operator",
}


@dataclass(frozen=True)
class DomainView:
    """A row of the Domains page: the domain, whether and how it is proven, and the DNS TXT
    record that would prove it."""

    domain: Domain
    proof: str  # "" while unverified
    txt_host: str
    txt_value: str
    waiting: str  # why its mailboxes wait, while unverified
    waiting_fix: str


def _domain_views(db: Session, organization: Organization) -> list[DomainView]:
    views = []
    for domain in organizations.list_domains(db, organization):
        record = organizations.dns_record(domain)
        waiting, fix = ("", "") if domain.verified else organizations.unverified_reason(domain.name)
        method = domain.verification_method
        views.append(
            DomainView(
                domain=domain,
                proof=PROOF_LABELS.get(method, method.value) if method else "",
                txt_host=record.host,
                txt_value=record.value,
                waiting=waiting,
                waiting_fix=fix,
            )
        )
    return views


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
    warning: M365SyncError | None = None,
) -> Response:
    return render(
        request,
        "admin/domains.html",
        status_code=status_code,
        title="Domains",
        area="admin",
        nav="domains",
        domains=_domain_views(db, organization_of(db, me)),
        error=error,
        notice=notice,
        entered=entered,
        warning=warning,
    )


@router.get("/domains", include_in_schema=False)
def domains_page(request: Request, db: DbSession, me: SignedInAdmin, notice: str = "") -> Response:
    return _domains_page(request, db, me, notice=NOTICES.get(notice))


@router.post("/domains", include_in_schema=False)
async def add_domain(
    request: Request,
    db: DbSession,
    me: AdminForm,
    runtime: Runtime,
    name: Annotated[str, Form()] = "",
) -> Response:
    try:
        added = await service_accounts.add_domain_checked(
            db, runtime, organization_of(db, me), name, actor=me.email
        )
    except M365SyncError as error:
        return _domains_page(request, db, me, status_code=error.status, error=error, entered=name)
    if added.warning:  # shown at once: nothing to keep for a later page
        db.flush()
        return _domains_page(
            request,
            db,
            me,
            notice=NOTICES["added"],
            warning=M365SyncError(added.warning, fix=added.warning_fix),
        )
    return redirect("/admin/domains?notice=added")


@router.post("/domains/{domain_id}/verify", include_in_schema=False)
def verify_domain(request: Request, db: DbSession, me: AdminForm, domain_id: str) -> Response:
    try:
        organizations.verify_domain_by_dns(
            db, organization_of(db, me), domain_id, lookup=_txt_lookup(request), actor=me.email
        )
    except M365SyncError as error:
        return _domains_page(request, db, me, status_code=error.status, error=error)
    return redirect("/admin/domains?notice=verified")


@router.post("/domains/{domain_id}/remove", include_in_schema=False)
def remove_domain(db: DbSession, me: AdminForm, domain_id: str) -> Response:
    organizations.remove_domain(db, organization_of(db, me), domain_id, actor=me.email)
    return redirect("/admin/domains?notice=removed")


@router.get("/audit-log", include_in_schema=False)
def audit_log_page(request: Request, db: DbSession, me: SignedInAdmin) -> Response:
    return render(
        request,
        "admin/audit_log.html",
        title="Audit log",
        area="admin",
        nav="audit-log",
        events=audit.list_events(db, me.organization_id, 200),
    )
