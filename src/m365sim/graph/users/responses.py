"""Graph ``users``: ``/me``, ``/users/{id | userPrincipalName}``, ``/users``, mailboxSettings.

Directory reads need directory permissions, not mailbox ones, so these routes check the
token themselves: app-only tokens need ``User.Read.All``, ``User.ReadBasic.All``,
``Directory.Read.All`` or ``User.ReadWrite.All`` in ``roles``; delegated tokens need
``User.Read`` for ``/me`` and one of ``User.ReadBasic.All`` / ``User.Read.All`` /
``Directory.Read.All`` for other users. ``mailboxSettings`` needs ``MailboxSettings.Read``
(or ``.ReadWrite``), as in Graph.

Advanced queries follow "Advanced query capabilities on Microsoft Entra ID objects"
(https://learn.microsoft.com/graph/aad-advanced-queries): ``endsWith``, ``ne``, ``not``,
``$filter`` together with ``$orderby``, and ``$orderby`` on anything but ``displayName`` /
``userPrincipalName`` need both the ``ConsistencyLevel: eventual`` header and
``$count=true``, or the answer is 400 ``Request_UnsupportedQuery``; ``$count=true`` without
the header is silently ignored (no ``@odata.count``); ``/users/$count`` without the header
is 400 ``Request_BadRequest`` "$count is not currently supported.".

Differences from Microsoft Graph: the default property set is the v1.0 one; there is no
``$search`` (refused) and no ``in`` operator; ``$skiptoken`` is a plain offset; results of
an "eventual" query are exactly up to date (Entra's index lags by seconds).
"""

from __future__ import annotations

from datetime import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import User
from m365sim.graph import exceptions as errors
from m365sim.graph.auth import Caller, authenticate, check_mailbox_reachable
from m365sim.graph.calendar.backend import CalendarBackend
from m365sim.graph.calendar.models import WorkingHours
from m365sim.graph.calendar.recurrence import DAYS
from m365sim.graph.exceptions import NotModelled
from m365sim.graph.odata import (
    AnyOf,
    Comparison,
    FilterExpr,
    FunctionCall,
    Logical,
    Not,
    ODataQuery,
    apply_orderby,
    compile_filter,
    metadata_url,
    next_link,
    not_modelled,
    render_collection,
    select_fields,
)
from m365sim.graph.timezones import is_known
from m365sim.http import JSONResponse, json_body, sim_state, tag_request

USER_PROPERTIES = frozenset(
    {
        "id",
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "accountEnabled",
        "mailboxSettings",
        "proxyAddresses",
        "createdDateTime",
    }
)
DEFAULT_SORTABLE = frozenset({"displayName", "userPrincipalName"})
ADVANCED_SORTABLE = DEFAULT_SORTABLE | {"createdDateTime"}
"""``$orderby`` on users: the first two work by default, the last only in advanced queries
(the "Support for sorting" table of the advanced-queries page); nothing else sorts."""
ADVANCED_HINT = (
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
    "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)
READ_ALL = frozenset(
    {"User.Read.All", "User.ReadBasic.All", "Directory.Read.All", "User.ReadWrite.All"}
)
DEFAULT_PAGE_SIZE = 100


def user_json(user: User) -> dict[str, Any]:
    """A user's default v1.0 properties, in Graph's order."""
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": user.job_title,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "id": user.id,
    }


def _extended(user: User) -> dict[str, Any]:
    return {
        **user_json(user),
        "accountEnabled": user.account_enabled,
        "proxyAddresses": user.proxy_addresses,
        "createdDateTime": user.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _may_read_others(caller: Caller) -> bool:
    granted = caller.roles if caller.app_only else caller.scopes
    return bool(granted & READ_ALL)


def _require_read(caller: Caller, target: User | None) -> None:
    own = target is not None and caller.user is not None and caller.user.id == target.id
    if own and ({"User.Read", "User.ReadWrite"} & caller.scopes or _may_read_others(caller)):
        return
    if not _may_read_others(caller):
        raise errors.AuthorizationRequestDenied()


def _find(caller: Caller, key: str) -> User:
    user = caller.tenant.find_user(key)
    if user is None:
        raise errors.UserNotFound(
            f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present."
        )
    return user


def _single(request: Request, caller: Caller, user: User) -> Response:
    query = ODataQuery.from_request(
        request, allowed={"select"}, entity="user", properties=USER_PROPERTIES, directory=True
    )
    body = select_fields(_extended(user), query.select) if query.select else user_json(user)
    context = metadata_url(request, "users/$entity")
    return JSONResponse({"@odata.context": context, **body})


async def me(request: Request) -> Response:
    """The signed-in user (delegated tokens only)."""
    caller = authenticate(request)
    if caller.user is None:
        raise errors.BadRequest("/me request is only valid with delegated authentication flow.")
    _require_read(caller, caller.user)
    return _single(request, caller, caller.user)


async def get_user(request: Request) -> Response:
    """A user by object id or userPrincipalName."""
    caller = authenticate(request)
    user = _find(caller, request.path_params["user_id"])
    _require_read(caller, user)
    return _single(request, caller, user)


def _eventual(request: Request) -> bool:
    return request.headers.get("consistencylevel", "").strip().lower() == "eventual"


def _advanced_operators(expr: FilterExpr) -> list[str]:
    """The operators of ``expr`` that only advanced queries accept, in order."""
    found: list[str] = []

    def walk(node: FilterExpr) -> None:
        if isinstance(node, FunctionCall) and node.name == "endswith":
            found.append("endsWith")
        elif isinstance(node, Comparison) and node.op == "ne":
            found.append("ne")
        elif isinstance(node, Not):
            found.append("not")
            walk(node.operand)
        elif isinstance(node, Logical):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, AnyOf):
            walk(node.body)

    walk(expr)
    return found


def _check_advanced(query: ODataQuery, advanced: bool) -> None:
    """Refuse what Entra ID evaluates only with the advanced query parameters."""
    if query.filter is not None and not advanced:
        for operator in _advanced_operators(query.filter):
            raise errors.RequestUnsupportedQuery(
                f"Operator '{operator}' is not supported because the required parameters "
                f"might be missing. {ADVANCED_HINT}"
            )
    for clause in query.orderby:
        if clause.name not in ADVANCED_SORTABLE:
            raise errors.RequestUnsupportedQuery(
                f"Sorting by '{clause.name}' is not supported for 'microsoft.graph.user'."
            )
        if not advanced and (clause.name not in DEFAULT_SORTABLE or query.filter is not None):
            raise errors.RequestUnsupportedQuery("Sorting not supported for current query.")


def _matching_users(caller: Caller, query: ODataQuery, advanced: bool) -> list[dict[str, Any]]:
    _check_advanced(query, advanced)
    users = [_extended(u) for u in caller.tenant.users.values()]
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        users = [u for u in users if predicate(u)]
    if query.orderby:
        users = apply_orderby(users, query.orderby, lambda u: u)
    return users


async def list_users(request: Request) -> Response:
    """The tenant's users ($select, $filter, $orderby, $top, $count; paged by $skiptoken)."""
    caller = authenticate(request)
    if not _may_read_others(caller):
        raise errors.AuthorizationRequestDenied()
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skiptoken", "filter", "orderby", "count"},
        entity="user",
        properties=USER_PROPERTIES,
        directory=True,
        max_top=999,
    )
    eventual = _eventual(request)
    users = _matching_users(caller, query, eventual and query.count)
    start = int(query.skiptoken) if query.skiptoken and query.skiptoken.isdigit() else 0
    size = query.top or DEFAULT_PAGE_SIZE
    chunk = users[start : start + size]
    more = start + size < len(users)
    values = [select_fields(u, query.select) if query.select else _default(u) for u in chunk]
    body = render_collection(
        metadata_url(request, "users"),
        values,
        next_link=next_link(request, **{"$skiptoken": start + size}) if more else None,
        count=len(users) if query.count and eventual else None,
    )
    return Response(body, media_type="application/json")


async def count_users(request: Request) -> Response:
    """``/users/$count``: the number of users (text), an advanced query only."""
    caller = authenticate(request)
    if not _may_read_others(caller):
        raise errors.AuthorizationRequestDenied()
    query = ODataQuery.from_request(
        request,
        allowed={"filter"},
        entity="user",
        properties=USER_PROPERTIES,
        directory=True,
    )
    if not _eventual(request):
        raise errors.CountNotSupported()
    users = _matching_users(caller, query, advanced=True)
    return Response(str(len(users)), media_type="text/plain")


def _default(extended: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extended.items() if k != "accountEnabled"}


async def mailbox_settings(request: Request) -> Response:
    """A user's mailboxSettings (timeZone, workingHours, language, ...); ``PATCH`` changes
    ``timeZone`` and ``workingHours`` (``MailboxSettings.ReadWrite``). Working hours are
    the calendar's, so getSchedule and findMeetingTimes see the same ones."""
    write = request.method == "PATCH"
    caller = authenticate(request)
    key = request.path_params.get("user_id")
    user = caller.user if key is None else _find(caller, str(key))
    if user is None:
        raise errors.BadRequest("/me request is only valid with delegated authentication flow.")
    tag_request(request, mailbox=user.id)
    own = caller.user is not None and caller.user.id == user.id
    wanted = (
        {"MailboxSettings.ReadWrite"}
        if write
        else {
            "MailboxSettings.Read",
            "MailboxSettings.ReadWrite",
        }
    )
    granted = caller.roles if caller.app_only else caller.scopes
    if not own and not caller.app_only:
        wanted = {f"{w}.Shared" for w in wanted} | wanted
    if not granted & wanted:
        raise errors.ErrorAccessDenied()
    check_mailbox_reachable(user)
    tenant = sim_state(request).find_user_anywhere(user.id)
    assert tenant is not None
    hours = CalendarBackend(sim_state(request)).store(tenant[0], user).working_hours
    if write:
        apply_mailbox_settings(user, hours, await json_body(request))
    return JSONResponse(
        {
            "@odata.context": metadata_url(request, f"users('{user.id}')/mailboxSettings"),
            "archiveFolder": None,
            "timeZone": user.time_zone,
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "dateFormat": "M/d/yyyy",
            "timeFormat": "h:mm tt",
            "userPurpose": user.mailbox_kind,
            "automaticRepliesSetting": {"status": "disabled", "externalAudience": "none"},
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "workingHours": hours.as_json(user.time_zone),
        }
    )


def apply_mailbox_settings(user: User, hours: WorkingHours, body: Any) -> None:
    """A ``PATCH`` body: ``timeZone`` (Windows or IANA name) and ``workingHours``
    (``daysOfWeek``, ``startTime``, ``endTime``, ``timeZone.name``); other properties
    are read-only here (m365sim does not model automatic replies or language changes)."""
    if not isinstance(body, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    for name in body:
        if name.startswith("@odata") or name in ("timeZone", "workingHours"):
            continue
        raise not_modelled(name, "mailboxSettings")
    zone = body.get("timeZone")
    if zone is not None:
        if not isinstance(zone, str) or not is_known(zone):
            raise errors.BadRequest(f"The time zone '{zone}' is not valid.")
        user.time_zone = zone
    raw = body.get("workingHours")
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise errors.BadRequest("workingHours must be an object.")
    try:
        days = tuple(str(d).lower() for d in raw.get("daysOfWeek", hours.days))
        if not days or any(d not in DAYS for d in days):
            raise ValueError("daysOfWeek")
        start = time.fromisoformat(str(raw.get("startTime", hours.start.isoformat()))[:8])
        end = time.fromisoformat(str(raw.get("endTime", hours.end.isoformat()))[:8])
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid working hours: {exc}") from exc
    zone_name = (
        (raw.get("timeZone") or {}).get("name") if isinstance(raw.get("timeZone"), dict) else None
    )
    if zone_name is not None and zone_name != user.time_zone:
        raise NotModelled(
            "m365sim keeps working hours in the mailbox's own time zone: set timeZone to "
            f"'{zone_name}' too, or give workingHours no timeZone."
        )
    hours.days, hours.start, hours.end = days, start, end
