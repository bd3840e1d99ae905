"""Activities: the CRM-side view of synced emails, events and tasks, per contact or account,
with search; each activity Salesforce holds links to its Salesforce record. Email bodies
are sanitised before they reach the template."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from m365sync.crm.salesforce_service import salesforce_overview, salesforce_record_links
from m365sync.crm.service import (
    ACTIVITY_KINDS,
    UPCOMING_DAYS,
    activity_detail,
    search_activities,
)
from m365sync.web.dependencies import DbSession, SignedInMember
from m365sync.web.pages.rendering import PageRoute, render
from m365sync.web.security import sanitize_email_html

router = APIRouter(prefix="/activities", route_class=PageRoute)


def _area(me: SignedInMember) -> str:
    return "admin" if me.is_admin else "user"


@router.get("", include_in_schema=False)
def activities_page(
    request: Request,
    db: DbSession,
    me: SignedInMember,
    q: str = "",
    kind: str = "",
    contact: str = "",
    account: str = "",
    later: str = "",
) -> Response:
    found = search_activities(
        db,
        me.organization_id,
        text=q,
        kind=kind,
        contact_id=contact or None,
        account_id=account or None,
        include_later=later == "on",
    )
    links = None
    if salesforce_overview(db, me.organization_id).connected:
        links = salesforce_record_links(db, me.organization_id, [a.id for a in found.activities])
    return render(
        request,
        "activities/list.html",
        salesforce_links=links,
        title="Activities",
        area=_area(me),
        nav="activities",
        found=found,
        q=q,
        kind=kind,
        kinds=ACTIVITY_KINDS,
        later=later == "on",
        upcoming_days=UPCOMING_DAYS,
        contact=contact,
        account=account,
    )


@router.get("/{activity_id}", include_in_schema=False)
def activity_page(
    request: Request, db: DbSession, me: SignedInMember, activity_id: str
) -> Response:
    detail = activity_detail(db, me.organization_id, activity_id)
    activity = detail.activity
    body_html = None
    if activity.body and activity.body_type == "html":
        body_html = sanitize_email_html(activity.body)
    return render(
        request,
        "activities/detail.html",
        title=activity.subject or "(no subject)",
        area=_area(me),
        nav="activities",
        activity=activity,
        thread=detail.thread,
        body_html=body_html,
        salesforce_url=salesforce_record_links(db, me.organization_id, [activity.id]).get(
            activity.id
        ),
    )
