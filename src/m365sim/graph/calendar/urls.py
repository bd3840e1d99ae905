"""Microsoft Graph: calendars, events, calendarView (+ delta), getSchedule, findMeetingTimes.

Every path exists as ``/me/...`` and ``/users/{id | userPrincipalName}/...``; the
default calendar's items are reachable through ``/events``, ``/calendar/events`` and
``/calendars/{id}/events``. ``delta`` answers with and without the ``()`` that
msgraph-sdk appends.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.calendar import control, responses
from m365sim.graph.routing import mailbox_routes

_EVENT_COLLECTIONS = ("/events", "/calendar/events", "/calendars/{calendar_id}/events")
_VIEWS = ("/calendarView", "/calendar/calendarView", "/calendars/{calendar_id}/calendarView")


def _graph_routes() -> list[BaseRoute]:
    found: list[BaseRoute] = []
    found += mailbox_routes("/calendars", responses.list_calendars, ["GET"])
    found += mailbox_routes("/calendars", responses.create_calendar, ["POST"])
    for path in ("/calendar", "/calendars/{calendar_id}"):
        found += mailbox_routes(path, responses.get_calendar, ["GET"])
        found += mailbox_routes(path, responses.update_calendar, ["PATCH"])
    found += mailbox_routes("/calendars/{calendar_id}", responses.delete_calendar, ["DELETE"])
    for view in _VIEWS:
        for suffix in ("/delta", "/delta()"):
            found += mailbox_routes(view + suffix, responses.calendar_view_delta, ["GET"])
        found += mailbox_routes(view, responses.calendar_view, ["GET"])
    for prefix in ("/calendar", "/calendars/{calendar_id}"):
        found += mailbox_routes(prefix + "/getSchedule", responses.schedule, ["POST"])
    found += mailbox_routes("/findMeetingTimes", responses.meeting_times, ["POST"])
    for collection in _EVENT_COLLECTIONS:
        found += mailbox_routes(collection, responses.list_events, ["GET"])
        found += mailbox_routes(collection, responses.create_event, ["POST"])
        item = collection + "/{event_id}"
        found += mailbox_routes(item + "/instances", responses.list_instances, ["GET"])
        for action in ("accept", "decline", "tentativelyAccept", "cancel"):
            found += mailbox_routes(f"{item}/{action}", responses.event_action, ["POST"])
        found += mailbox_routes(item, responses.get_event, ["GET"])
        found += mailbox_routes(item, responses.update_event, ["PATCH"])
        found += mailbox_routes(item, responses.delete_event, ["DELETE"])
    return found


_CONTROL = "/_sim/mailboxes/{user}"

routes: list[BaseRoute] = [
    *_graph_routes(),
    Route("/_sim/invitations", control.list_invitations, methods=["GET"]),
    Route("/_sim/invitations", control.clear_invitations, methods=["DELETE"]),
    Route(f"{_CONTROL}/invitations", control.mailbox_invitations, methods=["GET"]),
    Route(f"{_CONTROL}/events", control.list_events, methods=["GET"]),
    Route(f"{_CONTROL}/events", control.create_event, methods=["POST"]),
    Route(f"{_CONTROL}/events/{{event_id}}", control.update_event, methods=["PATCH"]),
    Route(f"{_CONTROL}/events/{{event_id}}", control.delete_event, methods=["DELETE"]),
    Route(f"{_CONTROL}/events/{{event_id}}/cancel", control.cancel_event, methods=["POST"]),
    Route(f"{_CONTROL}/workingHours", control.working_hours, methods=["GET", "PUT"]),
]
