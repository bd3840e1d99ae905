"""``GET /places/microsoft.graph.room`` and ``GET /places/{id | emailAddress}``.

As "List places" documents (https://learn.microsoft.com/graph/api/place-list): the rooms
of the tenant, 100 a page, each with ``emailAddress``, ``displayName``, ``capacity``,
``bookingType``...; ``Place.Read.All`` (application or delegated). A room is a user whose
mailbox is a room (seed ``userPurpose: room``); it is booked by inviting that address, and
its calendar answers getSchedule like any mailbox. Room lists, workspaces and ``PATCH``
are not modelled.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import User
from m365sim.graph import exceptions as errors
from m365sim.graph.auth import authenticate
from m365sim.graph.odata import (
    ODataQuery,
    compile_filter,
    metadata_url,
    next_link,
    not_modelled,
    page,
    render_collection,
    select_fields,
)
from m365sim.http import JSONResponse

PLACE_READ = frozenset({"Place.Read.All", "Place.ReadWrite.All"})
ROOM_PROPERTIES = frozenset(
    {
        "id",
        "emailAddress",
        "displayName",
        "address",
        "geoCoordinates",
        "phone",
        "nickname",
        "label",
        "capacity",
        "building",
        "floorLabel",
        "floorNumber",
        "isWheelChairAccessible",
        "bookingType",
        "tags",
        "audioDeviceName",
        "videoDeviceName",
        "displayDeviceName",
    }
)


def room_json(user: User) -> dict[str, Any]:
    address = user.address
    return {
        "@odata.type": "#microsoft.graph.room",
        "id": user.id,
        "emailAddress": address,
        "displayName": user.display_name,
        "address": None,
        "geoCoordinates": None,
        "phone": "",
        "nickname": user.display_name,
        "label": None,
        "capacity": user.capacity,
        "building": None,
        "floorLabel": None,
        "floorNumber": None,
        "isWheelChairAccessible": False,
        "bookingType": "standard",
        "tags": [],
        "audioDeviceName": None,
        "videoDeviceName": None,
        "displayDeviceName": None,
    }


def _rooms(request: Request) -> list[User]:
    caller = authenticate(request)
    granted = caller.roles if caller.app_only else caller.scopes
    if not granted & PLACE_READ:
        raise errors.ErrorAccessDenied()
    return [
        u for u in caller.tenant.users.values() if u.mailbox_kind == "room" and not u.soft_deleted
    ]


async def list_rooms(request: Request) -> Response:
    """The tenant's rooms (100 a page, ``$top``/``$skip``/``$select``/``$filter``)."""
    rooms = sorted(_rooms(request), key=lambda u: u.display_name.lower())
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skip", "filter"},
        entity="room",
        properties=ROOM_PROPERTIES,
        max_top=100,
    )
    views = [room_json(u) for u in rooms]
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        views = [v for v in views if predicate(v)]
    chunk, next_skip = page(views, query.top or 100, query.skip)
    body = render_collection(
        metadata_url(request, "places/microsoft.graph.room"),
        [select_fields(v, query.select) for v in chunk],
        next_link=next_link(request, **{"$skip": next_skip}) if next_skip is not None else None,
    )
    return Response(body, media_type="application/json")


async def get_place(request: Request) -> Response:
    """One room by id or email address."""
    key = str(request.path_params["place_id"]).lower()
    for user in _rooms(request):
        if key in (user.id.lower(), user.address.lower()):
            body = {"@odata.context": metadata_url(request, "places/$entity"), **room_json(user)}
            return JSONResponse(body)
    raise errors.ErrorItemNotFound()


async def list_other_places(request: Request) -> Response:
    """Room lists and workspaces: not modelled."""
    _rooms(request)
    raise not_modelled(str(request.path_params["kind"]), "place")
