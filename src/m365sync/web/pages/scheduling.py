"""Calendar Scheduling on the web: public booking pages (``/book/...``, no sign-in) and the
rep's and admin's pages (``/scheduling/...``).

Routes parse the request, call ``SchedulingService`` and render; they are the boundary
that commits. Booking, cancel and reschedule commit the local change *before* writing to
Outlook (see ``m365sync.scheduling.service``'s docstring for why), then commit what
Outlook answered.

No route touches the database on the event loop: plain routes run in the thread pool, and
the async ones (those that wait for Microsoft) hand their database work to threads
(``run_in_threadpool`` here, the service's own for its steps).

The public pages are rate limited per visitor and per link (``web.security``: 429 with
``Retry-After`` and a page saying when to try again); their expected errors, a rate limit
included, are the booking error page. The public forms carry no CSRF token: there is no
session to ride on, anyone may book, and cancel/reschedule need the signed link itself.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from m365sync.crm import open_crm
from m365sync.db.session import Database
from m365sync.errors import M365SyncError
from m365sync.microsoft.timezones import zone_from_microsoft
from m365sync.scheduling.access import ConnectionCalendarAccess
from m365sync.scheduling.availability import Slot, group_by_local_day
from m365sync.scheduling.errors import (
    CalendarWriteFailed,
    InvalidBooking,
    SchedulingError,
    SlotUnavailable,
)
from m365sync.scheduling.models import AvailabilitySource, MeetingKind, MeetingType
from m365sync.scheduling.recovery import PendingBookingRecovery
from m365sync.scheduling.schemas import InviteeInput, MeetingTypeInput
from m365sync.scheduling.service import BookingView, CalendarAccess, SchedulingService
from m365sync.scheduling.tokens import BookingAction, BookingTokens
from m365sync.settings import get_settings
from m365sync.time_zones import is_time_zone, zone_choices
from m365sync.web.dependencies import (
    AdminForm,
    DbSession,
    MemberForm,
    SignedInAdmin,
    SignedInMember,
)
from m365sync.web.pages.rendering import STATIC_DIR, templates
from m365sync.web.security import anonymous_place, rate_limited, response_headers

__all__ = ["SchedulingWiring", "install_scheduling", "public_router", "router"]

DAYS_SHOWN = 7


class PublicRoute(APIRoute):
    """A public booking route: an expected error its dependencies raise (a rate limit) is
    the booking error page, with the headers it needs (``Retry-After``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def public_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except M365SyncError as exc:
                return _error_page(request, exc)

        return public_handler


public_router = APIRouter(route_class=PublicRoute)
"""The invitee's pages (``/book/...``)."""
router = APIRouter()
"""The rep's and admin's pages (``/scheduling...``)."""

VIEWS = [Depends(rate_limited("booking_views", per_link=True))]
SUBMISSIONS = [Depends(rate_limited("bookings", per_link=True))]
ASKS_MICROSOFT = [Depends(anonymous_place)]
"""Public routes that wait for Microsoft take one of the few places anonymous work has."""


@dataclass
class SchedulingWiring:
    """What ``install_scheduling`` put on ``app.state.scheduling``."""

    database: Database
    calendars: CalendarAccess
    tokens: BookingTokens
    recovery: PendingBookingRecovery = field(init=False)
    """Finishes or releases bookings left pending; the app's lifespan starts and stops it."""

    def __post_init__(self) -> None:
        self.recovery = PendingBookingRecovery(self.database, self.service)

    def service(self, session: Session) -> SchedulingService:
        return SchedulingService(
            session, calendars=self.calendars, crm=open_crm, tokens=self.tokens
        )


def install_scheduling(
    app: FastAPI,
    *,
    calendars: CalendarAccess | None = None,
    tokens: BookingTokens | None = None,
) -> SchedulingWiring:
    """Mount the booking pages (``/book/...``) and the rep/admin pages (``/scheduling...``).

    Defaults come from the app built by ``m365sync.web.app.create_app``: hosts' calendars
    through ``app.state.runtime`` (the connections runtime) and ``app.state.database``; invitee
    links signed with a key derived from the installation's secret key. ``create_app``
    already calls this; a second call on the same app is refused (it would mount every
    route twice), so tests and embedders read ``app.state.scheduling`` instead.
    """
    if getattr(app.state, "scheduling", None) is not None:
        raise RuntimeError(
            "Calendar Scheduling is already installed on this app (create_app installs it); "
            "use app.state.scheduling instead of installing it again."
        )
    database: Database = app.state.database
    if calendars is None:
        calendars = ConnectionCalendarAccess(app.state.runtime, database)
    if tokens is None:
        settings = getattr(app.state, "settings", None) or get_settings()
        tokens = BookingTokens.from_settings(settings)
    wiring = SchedulingWiring(database=database, calendars=calendars, tokens=tokens)
    app.state.scheduling = wiring
    if not any(getattr(r, "name", None) == "web_static" for r in app.routes):
        # The dashboard's static mount (same path and name as ``install_pages``).
        app.mount("/static/web", StaticFiles(directory=str(STATIC_DIR)), name="web_static")
    app.include_router(public_router)
    app.include_router(router)
    return wiring


def scheduling_service(request: Request, db: DbSession) -> SchedulingService:
    wiring: SchedulingWiring = request.app.state.scheduling
    return wiring.service(db)


Service = Annotated[SchedulingService, Depends(scheduling_service)]


def _zone_name(value: str | None) -> str:
    return value if value and is_time_zone(value) else "UTC"


def _parse_day(value: str | None, zone_name: str) -> date:
    today = datetime.now(UTC).astimezone(zone_from_microsoft(zone_name)).date()
    if not value:
        return today
    try:
        day = max(today, date.fromisoformat(value))
    except ValueError:
        return today
    # A week that would run past the calendar's last day can't be shown: start today.
    return day if day < date.max - timedelta(days=DAYS_SHOWN + 2) else today


def _parse_start(value: str) -> datetime | None:
    """An aware instant that converts to UTC (not year 0001 east of Greenwich, nor 9999
    west of it), or None."""
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


def _week(day: date, zone_name: str) -> tuple[datetime, datetime]:
    zone = zone_from_microsoft(zone_name)
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    return start.astimezone(UTC), (start + timedelta(days=DAYS_SHOWN)).astimezone(UTC)


def _slot_days(slots: list[Slot], zone_name: str) -> list[tuple[date, list[datetime]]]:
    zone = zone_from_microsoft(zone_name)
    return [
        (day, [s.start.astimezone(zone) for s in day_slots])
        for day, day_slots in group_by_local_day(slots, zone).items()
    ]


def _render(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(request, f"booking/{name}", context, status_code=status)


def _error_page(request: Request, exc: M365SyncError) -> HTMLResponse:
    title = "Please wait a moment" if exc.status == 429 else "Something went wrong"
    response = _render(request, "error.html", {"title": title, "problem": exc}, exc.status)
    response.headers.update(response_headers(exc))
    return response


# -- public booking pages ---------------------------------------------------------------------


@public_router.get(
    "/book/{org_slug}/{meeting_slug}",
    response_class=HTMLResponse,
    name="booking_page",
    dependencies=VIEWS + ASKS_MICROSOFT,
)
async def booking_page(
    request: Request,
    org_slug: str,
    meeting_slug: str,
    service: Service,
    tz: str | None = None,
    day: str | None = None,
) -> HTMLResponse:
    zone_name = _zone_name(tz)
    first_day = _parse_day(day, zone_name)
    start, end = _week(first_day, zone_name)
    try:
        page = await service.slot_page(org_slug, meeting_slug, start, end)
    except SchedulingError as exc:
        return _error_page(request, exc)
    return _render(
        request,
        "page.html",
        {
            "title": page.meeting_type.name,
            "page": page,
            "meeting_type": page.meeting_type,
            "days": _slot_days(page.slots, zone_name),
            "tz": zone_name,
            "tz_given": tz is not None,
            "zone_groups": zone_choices(),
            "first_day": first_day,
            "next_day": first_day + timedelta(days=DAYS_SHOWN),
            "prev_day": first_day - timedelta(days=DAYS_SHOWN),
            "book_url": request.url_for(
                "booking_form", org_slug=org_slug, meeting_slug=meeting_slug
            ),
            "page_url": request.url_for(
                "booking_page", org_slug=org_slug, meeting_slug=meeting_slug
            ),
        },
    )


@public_router.get(
    "/book/{org_slug}/{meeting_slug}/book",
    response_class=HTMLResponse,
    name="booking_form",
    dependencies=VIEWS,
)
def booking_form(
    request: Request,
    org_slug: str,
    meeting_slug: str,
    service: Service,
    start: str,
    tz: str = "UTC",
) -> Response:
    try:
        _, meeting_type = service.booking_page(org_slug, meeting_slug)
    except SchedulingError as exc:
        return _error_page(request, exc)
    when = _parse_start(start)
    try:
        if when is None:
            raise InvalidBooking({"start": "Pick a time from the list."})
        service.check_requested_time(meeting_type, when)
    except InvalidBooking:
        return RedirectResponse(
            request.url_for("booking_page", org_slug=org_slug, meeting_slug=meeting_slug), 303
        )
    return _form(request, meeting_type, when, _zone_name(tz), org_slug, meeting_slug, {}, {})


def _form(
    request: Request,
    meeting_type: Any,
    when: datetime,
    zone_name: str,
    org_slug: str,
    meeting_slug: str,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
    alternatives: list[Slot] | None = None,
) -> HTMLResponse:
    zone = zone_from_microsoft(zone_name)
    return _render(
        request,
        "form.html",
        {
            "title": f"Book {meeting_type.name}",
            "meeting_type": meeting_type,
            "start": when.astimezone(zone),
            "start_value": when.astimezone(UTC).isoformat(),
            "tz": zone_name,
            "values": values,
            "problems": problems,
            "alternatives": [s.start.astimezone(zone) for s in alternatives or []],
            "page_url": request.url_for(
                "booking_page", org_slug=org_slug, meeting_slug=meeting_slug
            ),
            "form_url": request.url_for(
                "booking_form", org_slug=org_slug, meeting_slug=meeting_slug
            ),
            "post_url": request.url_for("book", org_slug=org_slug, meeting_slug=meeting_slug),
        },
        status,
    )


@public_router.post(
    "/book/{org_slug}/{meeting_slug}",
    response_class=HTMLResponse,
    name="book",
    dependencies=SUBMISSIONS + ASKS_MICROSOFT,
)
async def book(
    request: Request, org_slug: str, meeting_slug: str, service: Service, db: DbSession
) -> Response:
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    zone_name = _zone_name(fields.get("tz"))
    invitee = InviteeInput(
        name=fields.get("name", ""),
        email=fields.get("email", ""),
        time_zone=zone_name,
        answers={k[2:]: v for k, v in fields.items() if k.startswith("q_")},
    )
    try:
        _, meeting_type = await run_in_threadpool(service.booking_page, org_slug, meeting_slug)
    except SchedulingError as exc:
        return _error_page(request, exc)
    when = _parse_start(fields.get("start", ""))
    if when is None:
        return _error_page(request, InvalidBooking({"start": "Pick a time from the list."}))
    try:
        booking = await service.reserve(org_slug, meeting_slug, when, invitee)
    except InvalidBooking as exc:
        if "start" in exc.fields:  # not a time this page offers: no form to show it in
            return _error_page(request, exc)
        return _form(
            request, meeting_type, when, zone_name, org_slug, meeting_slug, fields, exc.fields, 422
        )
    except SlotUnavailable as exc:
        return _form(
            request,
            meeting_type,
            when,
            zone_name,
            org_slug,
            meeting_slug,
            fields,
            {"start": f"{exc.message} {exc.fix}"},
            409,
            exc.alternatives,
        )
    except SchedulingError as exc:
        return _error_page(request, exc)
    # The claim is durable before Outlook hears of the booking: a crash from here on leaves
    # a pending booking to retry, never an Outlook event without its booking.
    await run_in_threadpool(db.commit)
    try:
        view = await service.confirm(booking.id)
    except CalendarWriteFailed as exc:
        await run_in_threadpool(db.commit)  # keep the failure and the released time
        return _error_page(request, exc)
    await run_in_threadpool(db.commit)
    return RedirectResponse(request.url_for("booking_confirmed", token=view.view_token), 303)


@public_router.get(
    "/book/_/booking/{token}",
    response_class=HTMLResponse,
    name="booking_confirmed",
    dependencies=VIEWS,
)
def booking_confirmed(request: Request, token: str, service: Service) -> HTMLResponse:
    try:
        booking = service.booking_from_link(token, BookingAction.VIEW)
        view = service.view(booking)
    except M365SyncError as exc:
        return _error_page(request, exc)
    zone = zone_from_microsoft(booking.invitee_time_zone)
    return _render(
        request,
        "confirmed.html",
        {
            "title": "Booked" if booking.active else "Cancelled",
            "view": view,
            "booking": booking,
            "start": booking.start.astimezone(zone),
            "end": booking.end.astimezone(zone),
            "tz": booking.invitee_time_zone,
            "cancel_url": request.url_for("cancel_page", token=view.cancel_token),
            "reschedule_url": request.url_for("reschedule_page", token=view.reschedule_token),
        },
    )


@public_router.get(
    "/book/_/cancel/{token}", response_class=HTMLResponse, name="cancel_page", dependencies=VIEWS
)
def cancel_page(request: Request, token: str, service: Service) -> HTMLResponse:
    try:
        booking = service.booking_from_link(token, BookingAction.CANCEL)
    except M365SyncError as exc:
        return _error_page(request, exc)
    zone = zone_from_microsoft(booking.invitee_time_zone)
    return _render(
        request,
        "cancel.html",
        {
            "title": "Cancel meeting",
            "booking": booking,
            "start": booking.start.astimezone(zone),
            "tz": booking.invitee_time_zone,
            "post_url": request.url_for("cancel", token=token),
        },
    )


@public_router.post(
    "/book/_/cancel/{token}",
    response_class=HTMLResponse,
    name="cancel",
    dependencies=SUBMISSIONS + ASKS_MICROSOFT,
)
async def cancel(
    request: Request,
    token: str,
    service: Service,
    db: DbSession,
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    try:
        booking = await run_in_threadpool(service.cancel, token, reason)
    except M365SyncError as exc:
        return _error_page(request, exc)
    # Cancelled here first, then in Outlook (which tells every attendee).
    await run_in_threadpool(db.commit)
    await service.push_cancellation(booking.id)
    await run_in_threadpool(db.commit)
    return _render(request, "cancelled.html", {"title": "Meeting cancelled", "booking": booking})


@public_router.get(
    "/book/_/reschedule/{token}",
    response_class=HTMLResponse,
    name="reschedule_page",
    dependencies=VIEWS + ASKS_MICROSOFT,
)
async def reschedule_page(
    request: Request, token: str, service: Service, tz: str | None = None, day: str | None = None
) -> HTMLResponse:
    try:
        booking = await run_in_threadpool(
            service.booking_from_link, token, BookingAction.RESCHEDULE
        )
        zone_name = _zone_name(tz or booking.invitee_time_zone)
        first_day = _parse_day(day, zone_name)
        start, end = _week(first_day, zone_name)
        booking, slots = await service.reschedule_slots(token, start, end)
    except M365SyncError as exc:
        return _error_page(request, exc)
    zone = zone_from_microsoft(zone_name)
    return _render(
        request,
        "reschedule.html",
        {
            "title": "Pick a new time",
            "booking": booking,
            "current": booking.start.astimezone(zone),
            "days": _slot_days(slots, zone_name),
            "tz": zone_name,
            "zone_groups": zone_choices(),
            "first_day": first_day,
            "next_day": first_day + timedelta(days=DAYS_SHOWN),
            "prev_day": first_day - timedelta(days=DAYS_SHOWN),
            "page_url": request.url_for("reschedule_page", token=token),
            "post_url": request.url_for("reschedule", token=token),
            "problem": None,
        },
    )


@public_router.post(
    "/book/_/reschedule/{token}",
    response_class=HTMLResponse,
    name="reschedule",
    dependencies=SUBMISSIONS + ASKS_MICROSOFT,
)
async def reschedule(
    request: Request,
    token: str,
    service: Service,
    db: DbSession,
    start: Annotated[str, Form()],
    tz: Annotated[str, Form()] = "UTC",
) -> Response:
    when = _parse_start(start)
    if when is None:
        return _error_page(request, InvalidBooking({"start": "Pick a time from the list."}))
    try:
        booking = await service.reschedule(token, when)
    except SlotUnavailable as exc:
        zone = zone_from_microsoft(_zone_name(tz))
        refused = _render(
            request,
            "error.html",
            {
                "title": "Time no longer free",
                "problem": exc,
                "alternatives": [s.start.astimezone(zone) for s in exc.alternatives],
                "tz": _zone_name(tz),
                "retry_url": request.url_for("reschedule_page", token=token),
            },
            409,
        )
        await run_in_threadpool(db.rollback)  # the refused move of the claims
        return refused
    except M365SyncError as exc:
        return _error_page(request, exc)
    # Moved here first (new claims), then in Outlook (which sends the update).
    await run_in_threadpool(db.commit)
    await service.push_move(booking.id)

    def committed_view() -> BookingView:
        db.commit()
        return service.view(booking)

    view = await run_in_threadpool(committed_view)
    return RedirectResponse(request.url_for("booking_confirmed", token=view.view_token), 303)


# -- the rep's and the admin's pages ---------------------------------------------------------


@router.get("/scheduling", response_class=HTMLResponse, name="scheduling_home")
async def scheduling_home(
    request: Request, me: SignedInMember, service: Service, db: DbSession
) -> HTMLResponse:
    def page() -> dict[str, Any]:
        organization = service.repo.organization(me.organization_id)
        shown = {
            "member": service.repo.member(me.organization_id, me.member_id),
            "org_slug": organization.slug if organization else "",
            "member_names": {m.id: m.name or m.email for m in service.members(me.organization_id)},
            "meeting_types": service.meeting_types_for(
                me.organization_id, None if me.is_admin else me.member_id
            ),
            "bookings": service.upcoming(me.organization_id, me.member_id),
        }
        db.commit()  # the session's "last seen"; nothing is held while Outlook is checked
        return shown

    shown = await run_in_threadpool(page)
    member = shown.pop("member")
    status = await service.check_member(member) if member else "Unknown member."
    return _render(
        request,
        "rep_home.html",
        {"title": "Scheduling", "me": me, "area": "user", "nav": "scheduling", "status": status}
        | shown,
    )


@router.get("/scheduling/meeting-types/new", response_class=HTMLResponse, name="new_meeting_type")
def new_meeting_type(request: Request, me: SignedInMember, service: Service) -> HTMLResponse:
    return _meeting_type_form(request, me, service, {}, {})


@router.get(
    "/scheduling/meeting-types/{meeting_type_id}/edit",
    response_class=HTMLResponse,
    name="edit_meeting_type",
)
def edit_meeting_type(
    request: Request, meeting_type_id: str, me: SignedInMember, service: Service
) -> HTMLResponse:
    try:
        meeting_type = service.meeting_type_to_change(
            me.organization_id, meeting_type_id, me.member_id, is_admin=me.is_admin
        )
    except M365SyncError as exc:
        return _error_page(request, exc)
    return _meeting_type_form(
        request, me, service, _form_values(meeting_type), {}, editing=meeting_type
    )


def _form_values(meeting_type: MeetingType) -> dict[str, Any]:
    """A saved meeting type as its form's fields."""
    values: dict[str, Any] = {
        "name": meeting_type.name,
        "slug": meeting_type.slug,
        "description": meeting_type.description,
        "kind": meeting_type.kind.value,
        "hosts": list(meeting_type.host_ids),
        "duration_minutes": meeting_type.duration_minutes,
        "location": meeting_type.location,
        "online_meeting": "on" if meeting_type.online_meeting else "",
        "buffer_before_minutes": meeting_type.buffer_before_minutes,
        "buffer_after_minutes": meeting_type.buffer_after_minutes,
        "minimum_notice_minutes": meeting_type.minimum_notice_minutes,
        "horizon_days": meeting_type.horizon_days,
        "daily_limit": meeting_type.daily_limit or "",
        "questions": "\n".join(q.label for q in meeting_type.questions),
    }
    for rule in meeting_type.rules:
        values[f"day{rule.weekday}_start"] = rule.start_time.strftime("%H:%M")
        values[f"day{rule.weekday}_end"] = rule.end_time.strftime("%H:%M")
    return values


def _meeting_type_form(
    request: Request,
    me: Any,
    service: SchedulingService,
    values: dict[str, Any],
    problems: dict[str, str],
    status: int = 200,
    *,
    editing: MeetingType | None = None,
) -> HTMLResponse:
    members = service.members(me.organization_id) if me.is_admin else []
    return _render(
        request,
        "meeting_type_form.html",
        {
            "title": f"Edit {editing.name}" if editing else "New meeting type",
            "me": me,
            "area": "user",
            "nav": "scheduling",
            "values": values,
            "problems": problems,
            "members": members,
            "editing": editing,
            "weekdays": WEEKDAYS,
        },
        status,
    )


async def _submitted_meeting_type(
    request: Request, me: Any, editing: MeetingType | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form as entered (to show again) and as the service's input. A member's own type
    stays one-on-one and theirs; an admin picks the kind and hosts."""
    form = await request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    hosts = [str(h) for h in form.getlist("hosts")] if me.is_admin else []
    values["hosts"] = hosts
    kind = MeetingKind(values.get("kind", "one_on_one")) if me.is_admin else MeetingKind.ONE_ON_ONE
    if kind is MeetingKind.ONE_ON_ONE and not hosts:
        hosts = list(editing.host_ids) if editing is not None else [me.member_id]
    windows = []
    for day in range(7):
        start, end = values.get(f"day{day}_start"), values.get(f"day{day}_end")
        if start and end:
            windows.append({"weekday": day, "start": start, "end": end})
    raw = {
        "name": values.get("name", ""),
        "slug": values.get("slug", ""),
        "description": values.get("description", ""),
        "kind": kind,
        "host_member_ids": hosts,
        "duration_minutes": values.get("duration_minutes") or 30,
        "location": values.get("location", ""),
        "online_meeting": values.get("online_meeting") == "on",
        "book_room": values.get("book_room") == "on",
        "availability_source": AvailabilitySource.CUSTOM if windows else AvailabilitySource.OUTLOOK,
        "windows": windows,
        "buffer_before_minutes": values.get("buffer_before_minutes") or 0,
        "buffer_after_minutes": values.get("buffer_after_minutes") or 0,
        "minimum_notice_minutes": values.get("minimum_notice_minutes") or 240,
        "horizon_days": values.get("horizon_days") or 60,
        "daily_limit": values.get("daily_limit") or None,
        "questions": [
            {"label": q.strip(), "required": False}
            for q in str(values.get("questions", "")).splitlines()
            if q.strip()
        ],
    }
    return values, raw


@router.post("/scheduling/meeting-types", response_class=HTMLResponse, name="create_meeting_type")
async def create_meeting_type(
    request: Request, me: MemberForm, service: Service, db: DbSession
) -> Response:
    values, raw = await _submitted_meeting_type(request, me, None)

    def create() -> Response:
        try:
            data = MeetingTypeInput.model_validate(raw)
            service.create_meeting_type(me.organization_id, data, created_by=me.member_id)
        except ValidationError as exc:
            problems = _form_problems(exc, raw)
            return _meeting_type_form(request, me, service, values, problems, 422)
        except M365SyncError as exc:
            db.rollback()
            return _meeting_type_form(request, me, service, values, {"form": str(exc)}, exc.status)
        return RedirectResponse(request.url_for("scheduling_home"), 303)

    return await run_in_threadpool(create)


@router.post(
    "/scheduling/meeting-types/{meeting_type_id}",
    response_class=HTMLResponse,
    name="update_meeting_type",
)
async def update_meeting_type(
    request: Request, meeting_type_id: str, me: MemberForm, service: Service, db: DbSession
) -> Response:
    try:
        editing = await run_in_threadpool(
            service.meeting_type_to_change,
            me.organization_id,
            meeting_type_id,
            me.member_id,
            is_admin=me.is_admin,
        )
    except M365SyncError as exc:
        return _error_page(request, exc)
    values, raw = await _submitted_meeting_type(request, me, editing)

    def update() -> Response:
        try:
            service.update_meeting_type(editing, MeetingTypeInput.model_validate(raw))
        except ValidationError as exc:
            problems = _form_problems(exc, raw)
            db.rollback()
            return _meeting_type_form(request, me, service, values, problems, 422, editing=editing)
        except M365SyncError as exc:
            db.rollback()
            return _meeting_type_form(
                request, me, service, values, {"form": str(exc)}, exc.status, editing=editing
            )
        return RedirectResponse(request.url_for("scheduling_home"), 303)

    return await run_in_threadpool(update)


@router.post("/scheduling/meeting-types/{meeting_type_id}/delete", name="delete_meeting_type")
def delete_meeting_type(
    request: Request, meeting_type_id: str, me: MemberForm, service: Service, db: DbSession
) -> Response:
    try:
        service.delete_meeting_type(
            service.meeting_type_to_change(
                me.organization_id, meeting_type_id, me.member_id, is_admin=me.is_admin
            )
        )
    except M365SyncError as exc:
        db.rollback()
        return _error_page(request, exc)
    return RedirectResponse(request.url_for("scheduling_home"), 303)


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The meeting type form's labels, as the form shows them: a problem names the field a
# person sees, never the schema's key.
MEETING_TYPE_LABELS = {
    "name": "Name",
    "slug": "Link name",
    "description": "Description",
    "kind": "Kind",
    "host_member_ids": "Hosts",
    "duration_minutes": "Duration (minutes)",
    "location": "Location",
    "windows": "Availability",
    "buffer_before_minutes": "Buffer before (minutes)",
    "buffer_after_minutes": "Buffer after (minutes)",
    "minimum_notice_minutes": "Minimum notice (minutes)",
    "horizon_days": "Bookable up to (days ahead)",
    "daily_limit": "Most bookings per day",
    "questions": "Questions for the invitee",
}


def _form_problems(exc: ValidationError, raw: dict[str, Any]) -> dict[str, str]:
    """The meeting type form's problems in a person's words: each names the field's label
    and what to enter instead (the rules themselves stay in ``MeetingTypeInput``)."""
    return {"form": " ".join(_form_problem(error, raw) for error in exc.errors())}


def _form_problem(error: Any, raw: dict[str, Any]) -> str:
    loc = [p for p in error.get("loc", ()) if p != "__root__"]
    label = MEETING_TYPE_LABELS.get(str(loc[0])) if loc else None
    if loc[:1] == ["windows"] and len(loc) > 1 and isinstance(loc[1], int):
        label = f"Availability, {WEEKDAYS[raw['windows'][loc[1]]['weekday']]}"
    ctx = error.get("ctx") or {}
    kind = str(error.get("type", ""))
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        text = "enter a whole number."
    elif kind == "greater_than_equal":
        text = f"enter {ctx.get('ge')} or more."
    elif kind == "less_than_equal":
        text = f"enter {ctx.get('le')} or less."
    elif kind == "string_too_short":
        text = "fill it in."
    elif kind == "string_too_long":
        text = f"shorten it to {ctx.get('max_length')} characters or fewer."
    elif kind == "too_short":
        text = "choose at least one."
    elif kind in {"time_parsing", "time_type"}:
        text = "enter a time like 09:00."
    else:  # the schema's own sentence, which says the fix
        text = str(error.get("msg", "")).removeprefix("Value error, ")
    if label is None:
        return text[:1].upper() + text[1:]
    return f"{label}: {text[:1].lower()}{text[1:]}"


@router.post("/scheduling/meeting-types/{meeting_type_id}/active", name="toggle_meeting_type")
def toggle_meeting_type(
    request: Request,
    meeting_type_id: str,
    me: MemberForm,
    service: Service,
    active: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.meeting_type_to_change(
            me.organization_id, meeting_type_id, me.member_id, is_admin=me.is_admin
        )
    except M365SyncError as exc:
        return _error_page(request, exc)
    service.set_meeting_type_active(me.organization_id, meeting_type_id, active == "on")
    return RedirectResponse(request.url_for("scheduling_home"), 303)


@router.get("/scheduling/admin", response_class=HTMLResponse, name="scheduling_admin")
async def scheduling_admin(
    request: Request, me: SignedInAdmin, service: Service, db: DbSession
) -> HTMLResponse:
    def page() -> dict[str, Any]:
        organization = service.repo.organization(me.organization_id)
        shown = {
            "members": service.members(me.organization_id),
            "org_slug": organization.slug if organization else "",
            "meeting_types": service.meeting_types_for(me.organization_id, None),
            "bookings": service.upcoming(me.organization_id, None),
        }
        db.commit()  # the session's "last seen"; nothing is held while Outlook is checked
        return shown

    shown = await run_in_threadpool(page)
    rows = []
    for member in shown.pop("members"):
        rows.append({"member": member, "status": await service.check_member(member)})
    return _render(
        request,
        "admin_members.html",
        {"title": "Scheduling by member", "me": me, "area": "admin", "nav": "scheduling"}
        | {
            "rows": rows,
            "member_names": {r["member"].id: r["member"].name or r["member"].email for r in rows},
        }
        | shown,
    )


@router.post("/scheduling/admin/members/{member_id}", name="set_member_scheduling")
def set_member_scheduling(
    request: Request,
    member_id: str,
    me: AdminForm,
    service: Service,
    enabled: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.set_member_enabled(me.organization_id, member_id, enabled == "on")
    except M365SyncError as exc:
        return _error_page(request, exc)
    return RedirectResponse(request.url_for("scheduling_admin"), 303)
