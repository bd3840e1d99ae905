"""User → Profile and time zone: who the member is, and the zone their pages show times in
(their browser's unless they choose one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request, Response

from m365sync.errors import M365SyncError
from m365sync.organizations import service as organizations
from m365sync.time_zones import is_time_zone, zone_choices, zone_label
from m365sync.web.dependencies import DbSession, MemberForm, SignedInMember, member_of
from m365sync.web.pages.rendering import (
    TIME_ZONE_COOKIE,
    PageRoute,
    redirect,
    render,
    viewer_zone,
)

router = APIRouter(prefix="/me", route_class=PageRoute)

NOTICES = {"time-zone": "Time zone saved."}


def _page(
    request: Request,
    db: DbSession,
    me: SignedInMember,
    *,
    status_code: int = 200,
    error: M365SyncError | None = None,
    notice: str | None = None,
) -> Response:
    browser = unquote(request.cookies.get(TIME_ZONE_COOKIE, ""))
    return render(
        request,
        "user/profile.html",
        status_code=status_code,
        title="Profile and time zone",
        area="user",
        nav="profile",
        member=member_of(db, me),
        shown_in=viewer_zone(request),
        browser_zone=zone_label(browser) if browser and is_time_zone(browser) else None,
        zone_groups=zone_choices(),
        now=datetime.now(UTC),
        error=error,
        notice=notice,
    )


@router.get("/profile", include_in_schema=False)
def profile_page(request: Request, db: DbSession, me: SignedInMember, notice: str = "") -> Response:
    return _page(request, db, me, notice=NOTICES.get(notice))


@router.post("/profile/time-zone", include_in_schema=False)
def save_time_zone(
    request: Request, db: DbSession, me: MemberForm, time_zone: Annotated[str, Form()] = ""
) -> Response:
    try:
        organizations.set_time_zone(db, member_of(db, me), time_zone)
    except M365SyncError as error:
        return _page(request, db, me, status_code=error.status, error=error)
    return redirect("/me/profile?notice=time-zone")
