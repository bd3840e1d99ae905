"""Unresolved: the signed-in rep's emails and meetings with people who are no Salesforce
Contact or Lead, and, for each address, relate it to a record, create a Lead, or dismiss it
(the rules are ``m365sync.crm.salesforce_unresolved``). Plain forms: it works without
JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from m365sync.crm import salesforce_unresolved as unresolved
from m365sync.crm.salesforce_schemas import RecordChoice
from m365sync.errors import M365SyncError
from m365sync.web.dependencies import DbSession, MemberForm, SignedInMember
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/me/unresolved", route_class=PageRoute)

NOTICES = {
    "related": (
        "Related: what waited with that address goes to Salesforce, and so will what comes later."
    ),
    "lead": "Lead created in Salesforce: what waited with that address goes there now.",
    "dismissed": "Dismissed: that address is left out of Salesforce from now on.",
}


def _page(
    request: Request,
    db: DbSession,
    me: SignedInMember,
    *,
    address: str = "",
    q: str = "",
    notice: str | None = None,
    error: M365SyncError | None = None,
    status_code: int = 200,
) -> Response:
    results: list[RecordChoice] = []
    if address and q and error is None:
        try:
            results = unresolved.find_salesforce_records(db, me.organization_id, q)
        except M365SyncError as refused:
            error, status_code = refused, refused.status
    items = unresolved.unresolved_items(db, me.organization_id, me.member_id)
    return render(
        request,
        "user/unresolved.html",
        status_code=status_code,
        title="Unresolved",
        area="admin" if me.is_admin else "user",
        nav="unresolved",
        items=items,
        address=address,
        q=q,
        results=results,
        notice=notice,
        error=error,
    )


@router.get("", include_in_schema=False)
def unresolved_page(
    request: Request,
    db: DbSession,
    me: SignedInMember,
    address: str = "",
    q: str = "",
    notice: str = "",
) -> Response:
    return _page(request, db, me, address=address, q=q, notice=NOTICES.get(notice))


@router.post("/relate", include_in_schema=False)
def relate(
    request: Request,
    db: DbSession,
    me: MemberForm,
    address: Annotated[str, Form()],
    salesforce_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        unresolved.relate_address(db, me.organization_id, me.member_id, address, salesforce_id)
    except M365SyncError as error:
        return _page(request, db, me, address=address, error=error, status_code=error.status)
    return redirect("/me/unresolved?notice=related")


@router.post("/lead", include_in_schema=False)
def create_lead(
    request: Request,
    db: DbSession,
    me: MemberForm,
    address: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
) -> Response:
    state = request.app.state
    try:
        unresolved.create_lead_for_address(
            db,
            me.organization_id,
            me.member_id,
            address,
            name=name,
            settings=state.settings,
            box=state.runtime.box,
        )
    except M365SyncError as error:
        return _page(request, db, me, address=address, error=error, status_code=error.status)
    return redirect("/me/unresolved?notice=lead")


@router.post("/dismiss", include_in_schema=False)
def dismiss(
    request: Request, db: DbSession, me: MemberForm, address: Annotated[str, Form()]
) -> Response:
    try:
        unresolved.dismiss_address(db, me.organization_id, me.member_id, address)
    except M365SyncError as error:
        return _page(request, db, me, error=error, status_code=error.status)
    return redirect("/me/unresolved?notice=dismissed")
