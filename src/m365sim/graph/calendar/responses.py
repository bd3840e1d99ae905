"""Graph calendar routes: parse the request, call the backend, serialise Graph's JSON."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.exceptions import GraphError
from m365sim.graph import delta, odata
from m365sim.graph.auth import resolve_mailbox
from m365sim.graph.calendar.availability import find_meeting_times, get_schedule
from m365sim.graph.calendar.backend import CalendarBackend
from m365sim.graph.calendar.exceptions import (
    CalendarInvalidParameter,
    CalendarInvalidRequest,
    DeltaQueryNotSupported,
    DeltaTopNotSupported,
)
from m365sim.graph.calendar.formats import parse_window_bound, zone
from m365sim.graph.calendar.models import EVENT_PROPERTIES, DeltaPage, Event
from m365sim.graph.exceptions import ErrorAccessDenied
from m365sim.graph.routing import user_key
from m365sim.http import JSONResponse, json_body, sim_state

DEFAULT_PAGE = 10
MAX_PAGE = 1000
CALENDAR_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "color",
        "hexColor",
        "isDefaultCalendar",
        "changeKey",
        "canShare",
        "canViewPrivateItems",
        "canEdit",
        "allowedOnlineMeetingProviders",
        "defaultOnlineMeetingProvider",
        "isTallyingResponses",
        "isRemovable",
        "owner",
    }
)
DELTA_REJECTED = ("select", "filter", "orderby", "search", "expand")


def _backend(request: Request) -> CalendarBackend:
    return CalendarBackend(sim_state(request))


def _zone_name(request: Request) -> str:
    """``Prefer: outlook.timezone`` (Windows or IANA name), UTC when absent."""
    name = odata.parse_prefer(request).get("outlook.timezone") or "UTC"
    zone(name)  # unknown names are Graph's 400
    return name


def _page_size(request: Request, query: odata.ODataQuery | None = None) -> int:
    if query is not None and query.top is not None:
        return query.top
    raw = odata.parse_prefer(request).get("odata.maxpagesize")
    if raw and raw.isdigit() and int(raw) > 0:
        return min(int(raw), MAX_PAGE)
    return DEFAULT_PAGE


def _applied(request: Request) -> dict[str, str]:
    prefs = odata.parse_prefer(request)
    applied = []
    if "outlook.timezone" in prefs:
        applied.append(f'outlook.timezone="{prefs["outlook.timezone"]}"')
    if "odata.maxpagesize" in prefs:
        applied.append(f"odata.maxpagesize={prefs['odata.maxpagesize']}")
    return {"Preference-Applied": ", ".join(applied)} if applied else {}


def _context(request: Request, owner_id: str, tail: str) -> str:
    return odata.metadata_url(request, f"users('{owner_id}')/{tail}")


def _window(request: Request) -> tuple[datetime, datetime]:
    params = {k.lower(): v for k, v in request.query_params.items()}
    try:
        start = parse_window_bound(params.get("startdatetime"))
        end = parse_window_bound(params.get("enddatetime"))
    except ValueError as exc:
        raise CalendarInvalidParameter(
            "The value of the parameter 'StartDateTime' or 'EndDateTime' is not a valid date-time."
        ) from exc
    if start is None or end is None:
        raise CalendarInvalidParameter()
    if end < start:
        raise CalendarInvalidParameter(
            "The parameter 'EndDateTime' must be later than 'StartDateTime'."
        )
    return start, end


def _collection(
    request: Request,
    items: Sequence[Event],
    query: odata.ODataQuery,
    zone_name: str,
    context: str,
) -> Response:
    filtered: list[Event] = list(items)
    if query.filter is not None:
        filtered = odata.apply_filter(filtered, query.filter, lambda e: e.as_json(zone_name))
    if query.orderby:
        filtered = odata.apply_orderby(filtered, query.orderby, lambda e: e.as_json(zone_name))
    size = _page_size(request, query)
    chunk, next_skip = odata.page(filtered, size, query.skip)
    payload: dict[str, Any] = {"@odata.context": context}
    if query.count:
        payload["@odata.count"] = len(filtered)
    payload["value"] = [odata.select_fields(e.as_json(zone_name), query.select) for e in chunk]
    if next_skip is not None:
        payload["@odata.nextLink"] = odata.next_link(request, **{"$skip": next_skip})
    return JSONResponse(payload, headers=_applied(request))


def _query(request: Request, *, window: bool = False) -> odata.ODataQuery:
    return odata.ODataQuery.from_request(
        request,
        entity="event",
        properties=EVENT_PROPERTIES,
        unmodelled=UNMODELLED_EVENT_PROPERTIES,
        custom=("startDateTime", "endDateTime") if window else (),
    )


def _event(
    request: Request, owner_id: str, event: Event, zone_name: str, status: int = 200
) -> Response:
    query = odata.ODataQuery.from_request(
        request,
        allowed=("select", "expand"),
        entity="event",
        properties=EVENT_PROPERTIES,
        unmodelled=UNMODELLED_EVENT_PROPERTIES,
    )
    payload = {
        "@odata.context": _context(request, owner_id, "events/$entity"),
        **event.as_json(zone_name),
    }
    return JSONResponse(
        odata.select_fields(payload, query.select), status_code=status, headers=_applied(request)
    )


# -- calendars ------------------------------------------------------------------------------


async def list_calendars(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    store = _backend(request).store(caller.tenant, owner)
    query = odata.ODataQuery.from_request(
        request, entity="calendar", properties=CALENDAR_PROPERTIES
    )
    items = [c.as_json() for c in store.calendars.values()]
    if query.filter is not None:
        items = odata.apply_filter(items, query.filter, lambda c: c)
    chunk, next_skip = odata.page(items, _page_size(request, query), query.skip)
    payload: dict[str, Any] = {
        "@odata.context": _context(request, owner.id, "calendars"),
        "value": [odata.select_fields(c, query.select) for c in chunk],
    }
    if next_skip is not None:
        payload["@odata.nextLink"] = odata.next_link(request, **{"$skip": next_skip})
    return JSONResponse(payload)


async def create_calendar(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    body = await json_body(request)
    created = (
        _backend(request).store(caller.tenant, owner).add_calendar(str(body.get("name") or ""))
    )
    return JSONResponse(
        {"@odata.context": _context(request, owner.id, "calendars/$entity"), **created.as_json()},
        status_code=201,
    )


async def get_calendar(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    found = (
        _backend(request)
        .store(caller.tenant, owner)
        .calendar(request.path_params.get("calendar_id"))
    )
    return JSONResponse(
        {"@odata.context": _context(request, owner.id, "calendars/$entity"), **found.as_json()}
    )


async def update_calendar(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    body = await json_body(request)
    found = (
        _backend(request)
        .store(caller.tenant, owner)
        .calendar(request.path_params.get("calendar_id"))
    )
    if "name" in body:
        if not str(body["name"] or "").strip():
            raise CalendarInvalidRequest("The calendar needs a name.")
        found.name = str(body["name"])
    if "color" in body:
        found.color = str(body["color"])
    found.version += 1
    return JSONResponse(found.as_json())


async def delete_calendar(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    backend = _backend(request)
    backend.store(caller.tenant, owner).delete_calendar(request.path_params["calendar_id"])
    return Response(status_code=204)


# -- events ---------------------------------------------------------------------------------


async def list_events(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    query = _query(request)
    store = _backend(request).store(caller.tenant, owner)
    items = sorted(
        store.list_events(request.path_params.get("calendar_id")), key=lambda e: (e.start, e.id)
    )
    return _collection(request, items, query, zone_name, _context(request, owner.id, "events"))


UNMODELLED_EVENT_PROPERTIES = frozenset(
    {
        "attachments",
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "extensions",
    }
)
"""``event`` relations Graph has and m365sim does not simulate (501 ``NotModelled``)."""


def _refuse_unmodelled(body: dict[str, Any]) -> None:
    """A body that sets what m365sim cannot keep is refused, not silently half-applied."""
    for name in body:
        if name in UNMODELLED_EVENT_PROPERTIES:
            raise odata.not_modelled(name, "event")


async def create_event(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    zone_name = _zone_name(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise CalendarInvalidRequest("The request body must be a JSON object.")
    body.pop("iCalUId", None)  # read-only on Graph
    _refuse_unmodelled(body)
    event = _backend(request).create_event(
        caller.tenant, owner, body, calendar_id=request.path_params.get("calendar_id")
    )
    return _event(request, owner.id, event, zone_name, status=201)


async def get_event(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    event = _backend(request).store(caller.tenant, owner).get(request.path_params["event_id"])
    return _event(request, owner.id, event, zone_name)


async def update_event(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    zone_name = _zone_name(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise CalendarInvalidRequest("The request body must be a JSON object.")
    body.pop("iCalUId", None)
    _refuse_unmodelled(body)
    event = _backend(request).update_event(
        caller.tenant, owner, request.path_params["event_id"], body
    )
    return _event(request, owner.id, event, zone_name)


async def delete_event(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    _backend(request).delete_event(caller.tenant, owner, request.path_params["event_id"])
    return Response(status_code=204)


async def event_action(request: Request) -> Response:
    """``accept`` / ``tentativelyAccept`` / ``decline`` / ``cancel`` (202 Accepted, no body)."""
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars", write=True)
    body = await json_body(request)
    if not isinstance(body, dict):
        body = {}
    action = request.url.path.rsplit("/", 1)[1]
    backend = _backend(request)
    event_id = request.path_params["event_id"]
    comment = str(body.get("comment") or body.get("Comment") or "")
    if action == "cancel":
        backend.cancel_event(caller.tenant, owner, event_id, comment)
    else:
        response = {
            "accept": "accepted",
            "tentativelyAccept": "tentativelyAccepted",
            "decline": "declined",
        }[action]
        backend.respond(
            caller.tenant,
            owner,
            event_id,
            response,
            comment=comment,
            send_response=bool(body.get("sendResponse", True)),
        )
    return Response(status_code=202)


async def list_instances(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    start, end = _window(request)
    query = _query(request, window=True)
    store = _backend(request).store(caller.tenant, owner)
    items = store.instances(request.path_params["event_id"], start, end)
    return _collection(request, items, query, zone_name, _context(request, owner.id, "events"))


# -- calendarView ---------------------------------------------------------------------------


async def calendar_view(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    start, end = _window(request)
    query = _query(request, window=True)
    store = _backend(request).store(caller.tenant, owner)
    items = store.view(request.path_params.get("calendar_id"), start, end)
    return _collection(
        request, items, query, zone_name, _context(request, owner.id, "calendarView")
    )


async def calendar_view_delta(request: Request) -> Response:
    """``calendarView/delta``: a round of pages (``$skiptoken``) ending in a ``$deltatoken``."""
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    given = {k.lstrip("$").lower() for k in request.query_params}
    if given & set(DELTA_REJECTED):
        raise DeltaQueryNotSupported()
    if "top" in given:
        raise DeltaTopNotSupported()
    params = {k.lstrip("$").lower(): v for k, v in request.query_params.items()}
    state = sim_state(request)
    now = state.now()
    lifetime = delta.token_lifetime(state)
    store = _backend(request).store(caller.tenant, owner)
    generations: delta.SyncGenerations = state.extension(
        "calendar_delta_generations", delta.SyncGenerations
    )
    offset = 0
    page: DeltaPage
    if "skiptoken" in params:
        token = delta.read_token(params["skiptoken"], "p")
        page = store.page(token.ident, now, lifetime)
        offset = token.offset
        chain, generation = token.chain, generations.serve(token.chain, token.generation)
    elif "deltatoken" in params:
        token = delta.read_token(params["deltatoken"], "d")
        point = store.sync_point(token.ident, now, lifetime)
        chain, generation = token.chain, generations.serve(token.chain, token.generation)
        page = store.resume_round(point, now)
    else:
        start, end = _window(request)
        page = store.start_round(request.path_params.get("calendar_id"), start, end, now)
        chain, generation = generations.start()
    size = _page_size(request)
    # Exchange repeats the previous page's last item at the start of a page; the page still
    # holds at most ``size`` items (odata.maxpagesize is a maximum).
    overlap = 1 if offset > 0 and state.config.delta_replay and size > 1 else 0
    chunk = page.entries[offset - overlap : offset + size - overlap]
    value: list[dict[str, Any]] = []
    for kind, item_id in chunk:
        if kind == "event":
            with contextlib.suppress(GraphError):  # deleted since the round began
                value.append(
                    {
                        "@odata.type": "#microsoft.graph.event",
                        **store.get(item_id).as_json(zone_name),
                    }
                )
                continue
        value.append(
            {
                "@odata.type": "#microsoft.graph.event",
                "id": item_id,
                "@removed": {"reason": "deleted"},
            }
        )
    payload: dict[str, Any] = {"@odata.context": odata.metadata_url(request, "Collection(event)")}
    if offset + size - overlap < len(page.entries):
        payload["@odata.nextLink"] = delta.skip_link(
            request, page.id, offset + size - overlap, chain, generation
        )
    else:
        point = store.sync_point_after(page, now)
        payload["@odata.deltaLink"] = delta.delta_link(request, point.id, chain, generation)
    payload["value"] = value
    return JSONResponse(payload, headers=_applied(request))


# -- free/busy ------------------------------------------------------------------------------


async def schedule(request: Request) -> Response:
    caller, _owner = resolve_mailbox(request, user_key(request), "Calendars")
    zone_name = _zone_name(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise CalendarInvalidRequest("The request body must be a JSON object.")
    value = get_schedule(_backend(request), caller.tenant, caller.user, body, zone_name)
    return JSONResponse(
        {
            "@odata.context": odata.metadata_url(
                request, "Collection(microsoft.graph.scheduleInformation)"
            ),
            "value": value,
        },
        headers=_applied(request),
    )


async def meeting_times(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Calendars")
    if caller.app_only:
        raise ErrorAccessDenied("Access is denied. Check credentials and try again.")
    zone_name = _zone_name(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise CalendarInvalidRequest("The request body must be a JSON object.")
    result = find_meeting_times(_backend(request), caller.tenant, owner, body, zone_name)
    return JSONResponse(
        {
            "@odata.context": odata.metadata_url(
                request, "microsoft.graph.meetingTimeSuggestionsResult"
            ),
            **result,
        },
        headers=_applied(request),
    )
