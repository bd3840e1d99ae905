"""Calendar control endpoints (``/_sim/...``) and the ``events:`` seed section.

The control API plays "the world changes while we sync": another person creating,
moving or cancelling a meeting in a mailbox, and it reads the meeting messages
(``invitations``) the simulated Exchange has sent, so tests can assert that the product
never spams attendees.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.dates import parse_when, relative_offset, utc_date_time_tz
from m365sim.directory.models import Tenant, User
from m365sim.graph.calendar.backend import CalendarBackend, Invitation
from m365sim.graph.calendar.recurrence import DAYS
from m365sim.graph.exceptions import BadRequest
from m365sim.graph.routing import control_user
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState

__all__ = ["seed_events"]


def _body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest("The body must be a JSON object (a Graph event).")
    return raw


def _organizer(body: dict[str, Any]) -> tuple[str, str] | None:
    raw = body.pop("organizer", None)
    if raw is None:
        return None
    email = raw.get("emailAddress") if isinstance(raw, dict) else None
    if not isinstance(email, dict) or not email.get("address"):
        raise BadRequest("organizer must be {'emailAddress': {'name', 'address'}}.")
    return str(email.get("name") or email["address"]), str(email["address"])


def _invitations_json(items: list[Invitation]) -> Response:
    return JSONResponse({"value": [i.as_json() for i in items], "count": len(items)})


async def list_invitations(request: Request) -> Response:
    """Every meeting message sent; filters ``kind``, ``from``, ``to``, ``iCalUId``."""
    items = CalendarBackend(sim_state(request)).invitations
    params = request.query_params
    if "kind" in params:
        items = [i for i in items if i.kind == params["kind"]]
    if "from" in params:
        items = [i for i in items if i.sender.lower() == params["from"].lower()]
    if "to" in params:
        items = [i for i in items if params["to"].lower() in (r.lower() for r in i.recipients)]
    if "iCalUId" in params:
        items = [i for i in items if i.ical_uid == params["iCalUId"]]
    return _invitations_json(items)


async def clear_invitations(request: Request) -> Response:
    CalendarBackend(sim_state(request)).invitations.clear()
    return Response(status_code=204)


async def mailbox_invitations(request: Request) -> Response:
    """Meeting messages sent by or to one mailbox."""
    _tenant, user = control_user(request)
    address = user.address.lower()
    items = [
        i
        for i in CalendarBackend(sim_state(request)).invitations
        if i.sender.lower() == address or address in (r.lower() for r in i.recipients)
    ]
    return _invitations_json(items)


async def create_event(request: Request) -> Response:
    """Create an event as ``organizer`` (default: the mailbox owner). ``sendInvitations``
    (default true) records and delivers the meeting requests the owner would send."""
    tenant, user = control_user(request)
    body = _body(await json_body(request))
    organizer = _organizer(body)
    send = bool(body.pop("sendInvitations", True))
    event = CalendarBackend(sim_state(request)).create_event(
        tenant, user, body, organizer=organizer, send_invitations=send
    )
    return JSONResponse(event.as_json(), status_code=201)


async def list_events(request: Request) -> Response:
    """Every stored event (single instances, series masters, exceptions), as Graph JSON."""
    tenant, user = control_user(request)
    store = CalendarBackend(sim_state(request)).store(tenant, user)
    return JSONResponse({"value": [e.as_json() for e in store.events.values()]})


async def update_event(request: Request) -> Response:
    """Change an event as its organizer would (move it, retitle it, add attendees)."""
    tenant, user = control_user(request)
    body = _body(await json_body(request))
    send = bool(body.pop("sendInvitations", True))
    event = CalendarBackend(sim_state(request)).update_event(
        tenant, user, request.path_params["event_id"], body, send_invitations=send
    )
    return JSONResponse(event.as_json())


async def cancel_event(request: Request) -> Response:
    """The organizer cancels: in the organizer's own mailbox this sends cancellations and
    deletes the meeting; in an attendee's mailbox the copy is marked cancelled."""
    tenant, user = control_user(request)
    backend = CalendarBackend(sim_state(request))
    event = backend.store(tenant, user).get(request.path_params["event_id"])
    body = await json_body(request)
    comment = str(body.get("comment") or "") if isinstance(body, dict) else ""
    if event.is_organizer:
        backend.cancel_event(tenant, user, event.id, comment)
        return Response(status_code=204)
    return JSONResponse(backend.mark_cancelled(tenant, user, event.id).as_json())


async def delete_event(request: Request) -> Response:
    tenant, user = control_user(request)
    send = request.query_params.get("sendInvitations", "true").lower() == "true"
    CalendarBackend(sim_state(request)).delete_event(
        tenant, user, request.path_params["event_id"], send_invitations=send
    )
    return Response(status_code=204)


async def working_hours(request: Request) -> Response:
    """GET or PUT ``{daysOfWeek, startTime, endTime}`` of a mailbox (time zone: the user's)."""
    tenant, user = control_user(request)
    hours = CalendarBackend(sim_state(request)).store(tenant, user).working_hours
    if request.method == "PUT":
        body = _body(await json_body(request))
        try:
            days = tuple(str(d).lower() for d in body.get("daysOfWeek", hours.days))
            if any(d not in DAYS for d in days):
                raise ValueError("daysOfWeek")
            hours.days = days
            hours.start = time.fromisoformat(
                str(body.get("startTime", hours.start.isoformat()))[:8]
            )
            hours.end = time.fromisoformat(str(body.get("endTime", hours.end.isoformat()))[:8])
        except ValueError as exc:
            raise BadRequest(f"Invalid working hours: {exc}") from exc
    return JSONResponse(hours.as_json(user.time_zone))


# -- seeding --------------------------------------------------------------------------------


def _seed_time(value: Any, now: datetime) -> dict[str, Any]:
    """A seed's ``start``/``end``: Graph's ``{dateTime, timeZone}``, or a string that is an
    ISO date-time or relative to now (``"+2d"``, ``"-3h"``, ``"+30m"``)."""
    if isinstance(value, dict):
        return value
    offset = relative_offset(str(value))
    if offset is not None:
        return utc_date_time_tz((now + offset).replace(second=0, microsecond=0))
    return utc_date_time_tz(parse_when(value, now))


def seed_events(state: SimState, tenant: Tenant, user: User, content: Any) -> None:
    """``events:`` — a list of Graph event bodies. ``start``/``end`` may be relative
    (``"+1d"``); ``organizer`` makes the owner an invitee; seeding sends no invitations
    unless an entry says ``sendInvitations: true``."""
    if not isinstance(content, list):
        raise ValueError(f"mailboxes.{user.address}.events must be a list of events")
    backend = CalendarBackend(state)
    now = state.now()
    for index, raw in enumerate(content):
        if not isinstance(raw, dict):
            raise ValueError(f"mailboxes.{user.address}.events[{index}] must be a mapping")
        body = dict(raw)
        for key in ("start", "end"):
            if key in body:
                body[key] = _seed_time(body[key], now)
        organizer = _organizer(body)
        send = bool(body.pop("sendInvitations", False))
        backend.create_event(tenant, user, body, organizer=organizer, send_invitations=send)
