"""Graph ``users``: ``/me``, ``/users/{id | userPrincipalName}``, ``/users``, mailboxSettings.

Directory reads need directory permissions, not mailbox ones, so these routes check the
token themselves: app-only tokens need ``User.Read.All``, ``User.ReadBasic.All``,
``Directory.Read.All`` or ``User.ReadWrite.All`` in ``roles``; delegated tokens need
``User.Read`` for ``/me`` and one of ``User.ReadBasic.All`` / ``User.Read.All`` /
``Directory.Read.All`` for other users. ``mailboxSettings`` needs ``MailboxSettings.Read``
(or ``.ReadWrite``), as in Graph.

Differences from Microsoft Graph: the default property set is the v1.0 one; there is no
``$search``, no ``ConsistencyLevel: eventual`` advanced queries, and ``$skiptoken`` is
a plain offset.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import User
from m365sim.graph import exceptions as errors
from m365sim.graph.auth import Caller, authenticate, check_mailbox_reachable
from m365sim.graph.odata import (
    ODataQuery,
    apply_orderby,
    compile_filter,
    metadata_url,
    next_link,
    render_collection,
    select_fields,
)
from m365sim.http import JSONResponse, tag_request

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
    }
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
    return {**user_json(user), "accountEnabled": user.account_enabled}


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
    users = [_extended(u) for u in caller.tenant.users.values()]
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        users = [u for u in users if predicate(u)]
    if query.orderby:
        users = apply_orderby(users, query.orderby, lambda u: u)
    start = int(query.skiptoken) if query.skiptoken and query.skiptoken.isdigit() else 0
    size = query.top or DEFAULT_PAGE_SIZE
    chunk = users[start : start + size]
    more = start + size < len(users)
    values = [select_fields(u, query.select) if query.select else _default(u) for u in chunk]
    body = render_collection(
        metadata_url(request, "users"),
        values,
        next_link=next_link(request, **{"$skiptoken": start + size}) if more else None,
        count=len(users) if query.count else None,
    )
    return Response(body, media_type="application/json")


def _default(extended: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extended.items() if k != "accountEnabled"}


async def mailbox_settings(request: Request) -> Response:
    """A user's mailboxSettings (timeZone, workingHours, language, ...)."""
    caller = authenticate(request)
    key = request.path_params.get("user_id")
    user = caller.user if key is None else _find(caller, str(key))
    if user is None:
        raise errors.BadRequest("/me request is only valid with delegated authentication flow.")
    tag_request(request, mailbox=user.id)
    own = caller.user is not None and caller.user.id == user.id
    wanted = {"MailboxSettings.Read", "MailboxSettings.ReadWrite"}
    granted = caller.roles if caller.app_only else caller.scopes
    if not own and not caller.app_only:
        wanted = {"MailboxSettings.Read.Shared", "MailboxSettings.ReadWrite.Shared"} | wanted
    if not granted & wanted:
        raise errors.ErrorAccessDenied()
    check_mailbox_reachable(user)
    return JSONResponse(
        {
            "@odata.context": metadata_url(request, f"users('{user.id}')/mailboxSettings"),
            "archiveFolder": None,
            "timeZone": user.time_zone,
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "dateFormat": "M/d/yyyy",
            "timeFormat": "h:mm tt",
            "userPurpose": "user",
            "automaticRepliesSetting": {"status": "disabled", "externalAudience": "none"},
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": user.time_zone},
            },
        }
    )
